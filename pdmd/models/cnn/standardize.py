"""Standardization of PD images and of the energy target, fitted on the training split only.

Images: first an optional representation of the probabilities (`REPRESENTATIONS`: the paper's
histogram as it is, its square root, log(1 + p / p₁) with p₁ the smallest occupied training
pixel, i.e. about one pair, or a Gaussian-smoothed histogram, σ = 1 pixel), then a transform of
scope "global" (one shift and scale over all pixels) or "pixel" (one per pixel, as a feature-wise
scaler such as scikit-learn's treats the flattened image). "minmax" maps the training range to
[0, 1] (the paper's choice for aGr); "zscore" subtracts the training mean and divides by the
standard deviation (the paper's choice for aC). Per pixel, a spread below `PIXEL_FLOOR` × the
largest pixel spread counts as that floor, so nearly-empty pixels are not blown up into noise.
The per-pixel arrays are stored next to the weights (`image_scaler.npz`), the card names them.
Images of several channels (N, C, S, S), e.g. H1 and H0 diagrams, are scaled channel by channel:
scope "global" has one shift and scale per channel.
Target: z-score of the training energies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

STANDARDIZATIONS = ("minmax", "zscore")
REPRESENTATIONS = ("histogram", "sqrt", "log", "smooth")
"""Inputs of the CNN: the paper's probability histogram, sqrt, log or Gaussian-smoothed (σ `sigma_px` pixels)."""
SMOOTH_SIGMA_PIXELS = 1.0
"""σ (pixels) of the smoothed representation unless a setting says otherwise (cards from before the option)."""
SPARSE_PAIRS_PER_PIXEL = 4.0
"""`auto` representation: training diagrams with fewer finite pairs than this per pixel of the grid, all
together, are smoothed (`SPARSE_SIGMA_PIXELS`); denser data keep the paper's histogram."""
SPARSE_SIGMA_PIXELS = 3.0
"""σ (pixels) that `auto` smooths sparse training data with (docs/models.md, "pd-cnn on small data sets")."""
SCOPES = ("global", "pixel")
"""One shift/scale for all pixels, or one per pixel."""
PIXEL_FLOOR = 0.05
"""Per-pixel scaling: spreads below this fraction of the largest pixel spread are raised to it."""
SCALER_FILE = "image_scaler.npz"


def represent(images: np.ndarray, representation: str, unit: float = 1.0, sigma_px: float = SMOOTH_SIGMA_PIXELS
              ) -> np.ndarray:  # fmt: skip
    """The images (N, S, S) or (N, C, S, S) probabilities in the given representation (float32); `sigma_px`: the
    Gaussian's σ in pixels of the smoothed one.
    """
    images = np.asarray(images, np.float32)
    if representation == "histogram":
        return images
    if representation == "sqrt":
        return np.sqrt(np.clip(images, 0.0, None))
    if representation == "log":
        return np.log1p(np.clip(images, 0.0, None) / unit).astype(np.float32)
    if representation == "smooth":
        from scipy.ndimage import gaussian_filter

        sigma = (0.0,) * (images.ndim - 2) + (sigma_px, sigma_px)
        return gaussian_filter(images, sigma=sigma, mode="constant")
    raise ValueError(f"unknown image representation {representation!r}; use one of {REPRESENTATIONS}")


@dataclass(frozen=True, eq=False)
class ImageScaler:
    """representation → (x − shift) / scale; `unit` is the log representation's p₁ (probability).

    `shift` and `scale` are floats (scope "global") or (bins, bins) arrays (scope "pixel"); for images of C > 1
    channels, (C, 1, 1) (global) or (C, bins, bins) (pixel) arrays.
    """

    kind: str
    shift: float | np.ndarray
    scale: float | np.ndarray
    representation: str = "histogram"
    unit: float = 1.0
    scope: str = "global"
    sigma_px: float = SMOOTH_SIGMA_PIXELS

    @classmethod
    def fit(cls, images: np.ndarray, kind: str, representation: str = "histogram", scope: str = "global",
            sigma_px: float = SMOOTH_SIGMA_PIXELS) -> ImageScaler:  # fmt: skip
        """Fitted on training images (N, bins, bins) or (N, C, bins, bins) of probabilities."""
        if kind not in STANDARDIZATIONS:
            raise ValueError(f"unknown image standardization {kind!r}; use one of {STANDARDIZATIONS}")
        if scope not in SCOPES:
            raise ValueError(f"unknown image scaling scope {scope!r}; use one of {SCOPES}")
        occupied = images[images > 0]
        unit = float(occupied.min()) if representation == "log" and occupied.size else 1.0
        x = represent(images, representation, unit, sigma_px)
        multi = x.ndim == 4  # several channels: each scaled on its own
        axis = 0 if scope == "pixel" else (0, 2, 3) if multi else None
        keep = multi and scope == "global"
        if kind == "minmax":
            shift = x.min(axis=axis, keepdims=keep)
            spread = x.max(axis=axis, keepdims=keep) - shift
        else:
            shift, spread = x.mean(axis=axis, keepdims=keep), x.std(axis=axis, keepdims=keep)
        if scope == "global" and not multi:
            return cls(kind, float(shift), float(spread) or 1.0, representation, unit, sigma_px=sigma_px)
        if keep:
            shift, spread = shift[0], np.where(spread[0] > 0, spread[0], 1.0)
        else:
            floor = PIXEL_FLOOR * spread.max(axis=(-2, -1), keepdims=True).astype(np.float64)  # as before: float64
            spread = np.maximum(spread, np.where(floor > 0, floor, 1.0))
        return cls(kind, shift.astype(np.float32), spread.astype(np.float32), representation, unit, scope, sigma_px)

    @classmethod
    def from_dict(cls, d: dict, folder: str | Path | None = None) -> ImageScaler:
        """From a card (cards written before representations existed hold the plain histogram); a
        per-pixel scaler reads its arrays from `folder`.
        """
        d = dict(d)
        name = d.pop("file", None)
        d.pop("floor_fraction", None)
        if d.get("scope", "global") == "pixel":
            if folder is None or name is None:
                raise ValueError("a per-pixel image scaler needs the model folder holding its arrays")
            with np.load(Path(folder) / name) as arrays:
                d["shift"], d["scale"] = arrays["shift"], arrays["scale"]
        elif isinstance(d["shift"], list):  # one shift and scale per channel
            d["shift"], d["scale"] = (np.asarray(d[k], np.float32) for k in ("shift", "scale"))
        return cls(**d)

    def transform(self, images: np.ndarray) -> np.ndarray:
        x = represent(images, self.representation, self.unit, self.sigma_px)
        return ((x - self.shift) / self.scale).astype(np.float32)

    def as_dict(self) -> dict:
        """For the card: the numbers (global) or the metadata and the arrays' file name (pixel)."""
        if self.scope == "global":
            return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self).items()}
        return {"kind": self.kind, "scope": self.scope, "representation": self.representation, "unit": self.unit,
                "sigma_px": self.sigma_px, "floor_fraction": PIXEL_FLOOR, "file": SCALER_FILE}  # fmt: skip

    def save_arrays(self, folder: str | Path) -> None:
        """Write the per-pixel arrays next to the weights (atomically); nothing for a global scaler."""
        if self.scope == "global":
            return
        tmp = Path(folder) / f".{SCALER_FILE}.tmp.npz"
        np.savez(tmp, shift=self.shift, scale=self.scale)
        tmp.replace(Path(folder) / SCALER_FILE)


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


def auto_representation(images: np.ndarray, n_pairs: np.ndarray | None) -> tuple[str, float, str]:
    """(representation, σ pixels, why) that setting `auto` picks for training images (N, [C,] bins, bins) whose
    diagrams have `n_pairs` finite pairs each (None: counted as the occupied pixels, a lower bound).

    Sparse data (fewer than SPARSE_PAIRS_PER_PIXEL pairs per pixel over the whole training split, e.g. ~150 sheets
    of 200 atoms) are smoothed with σ SPARSE_SIGMA_PIXELS, so neighbouring pixels share what few pairs there are;
    denser data keep the paper's histogram, as do images with extra homology channels (`extra_degrees`: on the
    tests' small sets their smoothed H0 channel learned less).
    """
    if images.ndim == 4 and images.shape[1] > 1:  # extra homology channels: measured with the histogram only
        return "histogram", SMOOTH_SIGMA_PIXELS, "auto: several image channels keep the histogram"
    images = images[:, 0] if images.ndim == 4 else images
    pairs = float(np.sum(n_pairs)) if n_pairs is not None else float((images > 0).sum())
    per_pixel = pairs / float(images.shape[-1] * images.shape[-2])
    if per_pixel < SPARSE_PAIRS_PER_PIXEL:
        return (
            "smooth",
            SPARSE_SIGMA_PIXELS,
            f"auto: {per_pixel:.2f} training pairs per pixel < {SPARSE_PAIRS_PER_PIXEL:g}",
        )
    return (
        "histogram",
        SMOOTH_SIGMA_PIXELS,
        f"auto: {per_pixel:.1f} training pairs per pixel >= {SPARSE_PAIRS_PER_PIXEL:g}",
    )
