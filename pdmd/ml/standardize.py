"""Standardization of PD images and of the energy target, fitted on the training split only.

Images: one global transform over all pixels (not per pixel: most pixels are empty in most
images and per-pixel scales would blow up noise). "minmax" maps the training images' pixel range
to [0, 1] (the paper's choice for aGr); "zscore" subtracts the training pixel mean and divides by
its standard deviation (the paper's choice for aC). Target: z-score of the training energies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_STANDARDIZATION = {2: "minmax", 3: "zscore"}
"""Image standardization by periodic dimension, as in the paper: min-max for aGr, z-score for aC."""


@dataclass(frozen=True)
class ImageScaler:
    kind: str
    shift: float
    scale: float

    @classmethod
    def fit(cls, images: np.ndarray, kind: str) -> ImageScaler:
        if kind == "minmax":
            lo, hi = float(images.min()), float(images.max())
            return cls(kind, lo, (hi - lo) or 1.0)
        if kind == "zscore":
            return cls(kind, float(images.mean()), float(images.std()) or 1.0)
        raise ValueError(f"unknown image standardization {kind!r}; use 'minmax' or 'zscore'")

    def transform(self, images: np.ndarray) -> np.ndarray:
        return ((images - self.shift) / self.scale).astype(np.float32)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TargetScaler:
    mean_eV: float
    std_eV: float

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        return cls(float(y.mean()), float(y.std()) or 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.mean_eV) / self.std_eV).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std_eV + self.mean_eV

    def as_dict(self) -> dict:
        return asdict(self)
