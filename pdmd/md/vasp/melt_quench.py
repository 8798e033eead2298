"""AIMD melt-quench with VASP: one VASP run per stage, snapshots streamed from vasprun.xml.

Each stage (melt, quench, hold, relax; see `pdmd.md.vasp.inputs`) runs in its own folder under the
work directory, starting from the previous stage's CONTCAR (positions and velocities). While
VASP runs, complete ionic steps are read from vasprun.xml and the kept ones go to `on_snapshot`
at once, so a crash or a wall-time kill loses no finished step. A stage that finished writes
`stage_done.json` and is not run again by a rerun of the firework.

Kept structures: the quench steps the protocol asks for (`snapshot_quench_steps`, every step
eligible) as "intermediate", and the last step of the final relaxation as "final".
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from pdmd.errors import InputError, MeltQuenchError
from pdmd.files import write_json_atomic
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.md.random_cell import random_positions
from pdmd.md.results import BOLTZMANN_eV_per_K, MeltQuenchResult, Snapshot
from pdmd.md.vasp.inputs import VaspStage, initial_poscar, load_templates, melt_quench_stages, write_stage_inputs
from pdmd.md.vasp.vasprun import IonicStep, VasprunReader
from pdmd.progress import ProgressLog
from pdmd.structure import Frame

log = logging.getLogger(__name__)

MIN_START_DISTANCE_A = 1.1
"""Closest approach (Å) of two atoms in the random starting cell (as in the LAMMPS template)."""
POLL_S = 2.0
DONE_FILE = "stage_done.json"
"""Written into a stage's folder when the stage has finished: its steps and final energy."""
ERROR_PATTERN = re.compile(r"(error|VERY BAD NEWS|fatal|failed|not hermitian|ZBRENT|segmentation|killed)", re.I)


def parse_vasp_cmd(vasp_cmd: str | list[str]) -> list[str]:
    """Argv of the site's VASP command; a missing executable is an error that says how to set it."""
    argv = shlex.split(os.path.expandvars(vasp_cmd)) if isinstance(vasp_cmd, str) else [str(a) for a in vasp_cmd]
    if not argv:
        raise InputError("vasp_cmd is empty: set it in your FWorker's env (my_fworker.yaml: env: {vasp_cmd: ...})")
    if shutil.which(argv[0]) is None:
        raise InputError(
            f"vasp_cmd {' '.join(argv)!r}: executable {argv[0]!r} not found on PATH. Set the command that launches "
            "VASP in your FWorker's env (my_fworker.yaml: env: {vasp_cmd: 'srun vasp_gam'})"
        )
    return argv


def vasp_failure_reason(stage_dir: Path, returncode: int | None, max_lines: int = 8) -> str:
    """VASP's own words for a failure: error lines of its output and OUTCAR, else the output's tail."""
    lines: list[str] = []
    for name in ("vasp.out", "OUTCAR"):
        path = stage_dir / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()
            lines += [f"{name}: {ln.strip()}" for ln in text if ERROR_PATTERN.search(ln)]
    if not lines and (stage_dir / "vasp.out").is_file():
        tail = (stage_dir / "vasp.out").read_text(errors="replace").splitlines()[-max_lines:]
        lines = [f"vasp.out: {ln.strip()}" for ln in tail if ln.strip()]
    status = f"exit status {returncode}" if returncode is not None else "VASP stopped"
    return f"{status}; " + (" | ".join(lines[-max_lines:]) if lines else "no output from VASP")


class _StageRunner:
    """Run one stage and stream its steps (kept ones to `on_snapshot`)."""

    def __init__(self, protocol: MeltQuenchProtocol, on_snapshot: Callable[[Snapshot], None], step_offset: int):
        self.protocol = protocol
        self.on_snapshot = on_snapshot
        self.step_offset = step_offset
        self.last: IonicStep | None = None
        self.kept = 0

    def snapshot(self, stage: VaspStage, step: IonicStep, symbols: list[str], kind: str, setpoint: float) -> Snapshot:
        n = len(symbols)
        numbers = np.array([atomic_numbers[s] for s in symbols])
        frame = Frame(positions=step.positions_A, cell=step.cell_A, numbers=numbers, pbc=(True, True, True))
        energy = step.free_energy_eV / n
        if not (np.isfinite(step.positions_A).all() and np.isfinite(energy)):
            raise MeltQuenchError(f"stage {stage.name} step {step.index}: non-finite positions or energy")
        temperature = 2.0 * step.kinetic_eV / ((3 * n - 3) * BOLTZMANN_eV_per_K) if step.kinetic_eV else 0.0
        global_step = self.step_offset + step.index
        time_ps = global_step * self.protocol.timestep_fs / 1000.0
        return Snapshot(frame, kind, global_step, time_ps, setpoint, temperature, energy, step.forces_eV_per_A)

    def handle(self, stage: VaspStage, steps: list[IonicStep], symbols: list[str], keep: dict[int, float]) -> None:
        for step in steps:
            self.last = step
            if step.index in keep:
                self.on_snapshot(self.snapshot(stage, step, symbols, "intermediate", keep[step.index]))
                self.kept += 1

    def run(
        self, stage: VaspStage, folder: Path, argv: list[str], keep: dict[int, float], poll_s: float
    ) -> tuple[list[str], IonicStep]:
        reader = VasprunReader(folder / "vasprun.xml")
        progress = ProgressLog(stage.nsw, f"{self.protocol.run_id} VASP {stage.name}", log, every_s=60.0)
        with (folder / "vasp.out").open("w") as out:
            try:
                proc = subprocess.Popen(argv, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
            except OSError as exc:
                raise InputError(f"cannot start vasp_cmd {' '.join(argv)!r}: {exc}") from exc
            try:
                while proc.poll() is None:
                    time.sleep(poll_s)
                    self._consume(stage, reader, keep, progress)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        try:
            self._consume(stage, reader, keep, progress)
        except InputError as exc:
            raise MeltQuenchError(f"stage {stage.name}: {exc}; {vasp_failure_reason(folder, proc.returncode)}") from exc
        if proc.returncode != 0 or not reader.complete or self.last is None:
            what = "VASP failed" if proc.returncode != 0 else "VASP ended without finishing vasprun.xml (truncated)"
            raise MeltQuenchError(
                f"{self.protocol.run_id} stage {stage.name}: {what} after {reader.n_steps} complete ionic steps "
                f"in {folder}: {vasp_failure_reason(folder, proc.returncode)}"
            )
        if not (folder / "CONTCAR").is_file():
            raise MeltQuenchError(f"{self.protocol.run_id} stage {stage.name}: VASP wrote no CONTCAR in {folder}")
        return reader.symbols or [], self.last

    def complete(self, stage: VaspStage, folder: Path, argv: list[str], poll_s: float, last_stage: bool) -> dict:
        """Run a stage whose inputs are in `folder` to its end (the last stage also hands on the final structure)
        and mark it done; its record: steps and final energy (eV/atom).
        """
        keep = self.protocol.snapshot_quench_steps(1) if stage.name == "quench" else {}
        log.info("%s: VASP stage %s, %d steps (%.0f -> %.0f K)", self.protocol.run_id, stage.name, stage.nsw,
                 stage.T_start_K, stage.T_end_K)  # fmt: skip
        symbols, last = self.run(stage, folder, argv, keep, poll_s)
        if last_stage:
            self.on_snapshot(self.snapshot(stage, last, symbols, "final", self.protocol.T_final_K))
            self.kept += 1
        final = {"steps": last.index, "energy_eV_per_atom": last.free_energy_eV / len(symbols)}
        write_json_atomic(folder / DONE_FILE, final)  # a crash never leaves a half-written marker
        return final

    def _consume(self, stage: VaspStage, reader: VasprunReader, keep: dict[int, float], progress: ProgressLog) -> None:
        steps = reader.poll()
        if steps:
            self.handle(stage, steps, reader.symbols or [], keep)
            progress.step(len(steps))


def run_vasp_melt_quench(
    protocol: MeltQuenchProtocol,
    workdir: str | Path,
    vasp_cmd: str | list[str],
    on_snapshot: Callable[[Snapshot], None],
    templates_dir: str | Path | None = None,
    write_potcar: bool = True,
    relax_steps: int | None = None,
    poll_s: float = POLL_S,
) -> MeltQuenchResult:
    """Run the stages of `protocol` with VASP in `workdir`; resumes after the last finished stage."""
    if protocol.system != "ac":
        raise InputError(f"the VASP melt-quench is for 3D aC cells (system 'ac'), got system {protocol.system!r}")
    argv = parse_vasp_cmd(vasp_cmd)
    templates = load_templates(templates_dir)
    stages = melt_quench_stages(protocol, templates, **({} if relax_steps is None else {"relax_steps": relax_steps}))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    poscar = _random_start(protocol)
    t0 = time.perf_counter()
    offset, total_steps, final = 0, 0, None
    snapshots = 0
    for i, stage in enumerate(stages):
        folder = workdir / f"{i:02d}_{stage.name}"
        final = _finished_stage(protocol, stage, folder)
        if final is None:
            write_stage_inputs(folder, stage, poscar, templates, write_potcar)
            runner = _StageRunner(protocol, on_snapshot, offset)
            final = runner.complete(stage, folder, argv, poll_s, last_stage=i == len(stages) - 1)
            snapshots += runner.kept
        offset += final["steps"]
        total_steps += final["steps"]
        poscar = (folder / "CONTCAR").read_text()
    wall = time.perf_counter() - t0
    return MeltQuenchResult(
        run_id=protocol.run_id,
        n_snapshots=snapshots,
        wall_s=wall,
        steps=total_steps,
        steps_per_s=total_steps / wall if wall > 0 else 0.0,
        final_energy_eV_per_atom=float(final["energy_eV_per_atom"]),
        workdir=str(workdir),
        notes=[f"VASP stages: {', '.join(s.name for s in stages)}"],
    )


def _random_start(protocol: MeltQuenchProtocol) -> str:
    """POSCAR text of the random starting cube of carbon atoms (edge `box_length_A`, Å)."""
    L = protocol.box_length_A
    cell = np.diag([L, L, L])
    return initial_poscar(
        random_positions(protocol.n_atoms, cell, MIN_START_DISTANCE_A, protocol.seed), cell, ["C"] * protocol.n_atoms
    )


def _finished_stage(protocol: MeltQuenchProtocol, stage: VaspStage, folder: Path) -> dict | None:
    """The record (steps, final eV/atom) of a stage an earlier run finished in `folder`; None if it must run."""
    done_path = folder / DONE_FILE
    if not done_path.is_file():
        return None
    done = json.loads(done_path.read_text())
    log.info("%s: VASP stage %s already finished (%d steps), reusing", protocol.run_id, stage.name, done["steps"])
    return done
