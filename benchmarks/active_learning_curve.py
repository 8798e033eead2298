# SPDX-License-Identifier: GPL-3.0-or-later
"""Active learning against random selection: test RMSE per number of labels, from relaxed sheets only.

    python benchmarks/active_learning_curve.py --work paper_runs/al-curve     # ≈ 1 h on 2 cores; docs/uncertainty.md
    python benchmarks/active_learning_curve.py --work paper_runs/al-paper --paper paper_runs/agr_paper \
        --iterations 5 --max-labels 60 --minutes 3                            # paper scale, ≤ 300 labels
    python benchmarks/active_learning_curve.py --quick [--work DIR]           # seconds: tiny data, 2 iterations

The seed is `--seed-runs` relaxed aGr sheets (Tersoff melt-quench, final structures only); the test set
is `--test-runs` runs with their relaxed finals and snapshots at 300-3000 K. Each iteration of
`pdmd.active` trains a committee, explores with MD at 300, 1000 and 2000 K, and labels the candidates
(Tersoff single points). `--paper DIR` (a data folder of `pdmd campaign agr-paper`) takes instead
`--seed-runs` relaxed 680-atom sheets (runs without snapshots) from the training runs of the paper-scale
split, and that split's test runs as the test set (the run split of `pdmd train` and `pdmd baseline` on the
finished campaign: seed 0, 20 % of the plan's runs; 384 structures), copied into --work (runs DIR lacks
are made there first), and explores at 300, 1500 and 3000 K (the test set has snapshots up to 3000 K).
Beside it, the random baseline: the same number of frames drawn uniformly from the same explored
trajectories, labelled and trained with the same settings. Resumable: every model, exploration and label
set stays under --work. Prints a JSON row per iteration and writes `curve.json` and `curve.png`.
`--quick` takes the tiny generated data set as seed (2 runs) and test (1 run) in a copy under --work, and
runs 2 iterations of 2-epoch committees of 2, one 10-step exploration each, every frame a candidate, 2
labels per iteration.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def protocols(n_atoms: int, n_seed: int, n_test: int):
    """(seed runs: relaxed finals only, test runs: finals + 300-3000 K snapshots), log-uniform cooling rates."""
    from pdmd.md.protocol import MeltQuenchProtocol

    rng = np.random.default_rng(11)
    rates = np.exp(rng.uniform(np.log(100.0), np.log(2000.0), n_seed + n_test))
    seed = [MeltQuenchProtocol(seed=700 + i, cooling_rate_K_per_ps=float(round(r)), n_atoms=n_atoms)
            for i, r in enumerate(rates[:n_seed])]  # fmt: skip
    test = [MeltQuenchProtocol(seed=800 + i, cooling_rate_K_per_ps=float(round(r)), n_atoms=n_atoms,
                               snapshot_temperatures_K=(300.0, 1000.0, 2000.0, 3000.0))
            for i, r in enumerate(rates[n_seed:])]  # fmt: skip
    return seed, test


def copy_runs(src, dst, run_ids: list[str]) -> None:
    """Every structure of `run_ids` (energies, forces, provenance) from store `src` into store `dst`."""
    for run in run_ids:
        for doc in src.run_structures(run):
            meta = {k: v for k, v in doc.items() if k not in {"_id", "content_hash", "files", "created", "units"}}
            new = dst.save_structure(src.load_frame(doc), meta)
            forces = src.load_forces(doc)
            if forces is not None and "forces" not in new["files"]:
                dst.save_forces(new, forces, doc.get("forces_source", ""))


def paper_seed_and_test(src, store, n_seed: int) -> tuple[list[str], list[str]]:
    """(seed, test) run ids: `n_seed` relaxed sheets from the training runs of the paper-scale run split, and that
    split's test runs; both copied into `store`.

    The split is the one of the whole plan (seed 0, 20 % of its 1,050 runs), so it does not depend on how far
    the campaign in `src` has got: runs it does not hold yet are melt-quenched into it first, as the campaign
    would (which then reuses them).
    """
    from pdmd.campaign import plan_descriptor, plan_runs
    from pdmd.campaign_runner import run_protocols
    from pdmd.models.split import train_test_split

    runs = plan_runs("agr-paper")[0]
    ids = [p.run_id for p in runs]
    train, test = train_test_split(ids, 0.2, 0, "run")
    relaxed_only = {p.run_id for p in runs if not p.snapshot_temperatures_K}
    candidates = [ids[i] for i in train if ids[i] in relaxed_only]
    seed = [candidates[i] for i in np.random.default_rng(11).permutation(len(candidates))[:n_seed]]
    test_ids = [ids[i] for i in test]
    wanted = set(seed + test_ids)
    missing = [p for p in runs if p.run_id in wanted and not src.run_summary(p.run_id)]
    if missing:
        print(f"melt-quench of {len(missing)} seed / test runs the campaign in {src.root} has not made yet", flush=True)
        failed = [r for r in run_protocols(missing, src.root, plan_descriptor("agr-paper")) if "error" in r]
        if failed:
            raise SystemExit(f"{len(failed)} runs failed, e.g. {failed[0]['run_id']}: {failed[0]['error']}")
    copy_runs(src, store, seed + test_ids)
    print(f"paper-scale split: {len(seed)} seed sheets, {len(test_ids)} test runs", flush=True)
    return seed, test_ids


def seed_and_test(args: argparse.Namespace, store) -> tuple[list[str], list[str]]:
    """Run ids of the seed and test sets in `store`: melt-quenched there, copied from a paper-scale data folder
    (--paper) or (--quick) from the tiny data.
    """
    from pdmd.pipeline import melt_quench_to_store
    from pdmd.store.datastore import DataStore

    if args.quick:
        import shutil

        from _quick import QUICK_PLAN, quick_data

        from pdmd.campaign import plan_runs

        source = quick_data(args.quick_data)
        shutil.copytree(source, store.root, ignore=shutil.ignore_patterns("md_work"), dirs_exist_ok=True)
        runs = [r.run_id for r in plan_runs(QUICK_PLAN)[0]]
        return runs[:2], runs[-1:]
    if args.paper:
        return paper_seed_and_test(DataStore(args.paper), store, args.seed_runs)
    seed, test = protocols(args.atoms, args.seed_runs, args.test_runs)
    t0 = time.perf_counter()
    for k, prot in enumerate(seed + test):
        melt_quench_to_store(prot, store, args.work / "lammps" / prot.run_id, omp_threads=2)
        print(f"data {k + 1}/{len(seed + test)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return [q.run_id for q in seed], [q.run_id for q in test]


def random_labels(store, s, k: int, n_labels: int) -> str:
    """A random-selection run id holding `n_labels` frames drawn from every exploration up to iteration k."""
    from ase.io import read

    from pdmd.active import iteration_dir
    from pdmd.md.single_point import LammpsSinglePoint
    from pdmd.structure import Frame

    run = f"random-{s.name}-upto-{k:03d}"
    if len(store.run_structures(run)) >= n_labels:
        return run
    pool = []
    for j in range(k + 1):
        for path in sorted((iteration_dir(store.root, s.name, j) / "explore").glob("*.extxyz")):
            pool += [(path, i) for i in range(len(read(path, index=":")))]
    rng = np.random.default_rng(k)
    picked = [pool[i] for i in rng.choice(len(pool), min(n_labels, len(pool)), replace=False)]
    with LammpsSinglePoint(2, s.reference) as ref:
        for n, (path, i) in enumerate(picked):
            frame = Frame.from_ase(read(path, index=i))
            point = ref(frame)
            doc = store.save_structure(frame, {"run_id": run, "kind": "random", "step": n, "system": "agr",
                                               "energy_eV_per_atom": point.energy_eV / frame.n_atoms})  # fmt: skip
            store.save_forces(doc, point.forces_eV_per_A, s.reference)
    return run


def train_on(store, s, runs: list[str], out: Path) -> dict:
    """A committee of the campaign's settings on `runs` + the seed, tested on the test runs; its card."""
    from pdmd.active import frames_data
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.training import train_model
    from pdmd.store.documents import read_card

    if (out / "model.json").is_file():
        return read_card(out)
    data = frames_data(store, list(s.seed_run_ids) + runs + list(s.test_run_ids), DescriptorSpec.for_system("agr"))
    test = np.array([i for i, g in enumerate(data.groups) if g in set(s.test_run_ids)])
    train = np.array([i for i, g in enumerate(data.groups) if g not in set(s.test_run_ids)])
    options = {**s.model_options, "ensemble": s.ensemble, "store_root": str(store.root)}
    return train_model("pd-local", data, out, out.name, split_indices=(train, test), options=options)


def main() -> None:
    from _quick import add_quick_arguments, resolve_work

    from pdmd.active import ActiveSettings, explore, iteration_dir, select_and_label, train_committee
    from pdmd.store.datastore import DataStore

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, help="folder of data, models and results (required unless --quick)")
    add_quick_arguments(p)
    p.add_argument("--atoms", type=int, default=200)
    p.add_argument("--seed-runs", type=int, default=20)
    p.add_argument("--test-runs", type=int, default=8)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--minutes", type=float, default=1.5, help="training time per committee member")
    p.add_argument(
        "--paper",
        type=Path,
        help="a data folder of `pdmd campaign agr-paper`: its split's seed and "
        "test set (--atoms and --test-runs do not apply)",
    )
    p.add_argument("--max-labels", type=int, default=40, help="labels per iteration")
    args = p.parse_args()
    if resolve_work(p, args, "al-curve"):
        args.iterations = 2
    if args.paper and not (args.paper / "runs").is_dir():
        p.error(f"--paper {args.paper}: no data folder of `pdmd campaign agr-paper` there (no runs/)")
    store = DataStore(args.work / "data")
    seed, test = seed_and_test(args, store)
    train = {"max_minutes": args.minutes, "epochs": 300, "batch_structures": 4, "threads": 1}
    if args.quick:
        s = ActiveSettings("curve", tuple(seed), tuple(test), "agr", (1000.0,), (0,), steps=10, every=2, ensemble=2,
                           trust_low_eV_per_A=0.0, trust_high_eV_per_A=1e6, max_labels=2, converge_fraction=0.0,
                           max_iterations=args.iterations,
                           model_options={"train": {**train, "epochs": 2, "hidden": [16, 16]}})  # fmt: skip
    else:
        temperatures = (300.0, 1500.0, 3000.0) if args.paper else (300.0, 1000.0, 2000.0)  # paper test: ≤ 3000 K
        s = ActiveSettings("curve", tuple(seed), tuple(test), "agr", temperatures, (0, 1), steps=1000,
                           every=20, ensemble=3, max_labels=args.max_labels, converge_fraction=0.0,
                           max_iterations=args.iterations,
                           model_options={"train": train})  # fmt: skip
    rows = []
    for k in range(args.iterations):
        card = train_committee(store, s, k)
        for t in s.temperatures_K:
            for sd in s.seeds:
                explore(store, s, k, t, sd)
        summary = select_and_label(store, s, k)
        labels_before = summary["labelled_total"] - summary["n_labelled"]
        rand = None
        if labels_before:
            run = random_labels(store, s, k - 1, labels_before)
            rand = train_on(store, s, [run], args.work / "random" / f"upto-{k - 1:03d}")["metrics"]
        m = card["metrics"]
        rows.append({"iteration": k, "labels": labels_before, "active_test_rmse_meV_per_atom":
                     m["test_rmse_meV_per_atom"], "active_test_force_rmse_eV_per_A": m.get("test_force_rmse_eV_per_A"),
                     "random_test_rmse_meV_per_atom": rand and rand["test_rmse_meV_per_atom"],
                     "random_test_force_rmse_eV_per_A": rand and rand.get("test_force_rmse_eV_per_A"),
                     "mean_predictor_test_rmse_meV_per_atom": m["mean_predictor_test_rmse_meV_per_atom"],
                     "candidate_fraction": summary["candidate_fraction"],
                     "failed_fraction": summary["failed_fraction"]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    (args.work / "curve.json").write_text(json.dumps(rows, indent=1))
    _plot(rows, args.work / "curve.png")
    print(f"{iteration_dir(store.root, s.name, 0).parent}: curve.json, curve.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = [r["labels"] for r in rows]
    ax.plot(x, [r["active_test_rmse_meV_per_atom"] for r in rows], "o-", label="active (committee)")
    pts = [(r["labels"], r["random_test_rmse_meV_per_atom"]) for r in rows if r["random_test_rmse_meV_per_atom"]]
    if pts:
        ax.plot(*zip(*pts), "s--", label="random frames, same pools")
    ax.set_xlabel("labelled structures added to the seed")
    ax.set_ylabel("test energy RMSE (meV/atom)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
