"""Small models with known geometry for attack tests."""

from __future__ import annotations

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """logits = W·flatten(x) + b, so gradients and decision boundaries are known exactly."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)
        self.num_classes = weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class TinyCNN(nn.Module):
    """A small random convolutional classifier (nonlinear, with BatchNorm)."""

    def __init__(self, channels: int = 1, classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, classes),
        )
        self.num_classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NaNModel(nn.Module):
    num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1)[:, :3] * 0
        return out / out  # 0/0
