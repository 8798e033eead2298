# SPDX-License-Identifier: GPL-3.0-or-later
"""Molecular dynamics with a force-providing pdmd model (pd-local) through ASE: `pdmd md`.

NVE: velocity Verlet. NVT: Bussi's stochastic velocity rescaling (canonical, no random forces, so a
2D sheet stays flat). For a 2D model the atoms' z coordinates are fixed (`FixCartesian`), so the
temperature counts 2 degrees of freedom per atom. Initial velocities are Maxwell-Boltzmann at the
target temperature with zero total momentum. The trajectory (extxyz, every `every` steps) carries
positions, velocities, potential energy and forces; a CSV log has time (ps), potential and kinetic
energy (eV/atom) and temperature (K), and a PNG beside it plots the total-energy change and T.

Uncertainty (pd-local, `pdmd.calculator.PDPotential`): every frame carries the per-atom extrapolation
grade (extxyz array `extrapolation`) and, for a committee, the per-atom force deviation
(`force_deviation`); the CSV has their maxima and the committee's energy std, and a committee's run
also writes DP-GEN's `model_devi.out` beside the trajectory. Every step is checked against
`max_extrapolation` / `max_force_deviation`: past either, the run stops with one line (step, atoms,
value, threshold), keeping the frames so far and the offending one.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdmd.errors import ExtrapolationStop, InputError, SimulationError
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
    max_extrapolation: np.ndarray | None = None
    """Per logged frame: the largest per-atom extrapolation grade (None without a domain)."""
    max_force_deviation_eV_per_A: np.ndarray | None = None
    """Per logged frame: a committee's largest per-atom force deviation (None without a committee)."""
    stopped: str | None = None
    """Why the run stopped before `steps` (an uncertainty threshold), else None."""

    @classmethod
    def from_csv(cls, path: str | Path) -> MDResult:
        """The energy series of a finished run from its CSV log (`pdmd md`); no wall time or trajectory."""
        with open(path) as fh:
            names = fh.readline().strip().split(",")
        arr = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        col = {n: arr[:, k] for k, n in enumerate(names)}
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], 0, 0.0, None, str(path),
                   col.get("max_extrapolation"), col.get("max_force_deviation_eV_per_A"))  # fmt: skip

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


@dataclass(frozen=True)
class Limits:
    """Uncertainty thresholds checked every MD step; None: not checked."""

    max_extrapolation: float | None = None
    """Largest per-atom extrapolation grade (dimensionless, 1 = edge of the training data)."""
    max_force_deviation_eV_per_A: float | None = None
    """Largest per-atom committee force deviation (eV/Å)."""

    def breach(self, results: dict) -> tuple[str, float, float, np.ndarray] | None:
        """(what, value, threshold, atoms) of the first threshold passed by a calculator's results, else None."""
        for key, per_atom, limit in (
            ("extrapolation grade", "extrapolation", self.max_extrapolation),
            ("force deviation (eV/Å)", "force_deviation", self.max_force_deviation_eV_per_A),
        ):
            values = results.get(per_atom)
            if limit is None or values is None:
                continue
            values = np.asarray(values)
            if not np.isfinite(values).all() or values.max() > limit:
                bad = np.flatnonzero(~np.isfinite(values) | (values > limit))
                return key, float(np.nanmax(np.where(np.isfinite(values), values, np.inf))), float(limit), bad
        return None


CSV_COLUMNS = ("time_ps", "potential_eV_per_atom", "kinetic_eV_per_atom", "temperature_K", "max_extrapolation",
               "max_force_deviation_eV_per_A", "energy_std_eV_per_atom")  # fmt: skip
"""The MD log's columns; the last three only where the model gives them."""
MODEL_DEVI_HEADER = ("step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f",
                     "devi_e", "max_devi_ae", "min_devi_ae", "avg_devi_ae")  # fmt: skip
"""DP-GEN's model_devi.out columns (virial deviation not computed: NaN; devi_e: total-energy std per atom, eV;
*_devi_ae: per-atom energy std, eV) and the forces' in eV/Å."""


class _Recorder:
    """The logged frames of a run: trajectory (extxyz), CSV + PNG, and a committee's model_devi.out."""

    def __init__(self, atoms, traj: Path | None, ensemble: str, timestep_fs: float, ndof: int) -> None:
        self.atoms, self.traj, self.ensemble, self.timestep_fs, self.ndof = atoms, traj, ensemble, timestep_fs, ndof
        self.rows: list[tuple[float, ...]] = []
        self.steps: list[int] = []
        self.devi: list[tuple[float, ...]] = []
        self.csv = str(traj.with_suffix(".csv")) if traj is not None else None
        self.model_devi = traj.with_suffix(".model_devi.out") if traj is not None else None
        if traj is not None:
            traj.parent.mkdir(parents=True, exist_ok=True)
            traj.unlink(missing_ok=True)

    def record(self, step: int) -> None:
        """Log the current state (the frame first: every logged row then has its frame in the trajectory)."""
        from ase.io import write

        atoms, n = self.atoms, len(self.atoms)
        atoms.get_forces()  # energy, forces and uncertainty in one call, all in the trajectory
        res = atoms.calc.results
        for key in ("extrapolation", "force_deviation"):
            if key in res:
                atoms.arrays[key] = np.asarray(res[key], float)
        if self.traj is not None:
            write(self.traj, atoms, format="extxyz", append=True)
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        self.steps.append(step)
        self.rows.append((step * self.timestep_fs / 1000.0, epot / n, ekin / n, _temperature(atoms, self.ndof),
                          res.get("max_extrapolation", np.nan), res.get("max_force_deviation", np.nan),
                          res.get("energy_std", np.nan) / n if "energy_std" in res else np.nan))  # fmt: skip
        if "force_deviation" in res:
            f, ae = np.asarray(res["force_deviation"]), np.asarray(res["atom_energy_std"])
            self.devi.append((step, np.nan, np.nan, np.nan, f.max(), f.min(), f.mean(), res["energy_std"] / n,
                              ae.max(), ae.min(), ae.mean()))  # fmt: skip

    def save(self) -> np.ndarray:
        """Write the CSV (the uncertainty columns the run has), its PNG and model_devi.out; all logged rows."""
        arr = np.array(self.rows)
        keep = [k for k in range(len(CSV_COLUMNS)) if k < 4 or np.isfinite(arr[:, k]).any()]
        names = [CSV_COLUMNS[k] for k in keep]
        if self.csv is not None:
            from pdmd.models.plots import md_energy_plot

            np.savetxt(self.csv, arr[:, keep], delimiter=",", header=",".join(names), comments="")
            label = f"{self.ensemble} {self.timestep_fs:g} fs, {len(self.atoms)} atoms"
            md_energy_plot(Path(self.csv).with_suffix(".png"), {label: (arr[:, 0], arr[:, 1] + arr[:, 2], arr[:, 3])})
        if self.model_devi is not None and self.devi:
            np.savetxt(self.model_devi, np.array(self.devi), fmt=["%12d"] + ["%18.6e"] * (len(MODEL_DEVI_HEADER) - 1),
                       header="".join(f"{h:>18}" for h in MODEL_DEVI_HEADER)[5:])  # fmt: skip
        return arr


def start_atoms(atoms, calculator, dim: int, temperature_K: float, rng: np.random.Generator):
    """A copy of `atoms` on `calculator` (2D: z fixed), with Maxwell-Boltzmann momenta at T; (atoms, ndof)."""
    from ase.constraints import FixCartesian
    from ase.md.velocitydistribution import Stationary

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    atoms = atoms.copy()
    atoms.info = {}  # the input's labels (e.g. a reference energy) do not describe the trajectory's frames
    atoms.calc = calculator
    if dim == 2:
        if np.ptp(atoms.positions[:, 2]) > SHEET_Z_SPAN_A:
            raise InputError(
                f"a 2D model needs a flat sheet in the xy plane; z spans {np.ptp(atoms.positions[:, 2]):.3f} Å"
            )
        atoms.set_constraint(FixCartesian(range(len(atoms)), mask=(False, False, True)))
    ndof = (2 if dim == 2 else 3) * len(atoms) - dim  # momentum conserved
    if temperature_K > 0:
        thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
        Stationary(atoms)
        p = atoms.get_momenta()
        p[:, dim:] = 0.0
        atoms.set_momenta(p * np.sqrt(temperature_K / max(_temperature_of(p, atoms.get_masses(), ndof), 1e-12)))
    return atoms, ndof


def _dynamics(atoms, ensemble: str, timestep_fs: float, temperature_K: float, tau_fs: float, rng):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    dt = timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, dt)
    from ase.md.bussi import Bussi

    return Bussi(atoms, dt, temperature_K=temperature_K, taut=tau_fs * units.fs, rng=rng)


class _Breach(Exception):
    """Raised by the per-step check inside ASE's loop; turned into ExtrapolationStop with the frames kept."""

    def __init__(self, step: int, what: str, value: float, limit: float, bad: np.ndarray) -> None:
        super().__init__(what)
        self.step, self.what, self.value, self.limit, self.bad = step, what, value, limit, bad


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
    limits: Limits | None = None,
) -> MDResult:
    """Run `steps` MD steps of `atoms` (ASE Atoms, copied) with `calculator`; log every `every` steps.

    limits: uncertainty thresholds checked after every step; past one the run raises `ExtrapolationStop`
    (one line: step, atoms, value, threshold) with the frames so far and the offending frame written.
    """
    _check_md_settings(ensemble, steps, timestep_fs, temperature_K, every)
    rng = np.random.default_rng(seed)
    atoms, ndof = start_atoms(atoms, calculator, dim, temperature_K, rng)
    dyn = _dynamics(atoms, ensemble, timestep_fs, temperature_K, tau_fs, rng)
    rec = _Recorder(atoms, Path(trajectory) if trajectory else None, ensemble, timestep_fs, ndof)
    progress = ProgressLog(steps, f"MD {ensemble} {len(atoms)} atoms", log)
    check = _limit_check(atoms, dyn, limits or Limits())
    dyn.attach(check, interval=1)
    start = time.perf_counter()
    rec.record(0)
    try:
        check()  # the start structure itself may lie outside the training data
    except _Breach as b:
        raise _stopped(rec, b, timestep_fs) from None
    done, warned = 0, False
    while done < steps:
        chunk = min(every, steps - done)
        done = _run_chunk(dyn, rec, done, chunk, timestep_fs)
        if not np.isfinite(rec.rows[-1][1]):
            raise _failure(rec, done, "non-finite energy", True, timestep_fs)
        warned = _drift_warning(rec.rows, ensemble, done, timestep_fs, warned)
        progress.step(chunk, note=f"E_tot {rec.rows[-1][1] + rec.rows[-1][2]:.5f} eV/atom, T {rec.rows[-1][3]:.0f} K")
    wall = time.perf_counter() - start
    arr = rec.save()
    return MDResult(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], steps, wall, str(rec.traj) if rec.traj else None,
                    rec.csv, *_uncertainty_series(arr))  # fmt: skip


def _check_md_settings(ensemble: str, steps: int, timestep_fs: float, temperature_K: float, every: int) -> None:
    """Refuse an unknown ensemble, fewer than 1 step or logging interval, a timestep (fs) ≤ 0, a temperature (K) < 0."""
    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    if steps < 1 or timestep_fs <= 0 or temperature_K < 0 or every < 1:
        raise InputError("need steps >= 1, timestep_fs > 0, temperature_K >= 0 and every >= 1")


def _limit_check(atoms, dyn, limits: Limits):
    """The step observer that raises `_Breach` when the calculator's last results pass one of `limits`."""

    def check() -> None:
        found = limits.breach(atoms.calc.results)
        if found is not None:
            raise _Breach(dyn.nsteps, *found)

    return check


def _run_chunk(dyn, rec: _Recorder, done: int, chunk: int, timestep_fs: float) -> int:
    """Run `chunk` more steps and record the last; the steps done. A breach raises `ExtrapolationStop`, any other
    failure a one-line `SimulationError`; what ran is kept either way.
    """
    try:
        dyn.run(chunk)
        done += chunk
        rec.record(dyn.nsteps)
    except _Breach as b:
        raise _stopped(rec, b, timestep_fs) from None
    except Exception as err:  # a calculator or file failure inside this chunk: one line, what ran is kept
        lines = str(err).strip().splitlines()
        what = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        raise _failure(rec, done + chunk, what, "lost atoms" in what.lower(), timestep_fs) from err
    return done


def _uncertainty_series(arr: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    return tuple(arr[:, k] if np.isfinite(arr[:, k]).any() else None for k in (4, 5))  # type: ignore[return-value]


def _drift_warning(rows: list, ensemble: str, step: int, timestep_fs: float, warned: bool) -> bool:
    """Warn once when an NVE run's total energy moves more than NVE_WARN_meV_PER_ATOM; True once warned."""
    moved_meV = 1000.0 * abs(rows[-1][1] + rows[-1][2] - rows[0][1] - rows[0][2])
    if ensemble == "nve" and not warned and moved_meV > NVE_WARN_meV_PER_ATOM:
        advice = (
            f"timestep {timestep_fs:g} fs is likely too long for this potential (try --timestep-fs {timestep_fs / 2:g})"
        )
        log.warning("NVE total energy moved by %.1f meV/atom after %d steps: %s", moved_meV, step, advice)
        return True
    return warned


def _saved(rec: _Recorder) -> str:
    """Save the log (a full disk is a warning, the trajectory written so far stays); where the frames are."""
    logged = rec.csv
    try:
        rec.save()
    except OSError as err:
        log.warning("the MD log could not be written: %s", err)
        logged = None
    if rec.traj is None:
        return ""
    return f"; the {len(rec.rows)} frames so far are in {rec.traj}" + (f" and {logged}" if logged else "")


def _failure(rec: _Recorder, step: int, what: str, blew_up: bool, timestep_fs: float) -> SimulationError:
    advice = (f": timestep {timestep_fs} fs is too long for this potential at this temperature, try a shorter "
              "--timestep-fs") if blew_up else ""  # fmt: skip
    return SimulationError(f"MD {'blew up' if blew_up else 'failed'} near step {step} ({what}){advice}{_saved(rec)}")


def _stopped(rec: _Recorder, b: _Breach, timestep_fs: float) -> ExtrapolationStop:
    """Record the offending frame, save, and say where and why the run left the training domain."""
    try:
        if rec.steps[-1:] != [b.step]:  # the offending frame, unless it is the last one logged
            rec.record(b.step)
    except Exception as err:  # noqa: BLE001 - the frame could not be written; the message still goes out
        log.warning("the frame at the stop could not be written: %s", err)
    atoms = ", ".join(str(i) for i in b.bad[:8]) + (f" and {len(b.bad) - 8} more" if len(b.bad) > 8 else "")
    return ExtrapolationStop(
        f"MD stopped at step {b.step} ({b.step * timestep_fs / 1000:.4f} ps): {b.what} {b.value:.3g} > threshold "
        f"{b.limit:.3g} on atom(s) {atoms}: the structure left the model's training data (label such frames and "
        f"retrain, e.g. with workflows/agr_active.yaml){_saved(rec)}",
        b.step,
        b.value,
    )


def _temperature(atoms, ndof: int) -> float:
    return _temperature_of(atoms.get_momenta(), atoms.get_masses(), ndof)


def _temperature_of(momenta: np.ndarray, masses: np.ndarray, ndof: int) -> float:
    """Kinetic temperature (K) of momenta (ASE units) with `ndof` degrees of freedom."""
    from ase import units

    kinetic = 0.5 * float((momenta**2 / masses[:, None]).sum())
    return 2.0 * kinetic / (max(ndof, 1) * units.kB)


def default_limits(card: dict, max_extrapolation: float | None = None,
                   max_force_deviation: float | None = None) -> Limits:  # fmt: skip
    """The thresholds of a run: given values (<= 0: not checked), else the model card's training-derived defaults."""

    def pick(given: float | None, default: float | None) -> float | None:
        value = default if given is None else given
        return None if value is None or value <= 0 else float(value)

    return Limits(pick(max_extrapolation, (card.get("domain") or {}).get("max_extrapolation_default")),
                  pick(max_force_deviation,
                       (card.get("committee") or {}).get("max_force_deviation_default_eV_per_A")))  # fmt: skip


@dataclass
class MDInputs:
    """What an MD run needs: the loaded model (None for a LAMMPS reference), its calculator, the start structure
    (a 2D sheet in its own frame), the dimension and the uncertainty thresholds.
    """

    pot: object | None
    calculator: object
    atoms: object
    dim: int
    limits: Limits


def md_inputs(model: str | Path, structure: str | Path, *, index: int = -1, read_options=None,
              max_extrapolation: float | None = None, max_force_deviation: float | None = None,
              use_core: bool = True, deviation: bool = True) -> MDInputs:  # fmt: skip
    """Load a force-providing model (or name a LAMMPS reference) and the structure `index` of a file, checked.

    max_extrapolation / max_force_deviation (eV/Å): stop thresholds (None: the card's defaults; <= 0: off).
    use_core=False: without the card's short-range repulsion; deviation=False: a committee's member 0 only.
    """
    from pdmd.api import load_potential
    from pdmd.calculator import PDPotential, ReferencePotential
    from pdmd.md.protocol import POTENTIALS
    from pdmd.structure import Frame, read_frames, sheet_frame, validate_frame

    pot, calculator, limits, dim = None, None, Limits(), 0
    if not (str(model) in POTENTIALS and POTENTIALS[str(model)].engine == "lammps" and not Path(model).exists()):
        pot = load_potential(model)
        if not pot.provides_forces:
            kind = pot.card.get("model_kind", "pd-cnn")
            raise InputError(
                f"model {model} ({kind}) gives no forces; MD needs a pd-local model (pdmd train --model pd-local)"
            )
        if not use_core:
            pot.model.core = None
        calculator, dim = PDPotential(pot, deviation=deviation), pot.dim
        limits = default_limits(pot.card, max_extrapolation, max_force_deviation if deviation else 0)
        log.info("MD stops above: extrapolation grade %s, force deviation %s eV/Å",
                 limits.max_extrapolation, limits.max_force_deviation_eV_per_A)  # fmt: skip
    atoms = read_frames(structure, index=str(index) if index >= 0 else ":", options=read_options)[
        index if index < 0 else 0
    ]
    if calculator is None:  # a sheet (not periodic along z, or flat) runs in 2D, as the melt-quench template
        dim = 2 if not atoms.pbc[2] or np.ptp(atoms.positions[:, 2]) < SHEET_Z_SPAN_A else 3
        log.info("reference %s in %dD", model, dim)
        calculator = ReferencePotential(str(model), dim)
    validate_frame(Frame.from_ase(atoms), dim, label=str(structure))  # units, flatness, overlaps: one-line errors
    if dim == 2 and np.ptp(atoms.positions[:, 2]) > SHEET_Z_SPAN_A:  # a sheet in another plane: MD in its own frame
        atoms = sheet_frame(Frame.from_ase(atoms), str(structure)).to_ase()
        log.info("%s: the sheet is moved into its own frame (the xy plane) for 2D MD", structure)
    return MDInputs(pot, calculator, atoms, dim, limits)


def run_md_file(model: str | Path, structure: str | Path, out: str | Path, **kwargs: Any) -> MDResult:
    """`pdmd md`: load a force-providing model and a structure file (`md_inputs`), run MD (`run_md`), write `out`
    (extxyz) + CSV. kwargs: `md_inputs`' keywords (index, read_options, max_extrapolation, max_force_deviation,
    use_core, deviation) and `run_md`'s (temperature_K, steps, timestep_fs, ensemble, every, tau_fs, seed).

    `model` may also name a LAMMPS reference potential (`pdmd.md.protocol.POTENTIALS`, e.g. tersoff1989):
    the same MD with the reference itself (2D when the structure is not periodic along z or is flat, else 3D).
    """
    from pdmd.calculator import ReferencePotential

    unknown = sorted(set(kwargs) - _INPUT_KEYS - _MD_KEYS)
    if unknown:
        raise TypeError(f"run_md_file: unexpected keyword(s) {unknown}; known: {sorted(_INPUT_KEYS | _MD_KEYS)}")
    job = md_inputs(model, structure, **{k: v for k, v in kwargs.items() if k in _INPUT_KEYS})
    md = {k: v for k, v in kwargs.items() if k not in _INPUT_KEYS}
    try:
        return run_md(job.calculator, job.atoms, dim=job.dim, trajectory=out, limits=job.limits, **md)
    finally:
        if isinstance(job.calculator, ReferencePotential):
            job.calculator.close()


_INPUT_KEYS = frozenset(inspect.signature(md_inputs).parameters) - {"model", "structure"}
_MD_KEYS = frozenset(inspect.signature(run_md).parameters) - {"calculator", "atoms", "dim", "trajectory", "limits"}
"""The keywords of `run_md_file` that go to `md_inputs` and those that go to `run_md`."""
