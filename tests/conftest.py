"""Shared fixtures: a small real data set generated once per session with LAMMPS + HomCloud."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fireworks.fw_config  # noqa: F401 - reads this checkout's FW_config.yaml once, now
import pytest

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.models.cnn.config import CNNConfig

# FireWorks' config sets MONGOMOCK_SERVERSTORE_FILE for this process; the tests' own mongomock clients
# must stay in memory, and subprocesses get their store from their own folder's FW_config.yaml
os.environ.pop("MONGOMOCK_SERVERSTORE_FILE", None)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def quick_runs(seeds: range, rates: tuple, n_atoms: int, melt_ps: float, hold_ps: float, temps: tuple) -> list:
    """Short melt-quench runs (seed, rate K/ps pairs) keeping snapshots at the set-points `temps` (K)."""
    return [
        MeltQuenchProtocol(
            seed=s,
            cooling_rate_K_per_ps=r,
            n_atoms=n_atoms,
            melt_ps=melt_ps,
            hold_ps=hold_ps,
            snapshot_temperatures_K=temps,
        )  # fmt: skip
        for s, r in zip(seeds, rates)
    ]


# 8 runs × (final + 5 snapshots from 1500 K up to the 6000 K liquid) of 120 atoms: 48 labelled structures;
# the liquid and hot snapshots give energies that differ by structure (rings, defects), not only by heat
SMALL_RUNS = quick_runs(range(11, 19), (400, 600, 800, 1000, 1200, 1500, 1800, 2000), 120, 1.0, 0.2,
                        (1500.0, 3000.0, 4000.0, 5000.0, 6000.0))  # fmt: skip


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`): many small
    tensors per call make one thread fastest, and fair on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Path:
    """Data folder holding SMALL_RUNS (structures + descriptors), built with the campaign runner."""
    from pdmd.campaign_runner import run_protocols

    root = tmp_path_factory.mktemp("small_store")
    results = run_protocols(SMALL_RUNS, root, DESC, workers=2)
    assert not [r for r in results if "error" in r]
    return root


@pytest.fixture()
def fw_checkout(tmp_path) -> Path:
    """A folder with this repo's FireWorks config (embedded store), for real lpad/rlaunch runs."""
    for name in ("FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflows", tmp_path / "workflows")
    (tmp_path / ".pdmd").mkdir()
    return tmp_path


def assert_png_shows_something(path: Path, min_std: float = 0.02) -> None:
    """The file decodes as a PNG image whose pixels vary (not blank, not one flat colour)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 100, pixels.shape
    assert float(pixels[..., :3].std()) > min_std, f"{path} is (nearly) blank: pixel std {pixels[..., :3].std():.4f}"


def fw_env() -> dict[str, str]:
    """This process's environment without the variables that would point a FireWorks process elsewhere."""
    return {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "PDMD_DATA_DIR")}


def fw(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a FireWorks/pdmd console script of this environment in `cwd` (no extra env vars)."""
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, env=fw_env(), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


DESC = DescriptorSpec.for_system("agr")
"""The descriptor setting of SMALL_RUNS' stored descriptors (the paper's aGr setting)."""
SMALL_CNN = CNNConfig(channels=(8, 8, 8), fc_hidden=32)


@pytest.fixture(scope="session")
def data(small_store):
    """PD images + energies of SMALL_RUNS (48 structures)."""
    from pdmd.models.data import load_store_dataset
    from pdmd.store.datastore import DataStore

    return load_store_dataset(DataStore(small_store), [p.run_id for p in SMALL_RUNS], DESC)


@pytest.fixture(scope="session")
def trained(data, tmp_path_factory):
    """A small PD-CNN trained on `data` (run split): (model folder, card)."""
    from pdmd.models.cnn.config import TrainConfig
    from pdmd.models.cnn.fit import fit_potential

    out = tmp_path_factory.mktemp("model")
    card = fit_potential(
        data, out, "test-cnn", TrainConfig(epochs=60, batch_size=8, seed=1), SMALL_CNN, split="run", test_fraction=0.25
    )
    return out, card


# -- pd-local: 8 short 60-atom aGr runs with forces, and models trained on them ---------------------
LOCAL_RUNS = quick_runs(range(31, 39), (300, 500, 700, 900, 1100, 1300, 1600, 2000), 60, 0.5, 0.1,
                        (600.0, 1200.0, 2000.0, 3000.0, 4000.0))  # fmt: skip
LOCAL_TEST_RUNS = {LOCAL_RUNS[-1].run_id, LOCAL_RUNS[2].run_id}


@pytest.fixture(scope="session")
def agr_store(tmp_path_factory):
    """8 short 60-atom aGr melt-quench runs, 6 structures each, stored with their LAMMPS forces."""
    from pdmd.pipeline import melt_quench_to_store
    from pdmd.store.datastore import DataStore

    root = tmp_path_factory.mktemp("local_store")
    store = DataStore(root)
    for p in LOCAL_RUNS:
        melt_quench_to_store(p, store, root / "work" / p.run_id, omp_threads=1)
    return root


def train_local_on_store(root: Path, out: Path, name: str, **options):
    """pd-local trained through the model-kind registry on LOCAL_RUNS, LOCAL_TEST_RUNS held out; its card."""
    import numpy as np

    from pdmd.models.data import data_from_frames
    from pdmd.models.training import train_model
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    docs = [d for p in LOCAL_RUNS for d in store.run_structures(p.run_id)]
    frames = [store.load_frame(d) for d in docs]
    data = data_from_frames(frames, np.array([d["energy_eV_per_atom"] for d in docs]), [d["run_id"] for d in docs],
                            [d["_id"] for d in docs], DescriptorSpec.for_system("agr"), {"frames"})  # fmt: skip
    test = np.array([i for i, d in enumerate(docs) if d["run_id"] in LOCAL_TEST_RUNS])
    train = np.array([i for i, d in enumerate(docs) if d["run_id"] not in LOCAL_TEST_RUNS])
    opts = {"store_root": str(root), "train": {"epochs": 40, "batch_structures": 6, "hidden": [32, 32]}, **options}
    return train_model("pd-local", data, out, name, split_indices=(train, test), options=opts)


@pytest.fixture(scope="session")
def trained_local(agr_store, tmp_path_factory):
    """pd-local trained on 6 runs, 2 runs held out."""
    out = tmp_path_factory.mktemp("local_model")
    return out, train_local_on_store(agr_store, out, "test-local")


@pytest.fixture(scope="session")
def local_committee(agr_store, tmp_path_factory):
    """A committee of 3 pd-local networks (seeds 0, 1, 2) on the same split, fewer epochs."""
    out = tmp_path_factory.mktemp("local_committee")
    train = {"epochs": 15, "batch_structures": 6, "hidden": [32, 32]}
    return out, train_local_on_store(agr_store, out, "test-committee", ensemble=3, train=train)
