"""Typed, validated parameters of the ERC template (lumo's ``Params``, registered in Hydra's ConfigStore).

``config.yaml`` starts its defaults list with ``erc_schema``, so every composed config is typed by
``TrainParams``: a bad value (``context_window=-1``, ``optim.lr=3``, ``data.missing_features=skip``) stops
the run, or the whole sweep, before any job starts, with a message naming the key, the value and what is
allowed. The config groups (``dataset``, ``model``, ``modality``) are free-form nodes: Hydra already
rejects an unknown option of a group and lists the available ones.
"""
from __future__ import annotations

from typing import Any

from lumo_hydra import Params, arange, choice


class DataParams(Params):
    root: str | None = None
    """A MELD-layout folder (README.md); null: the synthetic set in <template>/data/synthetic, made on first use."""
    missing_features: str = choice("error", "zeros")
    """An utterance without a row in a feature file: an error naming it, or a zero vector."""


class OptimParams(Params):
    lr: float = arange(default=5e-3, left=0, right=1)
    """Adam's learning rate."""
    weight_decay: float = arange(default=0.0, left=0, right=0.1)
    """L2 penalty."""


class TrainParams(Params):
    epochs: int = arange(default=8, left=1, right=10_000)
    """Passes over the training utterances."""
    batch_size: int = arange(default=64, left=1, right=65_536)
    """Utterances per batch."""
    seed: int = 0
    """Seeds Python, NumPy and torch (not the data: the synthetic set has its own seed, see make_data.py)."""
    context_window: int = arange(default=4, left=0, right=100)
    """How many previous utterances of the dialogue each item carries (ctx_* outputs)."""
    max_tokens: int = arange(default=32, left=1, right=1024)
    """Tokens kept per utterance."""
    num_threads: int = arange(default=1, left=1, right=256)
    """torch threads per job (keep 1 when a sweep runs jobs in parallel)."""
    save_checkpoint: bool = True
    """Save the model of the best dev F1 under the run's blob folder (exp.mk_bpath('model.pt'))."""
    data: DataParams = DataParams()
    optim: OptimParams = OptimParams()

    # config groups, composed by Hydra (conf/dataset, conf/model, conf/modality)
    dataset: Any = None
    dev_dataset: Any = None
    test_dataset: Any = None
    model: Any = None
    modality: Any = None


TrainParams.store(name="erc_schema")
