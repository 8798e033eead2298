# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local outside its data: MD that stays safe, what the uncertainty is worth, and what it costs.

    python benchmarks/local_safety.py --work paper_runs/safety all   # docs/uncertainty.md; or one stage: data, train,
                                                                     # md, spearman, cost, engine, active, after
    python benchmarks/local_safety.py --work DIR engine               # the engine timing of docs/local.md
    python benchmarks/local_safety.py --quick [--work DIR] all        # seconds: tiny generated data, a few MD steps

Every stage writes its results under --work and is skipped when they are there (resumable).

- data: 680-atom aGr melt-quench runs (Tersoff, LAMMPS) keeping the relaxed final and a 300 K snapshot
  (the "<= 300 K" training set), plus hot runs with snapshots at 1500-3500 K (out of the training domain).
- train: a pd-local committee (run split 80/20 of the <= 300 K runs) with the core repulsion; the ACSF
  kernel baseline and the mean predictor of the same split are printed beside it.
- md: NVT at 300 K and 1500 K from relaxed test sheets, two seeds each, with and without the core,
  stopping on the model's default extrapolation threshold; per run: steps done, why it stopped, and the
  shortest pair distance ever seen.
- spearman: per held-out structure (half in domain: test-run structures; half out: hot snapshots), the
  largest atomic force error against the largest extrapolation grade and committee force deviation.
- cost: ms per MD step on a 680-atom sheet without uncertainty, with the grade, and with the committee,
  timed in turn in one process.
- engine: ms per NVE step of the ASE engine and of `--engine lammps` (fix external) from the same start,
  in turn, and the largest position difference after 100 steps (LAMMPS over ASE: the ratio).
- active: active learning (`pdmd.active`) from the committee: iteration 0 is the `train` stage's committee, its
  seed the training runs, its test set the held-out runs; exploration at 300 and 1500 K (two seeds, two at a
  time), Tersoff labels of the frames in the trust window, a retrained committee per iteration; per iteration the
  labelled count, the frame fractions and the test RMSE beside the mean predictor and ACSF + kernel ridge.
- after: the `md` stage's runs (with the core) with the committee active learning ends at, and an NVE run at
  300 K for the energy drift.

`--quick`: the tiny generated data set stands in for both sets (its first 4 runs "cold", the last 2 "hot"), a
committee of 2 trained 2 epochs, 2 of the MD runs (with and without the core) of 4 steps, 4 steps per cost and
engine timing, timed once; one active-learning iteration of 4-step explorations (every frame a candidate, 2 labels).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

QUICK = {"quick": True, "md_ps": {300.0: 0.002, 1500.0: 0.002}, "minutes": 1.0, "epochs": 2, "hidden": [16, 16],
         "md_runs": [(300.0, 0, True), (1500.0, 1, False)], "after_runs": [(300.0, 0, True), (300.0, 0, True, "nve")],
         "cost_steps": 4, "engine_steps": 4,
         "repeats": 1, "active": {"temperatures_K": (300.0, 1500.0), "seeds": (0,), "steps": 4, "every": 2,
                                  "max_labels": 2, "iterations": 1, "minutes": 1.0, "nve_ps": 0.002,
                                  "trust_low_eV_per_A": 0.0, "trust_high_eV_per_A": 1e6}}  # fmt: skip
"""Settings of `--quick` (the tiny data set of `_quick.py`; MD ps per temperature, training minutes)."""
FULL = {"n_atoms": 680, "runs": 75, "hot_runs": 8, "md_ps": {300.0: 10.0, 1500.0: 5.0}, "minutes": 6.0, "epochs": 400,
        "hidden": None, "cost_steps": 40, "engine_steps": 100, "repeats": 2,
        "active": {"temperatures_K": (300.0, 1500.0), "seeds": (0, 1), "steps": 2000, "every": 20, "max_labels": 50,
                   "iterations": 2, "epochs": 30, "minutes": 60.0, "nve_ps": 5.0}}  # fmt: skip
"""Settings of the full study (runs of `n_atoms` atoms, MD ps per temperature, training minutes per member;
active learning: exploration temperatures, seeds and 0.5-fs steps, frames kept every `every` steps, labels and
iterations at most, training epochs per member (a fixed number, so a loaded machine does not cut training short;
minutes: a cap only), NVE ps of the drift run)."""
HOT_K = (1500.0, 2500.0, 3500.0)


def protocols(cfg: dict):
    """(cold runs: final + 300 K snapshot, hot runs: snapshots at HOT_K) with log-uniform cooling rates."""
    from pdmd.md.protocol import MeltQuenchProtocol

    rng = np.random.default_rng(7)
    rates = np.exp(rng.uniform(np.log(100.0), np.log(2000.0), cfg["runs"] + cfg["hot_runs"]))
    extra = {} if cfg["n_atoms"] >= 680 else {"melt_ps": 1.0, "hold_ps": 0.2}  # smaller cells: a shorter melt
    cold = [MeltQuenchProtocol(seed=500 + i, cooling_rate_K_per_ps=float(round(r)), n_atoms=cfg["n_atoms"],
                               snapshot_temperatures_K=(300.0,), **extra)
            for i, r in enumerate(rates[: cfg["runs"]])]  # fmt: skip
    hot = [MeltQuenchProtocol(seed=900 + i, cooling_rate_K_per_ps=float(round(r)), n_atoms=cfg["n_atoms"],
                              snapshot_temperatures_K=HOT_K, **extra)
           for i, r in enumerate(rates[cfg["runs"] :])]  # fmt: skip
    return cold, hot


def _one_run(args) -> str:
    from pdmd.pipeline import melt_quench_to_store
    from pdmd.store.datastore import DataStore

    protocol, root = args
    melt_quench_to_store(protocol, DataStore(root), Path(root) / "work" / protocol.run_id, omp_threads=1)
    return protocol.run_id


def data_runs(work: Path, cfg: dict) -> tuple[Path, list[str], list[str]]:
    """(data folder, cold run ids, hot run ids): the study's own runs, or (quick) the tiny data set's."""
    if cfg.get("quick"):
        from _quick import QUICK_PLAN, quick_data

        from pdmd.campaign import plan_runs

        if "quick_root" not in cfg:  # generated (or found) once per process
            cfg["quick_root"] = quick_data(cfg.get("quick_data"), verbose=False)  # registers the plan
        runs = [r.run_id for r in plan_runs(QUICK_PLAN)[0]]
        return cfg["quick_root"], runs[:4], runs[4:]
    cold, hot = protocols(cfg)
    return work / "data", [p.run_id for p in cold], [p.run_id for p in hot]


def stage_data(work: Path, cfg: dict) -> None:
    from concurrent.futures import ProcessPoolExecutor

    if cfg.get("quick"):
        data_runs(work, cfg)
        return
    cold, hot = protocols(cfg)
    todo = [(p, str(work / "data")) for p in cold + hot]
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        for k, run in enumerate(pool.map(_one_run, todo)):
            eta = (time.perf_counter() - start) / (k + 1) * (len(todo) - k - 1)
            print(f"data: {k + 1}/{len(todo)} runs ({run}), ETA {eta:.0f} s", flush=True)


def load(work: Path, cfg: dict, which: str):
    """(frames, energies eV/atom, forces, groups, ids, kinds, temperatures) of the cold or hot runs."""
    from pdmd.store.datastore import DataStore

    root, cold, hot = data_runs(work, cfg)
    store = DataStore(root)
    docs = [d for run in (cold if which == "cold" else hot) for d in store.run_structures(run)]
    return ([store.load_frame(d) for d in docs], np.array([d["energy_eV_per_atom"] for d in docs]),
            [store.load_forces(d) for d in docs], [d["run_id"] for d in docs], [d["_id"] for d in docs],
            [d["kind"] for d in docs], [d.get("temperature_K") for d in docs])  # fmt: skip


def split(groups: list[str]):
    from pdmd.models.split import train_test_split

    return train_test_split(groups, 0.2, 0, "run")


def stage_train(work: Path, cfg: dict, members: int) -> None:
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.data import data_from_frames
    from pdmd.models.training import train_model

    out = work / "committee"
    if (out / "model.json").is_file():
        return
    frames, energies, forces, groups, ids, _, _ = load(work, cfg, "cold")
    spec = DescriptorSpec.for_system("agr")
    data = data_from_frames(frames, energies, groups, ids, spec, {"frames"})
    train, test = split(groups)
    train_cfg = {"max_minutes": cfg["minutes"], "epochs": cfg["epochs"], "batch_structures": 4, "threads": 1}
    if cfg["hidden"]:
        train_cfg["hidden"] = cfg["hidden"]
    options = {"forces": forces, "ensemble": members, "train": train_cfg}
    card = train_model("pd-local", data, out, "safety-committee", split_indices=(train, test), options=options)
    base = acsf_krr(frames, energies, train, test)
    m = card["metrics"]
    summary = {"n_train": len(train), "n_test": len(test), "test_rmse_meV_per_atom": m["test_rmse_meV_per_atom"],
               "acsf_krr_test_rmse_meV_per_atom": base,
               "mean_predictor_test_rmse_meV_per_atom": m["mean_predictor_test_rmse_meV_per_atom"],
               "test_force_rmse_over_std": m.get("test_force_rmse_over_std"), "core": card["core"],
               "domain": card["domain"], "committee": {k: card["committee"][k] for k in
                                                       ("member_test_rmse_meV_per_atom", "trust_low_eV_per_A",
                                                        "trust_high_eV_per_A")}}  # fmt: skip
    (work / "train.json").write_text(json.dumps(summary, indent=1))


def acsf_krr(frames, energies, train, test) -> float:
    """Test RMSE (meV/atom) of the kernel baseline: atom-averaged ACSF + kernel ridge on the same split."""
    from pdmd.analysis.baselines import fit_baseline
    from pdmd.descriptor.atomic import structure_features

    x, _ = structure_features("acsf", frames)
    return fit_baseline("acsf", "krr", (x[train], energies[train]), (x[test], energies[test])).test_rmse


def shortest_pair_A(atoms) -> float:
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 2.0)
    return float(d.min()) if len(d) else float("inf")


def run_tag(temperature_K: float, seed: int, core: bool, ensemble: str = "nvt") -> str:
    """A target run's name, e.g. T300-s0-core, NVE-T300-s0-core (`--only`, file names)."""
    return f"{'NVE-' if ensemble == 'nve' else ''}T{temperature_K:g}-s{seed}-{'core' if core else 'nocore'}"


def md_run(
    work: Path,
    cfg: dict,
    temperature_K: float,
    seed: int,
    core: bool,
    model: Path | None = None,
    folder: str = "md",
    ensemble: str = "nvt",
) -> dict:
    """One target MD run (member 0 of `model`, default the committee; grade checked every step) from a relaxed
    test sheet; its record (reused when done). NVE runs record the total energy's drift.
    """
    from ase.io import read, write

    from pdmd.dynamics.ase_engine import run_md_file
    from pdmd.errors import ExtrapolationStop

    tag = run_tag(temperature_K, seed, core, ensemble)
    record_path = work / folder / f"{tag}.json"
    ps = cfg["active"]["nve_ps"] if ensemble == "nve" else cfg["md_ps"][temperature_K]
    steps = int(round(ps * 1000 / 0.5))
    done = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if done.get("steps_asked") == steps:
        return done
    frames, _, _, groups, _, kinds, _ = load(work, cfg, "cold")
    _, test = split(groups)
    finals = [i for i in test if kinds[i] == "final"]
    start = work / folder / f"{tag}-start.extxyz"
    start.parent.mkdir(parents=True, exist_ok=True)
    write(start, frames[finals[seed % len(finals)]].to_ase())
    out = work / folder / f"{tag}.extxyz"
    record = {"temperature_K": temperature_K, "seed": seed, "core": core, "ensemble": ensemble,
              "steps_asked": steps, "stopped": None}  # fmt: skip
    t0 = time.perf_counter()
    try:
        res = run_md_file(model or work / "committee", start, out, temperature_K=temperature_K, steps=steps,
                          every=min(50, steps), seed=seed, use_core=core, deviation=False,
                          ensemble=ensemble)  # fmt: skip
        record["steps_done"] = steps
        record["max_extrapolation"] = float(np.nanmax(res.max_extrapolation))
        if ensemble == "nve":
            record["drift_meV_per_atom_per_ps"] = res.drift_meV_per_atom_per_ps()
            record["max_dE_tot_meV_per_atom"] = res.max_deviation_meV_per_atom()
    except ExtrapolationStop as stop:
        record.update(stopped=str(stop).split(": the structure")[0], steps_done=stop.step, stop_value=stop.value)
    record["wall_s"] = time.perf_counter() - t0
    record["shortest_pair_A"] = min(shortest_pair_A(a) for a in read(out, index=":"))
    record_path.write_text(json.dumps(record, indent=1))
    return record


MD_RUNS = [(300.0, 0, True), (300.0, 1, True), (1500.0, 0, True), (1500.0, 1, True), (1500.0, 0, False),
           (1500.0, 1, False)]  # fmt: skip
"""(temperature K, seed, core) of the target runs: the product's defaults at both temperatures, and the hot
runs without the core, where only the extrapolation stop stands between the network and a collapse."""


def stage_md(
    work: Path, cfg: dict, only: str | None, runs: list | None = None, model: Path | None = None, folder: str = "md"
) -> list[dict]:
    """The target runs (`MD_RUNS`, or `runs`: (temperature K, seed, core[, ensemble])); `only`: tags, comma-sep."""
    rows = []
    for t, seed, core, *ens in runs or cfg.get("md_runs", MD_RUNS):
        ensemble = ens[0] if ens else "nvt"
        if only and run_tag(t, seed, core, ensemble) not in only.split(","):
            continue
        rows.append(md_run(work, cfg, t, seed, core, model, folder, ensemble))
        print(json.dumps(rows[-1]), flush=True)
    return rows


AFTER_RUNS = [(1500.0, 0, True), (1500.0, 1, True), (300.0, 0, True, "nve"), (300.0, 0, True), (300.0, 1, True)]
"""The runs after active learning: the product's defaults at both temperatures, and NVE at 300 K for the drift."""


def active_settings(work: Path, cfg: dict, members: int):
    """(store, ActiveSettings) of the study's campaign: seed = the committee's training runs, test = its test runs."""
    from pdmd.active import ActiveSettings
    from pdmd.store.datastore import DataStore

    root, _, _ = data_runs(work, cfg)
    if cfg.get("quick"):  # labels go into a copy: the tiny data set is shared with the other quick runs
        import shutil

        root = shutil.copytree(root, work / "active-data", ignore=shutil.ignore_patterns("md_work"), dirs_exist_ok=True)
    _, _, _, groups, _, _, _ = load(work, cfg, "cold")
    train, test = split(groups)
    a = cfg["active"]
    train_cfg = {
        "max_minutes": a["minutes"],
        "epochs": a.get("epochs", cfg["epochs"]),
        "batch_structures": 4,
        "threads": 2,
    }
    if cfg["hidden"]:
        train_cfg["hidden"] = cfg["hidden"]
    trust = {k: a[k] for k in ("trust_low_eV_per_A", "trust_high_eV_per_A") if k in a}
    s = ActiveSettings("safety", tuple(dict.fromkeys(groups[i] for i in train)),
                       tuple(dict.fromkeys(groups[i] for i in test)), "agr", a["temperatures_K"], a["seeds"],
                       steps=a["steps"], every=a["every"], ensemble=members, max_labels=a["max_labels"],
                       max_iterations=a["iterations"], model_options={"train": train_cfg}, **trust)  # fmt: skip
    return DataStore(root), s


def _explore(job: tuple) -> dict:
    from pdmd.active import explore
    from pdmd.store.datastore import DataStore

    root, s, k, t, seed = job
    return explore(DataStore(root), s, k, t, seed)


def stage_active(work: Path, cfg: dict, members: int) -> dict:
    """Active learning from the committee (iteration 0); per iteration its summary; the final committee's path."""
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from pdmd.active import frames_data, iteration_dir, labelled_run_ids, select_and_label, train_committee
    from pdmd.descriptor.spec import DescriptorSpec

    store, s = active_settings(work, cfg, members)
    first = iteration_dir(store.root, s.name, 0) / "model"
    if not (first / "model.json").is_file():
        shutil.copytree(work / "committee", first, dirs_exist_ok=True)
    rows = []
    for k in range(s.max_iterations):
        train_committee(store, s, k)
        jobs = [(store.root, s, k, t, seed) for t in s.temperatures_K for seed in s.seeds]
        with ProcessPoolExecutor(2) as pool:  # explorations two at a time, one core each
            list(pool.map(_explore, jobs))
        summary = select_and_label(store, s, k)
        rows.append({key: summary[key] for key in ("iteration", "n_frames", "n_labelled", "labelled_total",
                                                     "accurate_fraction", "candidate_fraction", "failed_fraction",
                                                     "trust_window_eV_per_A", "test_rmse_meV_per_atom",
                                                     "test_force_rmse_eV_per_A", "converged")})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        if summary["converged"]:
            break
    final = k + 1 if rows[-1]["n_labelled"] else k  # the labels of the last iteration are trained on too
    card = train_committee(store, s, final)
    runs = list(s.seed_run_ids) + labelled_run_ids(store.root, s.name, final) + list(s.test_run_ids)
    data = frames_data(store, runs, DescriptorSpec.for_system("agr"))  # what the final committee trained and tested on
    in_test = np.isin(data.groups, s.test_run_ids)
    train, test = np.flatnonzero(~in_test), np.flatnonzero(in_test)
    m = card["metrics"]
    out = {"iterations": rows, "final_model": str(iteration_dir(store.root, s.name, final) / "model"),
           "final_n_train": len(train), "final_test_rmse_meV_per_atom": m["test_rmse_meV_per_atom"],
           "final_test_force_rmse_eV_per_A": m.get("test_force_rmse_eV_per_A"),
           "final_test_force_rmse_over_std": m.get("test_force_rmse_over_std"),
           "mean_predictor_test_rmse_meV_per_atom": m["mean_predictor_test_rmse_meV_per_atom"],
           "acsf_krr_test_rmse_meV_per_atom": acsf_krr(data.frames, data.energies_eV, train, test)}  # fmt: skip
    (work / "active.json").write_text(json.dumps(out, indent=1))
    return out


def stage_spearman(work: Path, cfg: dict) -> dict:
    from scipy.stats import spearmanr

    from pdmd.models.local.model import load_local_model

    model = load_local_model(work / "committee")
    frames, _, forces, groups, _, _, _ = load(work, cfg, "cold")
    _, test = split(groups)
    hot = load(work, cfg, "hot")
    hot_idx = [i for i, k in enumerate(hot[5]) if k != "final"][: len(test)]
    sets = [(frames[i], forces[i], True) for i in test] + [(hot[0][i], hot[2][i], False) for i in hot_idx]
    rows = []
    for frame, f_ref, inside in sets:
        r = model.evaluate(frame, deviation=True)
        err = float(np.linalg.norm((r.forces - f_ref)[:, :2], axis=1).max())
        rows.append((err, float(r.extrapolation.max()), float(r.force_deviation.max()), inside))
    arr = np.array([row[:3] for row in rows])
    inside = np.array([row[3] for row in rows])
    out = {"n_in": int(inside.sum()), "n_out": int((~inside).sum())}
    for k, name in ((1, "extrapolation_grade"), (2, "committee_force_deviation")):
        out[f"spearman_{name}"] = float(spearmanr(arr[:, 0], arr[:, k]).statistic)
        out[f"spearman_{name}_in_domain"] = float(spearmanr(arr[inside, 0], arr[inside, k]).statistic)
    out["max_force_error_eV_per_A_in_out"] = [float(np.median(arr[inside, 0])), float(np.median(arr[~inside, 0]))]
    (work / "spearman.json").write_text(json.dumps(out, indent=1))
    return out


def first_final(work: Path, cfg: dict):
    """The first relaxed sheet of the ≤ 300 K data (ASE Atoms): where the cost and engine runs start."""
    frames, _, _, _, _, kinds, _ = load(work, cfg, "cold")
    return frames[kinds.index("final")].to_ase()


def stage_cost(work: Path, cfg: dict) -> dict:
    """Milliseconds per MD step without uncertainty, with the grade and with the committee, timed in turn."""
    import torch

    from pdmd.api import load_potential
    from pdmd.calculator import PDPotential
    from pdmd.dynamics.ase_engine import run_md

    torch.set_num_threads(1)
    steps, atoms = cfg["cost_steps"], first_final(work, cfg)
    out: dict = {}
    for rep in range(cfg["repeats"]):  # in turn, twice (quick: once): the last round's figures are reported
        for label in ("none", "grade", "committee"):
            pot = load_potential(work / "committee")
            if label == "none":
                pot.model.domain = None
            calc = PDPotential(pot, deviation=label == "committee")
            res = run_md(calc, atoms, dim=2, temperature_K=300.0, steps=steps, every=steps, seed=rep)
            out[label] = res.ms_per_step
    out["grade_over_none"] = out["grade"] / out["none"]
    out["committee_over_none"] = out["committee"] / out["none"]
    out["n_atoms"] = len(atoms)
    (work / "cost.json").write_text(json.dumps(out, indent=1))
    return out


def stage_engine(work: Path, cfg: dict) -> dict:
    """Milliseconds per step of the ASE engine and of LAMMPS (fix external) from the same start, in turn; max |Δr|."""
    import torch
    from ase.io import read, write

    from pdmd.dynamics.ase_engine import run_md_file
    from pdmd.dynamics.lammps_engine import run_lammps_md_file

    torch.set_num_threads(1)
    steps = cfg["engine_steps"]
    start = work / "engine" / "start.extxyz"
    start.parent.mkdir(parents=True, exist_ok=True)
    write(start, first_final(work, cfg))
    common = {"temperature_K": 300.0, "steps": steps, "timestep_fs": 0.5, "ensemble": "nve", "every": steps,
              "seed": 0, "deviation": False}  # fmt: skip
    out: dict = {}
    for _ in range(cfg["repeats"]):  # in turn, twice (quick: once): the last round's figures are reported
        out["ase_ms_per_step"] = run_md_file(work / "committee", start, work / "engine" / "ase.extxyz",
                                             **common).ms_per_step  # fmt: skip
        out["lammps_ms_per_step"] = run_lammps_md_file(work / "committee", start, work / "engine" / "lmp.extxyz",
                                                       **common).ms_per_step  # fmt: skip
    end = read(work / "engine" / "ase.extxyz", index=-1)
    dump = read(work / "engine" / "lmp.dump", index=-1, format="lammps-dump-text")
    out["max_dr_A"] = float(np.abs(dump.positions - end.positions).max())
    out["lammps_over_ase"] = out["lammps_ms_per_step"] / out["ase_ms_per_step"]
    (work / "engine.json").write_text(json.dumps(out, indent=1))
    return out


STAGES = ["data", "train", "md", "spearman", "cost", "engine", "active", "after"]


def main() -> None:
    from _quick import add_quick_arguments, resolve_work

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", nargs="?", default="all", choices=[*STAGES, "all"])
    p.add_argument("--work", type=Path, help="folder for data, models and results (resumable; required unless --quick)")
    add_quick_arguments(p)
    p.add_argument("--members", type=int, default=3, help="committee size")
    p.add_argument("--only", help="md, after: these runs (comma-separated), e.g. T300-s0-core,NVE-T300-s0-core")
    args = p.parse_args()
    if resolve_work(p, args, "safety"):
        args.members = 2
    from pdmd.models.local.compiled import set_threads

    set_threads(1)  # one thread per run: two runs share the cores
    cfg = {**QUICK, "quick_data": args.quick_data} if args.quick else FULL
    args.work.mkdir(parents=True, exist_ok=True)
    stages = STAGES if args.stage == "all" else [args.stage]
    for stage in stages:
        if stage == "data":
            stage_data(args.work, cfg)
        elif stage == "train":
            stage_train(args.work, cfg, args.members)
            print(json.dumps(json.loads((args.work / "train.json").read_text()), indent=1))
        elif stage == "md":
            stage_md(args.work, cfg, args.only)
        elif stage == "spearman":
            print(json.dumps(stage_spearman(args.work, cfg), indent=1))
        elif stage == "cost":
            print(json.dumps(stage_cost(args.work, cfg), indent=1))
        elif stage == "engine":
            print(json.dumps(stage_engine(args.work, cfg), indent=1))
        elif stage == "active":
            print(json.dumps(stage_active(args.work, cfg, args.members), indent=1))
        else:
            final = json.loads((args.work / "active.json").read_text())["final_model"]
            stage_md(args.work, cfg, args.only, cfg.get("after_runs", AFTER_RUNS), Path(final), "after")


if __name__ == "__main__":
    main()
