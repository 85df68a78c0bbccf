"""Emotion recognition in conversation (MELD layout): a Hydra app whose every run is recorded by lumo-hydra.

    python train.py                                            # context GRU, text+audio+visual, synthetic data
    python train.py model=context_gru modality=text+audio
    python train.py model=text_only data.root=/path/to/MELD
    python train.py -m model=text_only,early_fusion,late_fusion,context_gru seed=0,1,2 hydra/launcher=joblib

Every run gets its own record in the store (``$LUMO_HOME``): parameters, the code snapshot, the command,
the environment, per-epoch ``f1`` (test weighted F1), ``acc``, ``dev_f1`` and ``loss`` with their best values,
the checkpoint of the best dev epoch, the final metrics. Read them with ``python results.py``.
"""
from __future__ import annotations

import os
import sys
from typing import Any

# The template's package `erc` sits beside this file; make it importable in launcher workers too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hydra  # noqa: E402
from erc.params import TrainParams  # noqa: E402  (registers the `erc_schema` config)
from omegaconf import DictConfig  # noqa: E402

import lumo_hydra  # noqa: E402
from lumo_hydra.errors import LumoValueError  # noqa: E402


def _choice(name: str) -> str:
    """The chosen option of config group ``name`` (for messages and tags)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return str(HydraConfig.get().runtime.choices.get(name, ""))
    except ValueError:
        return ""


@lumo_hydra.main(config_path="conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig, exp: Any) -> dict[str, float]:
    """One run: build the three splits, the model from the config, train, return the final metrics."""
    import torch
    from erc import engine
    from erc.data import resolve_root
    from erc.meld import EMOTIONS
    from erc.synthetic import is_synthetic

    p = TrainParams.from_config(cfg)  # typed, validated view of the config
    torch.set_num_threads(p.num_threads)
    engine.seed_everything(p.seed)
    root = resolve_root(p.data.root)  # None: the synthetic set, generated on first use
    cfg.data.root = root  # the specs' ${data.root} and the record name the folder actually read

    train_set = hydra.utils.instantiate(cfg.dataset)  # DatasetBuilders, from the YAML DAG specs
    dev_set = hydra.utils.instantiate(cfg.dev_dataset)
    test_set = hydra.utils.instantiate(cfg.test_dataset)
    engine.check_modality(list(cfg.model.get("modalities") or []), cfg.modality.name, list(cfg.modality.use),
                          _choice("model"))
    sources = train_set.inputs
    model = hydra.utils.instantiate(
        cfg.model, num_classes=len(EMOTIONS),
        vocab_size=_vocab_size(train_set),
        audio_dim=int(sources["audio"].shape[1]) if "audio" in sources else 1,
        visual_dim=int(sources["visual"].shape[1]) if "visual" in sources else 1,
    )
    engine.check_inputs(model, train_set, _choice("dataset"))

    synthetic = is_synthetic(root)
    exp.add_tags(model.name, cfg.modality.name, "synthetic" if synthetic else "meld")
    exp.dump_info("data", {"root": root, "synthetic": synthetic, "train": len(train_set), "dev": len(dev_set),
                           "test": len(test_set), "dataset": _choice("dataset")})
    return engine.fit(
        model, train_set, dev_set, test_set,
        epochs=p.epochs, batch_size=p.batch_size, lr=p.optim.lr, weight_decay=p.optim.weight_decay,
        exp=exp, checkpoint=exp.mk_bpath("model.pt") if p.save_checkpoint else None,
    )


def _vocab_size(dataset: Any) -> int:
    """The size of the vocabulary behind the dataset's token ids (the spec's shared ``vocab`` node)."""
    from erc.data import TokenIds, Tokenize

    if "text" not in dataset.inputs:
        return 2  # no text: the model has no text encoder anyway
    tf, src = dataset.get_input_transform("text"), dataset.get_source("text")
    if isinstance(tf, Tokenize):
        return len(tf.vocab)
    if isinstance(src, TokenIds):
        return len(src.vocab)
    raise LumoValueError("the dataset's text input must be erc.data.tokenize_all's ids or use erc.data.Tokenize")


if __name__ == "__main__":
    train()
