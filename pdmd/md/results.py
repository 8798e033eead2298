# SPDX-License-Identifier: GPL-3.0-or-later
"""What a melt-quench run produces, whichever engine ran it (LAMMPS here, VASP on HPC): snapshots and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pdmd.structure import Frame

BOLTZMANN_eV_per_K = 8.617333262e-5
"""Boltzmann constant (eV/K), CODATA 2018."""


@dataclass(frozen=True)
class Snapshot:
    """A structure from the run with its potential energy and where in the protocol it was taken."""

    frame: Frame
    kind: str  # "intermediate" or "final"
    step: int
    time_ps: float
    setpoint_K: float
    temperature_K: float
    energy_eV_per_atom: float
    forces_eV_per_A: np.ndarray | None = None  # (N, 3), in the order of frame's atoms; None if not dumped


@dataclass
class MeltQuenchResult:
    """Summary of a finished run (the snapshots themselves went to `on_snapshot`)."""

    run_id: str
    n_snapshots: int
    wall_s: float
    steps: int
    steps_per_s: float
    final_energy_eV_per_atom: float
    workdir: str
    notes: list[str] = field(default_factory=list)
