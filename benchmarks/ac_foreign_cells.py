# SPDX-License-Identifier: GPL-3.0-or-later
"""Do the aC demo models know when a structure is outside their training data?

The aC demo data (`ac-demo`: 216-atom cells at 2.0–3.4 g/cm³ melt-quenched with the Tersoff stand-in) trains
the paper's CNN (the demo's settings) and pd-kernel. Then 26 cells quenched with another potential (AIREBO,
1.0–3.5 g/cm³, the same protocol) are labelled with the stand-in's own Tersoff single points and predicted,
as a user would predict structures of their own. Printed per model: the RMSE and bias (meV/atom) on all cells
and on those inside the training densities, the mean predictor's RMSE, how many cells `pdmd predict` flags
(extrapolation grade above the card's threshold), and whether every cell with a large error is flagged
(error > 3 × the model's own test RMSE); per cell: density, Tersoff energy, each model's error, its PD-image
grade and its density / bond-length grade (`pdmd.models.global_domain`).
Scatters of |error| against each grade go to foreign_cells.png.

    python benchmarks/ac_foreign_cells.py --work paper_runs/foreign     # resumable: data, models, cells, labels
    python benchmarks/ac_foreign_cells.py --quick                       # 64-atom cells, 2-epoch models
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from _quick import add_quick_arguments, one_thread, resolve_work

FULL = {"atoms": 216, "cells": 26, "rate_K_per_ps": 1000.0, "epochs": None, "plan": "ac-demo"}
QUICK = {"atoms": 64, "cells": 3, "rate_K_per_ps": 20000.0, "epochs": 2, "plan": "ac-demo"}


def training_runs(cfg: dict) -> list:
    """The ac-demo plan's training runs (quick: 4 of them, 64 atoms, a short protocol)."""
    from pdmd.campaign import plan_runs

    runs = plan_runs(cfg["plan"])[0]
    if cfg["atoms"] == 216:
        return runs
    short = {"n_atoms": cfg["atoms"], "melt_ps": 0.1, "hold_ps": 0.05, "n_quench_snapshots": 4}
    return [replace(p, **short) for p in runs[::4]]


def foreign_runs(cfg: dict) -> list:
    """AIREBO melt-quenches at densities evenly spaced in [1.0, 3.5] g/cm³ (the demo's protocol, one rate)."""
    template = training_runs(cfg)[0]
    densities = np.round(np.linspace(1.0, 3.5, cfg["cells"]), 2)
    return [replace(template, seed=900 + k, density_g_cm3=float(d), cooling_rate_K_per_ps=cfg["rate_K_per_ps"],
                    potential="airebo", n_quench_snapshots=0) for k, d in enumerate(densities)]  # fmt: skip


def stage_data(work: Path, cfg: dict) -> None:
    from pdmd.campaign import plan_descriptor
    from pdmd.campaign_runner import run_protocols

    spec = plan_descriptor(cfg["plan"])
    for label, runs in (("ac-demo data", training_runs(cfg)), ("AIREBO cells", foreign_runs(cfg))):
        failed = [r for r in run_protocols(runs, work / "data", spec, workers=2, label=label) if "error" in r]
        if failed:
            raise SystemExit(f"{label}: {len(failed)} runs failed, first: {failed[0]['error']}")


def stage_models(work: Path, cfg: dict) -> dict[str, Path]:
    """The demo's CNN (its training settings) and pd-kernel on the demo runs; their folders."""
    from pdmd.campaign import plan_descriptor
    from pdmd.models.training import train_on_store
    from pdmd.store.datastore import DataStore
    from pdmd.workflow.builders import TRAIN_SETTINGS

    store, spec = DataStore(work / "data"), plan_descriptor(cfg["plan"])
    run_ids = [p.run_id for p in training_runs(cfg)]
    train = dict(TRAIN_SETTINGS[cfg["plan"]]["train"])
    if cfg["epochs"]:
        train["epochs"] = cfg["epochs"]
    folders = {}
    for name, kind, options in (("cnn", None, {}), ("kernel", "pd-kernel", {})):
        folder = store.root / "models" / f"foreign-{name}"
        if not (folder / "model.json").is_file():
            train_on_store(store, run_ids, spec, f"foreign-{name}", kind, options, train=train, split="run")
        folders[name] = folder
    return folders


def stage_labels(work: Path, cfg: dict) -> Path:
    """The AIREBO cells with the stand-in's Tersoff single-point energies (extxyz; AIREBO's energy in info)."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from pdmd.md.single_point import LammpsSinglePoint
    from pdmd.store.datastore import DataStore

    out = work / "foreign.extxyz"
    if out.is_file():
        return out
    store, images = DataStore(work / "data"), []
    with LammpsSinglePoint(3, "tersoff1989") as tersoff:
        for p in foreign_runs(cfg):
            doc = [d for d in store.run_structures(p.run_id) if d["kind"] == "final"][0]
            frame = store.load_frame(doc)
            point = tersoff(frame)
            atoms = frame.to_ase()
            atoms.info.update({"density_g_cm3": p.density_g_cm3, "airebo_eV_per_atom": doc["energy_eV_per_atom"]})
            atoms.calc = SinglePointCalculator(atoms, energy=point.energy_eV, forces=point.forces_eV_per_A)
            images.append(atoms)
    write(out.with_suffix(".tmp.extxyz"), images, format="extxyz")
    out.with_suffix(".tmp.extxyz").replace(out)
    return out


def stage_predict(work: Path, folders: dict[str, Path], cells: Path) -> dict:
    """Each model's errors, grades and flags on the labelled cells (results.json, the tables, the PNG)."""
    from ase.io import read

    from pdmd.api import load_potential, predict_files

    atoms = read(cells, index=":")
    density = np.array([a.info["density_g_cm3"] for a in atoms])
    inside = (density >= 2.0) & (density <= 3.4)
    ref = np.array([a.get_potential_energy() / len(a) for a in atoms])
    results = {"density_g_cm3": density.tolist(), "tersoff_eV_per_atom": ref.tolist()}
    for name, folder in folders.items():
        model = load_potential(folder)
        rows = predict_files(model, [cells])
        pred = np.array([np.nan if r.predicted_eV_per_atom is None else r.predicted_eV_per_atom for r in rows])
        err = 1e3 * (pred - ref)  # NaN: refused with an error (`refused`)
        grade = np.array([np.nan if r.extrapolation is None else r.extrapolation for r in rows])
        geometry = np.array([np.nan if r.geometry_grade is None else r.geometry_grade for r in rows])
        refused = np.array([r.error is not None for r in rows])
        flagged = np.array([bool(r.warnings) for r in rows]) | refused
        m = model.card["metrics"]
        large = ~refused & (np.abs(err) > 3.0 * m["test_rmse_meV_per_atom"])
        mean = 1e3 * (m["train_energy_mean_eV_per_atom"] - ref)
        ok, ok_in = ~refused, ~refused & inside
        results[name] = {
            "error_meV_per_atom": err.tolist(), "grade": grade.tolist(), "geometry_grade": geometry.tolist(),
            "geometry_threshold": model.geometry_threshold, "flagged": flagged.tolist(),
            "refused": [r.error for r in rows if r.error], "threshold": model.extrapolation_threshold,
            "test_rmse_meV_per_atom": m["test_rmse_meV_per_atom"],
            "rmse_all": float(np.sqrt(np.mean(err[ok] ** 2))), "bias_all": float(err[ok].mean()),
            "rmse_inside": float(np.sqrt(np.mean(err[ok_in] ** 2))), "bias_inside": float(err[ok_in].mean()),
            "mean_predictor_rmse_all": float(np.sqrt(np.mean(mean**2))),
            "n_flagged": int(flagged.sum()), "n_refused": int(refused.sum()), "n_large": int(large.sum()),
            "n_large_flagged": int((large & flagged).sum()),
            "largest_unflagged_error": float(np.abs(err[~flagged]).max()) if (~flagged).any() else None,
        }  # fmt: skip
    (work / "foreign.json").write_text(json.dumps(results, indent=1))
    return results


def report(work: Path, results: dict, names: list[str]) -> None:
    n = len(results["density_g_cm3"])
    print(f"{n} AIREBO cells, 1.0–3.5 g/cm³, labelled with Tersoff single points; errors meV/atom")
    print("| model | own test RMSE | RMSE all (bias) | RMSE 2.0–3.4 g/cm³ (bias) | mean predictor all | threshold "
          "| flagged (refused) | large errors flagged | largest unflagged error |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r = results[name]
        unflagged = "—" if r["largest_unflagged_error"] is None else f"{r['largest_unflagged_error']:.1f}"
        threshold = "—" if r["threshold"] is None else f"{r['threshold']:.2f}"
        print(f"| {name} | {r['test_rmse_meV_per_atom']:.1f} | {r['rmse_all']:.1f} ({r['bias_all']:+.1f}) "
              f"| {r['rmse_inside']:.1f} ({r['bias_inside']:+.1f}) | {r['mean_predictor_rmse_all']:.1f} "
              f"| {threshold} | {r['n_flagged']} of {n} ({r['n_refused']} refused) "
              f"| {r['n_large_flagged']} of {r['n_large']} "
              f"| {unflagged} |")  # fmt: skip
    for name in names:
        r = results[name]
        print(f"{name}: PD-image grade threshold {r['threshold']}, geometry grade threshold {r['geometry_threshold']}")
    print("| density | Tersoff eV/atom | " + " | ".join(f"{k} error | {k} grade | {k} geometry" for k in names) + " |")
    print("|---" * (2 + 3 * len(names)) + "|")
    for i, d in enumerate(results["density_g_cm3"]):
        rows = [results[k] for k in names]
        cols = [f"{r['error_meV_per_atom'][i]:+.1f}" + ("*" if r["flagged"][i] else "")
                + f" | {r['grade'][i]:.2f} | {r['geometry_grade'][i]:.2f}" for r in rows]  # fmt: skip
        print(f"| {d:.2f} | {results['tersoff_eV_per_atom'][i]:.4f} | " + " | ".join(cols) + " |")
    print("(* flagged by `pdmd predict`: grade or geometry grade above its threshold; nan: refused with an error)")
    for name in names:
        for reason in sorted(set(results[name]["refused"])):
            print(f"{name} refused: {reason}")
    plot(work, results, names)


def plot(work: Path, results: dict, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(names), figsize=(5 * len(names), 7.5), squeeze=False, constrained_layout=True)
    for col, name in enumerate(names):
        r = results[name]
        for row, (key, limit, what) in enumerate(
            (("grade", "threshold", "PD-image grade"), ("geometry_grade", "geometry_threshold", "density / bond grade"))
        ):
            ax = axes[row, col]
            sc = ax.scatter(r[key], np.abs(r["error_meV_per_atom"]), c=results["density_g_cm3"], cmap="viridis")
            if r[limit] is not None:
                ax.axvline(r[limit], color="k", ls="--", label="warning threshold")
                ax.legend(loc="lower right")
            ax.set(yscale="log", xlabel=what, ylabel="|error| (meV/atom)", title=f"{name}: {what}")
    fig.colorbar(sc, ax=axes, label="density (g/cm³)")
    fig.savefig(work / "foreign_cells.png", dpi=120)
    print(f"plot: {work / 'foreign_cells.png'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, help="folder of data, models and results (resumable; required unless --quick)")
    add_quick_arguments(p, data=False)
    args = p.parse_args()
    cfg = QUICK if resolve_work(p, args, "foreign") else FULL
    one_thread()
    stage_data(args.work, cfg)
    folders = stage_models(args.work, cfg)
    results = stage_predict(args.work, folders, stage_labels(args.work, cfg))
    report(args.work, results, list(folders))


if __name__ == "__main__":
    main()
