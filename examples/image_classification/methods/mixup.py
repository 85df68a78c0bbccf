"""mixup (Zhang et al., 2018): train on convex combinations of pairs of images and of their labels."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import Method, images


class MixUp(Method):
    """``lam ~ Beta(alpha, alpha)``; the loss is ``lam * CE(y) + (1 - lam) * CE(y[perm])`` on the mixed images."""

    def __init__(self, name: str = "mixup", alpha: float = 0.4) -> None:
        super().__init__(name)
        if not alpha > 0:
            raise ValueError(f"method.alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def loss(self, model: nn.Module, batch: Any, *, epoch: int, epochs: int) -> torch.Tensor:
        xs, ys = images(batch), batch["ys"]
        lam = float(np.random.beta(self.alpha, self.alpha))
        perm = torch.randperm(xs.shape[0])
        logits = model(lam * xs + (1 - lam) * xs[perm])
        return lam * F.cross_entropy(logits, ys) + (1 - lam) * F.cross_entropy(logits, ys[perm])
