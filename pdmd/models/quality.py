# SPDX-License-Identifier: GPL-3.0-or-later
"""Is a trained model better than predicting the training mean?  The card's `quality` entry.

A model is flagged "not learned" when, on its test set,
- its RMSE exceeds `MAX_RMSE_RATIO` × the RMSE of the mean predictor (the training energies'
  mean for every structure): 0.8 means the model explains at least 1 − 0.8² = 36 % of the test
  energies' variance; a collapsed or untrained network scores ≈ 1.0;
- or its predictions are nearly constant: their standard deviation is below `MIN_SPREAD_RATIO` ×
  that of the test energies (a model with RMSE ratio 0.8 must vary by ≈ 0.6 × the std).
"""

from __future__ import annotations

import logging

import numpy as np

from pdmd.models.plots import rmse_meV

MAX_RMSE_RATIO = 0.8
"""Largest test RMSE / mean-predictor test RMSE of a model that learned something."""

MIN_SPREAD_RATIO = 0.2
"""Smallest std(predictions) / std(test energies) of a model whose predictions are not nearly constant."""


def assess_quality(pred_test_eV: np.ndarray, ref_test_eV: np.ndarray, train_mean_eV: float) -> dict:
    """The card's quality entry: learned (bool), reason (None or text), the ratios and thresholds.

    Energies in eV/atom; RMSEs in the entry in meV/atom.
    """
    pred = np.asarray(pred_test_eV, float)
    ref = np.asarray(ref_test_eV, float)
    model = rmse_meV(pred, ref)
    mean = rmse_meV(np.full(len(ref), train_mean_eV), ref)
    pred_std, ref_std = float(pred.std() * 1000), float(ref.std() * 1000)
    ratio = model / mean if mean > 0 else float("inf")
    spread = pred_std / ref_std if ref_std > 0 else float("nan")
    reasons = []
    if not ratio <= MAX_RMSE_RATIO:
        reasons.append(
            f"test RMSE {model:.2f} meV/atom is {ratio:.2f}× the mean predictor's {mean:.2f} "
            f"(a model must reach ≤ {MAX_RMSE_RATIO}×)"
        )
    if ref_std > 0 and spread < MIN_SPREAD_RATIO:
        reasons.append(
            f"predictions are nearly constant: their std {pred_std:.3g} meV/atom is {spread:.3f}× the test "
            f"energies' std {ref_std:.1f} (needs ≥ {MIN_SPREAD_RATIO}×)"
        )
    return {
        "learned": not reasons,
        "reason": "; ".join(reasons) or None,
        "test_rmse_meV_per_atom": model,
        "mean_predictor_test_rmse_meV_per_atom": mean,
        "rmse_ratio_to_mean_predictor": ratio,
        "test_prediction_std_meV_per_atom": pred_std,
        "prediction_std_ratio": spread,
        "thresholds": {"max_rmse_ratio": MAX_RMSE_RATIO, "min_prediction_std_ratio": MIN_SPREAD_RATIO},
    }


def energy_metrics(pred_eV: np.ndarray, ref_eV: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray) -> tuple:
    """(metrics, quality) of a model's predictions on all its data: the card's `metrics` (RMSEs and stds in
    meV/atom, counts, the training mean in eV/atom) and `quality` (`assess_quality` on the test part).
    """
    pred, ref = np.asarray(pred_eV, float), np.asarray(ref_eV, float)
    tr, te = np.asarray(train_idx, int), np.asarray(test_idx, int)
    quality = assess_quality(pred[te], ref[te], float(ref[tr].mean()))
    metrics = {
        "train_rmse_meV_per_atom": rmse_meV(pred[tr], ref[tr]),
        "test_rmse_meV_per_atom": quality["test_rmse_meV_per_atom"],
        "mean_predictor_test_rmse_meV_per_atom": quality["mean_predictor_test_rmse_meV_per_atom"],
        "test_energy_std_meV_per_atom": float(ref[te].std() * 1000),
        "train_energy_std_meV_per_atom": float(ref[tr].std() * 1000),
        "test_prediction_std_meV_per_atom": quality["test_prediction_std_meV_per_atom"],
        "train_energy_mean_eV_per_atom": float(ref[tr].mean()),
        "n_train": int(len(tr)),
        "n_test": int(len(te)),
    }
    return metrics, quality


def quality_warning(name: str, quality: dict) -> str | None:
    """One line when the model did not learn, else None."""
    if quality.get("learned", True):
        return None
    return f"model {name} is NOT better than predicting the mean energy: {quality['reason']}"


def warn_if_not_learned(name: str, quality: dict, logger: logging.Logger) -> None:
    """Log the one-line warning (stderr under the CLI and without logging set up; the launcher's log)."""
    line = quality_warning(name, quality)
    if line:
        logger.warning(line)


def quality_flag(card: dict) -> str:
    """Short text for listings: '' when learned (or unknown), else 'NOT LEARNED (reason)'."""
    q = card.get("quality") or {}
    return "" if q.get("learned", True) else f"NOT LEARNED ({q.get('reason')})"
