"""Standardization of PD images and of the energy target, fitted on the training split only.

Images: first an optional representation of the probabilities (`REPRESENTATIONS`: the paper's
histogram as it is, its square root, log(1 + p / p₁) with p₁ the smallest occupied training
pixel, i.e. about one pair, or a Gaussian-smoothed histogram, σ = 1 pixel), then one global
transform over all pixels (not per pixel: most pixels are empty in most images and per-pixel
scales would blow up noise). "minmax" maps the training images' pixel range to [0, 1] (the
paper's choice for aGr); "zscore" subtracts the training pixel mean and divides by its standard
deviation (the paper's choice for aC). Target: z-score of the training energies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

STANDARDIZATIONS = ("minmax", "zscore")
REPRESENTATIONS = ("histogram", "sqrt", "log", "smooth")
"""Inputs of the CNN: the paper's probability histogram (default), sqrt, log or Gaussian-smoothed (σ 1 pixel)."""

SMOOTH_SIGMA_PIXELS = 1.0


def represent(images: np.ndarray, representation: str, unit: float = 1.0) -> np.ndarray:
    """The images (N, S, S) probabilities in the given representation (float32)."""
    images = np.asarray(images, np.float32)
    if representation == "histogram":
        return images
    if representation == "sqrt":
        return np.sqrt(np.clip(images, 0.0, None))
    if representation == "log":
        return np.log1p(np.clip(images, 0.0, None) / unit).astype(np.float32)
    if representation == "smooth":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(images, sigma=(0.0, SMOOTH_SIGMA_PIXELS, SMOOTH_SIGMA_PIXELS), mode="constant")
    raise ValueError(f"unknown image representation {representation!r}; use one of {REPRESENTATIONS}")


@dataclass(frozen=True)
class ImageScaler:
    """representation → (x − shift) / scale; `unit` is the log representation's p₁ (probability)."""

    kind: str
    shift: float
    scale: float
    representation: str = "histogram"
    unit: float = 1.0

    @classmethod
    def fit(cls, images: np.ndarray, kind: str, representation: str = "histogram") -> ImageScaler:
        occupied = images[images > 0]
        unit = float(occupied.min()) if representation == "log" and occupied.size else 1.0
        x = represent(images, representation, unit)
        if kind == "minmax":
            lo, hi = float(x.min()), float(x.max())
            return cls(kind, lo, (hi - lo) or 1.0, representation, unit)
        if kind == "zscore":
            return cls(kind, float(x.mean()), float(x.std()) or 1.0, representation, unit)
        raise ValueError(f"unknown image standardization {kind!r}; use one of {STANDARDIZATIONS}")

    @classmethod
    def from_dict(cls, d: dict) -> ImageScaler:
        """From a card (cards written before representations existed hold the plain histogram)."""
        return cls(**d)

    def transform(self, images: np.ndarray) -> np.ndarray:
        return ((represent(images, self.representation, self.unit) - self.shift) / self.scale).astype(np.float32)

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
