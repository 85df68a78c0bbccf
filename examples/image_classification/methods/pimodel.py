"""Pi-model (Laine & Aila, 2017): semi-supervised two-view consistency.

Cross-entropy on the labelled images, plus the squared distance between the predictions for two random
augmentations of every training image (labelled or not), weighted by a ramp-up.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import Method


class PiModel(Method):
    """Two-view consistency; ``lambda_u`` is the consistency weight reached after ``ramp_epochs`` epochs."""

    semi_supervised = True
    needs_two_views = True

    def __init__(self, name: str = "pimodel", lambda_u: float = 10.0, ramp_epochs: int = 5) -> None:
        super().__init__(name)
        if lambda_u < 0:
            raise ValueError(f"method.lambda_u must be >= 0, got {lambda_u!r}")
        self.lambda_u = float(lambda_u)
        self.ramp_epochs = int(ramp_epochs)

    def weight(self, epoch: int) -> float:
        """Gaussian ramp-up ``exp(-5 (1 - t)^2)`` from 0 to ``lambda_u``."""
        if self.ramp_epochs <= 0:
            return self.lambda_u
        t = min(1.0, (epoch + 1) / self.ramp_epochs)
        return self.lambda_u * math.exp(-5.0 * (1.0 - t) ** 2)

    def loss(self, model: nn.Module, batch: Any, *, epoch: int, epochs: int) -> torch.Tensor:
        labelled, unlabelled = batch
        sup = self.cross_entropy(model, labelled)
        p1 = F.softmax(model(unlabelled["xs1"]), dim=1)
        p2 = F.softmax(model(unlabelled["xs2"]), dim=1)
        consistency = F.mse_loss(p1, p2)
        return sup + self.weight(epoch) * consistency
