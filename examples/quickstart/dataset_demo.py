"""The seed's DatasetBuilder snippet, unchanged apart from the import, on a real data set.

    python examples/quickstart/dataset_demo.py

The seed leaves ``source``, ``transform1`` and ``transform2`` to the reader; here ``source`` is
scikit-learn's bundled digits (1797 8x8 images, no download) and the two transforms are a weak and a
strong random augmentation, so ``xs1`` and ``xs2`` are two views of the same image (as in the
semi-supervised Pi-model of ``examples/image_classification``). The same builder is then made from the
YAML spec the template uses, through ``hydra.utils.instantiate``.
"""
from types import SimpleNamespace

import numpy as np

from lumo_hydra.data.digits import RandomAugment, load

np.set_printoptions(precision=2, suppress=True, linewidth=100)  # a readable print(ds[0])

digits = load('train')
source = SimpleNamespace(data=digits['images'], targets=digits['targets'])
transform1 = RandomAugment(strength=0.3, seed=0)  # weak view
transform2 = RandomAugment(strength=1.0, seed=1)  # strong view

# --- the seed's snippet -------------------------------------------------------------------------
from lumo_hydra import DatasetBuilder

ds = (
    DatasetBuilder()
        # input streams
        .add_input('xs', source.data)
        .add_input('ys', source.targets)
        # output streams
        .add_output('xs', 'xs1', transform1)
        .add_output('xs', 'xs2', transform2)
        .add_output('ys', 'ys')
)

print(ds[0])
# >>> {'xs1': ..., 'xs2': ..., "ys": ...}
# -------------------------------------------------------------------------------------------------

item = ds[0]
print(f"{len(ds)} items; xs1 {item['xs1'].shape} {item['xs1'].dtype}, xs2 {item['xs2'].shape}, ys {item['ys']}")
print(ds)

# The same kind of builder from a YAML DAG spec (the template's config group `dataset`):
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

spec = OmegaConf.load(Path(__file__).parents[1] / 'image_classification' / 'conf' / 'dataset' / 'digits_twoview.yaml')
ds2 = instantiate(spec)
print('from YAML:', ds2.output_names, len(ds2), {k: getattr(v, 'shape', v) for k, v in ds2[0].items()})

# A torch DataLoader over it (the builder and its transforms pickle, so workers work too):
loader = ds2.DataLoader(batch_size=32, shuffle=True)
batch = next(iter(loader))
print('a batch:', {k: tuple(v.shape) for k, v in batch.items()})
