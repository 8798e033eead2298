# SPDX-License-Identifier: GPL-3.0-or-later
r"""Where the 4×-cell (2,720-atom) bias comes from: boundary × normalization × structure kind × energy range.

    nice -n 5 .venv/bin/python benchmarks/size_transfer.py paper_runs/agr_demo --plan agr-demo \
        [--seed 0] [--cache /tmp/pdmd_size_transfer] [--cnn-minutes 2]

Data: the plan's training runs (680 atoms), split by run (20 % of runs, `--seed`, as `pdmd train`),
and its 4× larger validation runs. Three diagram settings: periodic (stored, `homcloud-h1-0-4-128`),
periodic + bulk pair (`pdmd.descriptor.bulk.bulk_pairs`: the one finite pair per cell the torus hides)
and open (`DescriptorSpec.for_system(system, periodic=False)`, computed here and cached under `--cache`).

Probe: pd-kernel's kernel ridge (`pdmd.models.kernel.pd_kernel`) on each vectorization, kernel / g / α chosen by
its grouped CV on the training runs only (the larger cells never choose anything). Per row: CV, train,
test and larger-cell RMSE (meV/atom), the larger cells' bias (prediction − reference) and that bias
split by structure kind (relaxed final states vs MD snapshots) and by whether the energy lies inside
the training energy range. `*` marks what `pdmd train --model pd-kernel` would pick (lowest CV).

Controls (second table, vectorization pi σ0.3 with either normalization): (1) the same fit predicting the
test structures repeated 2×2 (the same structures and energies at 4× the atoms: a pure size test of
descriptor + model), (2) the pair count per atom as an extra feature block, (3) an energy-extrapolation
test at the training size: the lowest-energy 680-atom final states held out (whole runs) as far below the
remaining training range as the 4× finals lie below the full one, (4) training on relaxed final states
only. `--cnn-minutes M` (0: skip) adds the paper's CNN (`train_model("pd-cnn")`, one thread,
M minutes, the card's min-max standardization) for each diagram setting. The bias tables of docs/models.md
(demo data):

    nice -n 5 .venv/bin/python benchmarks/size_transfer.py paper_runs/agr_demo --plan agr-demo
    .venv/bin/python benchmarks/size_transfer.py --quick     # seconds: tiny generated data, 2 probes, one kernel
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from _quick import add_quick_arguments, output_folder, resolve_data

from pdmd.campaign import plan_descriptor
from pdmd.descriptor.bulk import bulk_pairs, repeat_cell
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.files import read_npz, write_npz_atomic
from pdmd.models.data import ModelData, data_from_structures
from pdmd.models.kernel import pd_kernel as K
from pdmd.models.labelled import LabelledStructures, load_structures
from pdmd.models.plots import rmse_meV
from pdmd.models.split import train_test_split
from pdmd.progress import ProgressLog
from pdmd.store.datastore import DataStore

log = logging.getLogger("size_transfer")

PROBE_VECTORIZATIONS = K.DEFAULT_VECTORIZATIONS + ({"method": "pi", "bins": 32, "sigma_A2": 0.3, "norm": "pairs"},)


@dataclass
class Sets:
    """Training-size data (680 atoms) and larger cells of one descriptor setting, with the structure kinds."""

    name: str
    small: ModelData
    large: ModelData
    small_kind: np.ndarray  # "final" / "intermediate"
    large_kind: np.ndarray
    tiled: ModelData  # the small test structures repeated 2×2 (`repeat_cell`)
    six_rings: tuple[np.ndarray, np.ndarray]  # fraction of 6-rings of each small / large structure


def structure_docs(store: DataStore, groups: list[str], ids: list[str]) -> list[dict]:
    """The stored structure document of each id (kind final / intermediate, ring statistics)."""
    docs = {d["_id"]: d for run in sorted(set(groups)) for d in store.run_structures(run)}
    return [docs[i] for i in ids]


def cached_diagrams(structures, spec: DescriptorSpec, cache: Path) -> tuple[ModelData, list[np.ndarray]]:
    """ModelData with the finite pairs of every structure under `spec` and the essential births (Å²) of each,
    computed once and kept in `cache`.
    """
    data = data_from_structures(structures, spec, set())
    folder = cache / spec.id
    folder.mkdir(parents=True, exist_ok=True)
    births, deaths, essential = [], [], []
    progress = ProgressLog(len(data), f"diagrams {spec.id}", log)
    for frame, sid in zip(structures.frames, data.ids):
        path = folder / f"{sid}.npz"
        if not path.is_file():
            d = spec.diagram(frame, sid)
            arrays = {"births_A2": d.births_A2, "deaths_A2": d.deaths_A2, "essential_births_A2": d.essential_births_A2}
            write_npz_atomic(path, **arrays)
        arrays = read_npz(path)
        births.append(np.asarray(arrays["births_A2"], float))
        deaths.append(np.asarray(arrays["deaths_A2"], float))
        essential.append(np.asarray(arrays["essential_births_A2"], float))
        progress.step()
    data.births_A2, data.deaths_A2 = births, deaths
    return data, essential


def stored_diagrams(structures, spec: DescriptorSpec, store: DataStore) -> tuple[ModelData, list[np.ndarray]]:
    """ModelData with the stored finite pairs of `spec`, and the stored essential births (Å²) of each structure."""
    data = data_from_structures(structures, spec, {"diagrams"}, store)
    essential = [np.asarray(store.load_descriptor_arrays(store.find_descriptor(i, spec.id))["essential_births_A2"],
                            float) for i in data.ids]  # fmt: skip
    return data, essential


def with_bulk_pair(data: ModelData, essential: list[np.ndarray]) -> ModelData:
    """Each periodic 2D diagram plus the one pair per cell its torus classes hide (`pdmd.descriptor.bulk`)."""
    pairs = [bulk_pairs(b, d, e) for b, d, e in zip(data.births_A2, data.deaths_A2, essential)]
    return replace(data, births_A2=[b for b, _ in pairs], deaths_A2=[d for _, d in pairs])


def load_sets(data_dir: Path, plan: str, cache: Path, seed: int = 0) -> list[Sets]:
    """Periodic (stored) and open (computed, cached) diagrams of the plan's training and validation structures,
    and of the test structures of the run split (`seed`) tiled 2×2 (computed, cached).
    """
    store = DataStore(data_dir)
    small, large = load_structures(data_dir, plan), load_structures(data_dir, plan, validation=True)
    te = train_test_split(small.groups, 0.2, seed, "run")[1]
    tiles = LabelledStructures(
        [repeat_cell(small.frames[i], (2, 2)) for i in te],
        small.energies_eV[te],
        [small.groups[i] for i in te],
        [f"{small.ids[i]}-2x2" for i in te],
        small.system,
    )
    periodic = plan_descriptor(plan)
    opened = DescriptorSpec.for_system(periodic.system, periodic=False)
    docs = structure_docs(store, small.groups, small.ids), structure_docs(store, large.groups, large.ids)
    kinds = [np.asarray([d["kind"] for d in ds]) for ds in docs]
    six = tuple(np.asarray([d["network"]["ring_fractions"].get("6", 0.0) for d in ds]) for ds in docs)
    out = []
    for name, spec in (("periodic", periodic), ("open", opened)):
        if spec.periodic:
            (s, es), (big, eb) = (stored_diagrams(x, spec, store) for x in (small, large))
        else:
            (s, es), (big, eb) = (cached_diagrams(x, spec, cache) for x in (small, large))
        tile, et = cached_diagrams(tiles, spec, cache)
        out.append(Sets(name, s, big, kinds[0], kinds[1], tile, six))
        if spec.periodic:
            out.append(Sets(f"{name} + bulk pair", with_bulk_pair(s, es), with_bulk_pair(big, eb), kinds[0], kinds[1],
                            with_bulk_pair(tile, et), six))  # fmt: skip
    return out


def pairs_per_atom(data: ModelData) -> np.ndarray:
    return np.asarray([len(b) / n for b, n in zip(data.births_A2, data.n_atoms)], float)


@dataclass
class Probe:
    """One kernel ridge fit: CV choice, and predictions (eV/atom) of the training-size and larger structures."""

    cv_meV: float
    kernel: str
    best: dict
    pred_small: np.ndarray
    pred_large: np.ndarray


def probe(
    blocks_small: list[np.ndarray],
    blocks_large: list[np.ndarray],
    standardize: list[bool],
    y: np.ndarray,
    groups: list[str],
    fit_idx: np.ndarray,
    grid: K.KernelGrid,
    seed: int,
) -> Probe:
    """Kernel ridge on feature blocks, chosen by grouped CV on `fit_idx` only; predicts every row of both sets."""
    mean, std = float(y[fit_idx].mean()), float(y[fit_idx].std())
    z = (y[fit_idx] - mean) / std
    cv = K.cross_validate([b[fit_idx] for b in blocks_small], standardize, z, [groups[i] for i in fit_idx], grid,
                          seed)  # fmt: skip
    fit = K.KernelRidgeFit.fit([b[fit_idx] for b in blocks_small], standardize, z, cv.best)
    return Probe(1000 * std * cv.best_rmse, cv.best["kernel"], cv.best, fit.predict(blocks_small) * std + mean,
                 fit.predict(blocks_large) * std + mean)  # fmt: skip


def bias_meV(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> str:
    return f"{1000 * (pred[mask] - ref[mask]).mean():+.1f}" if mask.any() else "–"


def describe_data(sets: list[Sets], tr: np.ndarray) -> None:
    """Energy ranges by size and kind, and H1 pairs per atom of both boundary settings (the inputs' size shift)."""
    s0 = sets[0]
    y, yl = s0.small.energies_eV, s0.large.energies_eV
    print(f"training energy range {y[tr].min():.4f} … {y[tr].max():.4f} eV/atom ({len(tr)} structures)")
    print("| structures | n | energy min … max (mean), eV/atom | 6-ring fraction | "
          + " | ".join(f"{s.name} pairs/atom" for s in sets) + " |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(sets))
    rows = (("680 final", s0.small_kind, y, "small"), ("680 snapshot", s0.small_kind, y, "small"),
            ("2,720 final", s0.large_kind, yl, "large"), ("2,720 snapshot", s0.large_kind, yl, "large"))  # fmt: skip
    for label, kinds, e, which in rows:
        m = kinds == ("final" if "final" in label else "intermediate")
        ppa = [pairs_per_atom(getattr(s, which))[m].mean() for s in sets]
        six = s0.six_rings[0 if which == "small" else 1][m].mean()
        print(f"| {label} | {m.sum()} | {e[m].min():.4f} … {e[m].max():.4f} ({e[m].mean():.4f}) | {six:.3f} | "
              + " | ".join(f"{p:.4f}" for p in ppa) + " |")  # fmt: skip
    # pairs per atom against energy, per kind: does the larger cells' count follow the 680-atom line?
    for s in sets:
        ppa, ppl = pairs_per_atom(s.small), pairs_per_atom(s.large)
        parts = []
        for kind in ("final", "intermediate"):
            m, ml = s.small_kind == kind, s.large_kind == kind
            coef = np.polyfit(y[m], ppa[m], 1)
            resid = ppl[ml] - np.polyval(coef, yl[ml])
            scatter = (ppa[m] - np.polyval(coef, y[m])).std()
            parts.append(
                f"{kind}: 2,720-atom offset from the 680-atom fit {resid.mean():+.4f} (680 scatter {scatter:.4f})"
            )
        print(f"{s.name} pairs/atom vs energy — " + "; ".join(parts))
    print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", help="the plan of DATA (required unless --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, help="open diagrams and CNN models (default: TMPDIR/pdmd_size_transfer)")
    p.add_argument("--probes", type=int, help="only the first K vectorizations of the main table (default: all)")
    p.add_argument("--cnn-minutes", type=float, default=0.0, help="paper CNN per boundary setting (0: skip)")
    p.add_argument("--kernels", nargs="+", default=list(K.KERNELS))
    p.add_argument("--parts", nargs="*", default=["main", "controls"], choices=["main", "controls"],
                   help="which pd-kernel tables (none: only the CNN rows of --cnn-minutes)")  # fmt: skip
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    if args.quick:  # every table, with 2 vectorizations and the RBF kernel; open diagrams in a temporary cache
        args.kernels, args.probes, args.cache = ["rbf"], 2, output_folder(args.cache, "size-transfer")
    elif args.plan is None:
        p.error("--plan is required")
    args.cache = args.cache or Path(tempfile.gettempdir()) / "pdmd_size_transfer"
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    sets = load_sets(args.data, args.plan, args.cache, args.seed)
    s0 = sets[0]
    tr, te = train_test_split(s0.small.groups, 0.2, args.seed, "run")
    y, yl = s0.small.energies_eV, s0.large.energies_eV
    lo, hi = y[tr].min(), y[tr].max()
    inside = (yl >= lo) & (yl <= hi)
    final_l = s0.large_kind == "final"
    mp = rmse_meV(np.full(len(te), y[tr].mean()), y[te]), rmse_meV(np.full(len(yl), y[tr].mean()), yl)
    print(f"{len(tr)} train / {len(te)} test / {len(yl)} larger-cell structures ({final_l.sum()} final, "
          f"{(~inside).sum()} outside the training energy range); mean predictor: test {mp[0]:.1f}, "
          f"larger cells {mp[1]:.1f} meV/atom")  # fmt: skip
    describe_data(sets, tr)
    grid = K.KernelGrid(kernels=tuple(args.kernels))
    head = ("| boundary | vectorization | kernel | CV | train | test | 2,720 RMSE | 2,720 bias | bias final "
            f"({final_l.sum()}) | bias snapshot ({(~final_l).sum()}) | bias in range ({inside.sum()}) | "
            f"bias below range ({(~inside).sum()}) | test bias final / snapshot |")  # fmt: skip
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    final_s = s0.small_kind == "final"
    te_final, te_snap = te[final_s[te]], te[~final_s[te]]
    for s in sets if "main" in args.parts else []:
        groups = s.small.groups
        rows = []
        for raw in PROBE_VECTORIZATIONS[: args.probes]:
            vec = K.fit_vectorization(raw, [s.small.births_A2[i] for i in tr], [s.small.deaths_A2[i] for i in tr],
                                      s.small.descriptor)  # fmt: skip
            x, xl = K.pd_features(vec, s.small), K.pd_features(vec, s.large)
            r = probe([x], [xl], [False], y, groups, tr, grid, args.seed)
            rows.append((K.describe(vec), r))
        best = min(range(len(rows)), key=lambda i: rows[i][1].cv_meV)
        for i, (label, r) in enumerate(rows):
            ps, pl = r.pred_small, r.pred_large
            cells = [f"{r.cv_meV:.1f}", f"{rmse_meV(ps[tr], y[tr]):.1f}", f"{rmse_meV(ps[te], y[te]):.1f}",
                     f"{rmse_meV(pl, yl):.1f}", bias_meV(pl, yl, np.ones(len(yl), bool)), bias_meV(pl, yl, final_l),
                     bias_meV(pl, yl, ~final_l), bias_meV(pl, yl, inside), bias_meV(pl, yl, ~inside),
                     f"{bias_meV(ps[te_final], y[te_final], np.ones(len(te_final), bool))} / "
                     f"{bias_meV(ps[te_snap], y[te_snap], np.ones(len(te_snap), bool))}"]  # fmt: skip
            mark = "*" if i == best else ""
            print(f"| {s.name} | {label}{mark} | {r.kernel} | " + " | ".join(cells) + " |", flush=True)
    print(
        f"\n(* lowest CV RMSE of that boundary setting: what `pdmd train --model pd-kernel` picks; "
        f"{time.perf_counter() - t0:.0f} s so far)\n"
    )
    if "controls" in args.parts:
        controls(sets, tr, te, grid, args.seed)
    if args.cnn_minutes > 0:
        cnn_rows(sets, tr, te, args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def controls(sets: list[Sets], tr: np.ndarray, te: np.ndarray, grid: K.KernelGrid, seed: int) -> None:
    """Extra features, training subsets and tiled cells, with the pd-kernel probe (pi σ0.3, atoms / pairs)."""
    s0 = sets[0]
    y, yl = s0.small.energies_eV, s0.large.energies_eV
    final_s, final_l = s0.small_kind == "final", s0.large_kind == "final"
    # energy-extrapolation control at the training size: hold out whole training runs whose final state lies
    # below a threshold set so the held-out finals reach as far below the remaining range as the 4× finals do
    depth = y[tr].min() - yl[final_l].min()  # eV/atom below the training range
    tr_final = tr[final_s[tr]]
    order = np.sort(y[tr_final])
    cut = next(e for e in order[1:] if e - order[0] >= depth)  # the first final at least `depth` above the lowest
    low_runs = {s0.small.groups[i] for i in tr_final if y[i] < cut}
    keep = np.asarray([i for i in tr if s0.small.groups[i] not in low_runs])
    held = np.asarray([i for i in tr if s0.small.groups[i] in low_runs and final_s[i]])
    print(f"control 'low-energy runs held out': {len(low_runs)} training runs whose final state is below {cut:.4f} "
          f"eV/atom; their finals lie {1000 * (y[keep].min() - y[held].min()):.0f} meV/atom below the remaining "
          f"training range (4× finals: {1000 * depth:.0f} below the full one)")  # fmt: skip
    print("| boundary | vectorization | probe (kernel) | CV | test | test bias | 2,720 RMSE | 2,720 bias | "
          "bias final | bias snapshot | probe's own check |")  # fmt: skip
    print("|---" * 11 + "|")
    ones = np.ones(len(yl), bool)
    for s in sets:
        count, count_l = pairs_per_atom(s.small)[:, None], pairs_per_atom(s.large)[:, None]
        weighted = K.KernelGrid(
            grid.kernels, grid.gammas, grid.alphas, ((1.0, 0.0), (1.0, 0.1), (1.0, 0.3), (1.0, 1.0))
        )
        for norm in ("atoms", "pairs"):
            raw = {"method": "pi", "bins": 32, "sigma_A2": 0.3, "norm": norm}
            vec = K.fit_vectorization(raw, [s.small.births_A2[i] for i in tr], [s.small.deaths_A2[i] for i in tr],
                                      s.small.descriptor)  # fmt: skip
            x, xl = K.pd_features(vec, s.small), K.pd_features(vec, s.large)
            cases = [
                ("2×2-tiled test cells", [x], [xl], [False], tr, grid),
                ("+ pairs/atom block", [x, count], [xl, count_l], [False, True], tr, weighted),
                ("low-energy runs held out", [x], [xl], [False], keep, grid),
                ("final states only", [x], [xl], [False], tr_final, grid),
            ]
            for label, b, bl, std, fit_idx, g in cases:
                r = probe(b, bl, std, y, s.small.groups, fit_idx, g, seed)
                ps, pl = r.pred_small, r.pred_large
                t = te[final_s[te]] if label == "final states only" else te
                own = "–"
                if label == "low-energy runs held out":
                    own = f"held-out 680 finals {rmse_meV(ps[held], y[held]):.1f} "
                    own += f"({bias_meV(ps[held], y[held], held >= 0)})"
                if label == "2×2-tiled test cells":
                    fit = K.KernelRidgeFit.fit([x[tr]], [False], (y[tr] - y[tr].mean()) / y[tr].std(), r.best)
                    pt = fit.predict([K.pd_features(vec, s.tiled)]) * y[tr].std() + y[tr].mean()
                    shift = 1000 * (pt - ps[te])
                    own = (
                        f"tiled − untiled {shift.mean():+.2f} (max abs {np.abs(shift).max():.2f}); tiled RMSE "
                        f"{rmse_meV(pt, y[te]):.1f}"
                    )
                cells = [f"{r.cv_meV:.1f}", f"{rmse_meV(ps[t], y[t]):.1f}", bias_meV(ps[t], y[t], t >= 0),
                         f"{rmse_meV(pl, yl):.1f}", bias_meV(pl, yl, ones), bias_meV(pl, yl, final_l),
                         bias_meV(pl, yl, ~final_l), own]  # fmt: skip
                print(
                    f"| {s.name} | {K.describe(vec)} | {label} ({r.kernel}) | " + " | ".join(cells) + " |", flush=True
                )
    print("(final states only: test columns over the test finals; tiled: same fit as the main table's row)")


def cnn_rows(sets: list[Sets], tr: np.ndarray, te: np.ndarray, args) -> None:
    """The paper's CNN (capped at `--cnn-minutes`) on the periodic and the open histogram images."""
    from pdmd.descriptor.histogram import pd_histogram
    from pdmd.models.training import train_model, validate_model

    print("\n| diagrams | model | train | test | 2,720 RMSE | 2,720 bias | bias final | bias snapshot | epochs |")
    print("|---" * 9 + "|")
    for s in sets:
        for d in (s.small, s.large):
            d.images = np.stack([pd_histogram(b, e, d.descriptor.histogram).image
                                 for b, e in zip(d.births_A2, d.deaths_A2)]).astype(np.float32)  # fmt: skip
        tag = s.name.replace(" + ", "+").replace(" ", "-")
        out = args.cache / "models" / f"cnn-{tag}-seed{args.seed}-{args.cnn_minutes:g}min"
        opts = {"train": {"threads": 1, "max_minutes": args.cnn_minutes}}
        card = train_model("pd-cnn", s.small, out, f"size-transfer-cnn-{tag}", split_indices=(tr, te),
                           seed=args.seed, options=opts)  # fmt: skip
        validate_model(out, s.large)
        from pdmd.models.registry import load_model
        from pdmd.models.training import predict_data

        pl = predict_data(load_model(out), s.large)
        yl = s.large.energies_eV
        final_l = s.large_kind == "final"
        m = card["metrics"]
        print(f"| {s.name} | pd-cnn ({args.cnn_minutes:g} min) | {m['train_rmse_meV_per_atom']:.1f} | "
              f"{m['test_rmse_meV_per_atom']:.1f} | {rmse_meV(pl, yl):.1f} | "
              f"{bias_meV(pl, yl, np.ones(len(yl), bool))} | {bias_meV(pl, yl, final_l)} | "
              f"{bias_meV(pl, yl, ~final_l)} | {m['epochs_run']} (best {m['best_epoch']}) |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
