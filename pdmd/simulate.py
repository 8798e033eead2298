# SPDX-License-Identifier: GPL-3.0-or-later
"""Molecular dynamics with a force-providing pdmd model (pd-local) through ASE: `pdmd md`.

NVE: velocity Verlet. NVT: Bussi's stochastic velocity rescaling (canonical, no random forces, so a
2D sheet stays flat). For a 2D model the atoms' z coordinates are fixed (`FixCartesian`), so the
temperature counts 2 degrees of freedom per atom. Initial velocities are Maxwell-Boltzmann at the
target temperature with zero total momentum. The trajectory (extxyz, every `every` steps) carries
positions, velocities, potential energy and forces; a CSV log has time (ps), potential, kinetic and
total energy (eV/atom) and temperature (K).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import InputError
from pdmd.progress import ProgressLog

log = logging.getLogger(__name__)

ENSEMBLES = ("nvt", "nve")


@dataclass
class MDResult:
    """Per-logged-step series (time ps, energies eV/atom, T K), wall time and the files written."""

    time_ps: np.ndarray
    potential_eV_per_atom: np.ndarray
    kinetic_eV_per_atom: np.ndarray
    temperature_K: np.ndarray
    steps: int
    wall_s: float
    trajectory: str | None
    log_csv: str | None

    @property
    def total_eV_per_atom(self) -> np.ndarray:
        return self.potential_eV_per_atom + self.kinetic_eV_per_atom

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.wall_s / max(self.steps, 1)

    def drift_meV_per_atom_per_ps(self) -> float:
        """Slope of a straight-line fit to the total energy per atom (meV/atom/ps)."""
        if len(self.time_ps) < 2:
            return float("nan")
        return float(np.polyfit(self.time_ps, self.total_eV_per_atom, 1)[0] * 1000.0)

    def max_deviation_meV_per_atom(self) -> float:
        """Largest |E_total - E_total(0)| (meV/atom)."""
        e = self.total_eV_per_atom
        return float(np.abs(e - e[0]).max() * 1000.0)


def run_md(
    calculator,
    atoms,
    *,
    dim: int,
    temperature_K: float,
    steps: int,
    timestep_fs: float = 1.0,
    ensemble: str = "nvt",
    every: int = 10,
    tau_fs: float = 100.0,
    seed: int = 0,
    trajectory: str | Path | None = None,
) -> MDResult:
    """Run `steps` MD steps of `atoms` (ASE Atoms, copied) with `calculator`; log every `every` steps."""
    from ase import units
    from ase.constraints import FixCartesian
    from ase.io import write
    from ase.md.velocitydistribution import Stationary

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    if steps < 1 or timestep_fs <= 0 or temperature_K < 0 or every < 1:
        raise InputError("need steps >= 1, timestep_fs > 0, temperature_K >= 0 and every >= 1")
    atoms = atoms.copy()
    atoms.info = {}  # the input's labels (e.g. a reference energy) do not describe the trajectory's frames
    atoms.calc = calculator
    if dim == 2:
        if np.ptp(atoms.positions[:, 2]) > 0.5:
            raise InputError(
                f"a 2D model needs a flat sheet in the xy plane; z spans {np.ptp(atoms.positions[:, 2]):.3f} Å"
            )
        atoms.set_constraint(FixCartesian(range(len(atoms)), mask=(False, False, True)))
    rng = np.random.default_rng(seed)
    ndof = (2 if dim == 2 else 3) * len(atoms) - dim  # momentum conserved
    if temperature_K > 0:
        thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
        Stationary(atoms)
        p = atoms.get_momenta()
        p[:, dim:] = 0.0
        atoms.set_momenta(p * np.sqrt(temperature_K / max(_temperature_of(p, atoms.get_masses(), ndof), 1e-12)))
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, dt)
    else:
        from ase.md.bussi import Bussi

        dyn = Bussi(atoms, dt, temperature_K=temperature_K, taut=tau_fs * units.fs, rng=rng)
    n = len(atoms)
    rows: list[tuple[float, float, float, float]] = []
    traj = Path(trajectory) if trajectory else None
    if traj is not None:
        traj.parent.mkdir(parents=True, exist_ok=True)
        traj.unlink(missing_ok=True)
    progress = ProgressLog(steps, f"MD {ensemble} {n} atoms", log)

    def record() -> None:
        atoms.get_forces()  # energy and forces in one call, both in the trajectory
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        rows.append((dyn.nsteps * timestep_fs / 1000.0, epot / n, ekin / n, _temperature(atoms, ndof)))
        if traj is not None:
            write(traj, atoms, format="extxyz", append=True)

    start = time.perf_counter()
    record()
    done = 0
    while done < steps:
        chunk = min(every, steps - done)
        dyn.run(chunk)
        done += chunk
        record()
        progress.step(chunk, note=f"E_tot {rows[-1][1] + rows[-1][2]:.5f} eV/atom, T {rows[-1][3]:.0f} K")
        if not np.isfinite(rows[-1][1]):
            raise InputError(f"MD blew up at step {done}: non-finite energy (timestep {timestep_fs} fs too large?)")
    wall = time.perf_counter() - start
    arr = np.array(rows)
    csv = None
    if traj is not None:
        csv = str(traj.with_suffix(".csv"))
        np.savetxt(csv, arr, delimiter=",", header="time_ps,potential_eV_per_atom,kinetic_eV_per_atom,temperature_K",
                   comments="")  # fmt: skip
    return MDResult(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], steps, wall, str(traj) if traj else None, csv)


def _temperature(atoms, ndof: int) -> float:
    return _temperature_of(atoms.get_momenta(), atoms.get_masses(), ndof)


def _temperature_of(momenta: np.ndarray, masses: np.ndarray, ndof: int) -> float:
    """Kinetic temperature (K) of momenta (ASE units) with `ndof` degrees of freedom."""
    from ase import units

    kinetic = 0.5 * float((momenta**2 / masses[:, None]).sum())
    return 2.0 * kinetic / (max(ndof, 1) * units.kB)


def run_md_file(
    model: str | Path,
    structure: str | Path,
    out: str | Path,
    *,
    temperature_K: float,
    steps: int,
    timestep_fs: float = 1.0,
    ensemble: str = "nvt",
    every: int = 10,
    index: int = -1,
    seed: int = 0,
) -> MDResult:
    """`pdmd md`: load a force-providing model and a structure file, run MD, write `out` (extxyz) + CSV."""
    from pdmd.api import load_potential
    from pdmd.calculator import PDPotential
    from pdmd.structure import Frame, read_frames, validate_frame

    pot = load_potential(model)
    if not pot.provides_forces:
        kind = pot.card.get("model_kind", "pd-cnn")
        raise InputError(
            f"model {model} ({kind}) gives no forces; MD needs a pd-local model (pdmd train --model pd-local)"
        )
    atoms = read_frames(structure, index=str(index) if index >= 0 else ":")[index if index < 0 else 0]
    validate_frame(Frame.from_ase(atoms), pot.dim, label=str(structure))  # units, flatness, overlaps: one-line errors
    return run_md(PDPotential(pot), atoms, dim=pot.dim, temperature_K=temperature_K, steps=steps,
                  timestep_fs=timestep_fs, ensemble=ensemble, every=every, seed=seed, trajectory=out)  # fmt: skip
