"""Image classification on scikit-learn's digits: a Hydra app whose every run is recorded by lumo-hydra.

    python train.py                                   # supervised MLP, 10 epochs, a few seconds
    python train.py method=mixup model=cnn optim.lr=0.01
    python train.py -m method=supervised,pimodel labelled_fraction=0.1 seed=0,1 hydra/launcher=joblib

Every run gets its own record in the store (``$LUMO_HOME``): parameters, the code snapshot, the command,
the environment, per-epoch ``acc``/``loss`` with their best values, the checkpoint, the final metrics.
Load them with ``python results.py`` or ``lumo_hydra.Watcher``.
"""
from __future__ import annotations

import os
import sys
from typing import Any

# The app's modules (models, methods, engine, params) sit beside this file; make them importable in
# launcher workers too (joblib's processes do not start from this folder).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from params import TrainParams  # noqa: E402  (registers the `train_schema` config)

import lumo_hydra  # noqa: E402


@lumo_hydra.main(config_path="conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig, exp: Any) -> dict[str, float]:
    """One training run: build data, model and method from the config, train, return the final metrics.

    ``exp`` is the running ``Experiment`` (``lumo_hydra.main`` passes it; ``current_experiment()`` is the
    same object): its record already holds the config, the code snapshot, the command and the
    environment; the task adds metrics, tags, info and the checkpoint.
    """
    import engine
    import torch

    p = TrainParams.from_config(cfg)  # typed, validated view of the config
    torch.set_num_threads(p.num_threads)
    engine.seed_everything(p.seed)

    train_set = hydra.utils.instantiate(cfg.dataset)  # a DatasetBuilder, from the YAML DAG spec
    test_set = hydra.utils.instantiate(cfg.test_dataset)
    model = hydra.utils.instantiate(cfg.model)
    method = hydra.utils.instantiate(cfg.method)
    labelled = None
    if p.labelled_fraction < 1:
        labelled = engine.labelled_indices(train_set.get_source("ys"), p.labelled_fraction, p.seed)

    exp.add_tags(method.name, type(model).__name__.lower())
    exp.dump_info("data", {
        "train": len(train_set), "test": len(test_set),
        "labelled": len(train_set) if labelled is None else len(labelled),
    })
    final = engine.fit(
        model, method, train_set, test_set,
        labelled=labelled,
        epochs=p.epochs, batch_size=p.batch_size,
        optim=p.optim.name, lr=p.optim.lr, weight_decay=p.optim.weight_decay,
        exp=exp,
        checkpoint=exp.mk_bpath("model.pt") if p.save_checkpoint else None,
    )
    return final


if __name__ == "__main__":
    train()
