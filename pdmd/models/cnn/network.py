"""CNN of Minamitani & Obayashi (arXiv:2206.13727): PD image -> mean energy per atom."""

from __future__ import annotations

import torch
from torch import nn

from pdmd.models.cnn.config import CNNConfig


class PDCNN(nn.Module):
    """Input (B, C, S, S) standardized PD images (C = `config.in_channels`); output (B,) normalized energy per atom."""

    def __init__(self, config: CNNConfig = CNNConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_channels
        pool = nn.MaxPool2d if config.pool == "max" else nn.AvgPool2d
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), pool(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.channels)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * side * side, config.fc_hidden), nn.ReLU(), nn.Linear(config.fc_hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)
