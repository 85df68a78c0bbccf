"""Small models for 8x8 digit images, selected with the config group ``model`` (``model=mlp`` / ``model=cnn``).

Both take a batch shaped ``(N, 1, 8, 8)`` (or ``(N, 64)``) and return logits ``(N, num_classes)``.
"""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """A two-hidden-layer perceptron on the flattened image."""

    def __init__(self, in_features: int = 64, hidden: int = 128, num_classes: int = 10, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """Two 3x3 convolutions and a max-pool, then a linear classifier (about 25k parameters)."""

    def __init__(self, channels: int = 16, num_classes: int = 10, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * channels * 16, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # flattened input
            x = x.view(-1, 1, 8, 8)
        return self.head(self.features(x))
