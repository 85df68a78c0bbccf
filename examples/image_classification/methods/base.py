"""The interface every method implements."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def images(batch: dict[str, Any]) -> torch.Tensor:
    """The (first) image view of a batch: ``xs`` for the plain dataset, ``xs1`` for a two-view one."""
    for key in ("xs", "xs1"):
        if key in batch:
            return batch[key]
    raise KeyError(f"batch has no image key 'xs' or 'xs1'; keys: {sorted(batch)}")


class Method:
    """A training method.

    ``semi_supervised = False``: the loop calls ``loss(model, batch, ...)`` with a labelled batch.
    ``semi_supervised = True``: the loop calls ``loss(model, (labelled, unlabelled), ...)``; the unlabelled
    batch comes from the whole training set (its labels are never used) and must have two views
    (``xs1``, ``xs2``: use ``dataset=digits_twoview``).
    """

    semi_supervised: bool = False
    needs_two_views: bool = False

    def __init__(self, name: str = "", **hparams: Any) -> None:
        self.name = name or type(self).__name__.lower()
        if hparams:
            raise TypeError(f"method {self.name!r} got unknown parameters {sorted(hparams)}")

    def loss(self, model: nn.Module, batch: Any, *, epoch: int, epochs: int) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def cross_entropy(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(model(images(batch)), batch["ys"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"
