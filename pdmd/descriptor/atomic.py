# SPDX-License-Identifier: GPL-3.0-or-later
"""Atom-centred descriptors (DScribe) averaged over atoms: the ACSF/SOAP that baselines and pd-hybrid use.

Settings (carbon):
- SOAP: r_cut 5 Å, n_max 8, l_max 6, Gaussian width 0.5 Å, periodic, `average="inner"` (the
  average of the atoms' power spectra): 252 features.
- ACSF: r_cut 6 Å; G2 (eta Å⁻², R_s Å) = (0.01, 0), (0.1, 0), (0.5, 0), (1, 1.4), (2, 1.4), (2, 2.5),
  (1, 3.5), (0.5, 4.5); G4 (eta, zeta, lambda) = (0.005, 1, ±1), (0.005, 4, ±1), (0.05, 1, ±1),
  (0.05, 4, ±1): 17 features per atom, averaged.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from pdmd.errors import InputError
from pdmd.progress import ProgressLog
from pdmd.structure import Frame

log = logging.getLogger(__name__)

DESCRIPTORS = ("soap", "acsf")
ACSF_G2 = [[0.01, 0.0], [0.1, 0.0], [0.5, 0.0], [1.0, 1.4], [2.0, 1.4], [2.0, 2.5], [1.0, 3.5], [0.5, 4.5]]
ACSF_G4 = [[0.005, 1, 1], [0.005, 1, -1], [0.005, 4, 1], [0.005, 4, -1],
           [0.05, 1, 1], [0.05, 1, -1], [0.05, 4, 1], [0.05, 4, -1]]  # fmt: skip


def make_descriptor(kind: str, species: list[str], periodic: bool = True):
    """The DScribe descriptor object of `kind` ("soap" | "acsf") with the settings in the module docstring."""
    from dscribe.descriptors import ACSF, SOAP

    if kind == "soap":
        return SOAP(species=species, r_cut=5.0, n_max=8, l_max=6, sigma=0.5, periodic=periodic, average="inner")
    if kind == "acsf":
        return ACSF(species=species, r_cut=6.0, g2_params=ACSF_G2, g4_params=ACSF_G4, periodic=periodic)
    raise InputError(f"unknown descriptor {kind!r}; choose one of {DESCRIPTORS}")


def structure_features(kind: str, frames: list[Frame], label: str = "features") -> tuple[np.ndarray, float]:
    """Global feature vectors (N, F), averaged over atoms, and seconds per structure."""
    from ase.data import chemical_symbols

    species = sorted({chemical_symbols[int(z)] for f in frames for z in np.unique(f.numbers)})
    periodic = all(any(f.pbc) for f in frames)
    desc = make_descriptor(kind, species, periodic)
    progress = ProgressLog(len(frames), f"{label} ({kind})", log)
    t0 = time.perf_counter()
    rows = []
    for frame in frames:
        x = desc.create(frame.to_ase())
        rows.append(x if x.ndim == 1 else x.mean(axis=0))
        progress.step()
    return np.asarray(rows, float), (time.perf_counter() - t0) / max(len(frames), 1)
