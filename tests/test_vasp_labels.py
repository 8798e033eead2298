"""VASP single points as active-learning labels, without VASP: the fake executable of tests/fake_vasp.py runs a
real (classical) calculation and writes VASP's files, so energies and forces can be checked against ASE."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fake_vasp import SoftSpheres

from pdmd.active import ActiveSettings, label
from pdmd.errors import InputError, SimulationError
from pdmd.md.random_cell import random_positions
from pdmd.md.vasp.single_point import POINT_DONE, VaspSinglePoint
from pdmd.store.datastore import DataStore
from pdmd.structure import Frame

FAKE_VASP = f"{sys.executable} {Path(__file__).with_name('fake_vasp.py')}"
REPO = Path(__file__).resolve().parents[1]


def _cell(n: int = 40, edge: float = 7.0, seed: int = 1) -> Frame:
    cell = np.eye(3) * edge
    return Frame(positions=random_positions(n, cell, 1.2, seed), cell=cell, numbers=np.full(n, 6), pbc=(True,) * 3)


def _reference(atoms) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = SoftSpheres()
    return atoms.get_potential_energy(), atoms.get_forces()


def test_vasp_single_points_match_the_calculation_and_a_rerun_reuses_them(tmp_path):
    frame = _cell()
    with VaspSinglePoint(tmp_path, FAKE_VASP, dim=3, write_potcar=False) as vasp:
        point = vasp(frame)
        folder = vasp.folder(frame)
    energy, forces = _reference(frame.to_ase())
    assert point.energy_eV == pytest.approx(energy, abs=1e-6)
    assert np.abs(point.forces_eV_per_A - forces).max() < 1e-6 and np.abs(forces).max() > 0.1
    incar = (folder / "INCAR").read_text()
    assert "NSW = 0" in incar and "IBRION = -1" in incar and "ENCUT = 400" in incar
    # a rerun reads the finished point back: a command that cannot run VASP is never started
    (folder / "vasprun.xml").unlink()
    again = VaspSinglePoint(tmp_path, "false", dim=3, write_potcar=False)(frame)
    assert again.energy_eV == point.energy_eV and np.array_equal(again.forces_eV_per_A, point.forces_eV_per_A)


def test_a_sheet_gets_vacuum_and_its_forces_stay_in_atom_order(tmp_path):
    cell = np.diag([9.0, 9.0, 1.0])
    xy = random_positions(30, cell[:2, :2], 1.3, 4)
    z = np.random.default_rng(0).normal(0.0, 0.2, 30)
    frame = Frame(positions=np.column_stack([xy, z]), cell=cell, numbers=np.full(30, 6), pbc=(True, True, False))
    with VaspSinglePoint(tmp_path, FAKE_VASP, dim=2, write_potcar=False) as vasp:
        point = vasp(frame)
    atoms = frame.to_ase()
    atoms.cell[2] = (0.0, 0.0, 30.0)  # in-plane forces of a sheet do not depend on the vacuum
    atoms.pbc = True
    energy, forces = _reference(atoms)
    assert point.energy_eV == pytest.approx(energy, abs=1e-6)
    assert np.abs(point.forces_eV_per_A - forces).max() < 1e-6


def test_vasp_failures_and_missing_templates_are_one_line_errors(tmp_path):
    with pytest.raises(SimulationError, match=r"VASP single point in .* failed: exit status 1.*rerun the firework"):
        VaspSinglePoint(tmp_path / "a", "false", write_potcar=False)(_cell())
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("INCAR", "INCAR.relax", "KPOINTS", "POTCAR.spec.yaml"):
        (templates / name).write_text((REPO / "vasp_templates" / name).read_text())
    with pytest.raises(InputError, match="INCAR.static"):
        VaspSinglePoint(tmp_path / "b", FAKE_VASP, templates_dir=templates)
    (templates / "INCAR.static").write_text("ENCUT = 400\nIBRION = 2\n")
    with pytest.raises(InputError, match=r"\{'IBRION': 2\} is not a single point"):
        VaspSinglePoint(tmp_path / "b", FAKE_VASP, templates_dir=templates)
    (templates / "INCAR.static").write_text("ENCUT = 400\nIBRION = -1\nNSW = 0\nPOTIM = 1\n")
    with pytest.raises(InputError, match=r"sets \['POTIM'\]"):
        VaspSinglePoint(tmp_path / "b", FAKE_VASP, templates_dir=templates)
    # the melt-quench does not read INCAR.static: a folder with a single-point file still loads
    from pdmd.md.vasp.inputs import load_templates

    assert load_templates(templates).md_incar["IBRION"] == 0


def test_active_learning_labels_with_vasp_into_the_store_and_extxyz(tmp_path):
    s = ActiveSettings("ac-vasp", ("seed-run",), ("test-run",), "ac", reference="vasp-pbe",
                       vasp={"write_potcar": False})  # fmt: skip
    store = DataStore(tmp_path / "data")
    frames = [_cell(seed=k) for k in (1, 2)]
    picked = [({"temperature_K": 1500.0, "parent": "p", "trajectory": "t", "frame": k}, f.to_ase())
              for k, f in enumerate(frames)]  # fmt: skip
    with pytest.raises(InputError, match="needs vasp_cmd"):
        label(store, s, 0, picked, np.array([0.3, 0.4]))
    assert label(store, s, 0, picked, np.array([0.3, 0.4]), FAKE_VASP) == 2
    docs = store.run_structures("active-ac-vasp-iter-000")
    assert len(docs) == 2
    for doc, frame in zip(docs, frames):
        energy, forces = _reference(frame.to_ase())
        assert doc["energy_eV_per_atom"] == pytest.approx(energy / frame.n_atoms, abs=1e-8)
        assert doc["active"]["reference"] == "vasp-pbe"
        assert np.abs(store.load_forces(doc) - forces).max() < 1e-6
    points = sorted((tmp_path / "data" / "active" / "ac-vasp" / "vasp").glob(f"point-*/{POINT_DONE}"))
    assert len(points) == 2 and json.loads(points[0].read_text())["energy_eV"] < 0
    from ase.io import read

    exported = read(tmp_path / "data" / "active" / "ac-vasp" / "iter-000" / "labelled.extxyz", index=":")
    assert [a.info["reference"] for a in exported] == ["vasp-pbe", "vasp-pbe"]


def test_the_vasp_campaign_file_labels_on_vasp_fworkers():
    from pdmd.workflow.params import check_task_params

    wf = yaml.safe_load((REPO / "workflows" / "ac_active_vasp.yaml").read_text())
    tasks = {fw["name"]: (fw["spec"]["_category"], fw["spec"]["_tasks"][0]) for fw in wf["fws"]}
    select = [v for k, v in tasks.items() if k.endswith("select")]
    assert select[0][0] == "vasp" and select[0][1]["active"]["reference"] == "vasp-pbe"
    assert all(cat == "vasp" for name, (cat, _) in tasks.items() if name.startswith("VASP melt-quench"))
    assert sum(name.startswith("VASP melt-quench") for name in tasks) == 12
    with pytest.raises(InputError, match="unknown reference"):
        ActiveSettings("x", ("a",), ("b",), reference="dft")
    with pytest.raises(InputError, match="write_potcar must be true or false"):
        ActiveSettings("x", ("a",), ("b",), reference="vasp-pbe", vasp={"write_potcar": "false"})
    with pytest.raises(InputError, match="vasp settings are for the reference vasp-pbe"):
        ActiveSettings("x", ("a",), ("b",), vasp={"write_potcar": False})
    assert "vasp" not in ActiveSettings("x", ("a",), ("b",)).as_dict()  # campaigns without VASP read as before
    # a select firework's own vasp_cmd goes on to the iterations it adds
    from pdmd.workflow.active import iteration_workflow

    s = ActiveSettings.from_dict(select[0][1]["active"])
    later = iteration_workflow(s, 1, vasp_cmd="srun vasp_gam")
    chosen = [fw.tasks[0] for fw in later.fws if fw.name.endswith("select")]
    assert chosen[0]["vasp_cmd"] == "srun vasp_gam" and chosen[0]["iteration"] == 1
    params = {k: v for k, v in select[0][1].items() if k != "_fw_name"}
    assert not check_task_params("ActiveSelectTask", {**params, "vasp_cmd": "srun vasp_gam"}, "select")
