# SPDX-License-Identifier: GPL-3.0-or-later
r"""Compare `pdmd md` runs: drift and largest total-energy change per run, and one PNG of them all.

    python benchmarks/md_energy_compare.py RUN.csv:LABEL [RUN.csv:LABEL ...] --out compare.png [--ps T]

Each CSV is the log `pdmd md` writes beside its trajectory (time ps, potential and kinetic energy eV/atom,
temperature K). `--ps T` uses only the first T ps of every run (runs of different length compared alike).
Prints a markdown table: drift (slope of a straight-line fit, meV/atom/ps), max |E_tot − E_tot(0)|
(meV/atom), mean T (K) and the time covered (ps). The timestep figure of docs/local.md (NVE of a 680-atom sheet,
Tersoff and pd-local at several timesteps, each run by `pdmd md ... --ensemble nve --out NAME.extxyz`):

    python benchmarks/md_energy_compare.py tersoff_nve680_1fs.csv:"Tersoff 1 fs" … \
        nve680_05fs_5ps.csv:"pd-local 0.5 fs" --out docs/figures/agr680_nve_timestep.png
    python benchmarks/md_energy_compare.py --quick [--out compare.png]   # seconds: 20 Tersoff NVE steps at 1 and 0.5 fs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _quick import QUICK_ATOMS, add_quick_arguments, output_folder, quick_data

from pdmd.dynamics.ase_engine import MDResult
from pdmd.models.plots import md_energy_plot


def quick_runs(data: Path, folder: Path) -> list[str]:
    """Two short `pdmd md` runs of the reference (Tersoff NVE, 20 steps at 1 and 0.5 fs) from a stored relaxed
    sheet of the tiny data set; their CSV:LABEL items.
    """
    from ase.io import write

    from pdmd.dynamics.ase_engine import run_md_file
    from pdmd.store.datastore import DataStore

    store = DataStore(data)
    final = next(d for d in store.iter_structures() if d["kind"] == "final" and d["n_atoms"] == QUICK_ATOMS)
    start = folder / "start.extxyz"
    write(start, store.load_frame(final).to_ase())
    items = []
    for fs in (1.0, 0.5):
        out = folder / f"tersoff_nve{QUICK_ATOMS}_{fs:g}fs.extxyz"
        run_md_file("tersoff1989", start, out, temperature_K=300.0, steps=20, timestep_fs=fs, ensemble="nve", every=2)
        items.append(f"{out.with_suffix('.csv')}:Tersoff {fs:g} fs")
    return items


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="CSV:LABEL (the label is optional)")
    p.add_argument("--out", type=Path, help="PNG to write (required unless --quick)")
    p.add_argument("--ps", type=float, help="compare only the first PS picoseconds of each run")
    add_quick_arguments(p)
    args = p.parse_args()
    if args.quick:
        folder = output_folder(None if args.out is None else args.out.parent, "md-compare")
        args.runs, args.out = quick_runs(quick_data(args.quick_data), folder), args.out or folder / "compare.png"
    elif not args.runs or args.out is None:
        p.error("give CSV logs and --out (or --quick)")
    series = {}
    print("| run | time (ps) | drift (meV/atom/ps) | max \\|ΔE_tot\\| (meV/atom) | mean T (K) |")
    print("|---|---|---|---|---|")
    for item in args.runs:
        path, label = (item, "") if Path(item).is_file() or ":" not in item else item.rpartition(":")[::2]
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such CSV log (give CSV or CSV:LABEL)")
        r = MDResult.from_csv(path)
        if args.ps is not None:
            keep = r.time_ps <= args.ps + 1e-9
            if keep.sum() < 2:
                raise SystemExit(f"{path}: fewer than 2 logged points within the first {args.ps} ps")
            r = MDResult(r.time_ps[keep], r.potential_eV_per_atom[keep], r.kinetic_eV_per_atom[keep],
                         r.temperature_K[keep], 0, 0.0, None, path)  # fmt: skip
        label = label or Path(path).stem
        series[label] = (r.time_ps, r.total_eV_per_atom, r.temperature_K)
        print(f"| {label} | {r.time_ps[-1]:.2f} | {r.drift_meV_per_atom_per_ps():.3f} | "
              f"{r.max_deviation_meV_per_atom():.2f} | {np.mean(r.temperature_K):.0f} |")  # fmt: skip
    print(f"plot: {md_energy_plot(args.out, series)}")


if __name__ == "__main__":
    main()
