# SPDX-License-Identifier: GPL-3.0-or-later
r"""A small MACE model (mace-torch, CPU) trained on pd-local's split of a stored aGr data folder, as a reference.

Three steps, the first in the project's venv (it reads the data store), the other two in a separate venv with
mace-torch, which is not a pdmd dependency and must never be committed (`.venv-mace/` belongs in .gitignore):

    python3 -m venv .venv-mace && .venv-mace/bin/pip install torch==2.13.0 && \
        .venv-mace/bin/pip install mace-torch==0.3.16 ase numpy

    .venv/bin/python benchmarks/mace_reference.py export paper_runs/agr_demo --out /tmp/mace_ref
    OMP_NUM_THREADS=1 .venv-mace/bin/python benchmarks/mace_reference.py train --out /tmp/mace_ref --minutes 12
    OMP_NUM_THREADS=1 .venv-mace/bin/python benchmarks/mace_reference.py evaluate --out /tmp/mace_ref

`export` writes train/test/large.extxyz (total energy `REF_energy` in eV, forces `REF_forces` in eV/Å, pbc as
stored: "T T F" for sheets) and split.json, with exactly the split of `benchmarks/experiments/local_demo.py`: the
680-atom structures sorted by (run id, step), `train_test_split(run ids, 0.2, 0, "run")`, or with `--split-from
MODEL` the train/test structure ids on that model's card (e.g. the pd-local model of `pdmd baseline`, for the
identical split); the 2,720-atom cells are the large-cell validation set. `train` runs `python -m
mace.cli.run_train` on train.extxyz (its validation set is a fraction carved from train.extxyz, never test) in a
subprocess, stops it when the training budget is spent (counted from MACE's "TRAINING" log line, by wall clock or by
the process's CPU time with `--clock cpu`; a run whose budget ends inside its first epoch goes on to the end of it,
so that a checkpoint exists), then reruns the same command with `--restart_latest --max_num_epochs E` so MACE loads
its best checkpoint and writes `mace_ref.model` without training further. Its loss weighs energy per atom and force
components as pd-local's does, by their training-set variances (`--energy_weight var(F)/var(E/atom) --forces_weight
1`; MACE's defaults, 1 and 100, leave the energy almost untrained in a short run). `evaluate` prints a markdown
table (energy RMSE and bias in meV/atom, force-component RMSE in eV/Å over the periodic in-plane components, as
pd-local reports it, and over all three) beside the mean predictor (training mean energy per atom) and the test
forces' std, and writes report.json. The MACE rows of docs/local.md (paper scale):

    .venv/bin/python benchmarks/mace_reference.py export paper_runs/agr_paper --out paper_runs/exp/mace_paper \
        --split-from PD_LOCAL_MODEL     # the pd-local model of `pdmd baseline ... --kinds pd-local`: the same split
    OMP_NUM_THREADS=1 .venv-mace/bin/python benchmarks/mace_reference.py train --out paper_runs/exp/mace_paper \
        --minutes 40
    OMP_NUM_THREADS=1 .venv-mace/bin/python benchmarks/mace_reference.py evaluate --out paper_runs/exp/mace_paper

`--quick` (seconds): `export` of tiny generated data, then, where this interpreter has mace-torch, `train` for a
few seconds and `evaluate`; without mace-torch `evaluate` runs its table on the LAMMPS Tersoff reference instead
of a MACE model (a check of the exported labels: its errors are ~0).

    .venv/bin/python benchmarks/mace_reference.py --quick [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"
NAME = "mace_ref"


# -- export (project venv) ---------------------------------------------------------------------------------------
def export(data: Path, out: Path, split_from: Path | None = None, n_atoms: int = 680, n_large: int = 2720
           ) -> dict[str, Any]:  # fmt: skip
    """Write train/test/large.extxyz and split.json from a pdmd data folder with stored forces.

    `split_from`: a model folder whose card's train/test structure ids are used (the identical split), else
    the seeded run split below; `n_atoms` / `n_large`: cell sizes of the split's and the large-cell structures.
    """
    from ase import Atoms
    from ase.io import write

    from pdmd.models.split import train_test_split
    from pdmd.store.datastore import DataStore

    store = DataStore(data)
    docs = sorted(store.iter_structures(), key=lambda d: (d["run_id"], d["step"]))
    small = [d for d in docs if d["n_atoms"] == n_atoms]
    large = [d for d in docs if d["n_atoms"] == n_large]
    if split_from is not None:
        from pdmd.store.documents import read_card

        card_split = read_card(split_from)["split"]
        where = {d["_id"]: i for i, d in enumerate(small)}
        missing = [s for s in card_split["train_ids"] + card_split["test_ids"] if s not in where]
        if missing:
            raise SystemExit(f"{len(missing)} structures of {split_from}'s split are not {n_atoms}-atom structures "
                             f"in {data}")  # fmt: skip
        train = [where[s] for s in card_split["train_ids"]]
        test = [where[s] for s in card_split["test_ids"]]
        how = f"the train/test ids of model {split_from}"
    else:
        train, test = train_test_split([d["run_id"] for d in small], 0.2, 0, "run")
        how = f'pdmd.models.split.train_test_split(run ids of the {n_atoms}-atom structures, 0.2, 0, "run")'

    def atoms_of(doc: dict) -> Atoms:
        frame = store.load_frame(doc)
        forces = store.load_forces(doc)
        if forces is None:
            raise SystemExit(f"{doc['_id'][:12]} ({doc['run_id']}) has no stored forces: run `pdmd forces {data}`")
        atoms = frame.to_ase()
        atoms.info[ENERGY_KEY] = float(doc["energy_eV_per_atom"]) * doc["n_atoms"]
        atoms.info["pdmd_id"] = doc["_id"]
        atoms.info["run_id"] = doc["run_id"]
        atoms.new_array(FORCES_KEY, np.asarray(forces, float))
        return atoms

    out.mkdir(parents=True, exist_ok=True)
    sets = {"train": [small[i] for i in train], "test": [small[i] for i in test], "large": large}
    for name, subset in sets.items():
        write(out / f"{name}.extxyz", [atoms_of(d) for d in subset], format="extxyz")
    split = {
        "data": str(data.resolve()),
        "split": how,
        "pbc": [bool(p) for p in store.load_frame(small[0]).pbc],
        "train_energy_mean_eV_per_atom": float(np.mean([d["energy_eV_per_atom"] for d in sets["train"]])),
        **{f"{name}_ids": [d["_id"] for d in subset] for name, subset in sets.items()},
        **{f"{name}_runs": sorted({d["run_id"] for d in subset}) for name, subset in sets.items()},
    }
    (out / "split.json").write_text(json.dumps(split, indent=1))
    counts = {name: len(subset) for name, subset in sets.items()}
    print(json.dumps({"out": str(out), "structures": counts, "pbc": split["pbc"]}))
    return split


# -- train (mace venv) -------------------------------------------------------------------------------------------
def mace_command(out: Path, args: argparse.Namespace) -> list[str]:
    """The `mace.cli.run_train` command line (restart flags are added by `train`)."""
    work = out / "mace"
    options = {
        "name": NAME, "seed": args.seed, "work_dir": work, "log_dir": work / "logs", "model_dir": work,
        "checkpoints_dir": work / "checkpoints", "results_dir": work / "results", "train_file": out / "train.extxyz",
        "valid_fraction": args.valid_fraction, "energy_key": ENERGY_KEY, "forces_key": FORCES_KEY, "E0s": "average",
        "model": "MACE", "num_channels": args.channels, "max_L": args.max_L, "max_ell": args.max_ell,
        "r_max": args.r_max, "correlation": args.correlation, "num_interactions": args.interactions,
        "energy_weight": args.energy_weight, "forces_weight": args.forces_weight, "batch_size": args.batch_size,
        "valid_batch_size": args.batch_size, "max_num_epochs": args.max_epochs, "patience": args.max_epochs,
        "eval_interval": 1, "default_dtype": args.dtype, "device": "cpu",
    }  # fmt: skip
    flags = [part for key, value in options.items() for part in (f"--{key}", str(value))]
    return [sys.executable, "-m", "mace.cli.run_train", *flags, "--keep_checkpoints", "--save_cpu",
            *shlex.split(args.mace_args)]  # fmt: skip


def balanced_energy_weight(train_file: Path) -> float:
    """MACE energy weight (forces weight 1) that weighs the two losses as pd-local does: var(F) / var(E per atom)."""
    from ase.io import read

    frames = read(train_file, index=":", format="extxyz")
    e = np.array([a.info[ENERGY_KEY] / len(a) for a in frames])
    f = np.concatenate([np.asarray(a.arrays[FORCES_KEY]).ravel() for a in frames])
    return float(f.var() / max(e.var(), 1e-12))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_until(cmd: list[str], log: Path, env: dict[str, str], stop: Any) -> tuple[int | None, float]:
    """Run `cmd` with output to `log`; `stop(text, pid)` is polled every second and ends it when true.

    Returns the exit code (None if stopped) and the wall seconds.
    """
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while proc.poll() is None:
            time.sleep(1.0)
            try:
                if stop(log.read_text(errors="replace"), proc.pid):
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(60)
                    return None, time.perf_counter() - t0
            except (FileNotFoundError, ProcessLookupError):
                pass
    return proc.returncode, time.perf_counter() - t0


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for path in (out / "mace" / "checkpoints").glob(f"{NAME}_run-*_epoch-*.pt"):
        match = re.search(r"_epoch-(\d+)\.pt$", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def train(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train MACE for `args.minutes` of training time, then have MACE save its best checkpoint as a model."""
    import importlib.metadata as md

    import torch

    if args.energy_weight is None:
        args.energy_weight = round(balanced_energy_weight(out / "train.extxyz"), 1)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    cmd = mace_command(out, args)
    budget_s = args.minutes * 60.0
    mark: dict[str, float] = {}

    def budget_spent(text: str, pid: int) -> bool:
        if "===TRAINING===" not in text:
            return False
        if not mark:
            mark.update(wall=time.perf_counter(), cpu=_cpu_seconds(pid))
        mark["cpu_used"] = _cpu_seconds(pid) - mark["cpu"]
        used = mark["cpu_used"] if args.clock == "cpu" else time.perf_counter() - mark["wall"]
        return used >= budget_s and bool(_checkpoints(out))  # past the budget, wait for a first checkpoint

    (out / "mace").mkdir(parents=True, exist_ok=True)
    print("MACE:", shlex.join(cmd), flush=True)
    code, wall = _run_until(cmd, out / "mace_train.log", env, budget_spent)
    stopped = time.perf_counter()
    text = (out / "mace_train.log").read_text(errors="replace")
    if code not in (None, 0):
        raise SystemExit(f"MACE training failed (exit {code}); see {out / 'mace_train.log'}")
    epochs = sorted({int(e) for e in re.findall(r"Epoch (\d+):", text)})
    ckpts = _checkpoints(out)
    while ckpts:  # a checkpoint cut off by the stop cannot be loaded: fall back to the one before
        try:
            torch.load(ckpts[-1][1], map_location="cpu", weights_only=False)
            break
        except Exception:
            ckpts.pop()[1].unlink()
    if not ckpts:
        raise SystemExit("no usable MACE checkpoint: give it a larger budget")
    best_epoch = ckpts[-1][0]
    final_cmd = [*cmd, "--restart_latest", "--max_num_epochs", str(best_epoch)]
    model = out / "mace" / f"{NAME}.model"
    if code is None:  # stopped at the budget: let MACE load the best checkpoint and save the model, no training
        model.unlink(missing_ok=True)
        print("MACE finalise:", shlex.join(final_cmd), flush=True)
        _, final_wall = _run_until(
            final_cmd, out / "mace_finalise.log", env, lambda t, _pid: "Computing metrics" in t and model.exists()
        )
    else:
        final_wall = 0.0
    if not model.exists():
        raise SystemExit(f"MACE wrote no {model}; see {out / 'mace_finalise.log'}")
    train_s = (stopped - mark["wall"]) if mark else wall
    meta = {
        "mace_command": shlex.join(cmd),
        "mace_finalise_command": shlex.join(final_cmd) if code is None else None,
        "versions": {p: md.version(p) for p in ("mace-torch", "torch", "e3nn", "ase", "numpy")},
        "threads": args.threads,
        "budget_minutes": args.minutes,
        "budget_clock": args.clock,
        "stopped_at_budget": code is None,
        "epochs_completed": len(epochs),
        "best_epoch": best_epoch,
        "training_wall_s": train_s,
        "training_cpu_s": mark.get("cpu_used"),
        "wall_s_per_epoch": train_s / max(len(epochs), 1),
        "cpu_s_per_epoch": (mark["cpu_used"] / max(len(epochs), 1)) if "cpu_used" in mark else None,
        "process_wall_s": wall,
        "finalise_wall_s": final_wall,
        "model": str(model),
        "dtype": args.dtype,
        "energy_weight": args.energy_weight,
        "forces_weight": args.forces_weight,
    }
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta, indent=1))
    return meta


# -- evaluate (mace venv) ----------------------------------------------------------------------------------------
def _predict(calc: Any, path: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray], Any]:
    from ase.io import read

    frames = read(path, index=":", format="extxyz")
    n = np.array([len(a) for a in frames])
    e_ref = np.array([a.info[ENERGY_KEY] for a in frames]) / n
    f_ref = [np.asarray(a.arrays[FORCES_KEY]) for a in frames]
    e_pred, f_pred = [], []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        e_pred.append(atoms.get_potential_energy() / len(atoms))
        f_pred.append(atoms.get_forces())
    return e_ref, np.array(e_pred), f_ref, f_pred, frames[0].pbc


def _force_stats(ref: list[np.ndarray], pred: list[np.ndarray], axes: list[int]) -> dict[str, float]:
    r = np.concatenate([f[:, axes].ravel() for f in ref])
    p = np.concatenate([f[:, axes].ravel() for f in pred])
    rmse, std = float(np.sqrt(np.mean((p - r) ** 2))), float(r.std())
    return {"rmse_eV_per_A": rmse, "std_eV_per_A": std, "rmse_over_std": rmse / max(std, 1e-12)}


def evaluate(out: Path, threads: int, calc: Any = None, label: str = "MACE") -> dict[str, Any]:
    """Energy and force errors of the trained model (or of `calc`, an ASE calculator named `label`) on test.extxyz
    and large.extxyz, as a table and report.json.
    """
    import torch

    torch.set_num_threads(threads)
    meta = json.loads((out / "train_meta.json").read_text())
    split = json.loads((out / "split.json").read_text())
    if calc is None:
        from mace.calculators import MACECalculator

        calc = MACECalculator(model_paths=meta["model"], device="cpu", default_dtype=meta["dtype"])
    mean = split["train_energy_mean_eV_per_atom"]
    report: dict[str, Any] = {"train": {k: meta[k] for k in meta if k != "mace_finalise_command"}}
    for name in ("test", "large"):
        t0 = time.perf_counter()
        e_ref, e_pred, f_ref, f_pred, pbc = _predict(calc, out / f"{name}.extxyz")
        in_plane = [k for k in range(3) if pbc[k]] if not all(pbc) and any(pbc) else [0, 1, 2]
        report[name] = {
            "n_structures": len(e_ref),
            "n_atoms": len(f_ref[0]),
            "energy_rmse_meV_per_atom": float(np.sqrt(np.mean((e_pred - e_ref) ** 2)) * 1000),
            "energy_bias_meV_per_atom": float(np.mean(e_pred - e_ref) * 1000),
            "mean_predictor_rmse_meV_per_atom": float(np.sqrt(np.mean((mean - e_ref) ** 2)) * 1000),
            "energy_std_meV_per_atom": float(e_ref.std() * 1000),
            "force_axes": "".join("xyz"[k] for k in in_plane),
            "forces": _force_stats(f_ref, f_pred, in_plane),
            "forces_xyz": _force_stats(f_ref, f_pred, [0, 1, 2]),
            "predict_s": time.perf_counter() - t0,
        }
    t, big = report["test"], report["large"]
    mp = "mean_predictor_rmse_meV_per_atom"
    n, n_big = f"{t['n_atoms']:,}", f"{big['n_atoms']:,}"
    rows = [
        (f"energy RMSE, test {n}-atom (meV/atom)", t["energy_rmse_meV_per_atom"], t[mp]),
        (f"energy bias, test {n}-atom (meV/atom)", t["energy_bias_meV_per_atom"], None),
        (f"energy RMSE, {n_big}-atom (meV/atom)", big["energy_rmse_meV_per_atom"], big[mp]),
        (f"energy bias, {n_big}-atom (meV/atom)", big["energy_bias_meV_per_atom"], None),
        (f"force RMSE {t['force_axes']}, test (eV/Å)", t["forces"]["rmse_eV_per_A"], t["forces"]["std_eV_per_A"]),
        ("force RMSE xyz, test (eV/Å)", t["forces_xyz"]["rmse_eV_per_A"], t["forces_xyz"]["std_eV_per_A"]),
        (f"force RMSE {big['force_axes']}, {n_big}-atom (eV/Å)", big["forces"]["rmse_eV_per_A"],
         big["forces"]["std_eV_per_A"]),
    ]  # fmt: skip
    lines = [
        f"{label}: MACE {meta['versions']['mace-torch']} (torch {meta['versions']['torch']}), "
        f"{meta['epochs_completed']} epochs in {meta['training_wall_s'] / 60:.1f} min wall "
        f"({meta['wall_s_per_epoch']:.0f} s/epoch), budget {meta['budget_minutes']} min ({meta['budget_clock']})",
        "",
        f"| quantity | {label} | mean predictor / std |",
        "| --- | ---: | ---: |",
        *(f"| {q} | {v:.3f} | {'' if ref is None else f'{ref:.3f}'} |" for q, v, ref in rows),
        f"| force RMSE / std, test | {t['forces']['rmse_over_std']:.3f} | |",
    ]
    table = "\n".join(lines)
    print(table)
    report["table_markdown"] = table
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(table + "\n")
    return report


def quick(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Export, train (a few seconds) and evaluate on the tiny data set; without mace-torch, evaluate the export
    against the LAMMPS Tersoff reference that labelled it.
    """
    import importlib.util

    from _quick import QUICK_ATOMS, QUICK_LARGE_ATOMS, output_folder, quick_data

    out = output_folder(args.quick_out, "mace-ref")
    export(quick_data(args.quick_data), out, None, QUICK_ATOMS, QUICK_LARGE_ATOMS)
    if importlib.util.find_spec("mace") is not None:
        defaults = parser.parse_args(["train", "--out", str(out), "--minutes", "0.05", "--channels", "8",
                                      "--max-epochs", "2"])  # fmt: skip
        train(out, defaults)
        evaluate(out, 1)
        return
    import torch

    from pdmd.calculator import ReferencePotential

    print("mace-torch is not installed here: evaluate runs on the LAMMPS Tersoff reference (errors should be ~0)")
    versions = {"mace-torch": "absent", "torch": torch.__version__}
    meta = {"model": "tersoff1989", "dtype": "float64", "versions": versions, "epochs_completed": 0,
            "training_wall_s": 0.0, "wall_s_per_epoch": 0.0, "budget_minutes": 0, "budget_clock": "wall"}  # fmt: skip
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    reference = ReferencePotential("tersoff1989", dim=2)
    try:
        evaluate(out, 1, reference, "tersoff1989 (stand-in)")
    finally:
        reference.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="export, train and evaluate on tiny data, in seconds (tests)")
    p.add_argument("--quick-data", type=Path, metavar="DIR", help="with --quick: the tiny data set (made if missing)")
    p.add_argument("--out", dest="quick_out", type=Path, metavar="DIR", help="with --quick: the output folder")
    sub = p.add_subparsers(dest="step")
    e = sub.add_parser("export", help="data folder -> extxyz + split.json (project venv)")
    e.add_argument("data", type=Path)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--split-from", dest="split_from", type=Path, help="a model folder: use its card's train/test ids")
    e.add_argument("--atoms", type=int, default=680, help="cell size of the split's structures")
    e.add_argument("--large-atoms", type=int, default=2720, help="cell size of the large-cell structures")
    t = sub.add_parser("train", help="train MACE within a time budget (mace venv)")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--minutes", type=float, default=12.0, help="training budget, from MACE's first epoch on")
    t.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="count the budget in wall or CPU time")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--channels", type=int, default=32)
    t.add_argument("--max-L", dest="max_L", type=int, default=0)
    t.add_argument("--max-ell", dest="max_ell", type=int, default=3)
    t.add_argument("--r-max", dest="r_max", type=float, default=4.0)
    t.add_argument("--correlation", type=int, default=2)
    t.add_argument("--interactions", type=int, default=2)
    t.add_argument("--batch-size", type=int, default=4)
    t.add_argument(
        "--energy-weight", type=float, default=None, help="MACE --energy_weight; default var(F)/var(E/atom) of train"
    )
    t.add_argument("--forces-weight", type=float, default=1.0, help="MACE --forces_weight")
    t.add_argument("--valid-fraction", type=float, default=0.1)
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t.add_argument("--max-epochs", type=int, default=10000, help="upper bound; the budget normally ends training")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--mace-args", default="", help="more arguments for mace.cli.run_train, e.g. '--lr 0.005'")
    v = sub.add_parser("evaluate", help="RMSE table on test.extxyz and large.extxyz (mace venv)")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.quick:
        quick(p, args)
    elif args.step is None:
        p.error("give a step (export, train, evaluate) or --quick")
    elif args.step == "export":
        export(args.data, args.out, args.split_from, args.atoms, args.large_atoms)
    elif args.step == "train":
        train(args.out, args)
    else:
        evaluate(args.out, args.threads)


if __name__ == "__main__":
    main()
