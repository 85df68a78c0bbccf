"""The training loop shared by every method (plain PyTorch; knows nothing about Hydra).

``fit`` trains ``model`` with ``method`` and, after every epoch, evaluates on the test set and records
``acc`` (``cmp='max'``) and ``loss`` (``cmp='min'``) through ``exp.dump_metric``. Any object with
``dump_metric(key, value, cmp=..., step=...)`` and ``mk_bpath(name)`` works as ``exp`` (or ``None``).
"""
from __future__ import annotations

import itertools
import random
import time
from typing import Any

import numpy as np
import torch
from methods.base import Method, images
from torch import nn


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (the augmentations use it) and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def labelled_indices(labels: Any, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-balanced random ``fraction`` of the items (at least one per class), sorted."""
    labels = np.asarray(labels)
    if not 0 < fraction <= 1:
        raise ValueError(f"labelled_fraction: invalid value {fraction!r}; allowed: (0, 1]")
    if fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        picked.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=True)
    raise ValueError(f"optim.name: invalid value {name!r}; allowed: ['adam', 'sgd']")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` over ``loader``."""
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    for batch in loader:
        logits = model(images(batch))
        loss_sum += float(nn.functional.cross_entropy(logits, batch["ys"], reduction="sum"))
        correct += int((logits.argmax(1) == batch["ys"]).sum())
        total += int(batch["ys"].shape[0])
    return correct / max(total, 1), loss_sum / max(total, 1)


def fit(
    model: nn.Module,
    method: Method,
    train_set: Any,
    test_set: Any,
    *,
    labelled: np.ndarray | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    optim: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    exp: Any = None,
    checkpoint: str | None = None,
    log: Any = print,
) -> dict[str, float]:
    """Train and evaluate; returns ``final_acc``, ``best_acc``, ``final_loss``, ``final_test_loss``, ``train_seconds``.

    ``labelled``: indices of the labelled training items (``None``: all). Supervised methods train on
    those items only; a semi-supervised method also gets batches of the whole training set, unlabelled.
    ``checkpoint``: where to save the model (``torch.save``) after every epoch that improves ``acc``.
    """
    if method.needs_two_views and "xs2" not in train_set.output_names:
        raise ValueError(
            f"method {method.name!r} needs a two-view dataset (outputs xs1, xs2); "
            f"got outputs {train_set.output_names}: use dataset=digits_twoview"
        )
    labelled_set = train_set if labelled is None else train_set.subset(list(map(int, labelled)), copy=True)
    bs_l = min(batch_size, len(labelled_set))
    lab_loader = labelled_set.DataLoader(batch_size=bs_l, shuffle=True, drop_last=len(labelled_set) > bs_l)
    unl_loader = train_set.DataLoader(batch_size=batch_size, shuffle=True, drop_last=True) if method.semi_supervised else None
    # An epoch is one pass over the whole training set's worth of batches for every method, so that a
    # run with few labels makes as many optimisation steps as one with all labels.
    steps = max(1, len(train_set) // batch_size)
    test_loader = test_set.DataLoader(batch_size=256, shuffle=False)
    opt = make_optimizer(optim, model.parameters(), lr, weight_decay)

    t0 = time.time()
    best_acc, acc, test_loss, train_loss = -1.0, 0.0, float("nan"), float("nan")
    for epoch in range(epochs):
        model.train()
        losses = []
        if unl_loader is None:
            batches: Any = itertools.islice(_cycle(lab_loader), steps)
        else:  # one pass over the unlabelled data; the labelled loader cycles
            batches = zip(_cycle(lab_loader), unl_loader)
        for batch in batches:
            loss = method.loss(model, batch, epoch=epoch, epochs=epochs)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        train_loss = float(np.mean(losses)) if losses else float("nan")
        acc, test_loss = evaluate(model, test_loader)
        if exp is not None:
            exp.dump_metric("acc", acc, cmp="max", step=epoch)
            exp.dump_metric("loss", train_loss, cmp="min", step=epoch)
            exp.dump_metric("test_loss", test_loss, cmp="min", step=epoch)
        if acc > best_acc:
            best_acc = acc
            if checkpoint is not None:
                torch.save({"epoch": epoch, "acc": acc, "model": model.state_dict()}, checkpoint)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}  loss {train_loss:.4f}  test_loss {test_loss:.4f}  acc {acc:.4f}")
    return {
        "final_acc": acc,
        "best_acc": max(best_acc, 0.0),
        "final_loss": train_loss,
        "final_test_loss": test_loss,
        "train_seconds": round(time.time() - t0, 3),
    }


def _cycle(loader: Any) -> Any:
    """Cycle over a DataLoader, reshuffling on every pass (``itertools.cycle`` would replay one order)."""
    for _ in itertools.count():
        yield from loader
