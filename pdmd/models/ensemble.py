# SPDX-License-Identifier: GPL-3.0-or-later
"""Ensembles of PD-CNNs: K networks trained from seeds seed, seed+1, … on the same train/test split.

The prediction is the members' mean; their standard deviation (the spread, eV/atom) is the
ensemble's own estimate of its uncertainty. Whether users can trust it is measured on the test
set: the Spearman rank correlation between spread and |error| (positive: larger spread goes
with larger error).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from pdmd.models.plots import rmse_meV


def spread_error_correlation(spread_eV: np.ndarray, abs_error_eV: np.ndarray) -> tuple[float, float]:
    """(Spearman ρ, two-sided p) of spread vs |error|; NaN when either is constant or there are < 3 values."""
    spread, err = np.asarray(spread_eV, float), np.asarray(abs_error_eV, float)
    if len(spread) < 3 or np.ptp(spread) == 0 or np.ptp(err) == 0:
        return float("nan"), float("nan")
    result = spearmanr(spread, err)
    return float(result.statistic), float(result.pvalue)


def ensemble_summary(member_pred_eV: np.ndarray, ref_eV: np.ndarray, test_idx: np.ndarray) -> dict:
    """The card's ensemble numbers on the test set: each member's RMSE, the mean spread, spread–error ρ."""
    member_pred_eV = np.atleast_2d(member_pred_eV)
    mean = member_pred_eV.mean(axis=0)
    spread = member_pred_eV.std(axis=0)
    test = np.asarray(test_idx, int)
    rho, p = spread_error_correlation(spread[test], np.abs(mean - ref_eV)[test])
    return {
        "size": int(len(member_pred_eV)),
        "member_test_rmse_meV_per_atom": [rmse_meV(m[test], ref_eV[test]) for m in member_pred_eV],
        "ensemble_test_rmse_meV_per_atom": rmse_meV(mean[test], ref_eV[test]),
        "test_spread_mean_meV_per_atom": float(spread[test].mean() * 1000),
        "test_spread_max_meV_per_atom": float(spread[test].max() * 1000) if len(test) else float("nan"),
        "spread_error_spearman_test": rho,
        "spread_error_spearman_p": p,
    }
