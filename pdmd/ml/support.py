"""What a model has seen: its training energies and where its training diagrams had pairs.

Recorded on the model card at training (`training_range`) and checked at prediction, so that a
prediction outside the training data says so (a warning, never a refusal).
"""

from __future__ import annotations

import numpy as np

ENERGY_MARGIN = 0.1
"""Predictions this fraction of the training energy span beyond it are flagged as extrapolation."""
OUTSIDE_MASS = 0.05
"""A diagram with more than this fraction of its pairs outside the training support is flagged."""


def training_range(images: np.ndarray, energies_eV: np.ndarray, descriptor: dict) -> dict:
    """Energy range (eV/atom) and diagram support (Å² box of pixels any training image used) of training data."""
    used = np.asarray(images).reshape(len(images), *images.shape[-2:]).max(axis=0) > 0
    edges = np.linspace(descriptor["lo_A2"], descriptor["hi_A2"], descriptor["bins"] + 1)
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
        d = card["descriptor"]
        centres = (np.arange(d["bins"]) + 0.5) * (d["hi_A2"] - d["lo_A2"]) / d["bins"] + d["lo_A2"]
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
