"""The paper's CNN learns on a small set of relaxed sheets, as users bring them, with every default.

A set of the kind users bring from DFT: relaxed sheets only (no intermediate snapshots), energies spread by the
cooling rate of their melt-quench, a snapshot split. On such sets the histogram CNN used to end near the mean
predictor; the defaults (`representation="auto"` smooths sparse diagrams, a collapsed network is trained again)
must bring each seed's test RMSE below half the test energies' standard deviation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import DESC

from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.models.data import load_store_dataset
from pdmd.models.training import train_model
from pdmd.store.datastore import DataStore

RELAXED_RUNS = [
    MeltQuenchProtocol(
        seed=5000 + i, cooling_rate_K_per_ps=float(round(rate, 1)), n_atoms=200, melt_ps=1.0, hold_ps=0.2
    )  # fmt: skip
    for i, rate in enumerate(np.exp(np.random.default_rng(27).uniform(np.log(300.0), np.log(4000.0), 120)))
]
"""120 relaxed 200-atom sheets, cooling rates log-uniform in [300, 4000] K/ps (final states only)."""


SEEDS = (0, 1)


@pytest.fixture(scope="module")
def relaxed_sheets(tmp_path_factory):
    from pdmd.campaign_runner import run_protocols

    root = tmp_path_factory.mktemp("relaxed")
    results = run_protocols(RELAXED_RUNS, root, DESC, workers=2)
    assert not [r for r in results if "error" in r]
    return root


def _dataset(root: str | Path):
    return load_store_dataset(DataStore(root), [p.run_id for p in RELAXED_RUNS], DESC)


def _train_seed(root: str, seed: int, out: str) -> dict:
    """The card of one seed, trained in a worker process given one core of this machine's (seeds side by side)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[seed % len(cores)]})
    return train_model("pd-cnn", _dataset(root), Path(out), "m", split="snapshot", seed=seed)


@pytest.mark.slow
def test_default_cnn_learns_on_relaxed_sheets(relaxed_sheets, tmp_path):
    """The paper's CNN, every setting default (its architecture included), 96 / 24 structures, seeds 0 and 1.

    The bound is the one the 175-sheet sets of docs/models.md "pd-cnn on small data sets" meet (0.32–0.47 × the
    test std; `benchmarks/cnn_small_sets.py`); this set gives 0.35–0.42 × (seeds 0–3). With 48 sheets (10 test
    structures) the ratio scattered to 0.62 × between seeds, and 38 training structures had no validation part.
    The seeds train side by side, one core each.
    """
    from pdmd.workers import process_pool

    data = _dataset(relaxed_sheets)
    assert len(data) == 120 and data.energies_eV.std() > 0.03  # a spread by cooling rate of > 30 meV/atom
    with process_pool(len(SEEDS)) as pool:
        outs = [str(tmp_path / f"m{seed}") for seed in SEEDS]
        cards = list(pool.map(_train_seed, [str(relaxed_sheets)] * len(SEEDS), SEEDS, outs))
    for seed, card in zip(SEEDS, cards):
        m, q = card["metrics"], card["quality"]
        assert card["training"]["representation"] == "smooth"  # auto: ~145 pairs per diagram are sparse on 128×128
        assert "training pairs per pixel" in card["standardization"]["representation_chosen"]
        assert m["test_rmse_meV_per_atom"] < 0.5 * m["test_energy_std_meV_per_atom"], (seed, m)
        assert q["learned"] and q["prediction_std_ratio"] > 0.3, (seed, q)
