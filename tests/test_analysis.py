"""Analyses on real data: Grad-CAM and rings, interpolation test, cyclo-octane PCA, SOAP/ACSF baselines."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import BIN, SMALL_CNN, SMALL_RUNS, assert_png_shows_something

from pdmd.analysis.baseline_run import split_like_model
from pdmd.analysis.baselines import fit_baseline
from pdmd.analysis.explain import explain_structure
from pdmd.analysis.rings import min_image_distances, pair_rings
from pdmd.descriptor.atomic import structure_features
from pdmd.models.cnn.potential import load_cnn
from pdmd.models.labelled import LabelledStructures
from pdmd.models.split import thin_indices, train_test_split
from pdmd.store.datastore import DataStore


@pytest.fixture(scope="module")
def structures(small_store):
    store = DataStore(small_store)
    frames, energies, groups, ids = [], [], [], []
    for p in SMALL_RUNS:
        for doc in store.run_structures(p.run_id):
            frames.append(store.load_frame(doc))
            energies.append(doc["energy_eV_per_atom"])
            groups.append(p.run_id)
            ids.append(doc["_id"])
    return LabelledStructures(frames, np.asarray(energies), groups, ids, "agr")


def test_gradcam_highlights_a_region_holding_pairs_and_maps_them_to_rings(trained, structures, tmp_path):
    model_dir, _ = trained
    potential = load_cnn(model_dir)
    final = next(i for i, f in enumerate(structures.frames) if structures.energies_eV[i] < -6.4)
    entry = explain_structure(potential, structures.frames[final], "final", tmp_path, threshold=0.5, max_pairs=5)
    assert entry["n_hot_pairs"] > 0 and entry["n_pairs"] > entry["n_hot_pairs"]  # a region, not the whole diagram
    assert_png_shows_something(tmp_path / "final_gradcam.png")
    from pdmd.analysis.gradcam import grad_cam
    from pdmd.descriptor.histogram import pd_histogram
    from pdmd.descriptor.persistence import alpha_diagram

    d = alpha_diagram(structures.frames[final], 2, 1, backend="homcloud")
    cam = grad_cam(potential, pd_histogram(d.births_A2, d.deaths_A2, potential.spec.histogram).image)
    assert cam.max() == pytest.approx(1.0) and cam.std() > 0.05 and (cam >= 0.5).mean() < 0.5  # not blank, not uniform
    import ase.io

    atoms = ase.io.read(entry["attention_extxyz"])
    ring_atoms = {a for h in entry["hot_pairs"] for a in h["atoms"]}
    assert ring_atoms and set(np.flatnonzero(atoms.arrays["attention"] > 0)) == ring_atoms


def test_ring_atoms_of_a_pair_form_closed_rings_of_bonds(structures):
    frame = structures.frames[-1]
    from pdmd.descriptor.persistence import alpha_diagram

    d = alpha_diagram(frame, 2, 1, backend="homcloud")
    top = np.argsort(d.deaths_A2 - d.births_A2)[-5:]
    rings = pair_rings(frame, 2, np.column_stack([d.births_A2[top], d.deaths_A2[top]]))
    for ring in rings:
        lengths = min_image_distances(frame, 2, list(ring.edges))
        # the cycle exists at its birth: every edge's alpha value (half its length, squared) is <= birth
        assert np.all((lengths / 2) ** 2 <= ring.birth_A2 + 1e-9)
        assert np.all(lengths < 2.0)  # carbon bonds, in Å
        degree = np.bincount(np.asarray(ring.edges).ravel(), minlength=frame.n_atoms)[list(ring.atoms)]
        assert len(ring.atoms) >= 3 and np.all(
            degree % 2 == 0
        )  # closed: each ring atom has an even number of ring bonds


def test_compare_descriptors_pca_shapes_and_determinism(tmp_path):
    from pdmd.analysis.cyclooctane import DESCRIPTORS, compare_descriptors, load_conformations

    conf = load_conformations()
    assert conf.shape == (6040, 8, 3)
    bonds = np.linalg.norm(conf - np.roll(conf, 1, axis=1), axis=2)
    assert np.allclose(bonds, 1.52, atol=1e-3)  # the ring C-C bonds of the shipped set
    a = compare_descriptors(tmp_path / "a", n_highlight=5, subset=150)
    b = compare_descriptors(tmp_path / "b", n_highlight=5, subset=150)
    pa, pb = np.load(tmp_path / "a" / "cyclooctane_pca.npz"), np.load(tmp_path / "b" / "cyclooctane_pca.npz")
    for kind in DESCRIPTORS:
        assert pa[kind].shape == (150, 3)
        np.testing.assert_allclose(pa[kind], pb[kind])
        n = a["descriptors"][kind]
        assert 0 < n["variance_explained_3pc"] <= 1 and 0.5 < n["trustworthiness_k10"] <= 1
    assert a["highlighted"] == b["highlighted"] and len(a["highlighted"]) == 5
    assert_png_shows_something(tmp_path / "a" / "cyclooctane_pca.png")


@pytest.mark.parametrize(("descriptor", "model"), [("soap", "krr"), ("acsf", "krr"), ("soap", "mlp")])
def test_baselines_beat_a_mean_predictor(structures, descriptor, model):
    train, test = train_test_split(structures.groups, 0.25, 0, "run")
    x, seconds = structure_features(descriptor, structures.frames)
    y = structures.energies_eV
    r = fit_baseline(descriptor, model, (x[train], y[train]), (x[test], y[test]), descriptor_ms=1000 * seconds)
    mean_predictor = 1000 * np.sqrt(np.mean((y[test] - y[train].mean()) ** 2))
    assert r.test_rmse < 0.7 * mean_predictor, (r.test_rmse, mean_predictor)


def test_baseline_uses_the_models_own_split(trained, structures):
    _, card = trained
    train, test, how = split_like_model(structures, card)
    assert {structures.ids[i] for i in test} == set(card["split"]["test_ids"]) and "test-cnn" in how
    assert {structures.ids[i] for i in train} == set(card["split"]["train_ids"])


def test_thinned_split_keeps_the_runs_every_kth_snapshot_and_each_final_state(structures):
    groups = list(structures.groups)
    full_train, full_test, _ = split_like_model(structures, None)
    train, test, how = split_like_model(structures, None, every=3)
    assert "every 3-th" in how and len(train) + len(test) < len(groups)
    assert {groups[i] for i in test} == {groups[i] for i in full_test}  # the same runs are held out
    assert set(train) <= set(full_train) and set(test) <= set(full_test)
    kept = set(train) | set(test)
    for g in set(groups):
        members = [i for i, h in enumerate(groups) if h == g]
        assert {m for k, m in enumerate(members) if k % 3 == 0} | {members[-1]} == kept & set(members)
    with pytest.raises(ValueError, match="every"):
        thin_indices(groups, 0)


def test_interpolation_test_never_trains_on_the_band(data, tmp_path):
    from pdmd.analysis.interpolation import band_split, interpolation_test
    from pdmd.models.cnn.config import TrainConfig

    tr, te, held = band_split(data.energies_eV, data.groups, (0.4, 0.6), seed=0)
    assert not set(tr) & set(held) and not set(tr) & set(te) and len(tr) + len(te) + len(held) == 48
    lo, hi = np.quantile(data.energies_eV, [0.4, 0.6])
    assert np.all((data.energies_eV[held] >= lo) & (data.energies_eV[held] <= hi))
    r = interpolation_test(data, tmp_path, (0.4, 0.6), TrainConfig(epochs=8, batch_size=8, seed=0), SMALL_CNN)
    card = json.loads((tmp_path / "model.json").read_text())
    assert set(card["split"]["train_ids"]) == {data.ids[i] for i in tr}
    assert r["n_held-out_band"] == len(held) and np.isfinite(r["rmse_held-out_band_meV_per_atom"])


def test_explain_cli_writes_plots_and_records_in_the_card(trained, structures, tmp_path):
    import ase.io

    model_dir = tmp_path / "model"  # a copy: the session's trained model stays as it was
    shutil.copytree(trained[0], model_dir)
    path = tmp_path / "s.extxyz"
    ase.io.write(path, structures.frames[-1].to_ase())
    proc = subprocess.run([str(BIN / "pdmd"), "explain", str(model_dir), str(path), "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ring sizes" in proc.stdout
    assert_png_shows_something(tmp_path / "x" / "s_0_gradcam.png")
    card = json.loads((model_dir / "model.json").read_text())
    assert card["analyses"]["explain"]["structures"][0]["n_hot_pairs"] > 0
