"""The paper's CNN learns on a small set of relaxed sheets, as users bring them, with every default.

A set of the kind users bring from DFT: relaxed sheets only (no intermediate snapshots), energies spread by the
cooling rate of their melt-quench, a snapshot split. On such sets the histogram CNN used to end near the mean
predictor; the defaults (`representation="auto"` smooths sparse diagrams, a collapsed network is trained again)
must bring each seed's test RMSE below half the test energies' standard deviation.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DESC

from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.models.data import load_store_dataset
from pdmd.models.training import train_model
from pdmd.store.datastore import DataStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RELAXED_RUNS = [
    MeltQuenchProtocol(
        seed=5000 + i, cooling_rate_K_per_ps=float(round(rate, 1)), n_atoms=200, melt_ps=1.0, hold_ps=0.2
    )  # fmt: skip
    for i, rate in enumerate(np.exp(np.random.default_rng(27).uniform(np.log(300.0), np.log(4000.0), 120)))
]
"""120 relaxed 200-atom sheets, cooling rates log-uniform in [300, 4000] K/ps (final states only)."""


@pytest.fixture(scope="module")
def relaxed_sheets(tmp_path_factory):
    from pdmd.campaign_runner import run_protocols

    root = tmp_path_factory.mktemp("relaxed")
    results = run_protocols(RELAXED_RUNS, root, DESC, workers=2)
    assert not [r for r in results if "error" in r]
    return load_store_dataset(DataStore(root), [p.run_id for p in RELAXED_RUNS], DESC)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_default_cnn_learns_on_relaxed_sheets(relaxed_sheets, seed, tmp_path):
    """The paper's CNN, every setting default (its architecture included), 96 / 24 structures.

    The bound is the one the 175-sheet sets of docs/models.md "pd-cnn on small data sets" meet (0.32–0.47 × the
    test std; `benchmarks/cnn_small_sets.py`); this set gives 0.35–0.42 × (seeds 0–3). With 48 sheets (10 test
    structures) the ratio scattered to 0.62 × between seeds, and 38 training structures had no validation part.
    """
    data = relaxed_sheets
    assert len(data) == 120 and data.energies_eV.std() > 0.03  # a spread by cooling rate of > 30 meV/atom
    card = train_model("pd-cnn", data, tmp_path / "m", "m", split="snapshot", seed=seed)
    m, q = card["metrics"], card["quality"]
    assert card["training"]["representation"] == "smooth"  # auto: ~145 pairs per diagram are sparse on 128×128
    assert "training pairs per pixel" in card["standardization"]["representation_chosen"]
    assert m["test_rmse_meV_per_atom"] < 0.5 * m["test_energy_std_meV_per_atom"], (seed, m)
    assert q["learned"] and q["prediction_std_ratio"] > 0.3, (seed, q)
