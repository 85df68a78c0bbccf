"""The training loop shared by every model (plain PyTorch; knows nothing about Hydra).

``fit`` trains on the training split and, after every epoch, evaluates the dev and test splits and records,
through ``exp.dump_metric``: ``f1`` (test weighted F1, ``cmp='max'``), ``acc`` (test accuracy, ``max``),
``dev_f1`` (``max``) and ``loss`` (training loss, ``min``). The checkpoint is the model of the best dev F1.
Any object with ``dump_metric(key, value, cmp=..., step=...)`` works as ``exp`` (or ``None``).
"""
from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.nn import functional as F

from lumo_hydra.errors import LumoValueError

from .data import collate

__all__ = ["seed_everything", "evaluate", "fit", "check_inputs", "check_modality"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def check_inputs(model: Any, dataset: Any, dataset_choice: str = "") -> None:
    """Every batch key the model reads must be an output of the dataset, else a clear error."""
    missing = [k for k in model.inputs() if k not in dataset.output_names]
    if missing:
        chosen = f" (dataset={dataset_choice})" if dataset_choice else ""
        raise LumoValueError(
            f"model {model.name!r} with modalities {model.modalities} reads {missing}, which the dataset{chosen} "
            f"does not output; outputs: {dataset.output_names}; use dataset=meld (all modalities and the context)"
        )


def check_modality(model_modalities: list[str], modality: str, use: list[str], model_choice: str = "") -> None:
    """A model that fixes its modalities (``text_only``, ``audio_only``) refuses another ``modality=``."""
    if list(model_modalities) != list(use):
        raise LumoValueError(
            f"model={model_choice or '?'} reads modalities {list(model_modalities)}, but modality={modality} was chosen; "
            f"leave modality= out, or use model=early_fusion|late_fusion|context_gru modality={modality}"
        )


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any) -> dict[str, float]:
    """Weighted F1, accuracy and mean cross-entropy of ``model`` over ``loader``."""
    model.eval()
    preds, golds, loss_sum = [], [], 0.0
    for batch in loader:
        logits = model(batch)
        loss_sum += float(F.cross_entropy(logits, batch["ys"], reduction="sum"))
        preds.append(logits.argmax(1).numpy())
        golds.append(batch["ys"].numpy())
    y, p = np.concatenate(golds), np.concatenate(preds)
    return {
        "f1": float(f1_score(y, p, average="weighted", zero_division=0)),
        "acc": float((y == p).mean()),
        "loss": loss_sum / max(len(y), 1),
    }


def fit(
    model: nn.Module,
    train_set: Any,
    dev_set: Any,
    test_set: Any,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    exp: Any = None,
    checkpoint: str | None = None,
    log: Any = print,
) -> dict[str, float]:
    """Train and evaluate; returns the test F1/accuracy at the best dev epoch (``test_f1``, ``test_acc``),
    ``best_f1`` (best test F1 of any epoch), ``final_f1``, ``final_acc``, ``best_dev_f1``, ``best_epoch``,
    ``train_seconds``."""
    train_loader = train_set.DataLoader(batch_size=batch_size, shuffle=True, collate_fn=collate)
    dev_loader = dev_set.DataLoader(batch_size=256, shuffle=False, collate_fn=collate)
    test_loader = test_set.DataLoader(batch_size=256, shuffle=False, collate_fn=collate)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    t0 = time.time()
    best: dict[str, float] = {"dev_f1": -1.0, "epoch": -1}
    best_f1, test, train_loss = 0.0, {"f1": 0.0, "acc": 0.0}, float("nan")
    for epoch in range(epochs):
        model.train()
        losses = []
        for batch in train_loader:
            loss = F.cross_entropy(model(batch), batch["ys"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        train_loss = float(np.mean(losses))
        dev, test = evaluate(model, dev_loader), evaluate(model, test_loader)
        best_f1 = max(best_f1, test["f1"])
        if exp is not None:
            exp.dump_metric("f1", test["f1"], cmp="max", step=epoch)
            exp.dump_metric("acc", test["acc"], cmp="max", step=epoch)
            exp.dump_metric("dev_f1", dev["f1"], cmp="max", step=epoch)
            exp.dump_metric("loss", train_loss, cmp="min", step=epoch)
        if dev["f1"] > best["dev_f1"]:
            best = {"dev_f1": dev["f1"], "epoch": epoch, "test_f1": test["f1"], "test_acc": test["acc"]}
            if checkpoint is not None:
                torch.save({"epoch": epoch, "dev_f1": dev["f1"], "model": model.state_dict()}, checkpoint)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}  loss {train_loss:.4f}  dev_f1 {dev['f1']:.4f}  "
                f"test_f1 {test['f1']:.4f}  test_acc {test['acc']:.4f}")
    return {
        "test_f1": best["test_f1"],
        "test_acc": best["test_acc"],
        "best_f1": best_f1,
        "final_f1": test["f1"],
        "final_acc": test["acc"],
        "best_dev_f1": best["dev_f1"],
        "best_epoch": int(best["epoch"]),
        "train_seconds": round(time.time() - t0, 3),
    }
