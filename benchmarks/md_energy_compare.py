# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare `pdmd md` runs: drift and largest total-energy change per run, and one PNG of them all.

    python benchmarks/md_energy_compare.py RUN.csv:LABEL [RUN.csv:LABEL ...] --out compare.png [--ps T]

Each CSV is the log `pdmd md` writes beside its trajectory (time ps, potential and kinetic energy eV/atom,
temperature K). `--ps T` uses only the first T ps of every run (runs of different length compared alike).
Prints a markdown table: drift (slope of a straight-line fit, meV/atom/ps), max |E_tot − E_tot(0)|
(meV/atom), mean T (K) and the time covered (ps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pdmd.dynamics.ase_engine import MDResult
from pdmd.models.plots import md_energy_plot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="CSV:LABEL (the label is optional)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--ps", type=float, help="compare only the first PS picoseconds of each run")
    args = p.parse_args()
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
