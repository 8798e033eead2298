"""Run the melt-quench LAMMPS template of a system (2D aGr, 3D aC) and stream its structures.

LAMMPS runs in the calling thread (the ctypes calls release the GIL); a watcher thread picks up
each dump file as soon as the next one exists and hands the kept snapshots to `on_snapshot`, so
results reach storage while the quench is still running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pdmd._lammps import load_lammps, potential_path
from pdmd.errors import InputError, MeltQuenchError
from pdmd.md.lammps_dump import read_custom_dump
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.md.results import BOLTZMANN_eV_per_K, MeltQuenchResult, Snapshot
from pdmd.progress import ProgressLog
from pdmd.runtime import default_threads
from pdmd.structure import Frame

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "lammps_inputs"
TEMPLATES = {"agr": "agr_melt_quench.in", "ac": "ac_melt_quench.in"}
SNAPSHOTS_PER_QUENCH = 200
"""The quench is dumped at least this many times; the snapshots nearest the requested set-points are kept."""


def _lammps_args(protocol: MeltQuenchProtocol, workdir: Path, snap_every: int, omp_threads: int) -> list[str]:
    pot = protocol.potential_spec
    density = (
        {"density_g_cm3": repr(protocol.density_g_cm3)}
        if protocol.system == "ac"
        else {"density_per_A2": repr(protocol.density_per_A2)}
    )
    variables = {
        "seed": protocol.seed,
        "natoms": protocol.n_atoms,
        **density,
        "T_melt_K": protocol.T_melt_K,
        "T_final_K": protocol.T_final_K,
        "melt_ps": protocol.melt_ps,
        "rate_K_per_ps": protocol.cooling_rate_K_per_ps,
        "hold_ps": protocol.hold_ps,
        "timestep_fs": protocol.timestep_fs,
        "tdamp_fs": protocol.tdamp_fs,
        "snap_every": snap_every,
        "thermo_every": max(snap_every, 1000),
        "outdir": str(workdir),
        "pair_style": pot.pair_style,
        "potential_args": " ".join([*(str(potential_path(f)) for f in pot.files), pot.element]),
    }
    args = ["-log", str(workdir / "log.lammps"), "-screen", "none", "-nocite"]
    for key, value in variables.items():
        args += ["-var", key, str(value)]
    if omp_threads > 1:
        args += ["-pk", "omp", str(omp_threads), "-sf", "omp"]
    return args


def _to_snapshot(path: Path, protocol: MeltQuenchProtocol, kind: str, setpoint_K: float) -> Snapshot:
    dump = read_custom_dump(path)
    cols = dump.columns
    order = np.argsort(cols["id"])
    dim = protocol.dim
    z = cols["z"] if dim == 3 else np.zeros_like(cols["x"])
    pos = np.column_stack([cols["x"], cols["y"], z])[order]
    lengths = dump.box_hi_A - dump.box_lo_A
    pos[:, :dim] -= dump.box_lo_A[:dim]
    cell = np.diag([lengths[0], lengths[1], lengths[2] if dim == 3 else 10.0])
    n = len(pos)
    if n != protocol.n_atoms:
        raise MeltQuenchError(f"{path}: LAMMPS lost atoms ({n} of {protocol.n_atoms} remain)")
    energy = float(cols["c_pe_atom"].sum()) / n
    ke = float(cols["c_ke_atom"].sum())
    temperature = 2.0 * ke / ((dim * n - dim) * BOLTZMANN_eV_per_K)  # momentum conserved
    if not np.isfinite(pos).all() or not np.isfinite(energy):
        raise MeltQuenchError(f"{path}: non-finite positions or energy: the run blew up")
    frame = Frame(positions=pos, cell=cell, numbers=np.full(n, 6), pbc=(True, True, dim == 3))
    forces = np.column_stack([cols["fx"], cols["fy"], cols["fz"]])[order] if "fx" in cols else None
    if forces is not None and dim == 2:
        forces[:, 2] = 0.0
    return Snapshot(
        frame=frame,
        kind=kind,
        step=dump.step,
        time_ps=dump.step * protocol.timestep_fs / 1000.0,
        setpoint_K=setpoint_K,
        temperature_K=temperature,
        energy_eV_per_atom=energy,
        forces_eV_per_A=forces,
    )


class _DumpWatcher(threading.Thread):
    """Streams completed `quench.<step>.dump` files to the callback while LAMMPS runs."""

    def __init__(
        self,
        workdir: Path,
        keep: dict[int, float],
        protocol: MeltQuenchProtocol,
        on_snapshot: Callable[[Snapshot], None],
        every: int,
    ) -> None:
        super().__init__(daemon=True)
        self.workdir, self.keep, self.protocol = workdir, keep, protocol
        self.on_snapshot = on_snapshot
        self.progress = ProgressLog(protocol.quench_steps // every + 1, f"{protocol.run_id} quench dumps", log)
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.delivered = 0
        self._done: set[int] = set()

    def _pending(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.workdir.glob("quench.*.dump"):
            try:
                found.append((int(p.name.split(".")[1]), p))
            except ValueError:
                continue
        return sorted(found)

    def poll(self, final: bool) -> None:
        dumps = self._pending()
        ready = dumps if final else dumps[:-1]  # the newest file may still be being written
        for step, path in ready:
            if step in self.keep and step not in self._done:  # steps count from the quench start
                self.on_snapshot(_to_snapshot(path, self.protocol, "intermediate", self.keep[step]))
                self.delivered += 1
                self._done.add(step)
            path.unlink(missing_ok=True)
            self.progress.step()

    def run(self) -> None:
        try:
            while not self.finished.wait(0.2):
                self.poll(final=False)
        except BaseException as err:  # re-raised in the main thread
            self.error = err


def run_melt_quench(
    protocol: MeltQuenchProtocol,
    workdir: str | Path,
    on_snapshot: Callable[[Snapshot], None],
    omp_threads: int | None = None,
) -> MeltQuenchResult:
    """Run one melt-quench in `workdir`; call `on_snapshot` for each kept snapshot, final last."""
    if protocol.potential_spec.engine != "lammps":
        raise InputError(
            f"potential {protocol.potential!r} is computed with {protocol.potential_spec.engine}, not LAMMPS: "
            "run it with the VASP firework (VaspMeltQuenchTask) or pick a LAMMPS potential"
        )
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _remove_dumps(workdir)
    threads = omp_threads or default_threads()
    snap_every = max(1, protocol.quench_steps // max(SNAPSHOTS_PER_QUENCH, protocol.n_quench_snapshots))
    keep = protocol.snapshot_quench_steps(snap_every)
    lammps = load_lammps()
    log.info(
        "%s: LAMMPS melt-quench, %d atoms, %d quench steps, %d OMP threads, %d snapshots to keep",
        protocol.run_id,
        protocol.n_atoms,
        protocol.quench_steps,
        threads,
        len(keep),
    )
    watcher = _DumpWatcher(workdir, keep, protocol, on_snapshot, snap_every)
    start = time.perf_counter()
    lmp = lammps.lammps(cmdargs=_lammps_args(protocol, workdir, snap_every, threads))
    steps = _run_lammps(lmp, protocol, workdir, watcher)
    wall = time.perf_counter() - start
    final = _to_snapshot(workdir / "final.dump", protocol, "final", protocol.T_final_K)
    on_snapshot(final)
    return MeltQuenchResult(
        run_id=protocol.run_id,
        n_snapshots=watcher.delivered + 1,
        wall_s=wall,
        steps=steps,
        steps_per_s=_md_steps(protocol) / wall,
        final_energy_eV_per_atom=final.energy_eV_per_atom,
        workdir=str(workdir),
    )


def _remove_dumps(workdir: Path) -> None:
    """Delete the quench dump files in `workdir` (stale ones of an earlier run, or those left after this one)."""
    for dump in workdir.glob("quench.*.dump"):
        dump.unlink()


def _run_lammps(lmp, protocol: MeltQuenchProtocol, workdir: Path, watcher: _DumpWatcher) -> int:
    """Run the system's template in the LAMMPS instance `lmp` (closed after) while `watcher` streams the dumps;
    the last LAMMPS timestep. No dump file is left behind.
    """
    watcher.start()
    try:
        try:
            lmp.file(str(TEMPLATES_DIR / TEMPLATES[protocol.system]))
            steps = int(lmp.extract_global("ntimestep"))
        except Exception as err:
            raise MeltQuenchError(
                f"LAMMPS failed for {protocol.run_id} (log: {workdir / 'log.lammps'}): {err}"
            ) from err
        finally:
            lmp.close()
            watcher.finished.set()
            watcher.join()
        if watcher.error is not None:
            raise watcher.error
        watcher.poll(final=True)
    finally:
        _remove_dumps(workdir)
    return steps


def _md_steps(protocol: MeltQuenchProtocol) -> int:
    """MD steps of the whole protocol: melt, quench and hold."""
    dt_ps = protocol.timestep_fs / 1000.0
    return round(protocol.melt_ps / dt_ps) + protocol.quench_steps + round(protocol.hold_ps / dt_ps)
