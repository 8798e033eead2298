# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local outside its data: the core repulsion, the extrapolation grade, the committee and MD that stops."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import LOCAL_RUNS, LOCAL_TEST_RUNS

from pdmd.models.local.core import CoreRepulsion, switch, zbl
from pdmd.models.local.model import load_local_model
from pdmd.structure import Frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def final_frame(root, run: int = 0) -> Frame:
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    return store.load_frame(next(d for d in store.run_structures(LOCAL_RUNS[run].run_id) if d["kind"] == "final"))


def pulled(frame: Frame, r_A: float) -> tuple[Frame, int, np.ndarray]:
    """Atom 0's nearest neighbour j moved along the bond to distance r_A; (frame, j, unit vector 0 -> j)."""
    pos = frame.positions.copy()
    cell = frame.cell[:2, :2]
    frac = (pos[1:, :2] - pos[0, :2]) @ np.linalg.inv(cell)
    d = (frac - np.round(frac)) @ cell
    j = 1 + int(np.argmin((d**2).sum(1)))
    u = d[j - 1] / np.linalg.norm(d[j - 1])
    pos[j, :2] = pos[0, :2] + r_A * u
    return Frame(pos, frame.cell, frame.numbers, frame.pbc), j, u


def test_zbl_and_switch_are_the_published_forms():
    r = torch.tensor([1.2, 1.42], dtype=torch.float64)
    assert np.allclose(zbl(r).numpy(), [8.0, 4.0], atol=0.4)  # C–C ZBL: ≈ 8 eV at 1.2 Å, ≈ 4 eV at 1.42 Å
    core = CoreRepulsion(1.3, 0.3)
    x = torch.linspace(0.5, 1.6, 2201, dtype=torch.float64, requires_grad=True)
    e = core.pair_energy(x)
    (de,) = torch.autograd.grad(e.sum(), x)
    assert torch.all(e[x >= 1.3] == 0) and torch.all(de[x >= 1.3].abs() < 1e-12)  # nothing reaches into the data
    assert torch.equal(e[x <= 1.0], zbl(x[x <= 1.0]))  # fully on below r_min - width
    assert torch.all(de < 1e-12)  # repulsive everywhere it is on
    assert float(torch.diff(de).abs().max()) < 2.0  # C1: no jump of the slope on a 0.5 mÅ grid
    s = switch(x.detach(), 1.0, 1.3)
    assert float(s.min()) == 0.0 and float(s.max()) == 1.0


def test_pulling_two_atoms_together_meets_the_core(local_committee, agr_store):
    folder, card = local_committee
    r_min = card["core"]["r_min_A"]
    assert 1.0 < r_min < 1.42
    model = load_local_model(folder)
    frame = final_frame(agr_store)
    rs = np.linspace(1.4, 0.3, 89)
    energies, radial = [], []
    for r in rs:
        f, j, u = pulled(frame, r)
        res = model.evaluate(f)
        assert np.isfinite(res.forces).all()
        energies.append(res.energy)
        radial.append(float(res.forces[j, :2] @ u))
    energies, radial = np.array(energies), np.array(radial)
    below = rs <= r_min - 0.3
    assert np.all(np.diff(energies[below]) > 0)  # strictly rising as the pair approaches
    assert np.all(radial[below] > 0)  # the force pushes the atoms apart
    assert energies[-1] > energies[0] + 10.0
    for r in (r_min - 0.15, 0.8, 0.4):  # autograd forces = finite differences, in the switch and under the core
        f, j, u = pulled(frame, r)
        h = 1e-5
        e_plus = model.evaluate(pulled(frame, r + h)[0]).energy
        e_minus = model.evaluate(pulled(frame, r - h)[0]).energy
        assert abs(-(e_plus - e_minus) / (2 * h) - model.evaluate(f).forces[j, :2] @ u) < 1e-4 * max(1.0, abs(e_plus))


def test_core_leaves_the_training_structures_unchanged(local_committee, agr_store):
    from pdmd.store.datastore import DataStore

    folder, card = local_committee
    with_core, without = load_local_model(folder), load_local_model(folder, use_core=False)
    store = DataStore(agr_store)
    train_ids = set(card["split"]["train_ids"])
    docs = [d for p in LOCAL_RUNS for d in store.run_structures(p.run_id) if d["_id"] in train_ids]
    assert len(docs) == len(train_ids)
    for d in docs:
        f = store.load_frame(d)
        a, b = with_core.evaluate(f), without.evaluate(f)
        assert abs(a.energy - b.energy) <= 1e-10 and np.abs(a.forces - b.forces).max() <= 1e-10


def test_cards_without_core_domain_or_committee_load_as_before(trained_local, agr_store, tmp_path):
    folder, _ = trained_local
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    card = json.loads((old / "model.json").read_text())
    for key in ("core", "domain", "committee"):
        card.pop(key, None)
    (old / "model.json").write_text(json.dumps(card))
    (old / "domain.npz").unlink()
    model = load_local_model(old)
    assert model.core is None and model.domain is None and model.committee_size == 1
    f, _, _ = pulled(final_frame(agr_store), 0.9)
    res = model.evaluate(f, deviation=True)
    assert res.extrapolation is None and res.force_deviation is None
    # as before cores and domains existed: the network's atomic energies summed (`batch_energies`), autograd forces
    from pdmd.models.local.model import batch_energies

    pos = torch.tensor(f.positions, dtype=torch.float64, requires_grad=True)
    e = batch_energies(model.net, model.cfg, model.topology(f), pos, torch.zeros(len(pos), dtype=torch.long), 1)
    (grad,) = torch.autograd.grad(e.sum(), pos)
    assert abs(res.energy - float(e[0])) < 1e-10 and np.abs(res.forces + grad.numpy()).max() < 1e-10


def test_extrapolation_grade_flags_a_pair_before_it_is_closer_than_1_A(local_committee, agr_store):
    folder, card = local_committee
    dom = card["domain"]
    assert dom["max_grade_training_atoms"] < 1.05  # 1 is the edge of the training data
    threshold = dom["max_extrapolation_default"]
    assert threshold >= 2.0
    model = load_local_model(folder, use_core=False)  # the network alone: the grade must warn by itself
    frame = final_frame(agr_store)
    flagged = [
        r for r in np.linspace(1.4, 0.9, 51) if model.evaluate(pulled(frame, r)[0]).extrapolation.max() > threshold
    ]
    assert flagged and max(flagged) > 1.0
    # in-domain: the held-out runs' structures grade far below the flagged ones
    from pdmd.store.datastore import DataStore

    store = DataStore(agr_store)
    test_finals = [store.load_frame(d) for p in LOCAL_RUNS if p.run_id in LOCAL_TEST_RUNS
                   for d in store.run_structures(p.run_id) if d["kind"] == "final"]  # fmt: skip
    assert all(g < threshold for g in model.structure_grades(test_finals))


def test_committee_deviation_in_the_calculator_and_its_card(local_committee, agr_store):
    from pdmd.api import load_potential

    folder, card = local_committee
    c = card["committee"]
    assert c["size"] == 3 and c["seeds"] == [0, 1, 2] and len(c["member_test_rmse_meV_per_atom"]) == 3
    assert 0 < c["trust_low_eV_per_A"] < c["trust_high_eV_per_A"]
    atoms = final_frame(agr_store).to_ase()
    atoms.calc = load_potential(folder).calculator()
    forces = atoms.get_forces()
    res = atoms.calc.results
    assert res["force_deviation"].shape == (len(atoms),) and np.all(res["force_deviation"] > 0)
    assert res["extrapolation"].shape == (len(atoms),) and res["energy_std"] > 0
    assert res["max_force_deviation"] == res["force_deviation"].max()
    # member 0 is integrated: its forces are the model's
    assert np.allclose(forces, load_local_model(folder).evaluate(final_frame(agr_store)).forces, atol=1e-12)
    f, _, _ = pulled(final_frame(agr_store), 1.0)
    assert load_local_model(folder).evaluate(f, deviation=True).force_deviation.max() > res["max_force_deviation"]


def test_md_stops_with_one_line_and_keeps_its_frames(local_committee, agr_store, tmp_path):
    from ase.io import read, write

    from pdmd.dynamics.ase_engine import MODEL_DEVI_HEADER, MDResult, run_md_file
    from pdmd.errors import ExtrapolationStop

    folder, _ = local_committee
    structure = tmp_path / "final.extxyz"
    write(structure, final_frame(agr_store).to_ase())
    out = tmp_path / "hot.extxyz"
    with pytest.raises(ExtrapolationStop) as err:  # 3000 K from a 300 K-ish sheet: soon outside the data
        run_md_file(folder, structure, out, temperature_K=3000.0, steps=400, timestep_fs=0.5, every=5,
                    max_extrapolation=1.5)  # fmt: skip
    msg = str(err.value)
    assert "\n" not in msg and "extrapolation grade" in msg and "threshold 1.5" in msg and str(out) in msg
    step = err.value.step
    assert 0 < step < 400 and err.value.value > 1.5
    frames = read(out, index=":")
    assert len(frames) == step // 5 + 2  # every logged frame and the offending one
    assert frames[-1].arrays["extrapolation"].max() > 1.5 and "force_deviation" in frames[-1].arrays
    log = MDResult.from_csv(out.with_suffix(".csv"))
    assert len(log.time_ps) == len(frames) and log.max_extrapolation[-1] > 1.5
    assert np.all(log.max_force_deviation_eV_per_A > 0)
    devi = np.loadtxt(out.with_suffix(".model_devi.out"), ndmin=2)
    assert devi.shape == (len(frames), len(MODEL_DEVI_HEADER))
    assert np.allclose(devi[:, 4], log.max_force_deviation_eV_per_A)


def rotated_to_xz(frame: Frame) -> Frame:
    """The sheet turned by 90° about x: it lies in the xz plane, vacuum along y."""
    rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (x, -z, y)
    cell = np.array([frame.cell[0] @ rot.T, frame.cell[1] @ rot.T, [0.0, 20.0, 0.0]])
    return Frame(frame.positions @ rot.T, cell, frame.numbers, (True, True, False))


def test_sheets_in_another_plane_predict_train_and_rotate_forces_back(trained_local, agr_store, tmp_path):
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.data import data_from_frames
    from pdmd.models.training import train_model

    folder, _ = trained_local
    model = load_local_model(folder)
    flat = final_frame(agr_store)
    turned = rotated_to_xz(flat)
    a, b = model.evaluate(flat), model.evaluate(turned)
    assert abs(a.energy - b.energy) < 1e-8
    rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert np.abs(b.forces - a.forces @ rot.T).max() < 1e-8  # forces in the input's frame
    assert np.abs(b.forces[:, 1]).max() < 1e-10  # nothing across the vacuum
    # training on sheets in the xz plane, forces included, works as for any other kind
    frames = [rotated_to_xz(final_frame(agr_store, k)) for k in range(6)]
    forces = [model.evaluate(f).forces for f in frames]
    ids = [f"s{k}" for k in range(6)]
    data = data_from_frames(frames, np.linspace(-7.4, -7.3, 6), ids, ids, DescriptorSpec.for_system("agr"), {"frames"})
    card = train_model("pd-local", data, tmp_path / "xz", "xz", split_indices=(np.arange(5), np.array([5])),
                       options={"forces": forces, "train": {"epochs": 2, "hidden": [8]}})  # fmt: skip
    assert card["metrics"]["train_force_rmse_eV_per_A"] < 2 * card["metrics"]["train_force_std_eV_per_A"]


def test_cli_predict_prints_uncertainty_and_md_stops_in_one_line(local_committee, agr_store, tmp_path):
    from ase.io import write
    from conftest import fw

    folder, _ = local_committee
    near, far = tmp_path / "near.extxyz", tmp_path / "far.extxyz"
    write(near, final_frame(agr_store).to_ase())
    write(far, pulled(final_frame(agr_store), 1.0)[0].to_ase())
    out = fw(["pdmd", "predict", str(folder), str(near), str(far), "--csv"], tmp_path)
    header, *rows = out.stdout.strip().splitlines()
    assert header.endswith("extrapolation_grade,max_force_deviation_eV_per_A")
    grades = [float(r.split(",")[-2]) for r in rows]
    assert grades[1] > 5.0 > grades[0]  # the pulled pair is far outside the data; the relaxed sheet is not
    assert "far.extxyz@0" in out.stderr and "extrapolation grade" in out.stderr and "near.extxyz" not in out.stderr
    md = fw(["pdmd", "md", str(folder), str(far), "--temperature-K", "300", "--steps", "50", "--no-core",
             "--out", str(tmp_path / "far-md.extxyz")], tmp_path, check=False)  # fmt: skip
    lines = [x for x in md.stderr.splitlines() if x.startswith("pdmd: error")]
    assert (
        md.returncode != 0 and len(lines) == 1 and "MD stopped at step 0" in lines[0] and "Traceback" not in md.stderr
    )


def test_lammps_engine_gives_the_ase_trajectory_and_stops_on_the_grade(local_committee, agr_store, tmp_path):
    from ase.io import read, write

    from pdmd.dynamics.ase_engine import run_md_file
    from pdmd.dynamics.lammps_engine import lammps_thermo, run_lammps_md_file
    from pdmd.errors import ExtrapolationStop

    folder, _ = local_committee
    start = tmp_path / "start.extxyz"
    write(start, final_frame(agr_store).to_ase())
    common = {"temperature_K": 300.0, "steps": 100, "timestep_fs": 0.5, "ensemble": "nve", "every": 100, "seed": 4,
              "deviation": False, "max_extrapolation": 0}  # fmt: skip
    ase_run = run_md_file(folder, start, tmp_path / "ase.extxyz", **common)
    lmp_run = run_lammps_md_file(folder, start, tmp_path / "lmp.extxyz", **common)
    assert lmp_run.steps == 100 and lmp_run.stats.calls >= 101
    end = read(tmp_path / "ase.extxyz", index=-1)
    dump = read(tmp_path / "lmp.dump", index=-1, format="lammps-dump-text")  # xu yu zu, sorted by id
    assert np.abs(dump.positions - end.positions).max() <= 1e-6  # Å, from the same positions and velocities
    etot = lammps_thermo(tmp_path / "lmp.lammps.log")["TotEng"][-1] / len(end)
    assert abs(etot - ase_run.total_eV_per_atom[-1]) <= 1e-6  # eV/atom
    # fix halt on the grade the callback hands LAMMPS (f_pd[1]): one line, frames kept
    with pytest.raises(ExtrapolationStop, match="MD stopped at step") as err:
        hot = {**common, "temperature_K": 3000.0, "steps": 400, "max_extrapolation": 1.5}
        run_lammps_md_file(folder, start, tmp_path / "hot.extxyz", **hot)
    assert 0 < err.value.step < 400 and (tmp_path / "hot.dump").is_file()


def test_a_model_error_inside_lammps_stops_the_run_in_one_line(local_committee, agr_store, tmp_path):
    from ase.io import write

    from pdmd.dynamics.lammps_engine import SCRIPT, run_lammps_script, write_lammps_data
    from pdmd.errors import InputError

    model = load_local_model(local_committee[0])
    calls = {"n": 0}
    evaluate = model.evaluate

    def failing(frame, **kw):  # the third call fails, as a model refusing a structure would
        calls["n"] += 1
        if calls["n"] == 3:
            raise InputError("structure: atom 7 has non-finite coordinates")
        return evaluate(frame, **kw)

    model.evaluate = failing
    atoms = final_frame(agr_store).to_ase()
    write(tmp_path / "s.extxyz", atoms)
    data = write_lammps_data(tmp_path / "s.data", atoms, 2)
    with pytest.raises(InputError, match="inside LAMMPS: structure: atom 7") as err:
        run_lammps_script(model, SCRIPT, {"data": str(data), "steps": "20", "dump": str(tmp_path / "d.dump")}, dim=2)
    assert "\n" not in str(err.value) and calls["n"] >= 3
