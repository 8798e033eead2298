"""The Python API (`from pdmd import load_potential`), the ASE calculator and `pdmd predict` on many files."""

import subprocess

import numpy as np
import pytest
from ase.build import graphene
from ase.calculators.calculator import PropertyNotImplementedError
from ase.io import write
from conftest import BIN

from pdmd.models.support import range_warnings
from pdmd.store.datastore import DataStore


@pytest.fixture(scope="module")
def sheets(small_store):
    store = DataStore(small_store)
    docs = list(store.iter_structures({}))[:4]
    return [store.load_frame(d).to_ase() for d in docs], [d["energy_eV_per_atom"] for d in docs]


def test_load_potential_predict_and_calculator(trained, sheets):
    from pdmd import PDPotential, load_potential
    from pdmd.models.cnn.potential import load_cnn
    from pdmd.structure import Frame

    out, card = trained
    pot = load_potential(out)
    atoms, _ = sheets
    direct, _ = load_cnn(out).predict_frames([Frame.from_ase(a) for a in atoms], ["s"] * len(atoms))
    assert pot.predict(atoms[0]) == pytest.approx(direct[0], abs=1e-6)
    np.testing.assert_allclose(pot.predict(atoms), direct, atol=1e-6)
    a = atoms[1].copy()
    a.calc = PDPotential(out)
    assert a.get_potential_energy() == pytest.approx(direct[1] * len(a), abs=1e-4)  # eV: per atom × N
    assert pot.calculator().get_potential_energy(atoms[2]) == pytest.approx(direct[2] * len(atoms[2]), abs=1e-4)
    with pytest.raises(PropertyNotImplementedError, match="not implemented by a global-energy model"):
        a.get_forces()
    lo, hi = card["training_range"]["energy_eV_per_atom"]
    assert lo < hi and card["training_range"]["death_A2"][1] <= 4.0


def test_range_warnings_flag_energy_and_diagram_support():
    from pdmd.descriptor.spec import DescriptorSpec

    card = {"training_range": {"energy_eV_per_atom": [-7.0, -6.0], "birth_A2": [0.4, 1.0], "death_A2": [1.0, 3.0]},
            "descriptor": DescriptorSpec.for_system("agr", bins=8).to_dict()}  # fmt: skip
    inside = np.zeros((8, 8))
    inside[1, 3] = 1.0  # birth 0.5, death 1.5 Å²: inside the support
    assert range_warnings(card, -6.5, inside) == []
    assert "outside the training energies" in range_warnings(card, -5.0, inside)[0]
    outside = inside.copy()
    outside[6, 7] = 1.0  # birth 3.25, death 3.75: nowhere in training
    (msg,) = range_warnings(card, -6.5, outside)
    assert msg.startswith("50% of its diagram's pairs lie where no training structure had pairs")
    assert range_warnings({}, 100.0) == []  # cards without a recorded range: no claims


def test_predict_reports_every_failure_on_its_own_line(trained, sheets, tmp_path):
    out, card = trained
    atoms, energies = sheets
    good = atoms[0].copy()
    good.info = {"energy": energies[0] * len(good)}  # a total energy only: the reference column is total / N
    write(tmp_path / "good.extxyz", [good, atoms[1]])
    si = atoms[2].copy()
    si.numbers[:] = 14
    write(tmp_path / "si.extxyz", si)
    (tmp_path / "broken.xyz").write_text("3\nno cell\nC 0 0\n")
    hexa = graphene(size=(8, 8, 1), vacuum=5.0)  # hexagonal cell: HomCloud cannot take it, delaunay can
    hexa.positions += np.random.default_rng(2).normal(0, 0.05, hexa.positions.shape)
    write(tmp_path / "hexa.extxyz", hexa)
    files = [tmp_path / n for n in ("good.extxyz", "si.extxyz", "broken.xyz", "missing.extxyz", "hexa.extxyz")]
    proc = subprocess.run([str(BIN / "pdmd"), "predict", str(out), *map(str, files), "--csv"], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert rows[0].startswith("structure,n_atoms,predicted") and len(rows) == 4
    assert rows[0].endswith(",seconds,extrapolation_grade,geometry_grade")  # the model has training domains
    assert rows[3].startswith("hexa.extxyz@0,128,")
    label, n, pred, ref, _, grade, geometry = rows[1].split(",")
    assert label == "good.extxyz@0" and float(ref) == pytest.approx(energies[0], abs=1e-6) and float(pred) < 0
    assert 0 < float(grade) < card["domain"]["max_extrapolation_default"]  # a structure of the training runs
    assert 0 < float(geometry) < card["domain"]["geometry"]["max_extrapolation_default"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pdmd: error:")]
    assert len(errors) == 3 and "Traceback" not in proc.stderr
    assert "si.extxyz@0: contains elements Z=[14]" in errors[0]
    assert "broken.xyz" in errors[1] and "missing.extxyz does not exist" in errors[2]
    assert "3 of 6 structures failed; 3 predicted" in proc.stderr
