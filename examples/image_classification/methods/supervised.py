"""Supervised baseline: cross-entropy on the labelled images."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Method


class Supervised(Method):
    """Plain cross-entropy. With ``labelled_fraction < 1`` it sees only the labelled part of the training set."""

    def loss(self, model: nn.Module, batch: Any, *, epoch: int, epochs: int) -> torch.Tensor:
        return self.cross_entropy(model, batch)
