# SPDX-License-Identifier: GPL-3.0-or-later
"""Molecular dynamics with a force-providing pdmd model (pd-local) through ASE: `pdmd md`.

NVE: velocity Verlet. NVT: Bussi's stochastic velocity rescaling (canonical, no random forces, so a
2D sheet stays flat). For a 2D model the atoms' z coordinates are fixed (`FixCartesian`), so the
temperature counts 2 degrees of freedom per atom. Initial velocities are Maxwell-Boltzmann at the
target temperature with zero total momentum. The trajectory (extxyz, every `every` steps) carries
positions, velocities, potential energy and forces; a CSV log has time (ps), potential and kinetic
energy (eV/atom) and temperature (K), and a PNG beside it plots the total-energy change and T.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import InputError, SimulationError
from pdmd.progress import ProgressLog
from pdmd.systems import SHEET_Z_SPAN_A

log = logging.getLogger(__name__)

ENSEMBLES = ("nvt", "nve")
DEFAULT_TIMESTEP_FS = 0.5
"""Default MD timestep (fs): LAMMPS Tersoff itself blows up at 1 fs in NVE on a 300 K aGr sheet (docs/local.md)."""
NVE_WARN_meV_PER_ATOM = 5.0
"""An NVE run whose total energy moves more than this (meV/atom) from its start gets a warning (timestep)."""


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

    @classmethod
    def from_csv(cls, path: str | Path) -> MDResult:
        """The energy series of a finished run from its CSV log (`pdmd md`); no wall time or trajectory."""
        arr = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], 0, 0.0, None, str(path))

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
    timestep_fs: float = DEFAULT_TIMESTEP_FS,
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
        if np.ptp(atoms.positions[:, 2]) > SHEET_Z_SPAN_A:
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

    def record() -> None:  # the frame first: every logged row then has its frame in the trajectory
        atoms.get_forces()  # energy and forces in one call, both in the trajectory
        if traj is not None:
            write(traj, atoms, format="extxyz", append=True)
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        rows.append((dyn.nsteps * timestep_fs / 1000.0, epot / n, ekin / n, _temperature(atoms, ndof)))

    csv = str(traj.with_suffix(".csv")) if traj is not None else None

    def save_log() -> np.ndarray:
        arr = np.array(rows)
        if csv is not None:
            from pdmd.ml.plots import md_energy_plot

            header = "time_ps,potential_eV_per_atom,kinetic_eV_per_atom,temperature_K"
            np.savetxt(csv, arr, delimiter=",", header=header, comments="")
            label = f"{ensemble} {timestep_fs:g} fs, {n} atoms"
            md_energy_plot(Path(csv).with_suffix(".png"), {label: (arr[:, 0], arr[:, 1] + arr[:, 2], arr[:, 3])})
        return arr

    start = time.perf_counter()
    record()
    done, warned = 0, False

    def failure(step: int, what: str, blew_up: bool) -> SimulationError:
        logged = csv
        try:
            save_log()
        except OSError as err:  # e.g. the disk is full: the trajectory written so far stays
            log.warning("the MD log could not be written: %s", err)
            logged = None
        advice = (f": timestep {timestep_fs} fs is too long for this potential at this temperature, try a shorter "
                  "--timestep-fs") if blew_up else ""  # fmt: skip
        where = f"{traj} and {logged}" if logged else f"{traj}"
        kept = f"; the {len(rows)} frames before it are in {where}" if traj is not None else ""
        return SimulationError(f"MD {'blew up' if blew_up else 'failed'} near step {step} ({what}){advice}{kept}")

    while done < steps:
        chunk = min(every, steps - done)
        target = done + chunk
        try:
            dyn.run(chunk)
            done += chunk
            record()
        except Exception as err:  # a calculator or file failure inside this chunk: one line, what ran is kept
            lines = str(err).strip().splitlines()
            what = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
            raise failure(target, what, "lost atoms" in what.lower()) from err
        if not np.isfinite(rows[-1][1]):
            raise failure(target, "non-finite energy", True)
        moved_meV = 1000.0 * abs(rows[-1][1] + rows[-1][2] - rows[0][1] - rows[0][2])
        if ensemble == "nve" and not warned and moved_meV > NVE_WARN_meV_PER_ATOM:
            warned = True
            log.warning(
                "NVE total energy moved by %.1f meV/atom after %d steps: timestep %g fs is likely too long "
                "for this potential (try --timestep-fs %g)",
                moved_meV,
                target,
                timestep_fs,
                timestep_fs / 2,
            )
        progress.step(chunk, note=f"E_tot {rows[-1][1] + rows[-1][2]:.5f} eV/atom, T {rows[-1][3]:.0f} K")
    wall = time.perf_counter() - start
    arr = save_log()
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
    timestep_fs: float = DEFAULT_TIMESTEP_FS,
    ensemble: str = "nvt",
    every: int = 10,
    index: int = -1,
    seed: int = 0,
    read_options=None,
) -> MDResult:
    """`pdmd md`: load a force-providing model and a structure file, run MD, write `out` (extxyz) + CSV.

    `model` may also name a LAMMPS reference potential (`pdmd.md.protocol.POTENTIALS`, e.g. tersoff1989):
    the same MD with the reference itself (2D when the structure is not periodic along z or is flat, else 3D).
    `read_options`: a `pdmd.structure.ReadOptions` (format, LAMMPS settings) for the structure file.
    """
    from pdmd.api import load_potential
    from pdmd.calculator import PDPotential, ReferencePotential
    from pdmd.md.protocol import POTENTIALS
    from pdmd.structure import Frame, read_frames, validate_frame

    calculator: PDPotential | ReferencePotential | None = None
    if str(model) in POTENTIALS and POTENTIALS[str(model)].engine == "lammps" and not Path(model).exists():
        dim = 0  # the reference: its dimension follows the structure (below)
    else:
        pot = load_potential(model)
        if not pot.provides_forces:
            kind = pot.card.get("model_kind", "pd-cnn")
            raise InputError(
                f"model {model} ({kind}) gives no forces; MD needs a pd-local model (pdmd train --model pd-local)"
            )
        calculator, dim = PDPotential(pot), pot.dim
    atoms = read_frames(structure, index=str(index) if index >= 0 else ":", options=read_options)[
        index if index < 0 else 0
    ]
    if calculator is None:  # a sheet (not periodic along z, or flat) runs in 2D, as the melt-quench template
        dim = 2 if not atoms.pbc[2] or np.ptp(atoms.positions[:, 2]) < SHEET_Z_SPAN_A else 3
        log.info("reference %s in %dD", model, dim)
        calculator = ReferencePotential(str(model), dim)
    validate_frame(Frame.from_ase(atoms), dim, label=str(structure))  # units, flatness, overlaps: one-line errors
    try:
        return run_md(calculator, atoms, dim=dim, temperature_K=temperature_K, steps=steps, timestep_fs=timestep_fs,
                      ensemble=ensemble, every=every, seed=seed, trajectory=out)  # fmt: skip
    finally:
        if isinstance(calculator, ReferencePotential):
            calculator.close()
