"""Typed, validated training parameters (lumo's ``Params``, registered in Hydra's ConfigStore).

``config.yaml`` starts its defaults list with ``train_schema``, so every composed config is typed by
``TrainParams``: a bad value (``lr=20``, ``labelled_fraction=0``, ``optim.name=rmsprop``) stops the run,
or the whole sweep, before any job starts, with a message naming the key, the value and what is allowed.
The config groups (``dataset``, ``model``, ``method``) are free-form nodes (``Any``): Hydra already
rejects an unknown option of a group and lists the available ones.
"""
from __future__ import annotations

from typing import Any

from lumo_hydra import Params, arange, choice


class OptimParams(Params):
    name: str = choice("adam", "sgd")
    """The optimiser."""
    lr: float = arange(default=3e-3, left=0, right=1)
    """Learning rate."""
    weight_decay: float = arange(default=0.0, left=0, right=0.1)
    """L2 penalty."""


class TrainParams(Params):
    epochs: int = 10
    """Passes over the training set (every method makes the same number of steps per epoch)."""
    batch_size: int = 64
    """Items per batch."""
    seed: int = 0
    """Seeds Python, NumPy and torch; also picks the labelled subset."""
    labelled_fraction: float = arange(default=1.0, left=0.01, right=1.0)
    """Fraction of the training labels that methods may use (class-balanced); the rest is unlabelled."""
    num_threads: int = 1
    """torch threads per job (keep 1 when a sweep runs jobs in parallel)."""
    save_checkpoint: bool = True
    """Save the best model under the run's blob folder (exp.mk_bpath('model.pt'))."""
    optim: OptimParams = OptimParams()

    # config groups, composed by Hydra (conf/dataset, conf/model, conf/method)
    dataset: Any = None
    test_dataset: Any = None
    model: Any = None
    method: Any = None


TrainParams.store(name="train_schema")
