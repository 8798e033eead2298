"""Training that cannot fail silently: mean-predictor check, small-data defaults, ensembles, device, resume."""

import json
import logging
import subprocess
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import BIN, SMALL_CNN, SMALL_RUNS

from pdmd.errors import InputError
from pdmd.models.cnn.config import SCHEDULES, TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.cnn.options import TRAIN_RULES
from pdmd.models.cnn.potential import load_cnn
from pdmd.models.cnn.standardize import PIXEL_FLOOR, REPRESENTATIONS, ImageScaler, represent
from pdmd.models.cnn.train import pick_device, scheduled_lr, training_precision
from pdmd.models.quality import assess_quality
from pdmd.store.datastore import DataStore


def test_quality_check_flags_constant_and_mean_like_predictions():
    rng = np.random.default_rng(0)
    ref = -6.5 + 0.05 * rng.standard_normal(40)
    good = ref + 0.01 * rng.standard_normal(40)
    q = assess_quality(good, ref, ref.mean())
    assert q["learned"] and q["reason"] is None and q["rmse_ratio_to_mean_predictor"] < 0.3
    flat = ref.mean() + 1e-6 * rng.standard_normal(40)  # the collapse of issue 12: one number for everything
    q = assess_quality(flat, ref, ref.mean())
    assert not q["learned"] and "nearly constant" in q["reason"] and "mean predictor" in q["reason"]
    noisy = ref.mean() + 0.05 * rng.standard_normal(40)  # varies, but is no better than the mean
    q = assess_quality(noisy, ref, ref.mean())
    assert not q["learned"] and "nearly constant" not in q["reason"] and q["rmse_ratio_to_mean_predictor"] > 0.8


def test_untrained_model_is_marked_on_its_card_and_warned(data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pdmd.models.cnn.fit"):
        card = fit_potential(data, tmp_path / "flat", "flat", TrainConfig(epochs=1, learning_rate=1e-12), SMALL_CNN)
    assert card["quality"]["learned"] is False and "nearly constant" in card["quality"]["reason"]
    m = card["metrics"]
    assert m["test_prediction_std_meV_per_atom"] < 0.2 * m["test_energy_std_meV_per_atom"]
    assert m["test_rmse_meV_per_atom"] > 0.8 * m["mean_predictor_test_rmse_meV_per_atom"] > 0
    warnings = [r.getMessage() for r in caplog.records if "NOT better than predicting the mean" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert json.loads((tmp_path / "flat" / "model.json").read_text())["quality"]["learned"] is False


def test_ensemble_gives_mean_spread_and_spread_error_correlation(data, small_store, tmp_path, caplog):
    out = tmp_path / "ens"
    with caplog.at_level(logging.INFO, logger="pdmd.models.cnn.train"):
        card = fit_potential(data, out, "ens", TrainConfig(epochs=6, batch_size=8, seed=4), SMALL_CNN,
                             test_fraction=0.25, ensemble=3)  # fmt: skip
    assert any("ETA" in r.getMessage() and "member 3/3" in r.getMessage() for r in caplog.records)
    e = card["ensemble"]
    assert e["size"] == 3 and e["seeds"] == [4, 5, 6] and len(e["member_test_rmse_meV_per_atom"]) == 3
    assert e["test_spread_mean_meV_per_atom"] > 0 and -1 <= e["spread_error_spearman_test"] <= 1
    assert {p.name for p in out.glob("weights*.pt")} == {"weights.pt", "weights-1.pt", "weights-2.pt"}
    potential = load_cnn(out)
    assert len(potential.networks) == 3
    mean, spread = potential.predict_images_spread(data.images)
    saved = json.loads((out / "predictions.json").read_text())
    np.testing.assert_allclose(mean, saved["predicted_eV"], atol=1e-6)
    np.testing.assert_allclose(spread, saved["spread_eV"], atol=1e-6)
    assert (spread > 0).all()

    from ase.io import write

    store = DataStore(small_store)
    path = tmp_path / "two.extxyz"
    write(path, [store.load_frame(d).to_ase() for d in list(store.iter_structures({"kind": "final"}))[:2]])
    proc = subprocess.run([str(BIN / "pdmd"), "predict", str(out), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "spread/meV/atom" in lines[0] and len(lines) == 3 and float(lines[1].split()[-1]) > 0


def test_auto_precision_is_bf16_only_where_the_cpu_has_it_natively(monkeypatch):
    """Emulated bf16 ran 6-7x slower than fp32 on an AVX2 CPU: "auto" (the default) takes it only where it is native."""
    cpu = torch.device("cpu")
    for avx512_bf16, amx, expected in ((False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert training_precision("auto", cpu) == expected
        assert training_precision("fp32", cpu) == "fp32" and training_precision("bf16", cpu) == "bf16"
    assert TrainConfig().precision == "auto"


def test_explicit_cpu_device_and_runtime_on_the_card(data, tmp_path):
    out = tmp_path / "cpu"
    card = fit_potential(data, out, "cpu", TrainConfig(epochs=2, batch_size=8, device="cpu", precision="bf16"),
                         SMALL_CNN, test_fraction=0.25)  # fmt: skip
    rt = card["runtime"]
    assert rt["device"] == "cpu" and rt["precision"] == "bf16" and rt["threads"] >= 1 and rt["train_wall_seconds"] > 0

    split = card["split"]
    assert set(split["validation_ids"]) <= set(split["train_ids"]) and not set(split["train_ids"]) & set(
        split["test_ids"]
    )
    saved = json.loads((out / "predictions.json").read_text())["predicted_eV"]
    np.testing.assert_allclose(load_cnn(out, device="cpu").predict_images(data.images), saved, atol=1e-6)
    if torch.cuda.is_available():  # inputs go to the model's device, whatever it is
        gpu = load_cnn(out, device="cuda")
        np.testing.assert_allclose(gpu.predict_images(data.images), saved, atol=1e-4)
    else:
        with pytest.raises(InputError, match="no CUDA GPU"):
            pick_device("cuda")


def test_image_representations_are_saved_with_the_scaler(data):
    images = data.images[:10]
    base = ImageScaler.fit(images, "zscore").transform(images)
    for rep in REPRESENTATIONS:
        scaler = ImageScaler.fit(images, "zscore", rep)
        x = scaler.transform(images)
        assert x.shape == images.shape and np.isfinite(x).all()
        np.testing.assert_array_equal(ImageScaler.from_dict(scaler.as_dict()).transform(images), x)
        if rep != "histogram":
            assert not np.allclose(x, base)
    smooth = ImageScaler.fit(images, "minmax", "smooth")
    assert (smooth.transform(images) > smooth.transform(np.zeros_like(images))).mean() > (images > 0).mean()
    old_card = {"kind": "minmax", "shift": 0.0, "scale": 0.05}  # written before representations existed
    np.testing.assert_allclose(ImageScaler.from_dict(old_card).transform(images), images / 0.05, rtol=1e-6)


@pytest.mark.parametrize("kind", ["minmax", "zscore"])
def test_per_pixel_scaling_is_fitted_per_pixel_with_a_floor_and_saved_beside_the_weights(data, tmp_path, kind):
    images = data.images
    scaler = ImageScaler.fit(images, kind, "smooth", "pixel")
    x = scaler.transform(images)
    raw = represent(images, "smooth")
    spread = raw.std(0) if kind == "zscore" else raw.max(0) - raw.min(0)
    well = spread >= PIXEL_FLOOR * spread.max()  # pixels varying more than the floor: unit spread each
    measured = x.std(0) if kind == "zscore" else x.max(0) - x.min(0)
    np.testing.assert_allclose(measured[well], 1.0, rtol=1e-3)
    assert well.sum() > 50 and np.abs(x).max() <= 1.001 / PIXEL_FLOOR + 1  # near-empty pixels are not blown up
    assert not np.allclose(x, ImageScaler.fit(images, kind, "smooth").transform(images))
    out = tmp_path / "pixel"
    train = TrainConfig(epochs=2, batch_size=8, image_scope="pixel", standardization=kind)
    card = fit_potential(data, out, "pixel", train, SMALL_CNN, test_fraction=0.25)
    meta = card["standardization"]["image"]
    assert meta["scope"] == "pixel" and (out / meta["file"]).is_file() and "shift" not in meta  # arrays in a file
    saved = json.loads((out / "predictions.json").read_text())["predicted_eV"]
    np.testing.assert_allclose(load_cnn(out).predict_images(data.images), saved, atol=1e-6)
    with pytest.raises(ValueError, match="image_scope"):
        TrainConfig(image_scope="row")


def test_train_cli_reports_mean_predictor_warns_and_resumes(small_store, tmp_path):
    from ase.io import write

    store = DataStore(small_store)
    frames = []
    for doc in store.iter_structures({"run_id": {"$in": [p.run_id for p in SMALL_RUNS[:4]]}}):
        atoms = store.load_frame(doc).to_ase()
        atoms.info["energy_eV_per_atom"] = doc["energy_eV_per_atom"]
        atoms.info["run_id"] = doc["run_id"]
        frames.append(atoms)
    path = tmp_path / "labelled.extxyz"
    write(path, frames)
    out = tmp_path / "m"
    base = [str(BIN / "pdmd"), "train", "--data", str(path), "--system", "agr", "--out", str(out), "--lr", "1e-12"]
    fresh = subprocess.run([*base, "--epochs", "1"], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    assert "mean predictor" in fresh.stdout
    warned = [line for line in fresh.stderr.splitlines() if "NOT better than predicting the mean" in line]
    assert len(warned) == 1, fresh.stderr
    resumed = subprocess.run([*base, "--epochs", "2", "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    card = json.loads((out / "model.json").read_text())
    assert len(card["history"]) == 2 and "resuming training" in resumed.stderr
    nothing = subprocess.run([*base, "--resume", "--out", str(tmp_path / "new")], capture_output=True, text=True)
    assert nothing.returncode == 2 and "no checkpoint to resume" in nothing.stderr
    assert "Traceback" not in nothing.stderr, nothing.stderr


def test_learning_rate_schedules_follow_their_shapes():
    steps, epochs, peak = 10, 20, 1e-3
    lrs = {
        s: np.array([scheduled_lr(TrainConfig(schedule=s, epochs=epochs, learning_rate=peak, warmup_epochs=2), e, k,
                                  steps) for e in range(epochs) for k in range(steps)], dtype=object)
        for s in SCHEDULES
    }  # fmt: skip
    plateau, cosine, one = lrs["plateau"], lrs["cosine"], lrs["onecycle"].astype(float)
    assert plateau[19] == pytest.approx(peak) and all(v is None for v in plateau[20:])  # then ReduceLROnPlateau
    cosine = cosine.astype(float)
    np.testing.assert_allclose(cosine[:20], peak * np.arange(1, 21) / 20)  # the same linear warm-up
    assert cosine[20] == pytest.approx(peak) and (np.diff(cosine[20:]) < 0).all() and cosine[-1] < 1e-3 * peak
    top = int(np.argmax(one))
    assert top == 60 and one[0] == pytest.approx(peak / 25) and one[top] == pytest.approx(peak)  # 30 % of 200 steps
    assert (np.diff(one[:top]) > 0).all() and (np.diff(one[top:]) < 0).all() and one[-1] < 1e-3 * peak
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="step")
    problems: list[str] = []  # `pdmd check` / the train firework's parameter check
    for value in ("step", *SCHEDULES):
        TRAIN_RULES["schedule"](f"train.schedule={value}", value, problems)
    assert len(problems) == 1 and "train.schedule=step" in problems[0]


def test_cosine_schedule_trains_is_on_the_card_and_fixes_its_epoch_budget(data, tmp_path):
    out = tmp_path / "cos"
    config = TrainConfig(epochs=3, batch_size=8, schedule="cosine", warmup_epochs=1, seed=2)
    card = fit_potential(data, out, "cos", config, SMALL_CNN, test_fraction=0.25)
    assert card["training"]["schedule"] == "cosine" and len(card["history"]) == 3
    lrs = [h["lr"] for h in card["history"]]
    assert lrs[0] == pytest.approx(1e-3) and lrs[0] > lrs[1] > lrs[2] > 0  # warm-up, then down the cosine
    assert card["metrics"]["test_rmse_meV_per_atom"] > 0
    with pytest.raises(InputError, match="other data or settings"):  # its learning rates depend on `epochs`
        fit_potential(data, out, "cos", replace(config, epochs=5), SMALL_CNN, test_fraction=0.25, resume=True)
