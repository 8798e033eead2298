"""Persistence-diagram histogram images: counts on a bins×bins grid, as a probability.

Pairs outside the window [lo, hi]² (Å²) are not drawn but still count in the normaliser, so an
image is the probability of a pair falling in each pixel; the mass outside is reported as
`fraction_outside`. Essential classes never enter. A diagram without finite pairs gives an
all-zero image and is flagged (`n_pairs == 0`); callers decide whether that is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdmd.errors import DescriptorError

DEFAULT_RANGE_A2 = {2: (0.0, 4.0), 3: (0.0, 8.0)}
"""Histogram window (Å²) by periodic dimension: the paper's [0,4]² for aGr sheets and [0,8]² for aC cells."""


@dataclass(frozen=True)
class HistogramSpec:
    """Grid of the PD image: `bins`×`bins` pixels over [lo_A2, hi_A2]² (birth on axis 0)."""

    lo_A2: float = 0.0
    hi_A2: float = 4.0
    bins: int = 128

    def __post_init__(self) -> None:
        if not (self.hi_A2 > self.lo_A2 and self.bins >= 2):
            raise DescriptorError(f"invalid histogram spec {self}: need hi_A2 > lo_A2 and bins >= 2")

    @property
    def edges_A2(self) -> np.ndarray:
        return np.linspace(self.lo_A2, self.hi_A2, self.bins + 1)

    def as_dict(self) -> dict:
        return {"lo_A2": self.lo_A2, "hi_A2": self.hi_A2, "bins": self.bins}


@dataclass(frozen=True)
class PDImage:
    """Probability image (bins, bins) float32, index [birth_bin, death_bin], and bookkeeping."""

    image: np.ndarray
    n_pairs: int
    n_outside: int

    @property
    def fraction_outside(self) -> float:
        return self.n_outside / self.n_pairs if self.n_pairs else 0.0


def pd_histogram(births_A2: np.ndarray, deaths_A2: np.ndarray, spec: HistogramSpec = HistogramSpec()) -> PDImage:
    """Histogram of finite (birth, death) pairs divided by the number of finite pairs."""
    births = np.asarray(births_A2, float)
    deaths = np.asarray(deaths_A2, float)
    if births.shape != deaths.shape:
        raise DescriptorError(f"births and deaths differ in shape: {births.shape} vs {deaths.shape}")
    if not (np.isfinite(births).all() and np.isfinite(deaths).all()):
        raise DescriptorError("finite pairs contain non-finite values; pass essential classes separately")
    n = len(births)
    edges = spec.edges_A2
    counts, _, _ = np.histogram2d(births, deaths, bins=[edges, edges])
    inside = int(counts.sum())
    image = (counts / n).astype(np.float32) if n else counts.astype(np.float32)
    return PDImage(image=image, n_pairs=n, n_outside=n - inside)


def as_channels(images: np.ndarray) -> np.ndarray:
    """Images as (N, C, S, S): a single-channel stack (N, S, S) gains its channel axis."""
    images = np.asarray(images)
    return images[:, None] if images.ndim == 3 else images
