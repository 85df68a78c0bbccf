"""Swap datasets from the command line: a DatasetBuilder built from a YAML spec by ``instantiate``.

    python examples/dataset_demo/app.py                                   # dataset=digits
    python examples/dataset_demo/app.py dataset=digits_twoview dataset.outputs.xs2.transform.strength=0.5
    python examples/dataset_demo/app.py dataset=digits dataset.nodes.digits.split=test "dataset.subset={stop:100}"
"""
from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    ds = instantiate(cfg.dataset)
    print(f"dataset: {ds}")
    print(f"items: {len(ds)}")
    item = ds[0]
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in item.items()} if isinstance(item, dict) else item
    print(f"first item: {shapes}")
    try:
        import torch  # noqa: F401  (optional: the builder itself does not need torch)
    except ImportError:
        return
    loader = ds.DataLoader(batch_size=cfg.batch_size, num_workers=cfg.num_workers, shuffle=True)
    batch = next(iter(loader))
    print(f"batch: { {k: tuple(v.shape) for k, v in batch.items()} }")


if __name__ == "__main__":
    main()
