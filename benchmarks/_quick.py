# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmarks' `--quick` mode: a tiny aGr data set generated in seconds, and temporary output folders.

Plan `bench-quick` (registered in `pdmd.campaign.PLANS` by the process that uses it): 6 melt-quench runs of 60
atoms (0.2 ps melt at 6000 K, quench at 1500-2000 K/ps, 0.1 ps hold), each keeping its relaxed final state and 2
snapshots at 1000-3000 K, stored with their LAMMPS Tersoff forces and the plan's PD descriptors (aGr H1 window);
validation: one run of 240 atoms (4× the cell area), final state + 2 snapshots. About 6 s of CPU on one core,
reused when the folder already holds it.

    python benchmarks/_quick.py DIR     # build (or reuse) the data set in DIR; prints what it holds
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

QUICK_PLAN = "bench-quick"
"""Plan name of the tiny data set."""
QUICK_ATOMS = 60
"""Atoms per training cell of the tiny data set."""
QUICK_LARGE_ATOMS = 240
"""Atoms per validation cell (4× the training cell's area)."""
TESTS = Path(__file__).resolve().parents[1] / "tests"
"""The test suite's folder (helpers such as random packings and untrained models are imported from it)."""


def register_plan() -> str:
    """Add the tiny plan to `pdmd.campaign.PLANS` in this process (idempotent); its name."""
    from pdmd.campaign import PLANS, PlanSpec

    PLANS.setdefault(
        QUICK_PLAN,
        PlanSpec(QUICK_PLAN, 6, (1500.0, 2000.0), 6, 2, snapshot_range_K=(1000.0, 3000.0), n_atoms=QUICK_ATOMS,
                 n_validation_runs=1, validation_n_atoms=QUICK_LARGE_ATOMS,
                 protocol_overrides={"melt_ps": 0.2, "hold_ps": 0.1}, seed=4242),
    )  # fmt: skip
    return QUICK_PLAN


def temporary_folder(prefix: str) -> Path:
    """A new temporary folder, removed when this process exits."""
    path = Path(tempfile.mkdtemp(prefix=f"pdmd-{prefix}-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def output_folder(given: Path | None, prefix: str) -> Path:
    """`given` (created if missing), else a temporary folder removed at exit."""
    if given is None:
        return temporary_folder(prefix)
    given.mkdir(parents=True, exist_ok=True)
    return given


def quick_data(folder: Path | None = None, verbose: bool = True) -> Path:
    """The tiny data set in `folder` (default: a temporary folder), generated where missing; its folder.

    Every run is melt-quenched with one OpenMP thread and its descriptors computed in this process; runs and
    descriptors already stored are reused, so a folder shared by several benchmarks is built once.
    """
    from pdmd.campaign import plan_descriptor, plan_runs
    from pdmd.pipeline import descriptors_for_structures, melt_quench_to_store
    from pdmd.store.datastore import DataStore

    plan = register_plan()
    root = output_folder(folder, "quick-data")
    store = DataStore(root)
    spec = plan_descriptor(plan)
    train, valid = plan_runs(plan)
    t0 = time.perf_counter()
    built = 0
    for protocol in train + valid:
        summary = melt_quench_to_store(protocol, store, root / "md_work" / protocol.run_id, omp_threads=1)
        built += not summary.get("reused")
        docs = store.run_structures(protocol.run_id)
        done = descriptors_for_structures(store, docs, spec, isolate=False)
        if done.get("failed"):
            raise SystemExit(f"{protocol.run_id}: descriptors failed: {done['failed']}")
    if verbose:
        what = f"built {built} runs in {time.perf_counter() - t0:.1f} s" if built else "reused"
        print(f"quick data: plan {plan}, {len(train)} runs of {QUICK_ATOMS} atoms + {len(valid)} of "
              f"{QUICK_LARGE_ATOMS} in {root} ({what})", flush=True)  # fmt: skip
    return root


def quick_local_model(data: Path, out: Path, epochs: int = 2) -> Path:
    """A pd-local model trained `epochs` epochs (network 16-16) on the tiny data set's run split, saved in `out`."""
    import numpy as np

    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.data import data_from_frames
    from pdmd.models.split import train_test_split
    from pdmd.models.training import train_model
    from pdmd.store.datastore import DataStore

    store = DataStore(data)
    docs = sorted((d for d in store.iter_structures() if d["n_atoms"] == QUICK_ATOMS),
                  key=lambda d: (d["run_id"], d["step"]))  # fmt: skip
    frames = [store.load_frame(d) for d in docs]
    groups = [d["run_id"] for d in docs]
    model = data_from_frames(frames, np.array([d["energy_eV_per_atom"] for d in docs]), groups,
                             [d["_id"] for d in docs], DescriptorSpec.for_system("agr"), {"frames"})  # fmt: skip
    options = {"store_root": str(data), "train": {"epochs": epochs, "batch_structures": 4, "hidden": [16, 16]}}
    train_model("pd-local", model, out, out.name, split_indices=train_test_split(groups, 0.2, 0, "run"),
                options=options)  # fmt: skip
    return out


def untrained_local_model(out: Path, dim: int = 2, energy_eV_per_atom: float = -6.3) -> Path:
    """A pd-local model folder with random weights (network 16-16, default descriptor): what evaluation, MD and
    timing need, without the seconds of a training run. Its card says it is untrained.
    """
    import torch

    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.local.features import LocalDescriptorConfig
    from pdmd.models.local.model import KIND, AtomicNet, save_model

    torch.manual_seed(0)
    cfg = LocalDescriptorConfig.default(dim)
    net = AtomicNet(cfg.n_features, (16, 16))
    with torch.no_grad():
        net.feat_std.fill_(2.0)
        net.e0.fill_(energy_eV_per_atom)
    nan = float("nan")
    metrics = {"train_rmse_meV_per_atom": nan, "test_rmse_meV_per_atom": nan, "n_train": 0, "n_test": 0,
               "train_energy_mean_eV_per_atom": energy_eV_per_atom, "untrained": True}  # fmt: skip
    card = {"_id": out.name, "name": out.name, "path": str(out), "model_kind": KIND,
            "descriptor": DescriptorSpec.for_system("agr" if dim == 2 else "ac").to_dict(),
            "split": {"kind": "run", "seed": 0}, "metrics": metrics, "local_descriptor": cfg.as_dict(),
            "network": {"hidden": [16, 16], "activation": "SiLU"}}  # fmt: skip
    return save_model(out, card, net)


def add_quick_arguments(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """`--quick` (and, for benchmarks that read a data folder, `--quick-data DIR`) on a benchmark's parser."""
    parser.add_argument("--quick", action="store_true", help="the same code path on tiny data, in seconds (tests)")
    if data:
        parser.add_argument("--quick-data", type=Path, metavar="DIR",
                            help=f"with --quick: the tiny data set (plan {QUICK_PLAN}), generated there if missing "
                            "(default: a temporary folder)")  # fmt: skip


def resolve_data(parser: argparse.ArgumentParser, args: argparse.Namespace, attr: str = "data",
                 plan_attr: str | None = "plan") -> None:  # fmt: skip
    """Under `--quick`: `args.<attr>` becomes the tiny data set's folder (generated if missing) and
    `args.<plan_attr>` its plan; otherwise the data folder argument is required.
    """
    if args.quick:
        setattr(args, attr, quick_data(args.quick_data))
        if plan_attr:
            setattr(args, plan_attr, QUICK_PLAN)
    elif getattr(args, attr) is None:
        parser.error(f"the data folder ({attr.upper()}) is required unless --quick is given")


def resolve_work(parser: argparse.ArgumentParser, args: argparse.Namespace, prefix: str) -> bool:
    """`args.work` under `--quick` (a temporary folder unless given), else required; warnings-only logging.
    True under `--quick`, for the caller's own smaller settings.
    """
    if args.quick:
        args.work = output_folder(args.work, prefix)
    elif args.work is None:
        parser.error("--work is required unless --quick")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    return args.quick


def one_thread() -> None:
    """One torch, numba and OpenMP thread: timings of one core, fair to other work."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pdmd.models.local.compiled import set_threads

    set_threads(1)


def tests_on_path() -> None:
    """Make the test suite's helper modules importable (`test_local`, `conftest`, `embedded_stress`)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    quick_data(p.parse_args().folder)


if __name__ == "__main__":
    main()
