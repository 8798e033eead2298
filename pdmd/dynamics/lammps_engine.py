# SPDX-License-Identifier: GPL-3.0-or-later
"""MD with a pd-local model inside LAMMPS (`pdmd md --engine lammps`): LAMMPS integrates, pdmd gives the forces.

pdmd runs a LAMMPS input script from Python, command by command (one MPI rank, `units metal`), and
registers the model at every `fix ID all external pf/callback 1 1` of the script: on each call it
maps the atoms by tag, evaluates the model (member 0 of a committee) and hands LAMMPS the forces
(eV/Å), the energy (`fix_external_set_energy_global`; `fix_modify ID energy yes` counts it in `pe`),
the virial for 3D periodic cells (`virial yes`: NPT works) and, as the fix's global vector, the
largest extrapolation grade (`f_ID[1]`) and a committee's largest force deviation in eV/Å
(`f_ID[2]`), so that `fix halt` can stop on them. Everything else (thermostats, barostats, dumps,
computes, restarts) is the user's LAMMPS. 2D sheets use `dimension 2` and `fix enforce2d`, the
same degrees of freedom as the ASE engine (`pdmd.dynamics.ase_engine`).

`lammps_inputs/pdmd_local_md.in` is the example script `pdmd md --engine lammps` runs by default;
`write_lammps_data` writes a structure with its velocities, so both engines start from the same state.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd._lammps import load_lammps
from pdmd.errors import InputError, SimulationError
from pdmd.structure import Frame

log = logging.getLogger(__name__)

CALLBACK = "pf/callback"
SCRIPT = Path(__file__).resolve().parents[2] / "lammps_inputs" / "pdmd_local_md.in"
"""The example input script (`pdmd md --engine lammps` without `--lammps-script`)."""
MASS_C = 12.011
"""Carbon's mass (g/mol) in the data file: ASE's value, so both engines integrate the same equations."""


def _external_fix(line: str) -> str | None:
    """The fix ID of a `fix ID group external pf/callback N M` command, else None."""
    words = line.split()
    if len(words) >= 5 and words[0] == "fix" and words[2:4] != [] and words[3] == "external" and words[4] == CALLBACK:
        return words[1]
    return None


@dataclass
class CallbackStats:
    """Calls and wall time of the model inside LAMMPS, and the largest uncertainties seen."""

    calls: int = 0
    model_s: float = 0.0
    max_extrapolation: float = float("nan")
    max_force_deviation: float = float("nan")


class ExternalForces:
    """The `fix external` callback: a pd-local model's energy, forces, virial and uncertainty for LAMMPS."""

    def __init__(self, lmp, fix_id: str, model, dim: int, deviation: bool) -> None:
        self.lmp, self.fix_id, self.model, self.dim, self.deviation = lmp, fix_id, model, dim, deviation
        self.stats = CallbackStats()
        self.error: Exception | None = None
        lmp.fix_external_set_vector_length(fix_id, 2)

    def cell(self) -> tuple[np.ndarray, tuple[bool, bool, bool]]:
        """The LAMMPS box as rows a, b, c (Å) and its periodicity."""
        lo, hi, xy, yz, xz, periodic, _ = self.lmp.extract_box()
        lx, ly, lz = (h - low for h, low in zip(hi, lo))
        cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        pbc = tuple(bool(p) for p in periodic)
        return cell, (pbc[0], pbc[1], False) if self.dim == 2 else pbc

    def __call__(self, caller, step: int, nlocal: int, tag, x, f) -> None:
        """LAMMPS ignores exceptions raised in a callback: a failing model zeroes its forces and ends the run at once
        (LAMMPS' soft timeout), and the error is kept for `run_lammps_script` to report as one line.
        """
        try:
            self._forces(step, nlocal, tag, x, f)
        except Exception as err:  # noqa: BLE001 - reported after LAMMPS stops
            self.error = self.error or err
            f[:] = 0.0
            self.lmp.force_timeout()

    def _forces(self, step: int, nlocal: int, tag, x, f) -> None:
        start = time.perf_counter()
        order = np.argsort(tag)  # atoms by tag: LAMMPS reorders them in memory
        pos = np.array(x[order], float)
        if self.dim == 2:
            pos[:, 2] = 0.0
        cell, pbc = self.cell()
        stress = self.dim == 3 and all(pbc)
        r = self.model.evaluate(Frame(pos, cell, np.full(len(pos), 6), pbc), stress=stress, deviation=self.deviation)
        forces = np.zeros((nlocal, 3))
        forces[order] = r.forces
        if self.dim == 2:
            forces[:, 2] = 0.0
        f[:] = forces
        self.lmp.fix_external_set_energy_global(self.fix_id, float(r.energy))
        if r.stress is not None:  # LAMMPS' virial W = -V σ, order xx yy zz xy xz yz (ASE: xx yy zz yz xz xy)
            s = -r.stress * abs(np.linalg.det(cell))
            self.lmp.fix_external_set_virial_global(self.fix_id, [s[0], s[1], s[2], s[5], s[4], s[3]])
        grade = float(r.extrapolation.max()) if r.extrapolation is not None else float("nan")
        devi = float(r.force_deviation.max()) if r.force_deviation is not None else float("nan")
        self.lmp.fix_external_set_vector(self.fix_id, 1, 0.0 if np.isnan(grade) else grade)
        self.lmp.fix_external_set_vector(self.fix_id, 2, 0.0 if np.isnan(devi) else devi)
        st = self.stats
        st.calls += 1
        st.model_s += time.perf_counter() - start
        st.max_extrapolation = grade if np.isnan(st.max_extrapolation) else max(st.max_extrapolation, grade)
        st.max_force_deviation = devi if np.isnan(st.max_force_deviation) else max(st.max_force_deviation, devi)


def script_commands(path: str | Path) -> list[str]:
    """The commands of a LAMMPS input script: comments dropped, `&` continuations joined."""
    out, pending = [], ""
    for raw in Path(path).read_text().splitlines():
        line = pending + re.sub(r"#.*$", "", raw).rstrip()  # a '#' inside quotes is rare in MD scripts
        if line.endswith("&"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.strip():
            out.append(line.strip())
    return out


def _raise_model_error(callbacks: list[ExternalForces]) -> None:
    """The first error the model raised inside LAMMPS, as one line (LAMMPS itself only saw NaN forces)."""
    for cb in callbacks:
        if cb.error is not None:
            if isinstance(cb.error, SimulationError | InputError):
                raise type(cb.error)(f"inside LAMMPS: {cb.error}") from None
            first = (str(cb.error).strip().splitlines() or [""])[0]
            raise SimulationError(f"inside LAMMPS the model failed: {type(cb.error).__name__}: {first}") from None


@dataclass
class LammpsRun:
    """What a LAMMPS run with a pd-local model did: MD steps, wall time, the model's share, its log."""

    steps: int
    wall_s: float
    stats: CallbackStats
    log: str | None

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.wall_s / max(self.steps, 1)


def run_lammps_script(
    model, script: str | Path, variables: dict[str, str], *, dim: int, deviation: bool = True,
    log_file: str | Path | None = None,
) -> LammpsRun:  # fmt: skip
    """Run a LAMMPS input script with `model` (a loaded pd-local model) behind its `fix ... external pf/callback`.

    variables: `-var NAME VALUE` pairs the script reads (e.g. data, steps, T). One MPI rank.
    """
    if not Path(script).is_file():
        raise InputError(f"LAMMPS script {script} not found")
    args = ["-screen", "none", "-nocite", "-log", str(log_file) if log_file else "none"]
    for k, v in variables.items():
        args += ["-var", k, *shlex.split(str(v))]
    lmp = load_lammps().lammps(cmdargs=args)
    callbacks: list[ExternalForces] = []
    start = time.perf_counter()
    try:
        for line in script_commands(script):
            lmp.command(line)
            fix_id = _external_fix(line)
            if fix_id is not None:
                callbacks.append(ExternalForces(lmp, fix_id, model, dim, deviation))
                lmp.set_fix_external_callback(fix_id, callbacks[-1])
        if not callbacks:
            raise InputError(f"{script}: no `fix ID all external {CALLBACK} 1 1`: the model would never be called")
        steps = int(lmp.get_thermo("step"))
        _raise_model_error(callbacks)
    except Exception as err:  # LAMMPS' own message (or the model's) as one line; the log keeps the rest
        _raise_model_error(callbacks)
        if isinstance(err, InputError):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        where = f" (log: {log_file})" if log_file else ""
        raise SimulationError(f"LAMMPS run of {script} failed: {first}{where}") from None
    finally:
        wall = time.perf_counter() - start
        lmp.close()
    stats = callbacks[0].stats
    return LammpsRun(steps, wall, stats, str(log_file) if log_file else None)


def write_lammps_data(path: str | Path, atoms, dim: int) -> Path:
    """A LAMMPS data file (atomic style, metal units) of ASE Atoms with their velocities (Å/ps).

    2D: the sheet must be flat in the xy plane; its box is 1 Å thick around z = 0 (`dimension 2`).
    3D: the cell must be lower-triangular (a along x, b in the xy plane), as LAMMPS' boxes are.
    """
    cell = np.asarray(atoms.cell[:], float)
    if np.abs(cell[np.triu_indices(3, 1)]).max() > 1e-9 or min(cell[0, 0], cell[1, 1]) <= 0:
        raise InputError("LAMMPS needs a cell with a along x and b in the xy plane (lower-triangular); "
                         "rotate the structure (ASE's Cell.standard_form)")  # fmt: skip
    from ase import units

    pos = np.asarray(atoms.positions, float)
    vel = np.asarray(atoms.get_velocities(), float) * (1000.0 * units.fs)  # Å per ASE time unit -> Å/ps
    lx, ly, xy = float(cell[0, 0]), float(cell[1, 1]), float(cell[1, 0])
    lz, zlo = (1.0, -0.5) if dim == 2 else (float(cell[2, 2]), 0.0)
    xz, yz = (0.0, 0.0) if dim == 2 else (float(cell[2, 0]), float(cell[2, 1]))
    if dim == 2:
        pos = pos.copy()
        pos[:, 2] = 0.0
        vel[:, 2] = 0.0
    box = [
        f"0.0 {lx!r} xlo xhi",
        f"0.0 {ly!r} ylo yhi",
        f"{zlo!r} {zlo + lz!r} zlo zhi",
        f"{xy!r} {xz!r} {yz!r} xy xz yz",
    ]
    lines = ["pdmd structure (units metal)", "", f"{len(pos)} atoms", "1 atom types", "", *box, "", "Masses", "",
             f"1 {MASS_C}", "", "Atoms # atomic", ""]  # fmt: skip
    lines += [f"{i + 1} 1 {p[0]!r} {p[1]!r} {p[2]!r}" for i, p in enumerate(pos.tolist())]
    lines += ["", "Velocities", ""] + [f"{i + 1} {v[0]!r} {v[1]!r} {v[2]!r}" for i, v in enumerate(vel.tolist())]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def lammps_thermo(log_file: str | Path) -> dict[str, np.ndarray]:
    """The thermo columns (by LAMMPS' names, e.g. Step, TotEng) of the last run in a LAMMPS log."""
    lines = Path(log_file).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.split()[:1] == ["Step"]]
    if not starts:
        return {}
    names = lines[starts[-1]].split()
    rows = []
    for line in lines[starts[-1] + 1 :]:
        words = line.split()
        if len(words) != len(names):
            break
        try:
            rows.append([float(w) for w in words])
        except ValueError:
            break
    arr = np.array(rows, float).reshape(-1, len(names))
    return {n: arr[:, k] for k, n in enumerate(names)}


def run_lammps_md(pot, atoms, out: str | Path, *, dim: int, temperature_K: float, steps: int, timestep_fs: float,
                  ensemble: str, every: int, seed: int, limits, script: str | Path | None = None,
                  deviation: bool = True, tau_fs: float = 100.0) -> LammpsRun:  # fmt: skip
    """`pdmd md --engine lammps`: the start state of the ASE engine (same seed, same velocities), run by LAMMPS.

    Writes OUT.data (start), OUT.dump (the script's trajectory), OUT.lammps.log; a threshold of `limits`
    passed stops the run (`fix halt`) and raises `ExtrapolationStop` with the step.
    """
    from pdmd.calculator import PDPotential
    from pdmd.dynamics.ase_engine import start_atoms
    from pdmd.errors import ExtrapolationStop

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atoms, _ = start_atoms(atoms, PDPotential(pot, deviation=deviation), dim, temperature_K,
                           np.random.default_rng(seed))  # fmt: skip
    data = write_lammps_data(out.with_suffix(".data"), atoms, dim)
    variables = {"data": data, "dim": dim, "steps": steps, "dt_ps": timestep_fs / 1000.0, "T_K": temperature_K,
                 "thermostat": "nve" if ensemble == "nve" else "csvr", "tdamp_ps": tau_fs / 1000.0,
                 "seed": seed + 1, "every": every, "dump": out.with_suffix(".dump"),
                 "max_grade": limits.max_extrapolation or 0,
                 "max_devi": limits.max_force_deviation_eV_per_A or 0}  # fmt: skip
    log_file = out.with_suffix(".lammps.log")
    run = run_lammps_script(pot.model, script or SCRIPT, {k: str(v) for k, v in variables.items()}, dim=dim,
                            deviation=deviation, log_file=log_file)  # fmt: skip
    st = run.stats
    passed = [(what, value, limit) for what, value, limit in
              (("extrapolation grade", st.max_extrapolation, limits.max_extrapolation),
               ("force deviation (eV/Å)", st.max_force_deviation, limits.max_force_deviation_eV_per_A))
              if limit is not None and value > limit]  # fmt: skip
    if passed:  # fix halt stopped the run (the callback saw a value above a threshold the script halts on)
        what, value, limit = passed[0]
        kept = f"the frames so far are in {out.with_suffix('.dump')} and {log_file}"
        raise ExtrapolationStop(f"MD stopped at step {run.steps} ({run.steps * timestep_fs / 1000:.4f} ps): {what} "
                                f"{value:.3g} > threshold {limit:.3g}: the structure left the model's training data; "
                                f"{kept}", run.steps, value)  # fmt: skip
    return run


def run_lammps_md_file(model: str | Path, structure: str | Path, out: str | Path, *, temperature_K: float, steps: int,
                       timestep_fs: float, ensemble: str = "nvt", every: int = 10, seed: int = 0,
                       script: str | Path | None = None, **inputs) -> LammpsRun:  # fmt: skip
    """`pdmd md --engine lammps`: the same model, structure and start state as the ASE engine (`md_inputs`, which
    takes `inputs`), integrated by LAMMPS with `script` (default `lammps_inputs/pdmd_local_md.in`).
    """
    from pdmd.dynamics.ase_engine import md_inputs

    job = md_inputs(model, structure, **inputs)
    if job.pot is None:
        raise InputError(f"{model} is a LAMMPS potential: run LAMMPS itself, or `pdmd md {model}` with the ASE engine")
    deviation = bool(getattr(job.calculator, "deviation", False))
    return run_lammps_md(job.pot, job.atoms, out, dim=job.dim, temperature_K=temperature_K, steps=steps,
                         timestep_fs=timestep_fs, ensemble=ensemble, every=every, seed=seed, limits=job.limits,
                         script=script, deviation=deviation)  # fmt: skip
