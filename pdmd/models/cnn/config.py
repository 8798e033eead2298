# SPDX-License-Identifier: GPL-3.0-or-later
"""The pd-cnn's settings: architecture (`CNNConfig`) and training (`TrainConfig`); no torch needed to read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pdmd.models.cnn.standardize import REPRESENTATIONS, SCOPES, STANDARDIZATIONS

POOLS = ("max", "avg")
"""2×2 pooling after each conv layer of the pd-cnn: the paper's max-pooling, or average pooling."""
PRECISIONS = ("auto", "bf16", "fp32")
"""pd-cnn training arithmetic: bf16 autocast (weights and optimizer stay fp32), plain fp32, or auto: bf16 where
the device computes it natively, else fp32 (`pdmd.models.cnn.train.training_precision`)."""
SCHEDULES = ("plateau", "cosine", "onecycle")
"""Learning-rate schedules: `plateau` (linear warm-up, then × `lr_factor` after `lr_patience` flat
validation epochs), `cosine` (linear warm-up, then half a cosine from `learning_rate` to 0 at
`epochs`, per step), `onecycle` (Smith's one-cycle as torch's OneCycleLR: a cosine rise from
`learning_rate`/25 to `learning_rate` over the first 30 % of `epochs`, then a cosine fall to
`learning_rate`/2.5e5; its rise replaces the warm-up)."""


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


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings (learning rate per step of AdamW, warm-up and patience in epochs).

    Training runs until the validation loss has not improved for `early_stopping_patience`
    epochs (the plateau schedule halves the learning rate after `lr_patience` flat epochs
    first); with the plateau schedule `epochs` and `max_minutes` are safety caps only, while
    `schedule` "cosine" / "onecycle" (SCHEDULES) spread their learning rates over `epochs`, the
    known budget (early stopping still applies). `threads` None: every core this
    process may use. `precision` "bf16" trains under bfloat16 autocast with the images held in
    memory as bfloat16, "auto" does so only where the device has native bf16 arithmetic (emulated bf16
    is several times slower than fp32); predictions are always computed in fp32. Small training sets use batches
    smaller than `batch_size` (not below 8) so that an epoch has ≥ `min_steps_per_epoch` steps.

    Defaults (docs/models.md, "pd-cnn"; their measurements in docs/history.md): ≥ 8 steps per epoch and a
    2-epoch warm-up (min-max images leave occupied pixels at ≈ 0.04 next to conv biases of
    ≈ 0.3, so the network starts as a constant; with 1–2 steps per epoch small sets stopped
    early on that plateau), bf16 autocast where the device has it natively (faster at the same accuracy); the
    paper's min-max images stay (z-score: `standardization="zscore"`). `representation` "auto" keeps the
    paper's histogram for dense training data and smooths sparse data (few diagram pairs per pixel over
    the training split, e.g. ~150 sheets of 200 atoms; `pdmd.models.cnn.standardize.auto_representation`),
    on which the histogram's CNN barely beats the mean predictor; `smooth_sigma_px` is the σ of an explicitly
    chosen "smooth" representation. A network that collapses onto the mean is trained again from another
    seed (`pdmd.models.cnn.fit.MAX_RESTARTS`).
    """

    epochs: int = 300
    batch_size: int = 32
    min_steps_per_epoch: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 2
    lr_factor: float = 0.5
    lr_patience: int = 8
    schedule: str = "plateau"
    early_stopping_patience: int = 25
    val_fraction: float = 0.1
    seed: int = 0
    standardization: str = "minmax"
    representation: str = "auto"
    smooth_sigma_px: float = 1.0
    image_scope: str = "global"
    channels_last: bool = True
    precision: str = "auto"
    threads: int | None = None
    max_minutes: float | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {PRECISIONS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        for name, allowed in (("image_scope", SCOPES), ("representation", (*REPRESENTATIONS, "auto")),
                              ("standardization", STANDARDIZATIONS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; use one of {allowed}")

    def as_dict(self) -> dict:
        return asdict(self)
