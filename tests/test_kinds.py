"""Model kinds: pd-kernel and pd-hybrid train on real data, beat the mean predictor, reload and predict alike."""

import json
import shutil

import numpy as np
import pytest
from conftest import DESC, SMALL_CNN, SMALL_RUNS

from pdmd.errors import InputError
from pdmd.models import data as kinds
from pdmd.models.data import load_store_data
from pdmd.models.kernel import pd_kernel
from pdmd.models.registry import load_model
from pdmd.models.training import train_model, validate_model
from pdmd.store.datastore import DataStore
from pdmd.store.documents import model_kind_of

FAST = {"kernels": ["rbf", "laplacian"], "gammas": [0.1, 0.3, 1.0, 3.0], "folds": 3}


@pytest.fixture(scope="module")
def model_data(small_store):
    """Diagrams, images and frames of SMALL_RUNS (48 structures of 120 atoms, 8 runs)."""
    runs = [p.run_id for p in SMALL_RUNS]
    return load_store_data(DataStore(small_store), runs, DESC, {"images", "diagrams", "frames"})


@pytest.fixture(scope="module")
def cv_calls():
    return []


@pytest.fixture(scope="module")
def kernel_models(model_data, tmp_path_factory, cv_calls):
    """pd-kernel and pd-hybrid trained on the same run split, with every CV call recorded."""
    real = pd_kernel.cross_validate

    def spy(blocks, standardize, y, groups, grid, seed=0):
        cv_calls.append({"n": len(y), "groups": set(groups), "y": np.array(y)})
        return real(blocks, standardize, y, groups, grid, seed)

    pd_kernel.cross_validate = spy
    try:
        out = {}
        for kind in ("pd-kernel", "pd-hybrid"):
            folder = tmp_path_factory.mktemp(kind)
            card = train_model(kind, model_data, folder, f"test-{kind}", split="run", test_fraction=0.25, seed=3,
                               options=FAST)  # fmt: skip
            out[kind] = (folder, card)
    finally:
        pd_kernel.cross_validate = real
    return out


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-hybrid"])
def test_kind_beats_the_mean_predictor_on_held_out_runs(kernel_models, model_data, kind):
    _, card = kernel_models[kind]
    m = card["metrics"]
    y = model_data.energies_eV
    test = [model_data.ids.index(i) for i in card["split"]["test_ids"]]
    train = [model_data.ids.index(i) for i in card["split"]["train_ids"]]
    mean_rmse = 1000 * np.sqrt(np.mean((y[test] - y[train].mean()) ** 2))
    assert m["mean_predictor_test_rmse_meV_per_atom"] == pytest.approx(mean_rmse)
    assert m["test_rmse_meV_per_atom"] < 0.6 * mean_rmse, (m["test_rmse_meV_per_atom"], mean_rmse)
    assert card["model_kind"] == kind
    assert card["kernel_model"]["candidate"] in {r["candidate"] for r in card["ablation"]}
    assert m["test_prediction_std_meV_per_atom"] > 0.3 * m["test_energy_std_meV_per_atom"]  # not a constant


def test_cross_validation_never_sees_the_test_structures(kernel_models, model_data, cv_calls):
    card = kernel_models["pd-kernel"][1]
    assert kernel_models["pd-hybrid"][1]["split"]["test_ids"] == card["split"]["test_ids"]  # same seed, same split
    test_runs = set(card["split"]["test_runs"])
    train = [model_data.ids.index(i) for i in card["split"]["train_ids"]]
    assert test_runs and not test_runs & {model_data.groups[i] for i in train}
    assert len(cv_calls) >= 2
    n_train = len(train)
    train_y = np.sort(model_data.energies_eV[train])
    for call in cv_calls:
        assert call["n"] == n_train and not call["groups"] & test_runs
        z = np.sort(call["y"]) * train_y.std() + train_y.mean()  # the normalized training energies, nothing else
        np.testing.assert_allclose(z, train_y, atol=1e-9)


@pytest.mark.parametrize("kind", ["pd-kernel", "pd-hybrid"])
def test_load_model_reproduces_the_training_time_test_predictions(kernel_models, model_data, kind):
    folder, card = kernel_models[kind]
    saved = json.loads((folder / "predictions.json").read_text())
    test = [model_data.ids.index(i) for i in card["split"]["test_ids"]]
    model = load_model(folder)
    assert model.dim == 2
    energies, seconds = model.predict_frames([model_data.frames[i] for i in test], [model_data.ids[i] for i in test])
    expected = [saved["predicted_eV"][saved["ids"].index(model_data.ids[i])] for i in test]
    np.testing.assert_allclose(energies, expected, atol=1e-7)
    assert seconds > 0


def test_validate_model_records_rmse_and_bias(kernel_models, model_data):
    folder, card = kernel_models["pd-kernel"]
    test = [model_data.ids.index(i) for i in card["split"]["test_ids"]]
    out = validate_model(folder, model_data.subset(test), "held-out check")
    v = out["validation"]["held-out check"]
    assert v["rmse_meV_per_atom"] == pytest.approx(card["metrics"]["test_rmse_meV_per_atom"], rel=1e-6)
    assert v["n_structures"] == len(test) and json.loads((folder / "model.json").read_text())["validation"]


def test_pd_cnn_through_the_registry_and_a_card_without_model_kind_loads_as_pd_cnn(model_data, tmp_path):
    from pdmd.models.cnn.potential import Potential

    card = train_model("pd-cnn", model_data, tmp_path / "new", "reg-cnn", test_fraction=0.25, seed=3,
                       options={"train": {"epochs": 2, "batch_size": 8}, "cnn": SMALL_CNN.as_dict()})  # fmt: skip
    assert json.loads((tmp_path / "new" / "model.json").read_text())["model_kind"] == "pd-cnn"
    assert card["metrics"]["mean_predictor_test_rmse_meV_per_atom"] > 0
    old = tmp_path / "old"  # as written before model kinds existed
    shutil.copytree(tmp_path / "new", old)
    card.pop("model_kind")
    (old / "model.json").write_text(json.dumps(card))
    assert model_kind_of(card) == "pd-cnn"
    model = load_model(old)
    assert isinstance(model, Potential) and model.dim == 2
    # pd-hybrid on this CNN's pooled conv features: allowed on its own split, refused on another
    hybrid = train_model("pd-hybrid", model_data, tmp_path / "hyb", "cnn-hybrid", test_fraction=0.25, seed=3,
                         options={"cnn": str(tmp_path / "new"), **FAST})  # fmt: skip
    assert hybrid["kernel_model"]["blocks"][0]["type"] == "cnn"
    assert hybrid["kernel_model"]["candidate"] == "cnn features + acsf"
    test = [model_data.ids.index(i) for i in hybrid["split"]["test_ids"]]
    energies, _ = load_model(tmp_path / "hyb").predict_frames([model_data.frames[i] for i in test], ["t"] * len(test))
    saved = json.loads((tmp_path / "hyb" / "predictions.json").read_text())
    np.testing.assert_allclose(energies, [saved["predicted_eV"][i] for i in test], atol=1e-7)
    with pytest.raises(InputError, match="test structures"):
        train_model("pd-hybrid", model_data, tmp_path / "leak", "leak", test_fraction=0.25, seed=5,
                    options={"cnn": str(tmp_path / "new"), **FAST})  # fmt: skip


def test_unknown_kind_and_missing_inputs_are_clear_errors(model_data, tmp_path):
    with pytest.raises(InputError, match="unknown model kind"):
        train_model("pd-magic", model_data, tmp_path, "x")
    no_diagrams = kinds.ModelData(model_data.energies_eV, model_data.groups, model_data.ids, DESC, model_data.n_atoms)
    with pytest.raises(InputError, match="needs"):
        train_model("pd-kernel", no_diagrams, tmp_path, "x")
    with pytest.raises(InputError, match="not a pdmd model folder"):
        load_model(tmp_path / "nothing")


def test_vectorizations_are_intensive_under_cell_repetition(model_data):
    """A 2×2 repeat of a cell has 4× the pairs and atoms: 'atoms'/'pairs' images and SW quantiles are unchanged."""
    b, d, n = model_data.births_A2[0], model_data.deaths_A2[0], int(model_data.n_atoms[0])
    for v in pd_kernel.DEFAULT_VECTORIZATIONS:
        vec = pd_kernel.fit_vectorization(v, [b], [d], DESC)
        one = pd_kernel.vectorize(vec, b, d, n)
        four = pd_kernel.vectorize(vec, np.tile(b, 4), np.tile(d, 4), 4 * n)
        np.testing.assert_allclose(one, four, atol=1e-9 * max(1.0, np.abs(one).max()))
        assert np.abs(one).sum() > 0


def test_cli_trains_pd_kernel_from_a_file_and_predicts_with_it(model_data, tmp_path):
    import subprocess

    import ase.io
    from conftest import BIN

    _write_extxyz(model_data, tmp_path / "labelled.extxyz")
    ase.io.write(tmp_path / "one.extxyz", model_data.frames[-1].to_ase(), format="extxyz")
    opts = json.dumps({"vectorizations": [{"method": "pi", "sigma_A2": 0.1}], **FAST})
    run = [str(BIN / "pdmd"), "train", "--model", "pd-kernel", "--data", str(tmp_path / "labelled.extxyz"), "--system",
           "agr", "--out", str(tmp_path / "m"), "--name", "cli-kernel", "--test-fraction", "0.25", "--model-options",
           opts]  # fmt: skip
    proc = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cli-kernel (pd-kernel, pi 32 σ0.1 atoms)" in proc.stdout and "mean predictor" in proc.stdout
    proc = subprocess.run([str(BIN / "pdmd"), "predict", str(tmp_path / "m"), str(tmp_path / "one.extxyz"), "--csv"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    predicted = float(proc.stdout.strip().splitlines()[-1].split(",")[2])
    saved = json.loads((tmp_path / "m" / "predictions.json").read_text())
    assert predicted == pytest.approx(saved["predicted_eV"][saved["ids"].index(model_data.ids[-1])], abs=1e-6)


def _write_extxyz(model_data, path):
    import ase.io

    images = []
    for frame, energy, run, sid in zip(model_data.frames, model_data.energies_eV, model_data.groups, model_data.ids):
        atoms = frame.to_ase()
        atoms.info.update({"energy_eV_per_atom": float(energy), "run_id": run, "id": sid})
        images.append(atoms)
    ase.io.write(path, images, format="extxyz")


def test_baseline_table_gains_mean_predictor_and_kind_rows_on_one_split(model_data, tmp_path):
    from pdmd.analysis.baseline_run import format_table, run_baselines

    _write_extxyz(model_data, tmp_path / "set.extxyz")
    table = run_baselines(tmp_path / "set.extxyz", ["acsf"], ["krr"], tmp_path / "out", system="agr",
                          kinds=("pd-kernel",), kind_options={"pd-kernel": FAST})  # fmt: skip
    rows = {r["model"]: r for r in table["rows"]}
    assert set(rows) == {"mean of training energies", "krr", "KRR (pd-kernel)"}
    kernel = rows["KRR (pd-kernel)"]
    assert kernel["test_rmse"] < 0.6 * rows["mean of training energies"]["test_rmse"]
    card = json.loads((tmp_path / "out" / "pd-kernel" / "model.json").read_text())
    assert card["metrics"]["n_test"] == table["n_test"]
    assert kernel["test_rmse"] == card["metrics"]["test_rmse_meV_per_atom"]
    assert "pd-kernel" in format_table(table)


def test_train_and_validate_fireworks_take_the_model_kind(small_store):
    from pdmd.workflow.tasks import TrainPotentialTask, ValidatePotentialTask

    runs = [p.run_id for p in SMALL_RUNS]
    common = {"data_dir": str(small_store), "system": "agr", "backend": "homcloud"}
    options = {**FAST, "vectorizations": [{"method": "pi"}]}
    task = TrainPotentialTask(run_ids=runs, name="fw-kernel", model="pd-kernel", test_fraction=0.25,
                              model_options=options, **common)  # fmt: skip
    action = task.run_task({})
    assert action.stored_data["model_kind"] == "pd-kernel"
    assert action.stored_data["test_rmse_meV_per_atom"] < action.stored_data["mean_predictor_test_rmse_meV_per_atom"]
    action = ValidatePotentialTask(run_ids=runs[:2], name="fw-kernel", label="check", **common).run_task({})
    card = json.loads((small_store / "models" / "fw-kernel" / "model.json").read_text())
    assert card["model_kind"] == "pd-kernel" and card["validation"]["check"]["n_structures"] == 12
    assert action.stored_data["check"]["rmse_meV_per_atom"] > 0


def test_plan_workflow_trains_the_requested_kind():
    from pdmd.workflow.builders import plan_workflow

    wf = plan_workflow("agr-tiny", models=(("pd-hybrid", {"folds": 3}),))
    train = next(f for f in wf.fws if f.name.startswith("train"))
    task = train.tasks[0]
    assert task["model"] == "pd-hybrid" and task["model_options"] == {"folds": 3} and task["name"] == "agr-tiny-hybrid"
    assert "model" not in next(f for f in plan_workflow("agr-tiny").fws if f.name.startswith("train")).tasks[0]
