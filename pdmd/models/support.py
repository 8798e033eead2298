"""What a model has seen: its training energies and where its training diagrams had pairs.

Recorded on the model card at training (`training_range`) and checked at prediction, so that a
prediction outside the training data says so (a warning, never a refusal).
"""

from __future__ import annotations

import functools

import numpy as np

from pdmd.descriptor.histogram import as_channels
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.structure import Frame, check_structure_fits

ENERGY_MARGIN = 0.1
"""Predictions this fraction of the training energy span beyond it are flagged as extrapolation."""
OUTSIDE_MASS = 0.05
"""A diagram with more than this fraction of its pairs outside the training support is flagged."""


class CardModel:
    """What every loaded model reads from its card: the descriptor setting, the dimension, the input checks."""

    card: dict

    @functools.cached_property
    def spec(self) -> DescriptorSpec:
        """The descriptor setting the model was trained with (from its card; read once per loaded model)."""
        return DescriptorSpec.from_dict(self.card["descriptor"], f"model {self.card.get('name')}")

    @property
    def dim(self) -> int:
        return self.spec.dim

    def check_fits(self, frame: Frame, label: str) -> None:
        """Refuse structures of another element or dimensionality than the training data."""
        check_structure_fits(frame, self.dim, list(self.spec.elements), label)


def training_range(images: np.ndarray, energies_eV: np.ndarray, spec: DescriptorSpec) -> dict:
    """Energy range (eV/atom) and diagram support (Å² box of pixels any training image used) of training data;
    images (N, [C,] bins, bins), the support is that of the descriptor's own diagram (channel 0).
    """
    used = as_channels(images)[:, 0].max(axis=0) > 0  # the descriptor's own diagram (channel 0)
    edges = spec.histogram.edges_A2
    if used.any():
        b, d = np.nonzero(used)
        support = {"birth_A2": [float(edges[b.min()]), float(edges[b.max() + 1])],
                   "death_A2": [float(edges[d.min()]), float(edges[d.max() + 1])]}  # fmt: skip
    else:
        support = {"birth_A2": None, "death_A2": None}
    return {
        "energy_eV_per_atom": [float(np.min(energies_eV)), float(np.max(energies_eV))],
        "n_structures": int(len(energies_eV)),
        **support,
    }


def range_warnings(card: dict, energy_eV: float, image: np.ndarray | None = None) -> list[str]:
    """Why a prediction lies outside the model's training data (empty list: inside)."""
    rng = card.get("training_range")
    if not rng:
        return []
    out = []
    lo, hi = rng["energy_eV_per_atom"]
    span = max(hi - lo, 1e-3)
    if not lo - ENERGY_MARGIN * span <= energy_eV <= hi + ENERGY_MARGIN * span:
        out.append(f"predicted {energy_eV:.4f} eV/atom lies outside the training energies [{lo:.4f}, {hi:.4f}]")
    if image is not None and rng.get("birth_A2"):
        image = image[0] if image.ndim == 3 else image  # several channels: the descriptor's own diagram
        edges = DescriptorSpec.from_dict(card["descriptor"], f"model {card.get('name')}").histogram.edges_A2
        centres = 0.5 * (edges[1:] + edges[:-1])
        (b0, b1), (d0, d1) = rng["birth_A2"], rng["death_A2"]
        inside = np.outer((centres >= b0) & (centres <= b1), (centres >= d0) & (centres <= d1))
        total = float(image.sum())
        outside = float(image[~inside].sum()) / total if total > 0 else 0.0
        if outside > OUTSIDE_MASS:
            out.append(
                f"{100 * outside:.0f}% of its diagram's pairs lie where no training structure had pairs "
                f"(training support: birth {b0:.2f}-{b1:.2f}, death {d0:.2f}-{d1:.2f} Å²)"
            )
    return out
