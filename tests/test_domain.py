# SPDX-License-Identifier: GPL-3.0-or-later
"""Extrapolation grades: `pdmd.domain` itself, the global kinds' PD domain vectors, and flags at prediction."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from ase.io import read, write
from conftest import BIN, DESC, SMALL_CNN, SMALL_RUNS

from pdmd.descriptor.histogram import HistogramSpec
from pdmd.domain import GRADE_MARGIN, DomainModel, fit_domain
from pdmd.models import global_domain as pd_domain
from pdmd.models.data import load_store_data
from pdmd.models.training import train_model
from pdmd.store.datastore import DataStore

GRADE_WARNING = "descriptor-space extrapolation grade"


# -- pdmd.domain ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def training_rows() -> np.ndarray:
    """300 correlated 6-vectors (a 3-dimensional cloud embedded in 6 components, with noise)."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(300, 3))
    return latent @ rng.normal(size=(3, 6)) + 0.05 * rng.normal(size=(300, 6)) + np.arange(6)


def test_training_rows_grade_at_most_about_one(training_rows):
    grades = fit_domain(training_rows).grade(training_rows)
    assert grades.max() <= 1.05 and grades.max() > 0.5


def test_grade_grows_with_the_distance_outside_the_training_data(training_rows):
    domain = fit_domain(training_rows)
    centre, spread = training_rows.mean(axis=0), training_rows.std(axis=0)
    direction = spread * np.array([1.0, -1.0, 0.5, 0.0, 1.0, -0.5])
    grades = domain.grade(centre + np.array([0.0, 2.0, 4.0, 8.0, 16.0, 32.0])[:, None] * direction)
    assert grades[0] < 1.0
    assert np.all(np.diff(grades) > 0), grades
    assert grades[-1] > 4 * grades[2] and grades[-1] > 20  # about linear far out (8× the distance), not saturating


def test_a_direction_the_training_data_never_varied_is_caught(training_rows):
    rows = training_rows.copy()
    rows[:, 3] = 1.5  # one component constant in training: no principal direction carries it
    domain = fit_domain(rows)
    probe = rows[:5].copy()
    assert domain.grade(probe).max() <= 1.05
    probe[:, 3] += 0.1  # far less than the other components' spread
    assert domain.grade(probe).min() > 20


def test_save_and_load_give_the_same_grades(training_rows, tmp_path):
    domain = fit_domain(training_rows)
    path = domain.save(tmp_path / "domain.npz")
    again = DomainModel.load(path)
    probe = training_rows[:10] * 1.7
    np.testing.assert_allclose(again.grade(probe), domain.grade(probe), rtol=1e-12)
    assert not list(tmp_path.glob("*.tmp.npz"))


# -- PD domain vectors ----------------------------------------------------------------------------
HIST = HistogramSpec(0.0, 4.0, 128)


def _diagram(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n ring-like pairs (Å²): births 0.4-0.7, deaths 1.0-2.5."""
    return rng.uniform(0.4, 0.7, n), rng.uniform(1.0, 2.5, n)


def test_domain_vectors_count_pairs_per_atom_and_are_intensive():
    rng = np.random.default_rng(2)
    births, deaths = _diagram(rng, 90)
    deaths[0] = 5.0  # beyond the window: not drawn, but counted
    one = pd_domain.domain_vectors(pd_domain.pair_images([births], [deaths], HIST), [120], [90])
    four = pd_domain.domain_vectors(pd_domain.pair_images([np.tile(births, 4)], [np.tile(deaths, 4)], HIST), [480],
                                    [360])  # fmt: skip
    assert one.shape == (1, pd_domain.POOL**2 + 1)
    np.testing.assert_allclose(one, four, atol=1e-6)
    np.testing.assert_allclose((one**2).sum(), 90 / 120, rtol=1e-5)  # every pair per atom, inside or outside
    assert one[0, -1] == pytest.approx(np.sqrt(1 / 120), rel=1e-4)  # the pair beyond the window
    fewer = pd_domain.domain_vectors(pd_domain.pair_images([births[:60]], [deaths[:60]], HIST), [120], [60])
    assert (fewer**2).sum() == pytest.approx(60 / 120, rel=1e-5)  # fewer rings per atom: a shorter vector
    per_pair = pd_domain.domain_vectors(pd_domain.pair_images([births], [deaths], HIST))  # counts unknown
    np.testing.assert_allclose((per_pair**2).sum(), 1.0, rtol=1e-5)


def test_stray_pairs_where_no_training_diagram_had_any_grade_two_per_square_root_of_pairs(tmp_path):
    rng = np.random.default_rng(3)
    diagrams = [_diagram(rng, int(n)) for n in rng.integers(70, 90, 30)]
    births, deaths = [b for b, _ in diagrams], [d for _, d in diagrams]
    images = pd_domain.pair_images(births, deaths, HIST)
    n_atoms = np.full(30, 100)
    n_pairs = np.array([len(b) for b in births])
    section = pd_domain.fit_training_domain(images, tmp_path, [f"run{i % 6}" for i in range(30)], 0, n_atoms, n_pairs)
    domain = pd_domain.load_structure_domain(tmp_path, {"model_kind": "pd-kernel", "domain": section})
    assert section["normalization"] == "atoms" and section["one_pair_unit"] == pytest.approx(0.1)
    assert section["max_extrapolation_default"] >= pd_domain.MIN_GRADE_THRESHOLD
    assert domain.grade_pairs(births, deaths, HIST, n_atoms).max() <= 1.05
    for extra, expected in ((1, 2.0), (4, 4.0)):
        b = np.concatenate([births[0], np.full(extra, 3.1)])
        d = np.concatenate([deaths[0], np.full(extra, 3.6)])
        assert domain.grade_pairs([b], [d], HIST, n_atoms[:1])[0] == pytest.approx(expected, rel=1e-6)


# -- trained models: grades at prediction -----------------------------------------------------------
@pytest.fixture(scope="module")
def model_data(small_store):
    """Diagrams, images, frames and geometry of SMALL_RUNS (48 aGr structures of 120 atoms, 8 runs)."""
    return load_store_data(DataStore(small_store), [p.run_id for p in SMALL_RUNS], DESC,
                           {"images", "diagrams", "frames", "geometry"})  # fmt: skip


OPTIONS = {
    "pd-kernel": {"kernels": ["rbf"], "gammas": [0.3, 1.0], "folds": 3, "ablation_test": False,
                  "vectorizations": [{"method": "pi", "sigma_A2": 0.1}]},
    "pd-cnn": {"train": {"epochs": 3, "batch_size": 8}, "cnn": SMALL_CNN.as_dict()},
}  # fmt: skip


@pytest.fixture(scope="module")
def global_models(model_data, tmp_path_factory):
    """pd-kernel and a (barely trained) pd-cnn on the same run split: {kind: (folder, card)}."""
    out = {}
    for kind, options in OPTIONS.items():
        folder = tmp_path_factory.mktemp(kind)
        card = train_model(kind, model_data, folder, f"domain-{kind}", split="run", test_fraction=0.25, seed=3,
                           options=options)  # fmt: skip
        out[kind] = (folder, card)
    return out


@pytest.fixture(scope="module")
def structure_files(model_data, global_models, tmp_path_factory):
    """extxyz files of the held-out runs' structures as they are and with cell and positions scaled by 0.8 / 1.3."""
    folder = tmp_path_factory.mktemp("structures")
    _, card = global_models["pd-kernel"]
    test = [model_data.ids.index(i) for i in card["split"]["test_ids"]]
    files = {}
    for scale in (1.0, 0.8, 1.3):
        images = []
        for i in test if scale == 1.0 else test[::2]:
            atoms = model_data.frames[i].to_ase()
            atoms.set_cell(atoms.cell * scale, scale_atoms=True)
            images.append(atoms)
        files[scale] = folder / f"scaled-{scale}.extxyz"
        write(files[scale], images, format="extxyz")
    return files


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-cnn"])
def test_training_writes_the_domain_and_its_threshold(global_models, kind):
    folder, card = global_models[kind]
    section = card["domain"]
    assert (folder / section["file"]).is_file()
    assert section["normalization"] == "atoms" and section["pool"] == pd_domain.POOL
    assert section["n_training_structures"] == len(card["split"]["train_ids"])
    assert section["max_grade_training"] <= 1.05
    assert section["max_extrapolation_default"] == pytest.approx(
        max(pd_domain.MIN_GRADE_THRESHOLD, GRADE_MARGIN * section["max_grade_held_out_training"])
    )
    assert json.loads((folder / "model.json").read_text())["domain"] == section


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-cnn"])
def test_density_changes_are_flagged_and_held_out_runs_are_not(global_models, structure_files, kind):
    from pdmd.api import load_potential, predict_files

    folder, card = global_models[kind]
    model = load_potential(folder)
    threshold = model.extrapolation_threshold
    assert threshold == card["domain"]["max_extrapolation_default"]
    inside = predict_files(model, [structure_files[1.0]])
    grades = np.array([r.extrapolation for r in inside])
    flagged = [r for r in inside if any(GRADE_WARNING in w for w in r.warnings)]
    assert len(flagged) <= len(inside) // 4, grades  # held-out runs of the same material: mostly inside
    assert np.median(grades) < threshold
    for scale in (0.8, 1.3):
        rows = predict_files(model, [structure_files[scale]])
        scaled = np.array([r.extrapolation for r in rows])
        assert scaled.min() > threshold and scaled.min() > 2 * np.median(grades), (scale, scaled, threshold)
        for r in rows:
            (msg,) = [w for w in r.warnings if GRADE_WARNING in w]
            assert msg == f"{GRADE_WARNING} {r.extrapolation:.1f} > {threshold:.1f} (1 = edge of the training data)"
    # the Python API grades alike, one structure or a list
    atoms = read(structure_files[1.3], ":2")
    assert model.extrapolation(atoms[0]) == pytest.approx(scaled[0], rel=1e-9)
    np.testing.assert_allclose(model.extrapolation(atoms), scaled[:2], rtol=1e-9)


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-cnn"])
def test_bonds_shorter_than_any_training_structure_s_are_flagged(global_models, structure_files, tmp_path, kind):
    """The geometry domain: held-out runs stay inside; the same sheets with every bond 8 % shorter (a cell relaxed
    with another reference) are flagged, whatever the pooled PD image's grade says."""
    from pdmd.api import load_potential, predict_files

    folder, card = global_models[kind]
    section = card["domain"]["geometry"]
    assert (folder / section["file"]).is_file() and len(section["training_min"]) == 4
    model = load_potential(folder)
    assert model.geometry_threshold == section["max_extrapolation_default"] >= pd_domain.GEOMETRY_MARGIN
    inside = predict_files(model, [structure_files[1.0]])
    geo = np.array([r.geometry_grade for r in inside])
    assert (geo <= model.geometry_threshold).mean() >= 0.75, geo
    short = tmp_path / "short.extxyz"
    images = read(structure_files[1.0], ":")
    for atoms in images:
        atoms.set_cell(atoms.cell * 0.92, scale_atoms=True)
    write(short, images, format="extxyz")
    rows = predict_files(model, [short])
    assert all(r.geometry_grade > model.geometry_threshold for r in rows), [r.geometry_grade for r in rows]
    assert all(any(w.startswith("density / bond-length grade") for w in r.warnings) for r in rows)
    assert model.geometry_grade(images[0]) == pytest.approx(rows[0].geometry_grade, rel=1e-9)


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-cnn"])
def test_a_card_without_a_domain_predicts_as_before_without_grades(global_models, structure_files, tmp_path, kind):
    from pdmd.api import load_potential, predict_files

    folder, _ = global_models[kind]
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    card = json.loads((old / "model.json").read_text())
    (old / card.pop("domain")["file"]).unlink()
    (old / "model.json").write_text(json.dumps(card))
    new_rows = predict_files(load_potential(folder), [structure_files[1.3]])
    model = load_potential(old)
    rows = predict_files(model, [structure_files[1.3]])
    assert [r.extrapolation for r in rows] == [None] * len(rows)
    assert not [w for r in rows for w in r.warnings if GRADE_WARNING in w]
    np.testing.assert_allclose([r.predicted_eV_per_atom for r in rows],
                               [r.predicted_eV_per_atom for r in new_rows], atol=1e-9)  # fmt: skip
    assert model.extrapolation_threshold is None
    assert np.isnan(model.extrapolation(read(structure_files[1.3], 0)))


def test_pdmd_predict_prints_the_grade_and_one_warning_line_per_flag(global_models, structure_files):
    folder, _ = global_models["pd-kernel"]
    files = [str(structure_files[1.0]), str(structure_files[1.3])]
    proc = subprocess.run([str(BIN / "pdmd"), "predict", str(folder), *files, "--csv"], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *rows = proc.stdout.strip().splitlines()
    column = header.split(",").index("extrapolation_grade")
    assert header.split(",")[column + 1] == "geometry_grade"  # density / bond lengths, beside it
    grades = {r.split(",")[0]: float(r.split(",")[column]) for r in rows}
    scaled = {k: v for k, v in grades.items() if k.startswith("scaled-1.3")}
    assert len(scaled) == 6 and len(grades) == 18
    flags = [line for line in proc.stderr.splitlines() if GRADE_WARNING in line]
    assert {line.split(": ")[2] for line in flags} >= set(scaled)  # every stretched cell, on its own line
    assert all(line.startswith("pdmd: warning: ") for line in flags)
    table = subprocess.run([str(BIN / "pdmd"), "predict", str(folder), files[1]], capture_output=True, text=True)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[-2:] == ["grade", "geometry"]
    assert float(table.stdout.splitlines()[1].split()[-2]) == pytest.approx(scaled["scaled-1.3.extxyz@0"], abs=0.01)


def test_pd_local_predictions_carry_the_largest_atom_grade(tmp_path, model_data):
    """pd-local grades its atoms itself (`structure_grades`); predict_files reports and flags the largest."""
    from pdmd.api import PDModel, predict_files

    class Local:
        card = {"model_kind": "pd-local", "domain": {"file": "domain.npz", "max_extrapolation_default": 5.0}}
        dim = 2

        def predict_frames(self, frames, labels):
            return np.full(len(frames), -7.0), 0.0

        def structure_grades(self, frames):
            return np.array([f.n_atoms / 20.0 for f in frames])  # 120 atoms: 6.0; 60 atoms: 3.0

    atoms = model_data.frames[0].to_ase()
    write(tmp_path / "two.extxyz", [atoms, atoms[:60]], format="extxyz")
    rows = predict_files(PDModel(Local(), tmp_path), [tmp_path / "two.extxyz"])
    assert [r.extrapolation for r in rows] == [6.0, 3.0]
    assert [len([w for w in r.warnings if GRADE_WARNING in w]) for r in rows] == [1, 0]
    Local.card = {"model_kind": "pd-local"}  # a card from before grades
    rows = predict_files(PDModel(Local(), tmp_path), [tmp_path / "two.extxyz"])
    assert [r.extrapolation for r in rows] == [None, None]


def test_finish_card_adds_the_domain_of_global_kinds_and_keeps_a_kind_s_own(model_data, tmp_path):
    from pdmd.models.card import finish_card
    from pdmd.models.data import TrainSplit

    split = TrainSplit(np.arange(8, 48), np.arange(8))
    for name in ("local", "hybrid"):
        (tmp_path / name).mkdir()
    own = {"file": "domain.npz", "features": "per-atom vectors", "max_extrapolation_default": 5.0}
    card = finish_card(model_data, tmp_path / "local", "l", "pd-local", split, model_data.energies_eV,
                       {"domain": own}, {}, {})  # fmt: skip
    assert card["domain"] == own and not (tmp_path / "local" / "domain.npz").exists()
    card = finish_card(model_data, tmp_path / "hybrid", "h", "pd-hybrid", split, model_data.energies_eV, {}, {}, {})
    assert card["domain"]["n_training_structures"] == 40 and (tmp_path / "hybrid" / "domain.npz").is_file()
