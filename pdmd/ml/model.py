"""CNN of Minamitani & Obayashi (arXiv:2206.13727): PD image -> mean energy per atom."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from pdmd.ml.options import POOLS


@dataclass(frozen=True)
class CNNConfig:
    """Architecture: conv 3×3 layers (each + ReLU + 2×2 pooling, `pool` of POOLS), then FC(hidden) -> FC(1).

    Input channels: the PD image of the descriptor's homology degree (the paper's H1), then one image per
    degree of `extra_degrees` (e.g. (0,): H1 and H0 as two channels), each on the same grid.
    """

    image_size: int = 128
    channels: tuple[int, ...] = (64, 64, 32)
    fc_hidden: int = 128
    pool: str = "max"
    extra_degrees: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"unknown pooling {self.pool!r}; use one of {POOLS}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "extra_degrees", tuple(int(d) for d in self.extra_degrees))

    @property
    def in_channels(self) -> int:
        return 1 + len(self.extra_degrees)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["extra_degrees"] = list(self.extra_degrees)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CNNConfig:
        return cls(
            image_size=int(d["image_size"]),
            channels=tuple(int(c) for c in d["channels"]),
            fc_hidden=int(d["fc_hidden"]),
            pool=str(d.get("pool", "max")),  # cards from before pooling was a choice: the paper's max-pooling
            extra_degrees=tuple(d.get("extra_degrees", ())),  # cards from before: the descriptor's image only
        )


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
