# SPDX-License-Identifier: GPL-3.0-or-later
"""VASP single points: the DFT labels of structures picked by active learning (or any structure).

Each structure runs in its own folder under a work directory, named by the structure's content hash, with
the templates' `INCAR.static` (pdmd sets NSW = 0 and IBRION = -1), `KPOINTS` and `POTCAR.spec.yaml`; the folder
name also carries these settings, so changed templates make new points. A point
that finished writes `point_done.json` (energy, forces); a rerun (a killed launcher, `lpad rerun_fws`) reads
it back and runs VASP only for the points that had not finished. Energy: VASP's TOTEN (`e_fr_energy`, eV per
cell), the quantity the VASP melt-quench stores, so labels and melt-quench data agree.

Sheets (2D) get a vacuum layer along z (`SHEET_VACUUM_A`); forces are returned in the input's atom order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from pdmd.errors import InputError, SimulationError
from pdmd.files import content_hash, write_json_atomic
from pdmd.md.single_point import SinglePoint
from pdmd.md.vasp.inputs import VaspStage, initial_poscar, load_static_incar, load_templates, write_stage_inputs
from pdmd.md.vasp.melt_quench import parse_vasp_cmd, vasp_failure_reason
from pdmd.md.vasp.vasprun import VasprunReader
from pdmd.structure import Frame

log = logging.getLogger(__name__)

POINT_DONE = "point_done.json"
"""Written into a point's folder when VASP finished it: energy (eV) and forces (eV/Å)."""
SHEET_VACUUM_A = 15.0
"""Vacuum (Å) above the thickest point of a 2D sheet in its VASP cell."""


class VaspSinglePoint:
    """VASP single points of structures, one folder each under `workdir` (see the module docstring).

    vasp_cmd: the site's VASP command (`srun vasp_gam`); templates_dir: default the packaged `vasp_templates/`;
    write_potcar: assemble POTCAR with pymatgen (False: the command provides it); dim: 2 for sheets, 3 for cells.
    """

    def __init__(self, workdir: str | Path, vasp_cmd: str | list[str], dim: int = 3,
                 templates_dir: str | Path | None = None, write_potcar: bool = True) -> None:  # fmt: skip
        self.argv = parse_vasp_cmd(vasp_cmd)
        self.templates = load_templates(templates_dir)
        self.incar = load_static_incar(self.templates)
        settings = json.dumps([self.incar, self.templates.kpoints_text, self.templates.potcar_symbols], sort_keys=True)
        self._settings_key = hashlib.sha256(settings.encode()).hexdigest()  # new settings: new points
        self.workdir, self.dim, self.write_potcar = Path(workdir), dim, write_potcar

    def __enter__(self) -> VaspSinglePoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: every point is its own VASP process."""

    def folder(self, frame: Frame) -> Path:
        """Where the point of `frame` runs (its content hash, so reruns find it)."""
        key = hashlib.sha256((content_hash(frame.positions, frame.cell, frame.numbers) + self._settings_key).encode())
        key = key.hexdigest()[:16]
        return self.workdir / f"point-{key}"

    def __call__(self, frame: Frame) -> SinglePoint:
        """Energy (eV, total) and forces (eV/Å) of `frame`; a finished point is read back, not rerun."""
        start = time.perf_counter()
        folder = self.folder(frame)
        done = folder / POINT_DONE
        if not done.is_file():
            self._run(frame, folder)
        record = json.loads(done.read_text())
        forces = np.asarray(record["forces_eV_per_A"], float)
        if forces.shape != (frame.n_atoms, 3):
            raise SimulationError(f"{done}: forces of shape {forces.shape} for {frame.n_atoms} atoms; delete the "
                                  "folder to run the point again")  # fmt: skip
        return SinglePoint(float(record["energy_eV"]), forces, time.perf_counter() - start)

    def _run(self, frame: Frame, folder: Path) -> None:
        positions, cell = self._cell(frame)
        symbols = [chemical_symbols[z] for z in frame.numbers]
        stage = VaspStage("static", self.incar, 0, 0.0, 0.0)
        write_stage_inputs(folder, stage, initial_poscar(positions, cell, symbols), self.templates, self.write_potcar)
        log.info("VASP single point of %d atoms in %s", frame.n_atoms, folder)
        with (folder / "vasp.out").open("w") as out:
            try:
                code = subprocess.run(self.argv, cwd=folder, stdout=out, stderr=subprocess.STDOUT).returncode
            except OSError as exc:
                raise InputError(f"cannot start vasp_cmd {' '.join(self.argv)!r}: {exc}") from exc
        reader = VasprunReader(folder / "vasprun.xml")
        try:
            steps = reader.poll()
        except InputError as exc:
            raise SimulationError(f"VASP single point in {folder}: {exc}; {vasp_failure_reason(folder, code)}") from exc
        if code != 0 or not reader.complete or not steps or steps[-1].forces_eV_per_A is None:
            raise SimulationError(f"VASP single point in {folder} failed: {vasp_failure_reason(folder, code)}; fix "
                                  "the cause and rerun the firework (finished points are kept)")  # fmt: skip
        step = steps[-1]
        write_json_atomic(folder / POINT_DONE, {"energy_eV": step.free_energy_eV,
                                                "energy_sigma0_eV": step.energy_sigma0_eV,
                                                "forces_eV_per_A": step.forces_eV_per_A.tolist()})  # fmt: skip

    def _cell(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """Positions and cell (Å) for VASP: a sheet's cell gets a vacuum layer along z, its atoms centred in it."""
        positions, cell = np.asarray(frame.positions, float), np.asarray(frame.cell, float).copy()
        if self.dim == 3:
            return positions, cell
        z = positions[:, 2]
        cell[2] = (0.0, 0.0, float(z.max() - z.min()) + SHEET_VACUUM_A)
        shifted = positions.copy()
        shifted[:, 2] += 0.5 * cell[2, 2] - 0.5 * (z.max() + z.min())
        return shifted, cell
