# SPDX-License-Identifier: GPL-3.0-or-later
"""Commands of the local potential: md (MD with a pd-local model or the LAMMPS reference), forces (reference forces)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pdmd.cli.common import command
from pdmd.errors import InputError


def cmd_md(args: argparse.Namespace) -> int:
    from pdmd.cli.inputs import read_options
    from pdmd.models.local.compiled import set_threads, threads

    set_threads(args.threads or threads())  # default $OMP_NUM_THREADS, else 1 (docs/local.md)
    out = Path(args.out or Path(args.structure).with_suffix("").name + f"-{args.ensemble}-md.extxyz")
    run = {"temperature_K": args.temperature_K, "steps": args.steps, "timestep_fs": args.timestep_fs,
           "ensemble": args.ensemble, "every": args.every, "seed": args.seed, "read_options": read_options(args),
           "max_extrapolation": args.max_extrapolation, "max_force_deviation": args.max_force_deviation,
           "use_core": not args.no_core, "deviation": not args.member_only}  # fmt: skip
    if args.engine == "lammps":
        from pdmd.dynamics.lammps_engine import run_lammps_md_file

        done = run_lammps_md_file(args.model, args.structure, out, script=args.lammps_script, **run)
        print(f"{done.steps} steps of {args.timestep_fs} fs ({args.ensemble}) in LAMMPS in {done.wall_s:.1f} s "
              f"({done.ms_per_step:.1f} ms/step, the model {1000 * done.stats.model_s / max(done.stats.calls, 1):.1f} "
              f"ms/call)\ntrajectory: {out.with_suffix('.dump')}\nLAMMPS log: {done.log}")  # fmt: skip
        return 0
    if args.lammps_script:
        raise InputError("--lammps-script needs --engine lammps")
    from pdmd.dynamics.ase_engine import run_md_file

    _report(run_md_file(args.model, args.structure, out, **run), args)
    return 0


def _report(result, args: argparse.Namespace) -> None:
    import numpy as np

    print(f"{result.steps} steps of {args.timestep_fs} fs ({args.ensemble}) in {result.wall_s:.1f} s "
          f"({result.ms_per_step:.1f} ms/step); mean T {result.temperature_K.mean():.0f} K")  # fmt: skip
    print(f"total energy: drift {result.drift_meV_per_atom_per_ps():.3f} meV/atom/ps, "
          f"max |ΔE| {result.max_deviation_meV_per_atom():.3f} meV/atom")  # fmt: skip
    for label, series, unit in (
        ("extrapolation grade", result.max_extrapolation, ""),
        ("committee force deviation", result.max_force_deviation_eV_per_A, " eV/Å"),
    ):
        if series is not None:
            print(f"largest {label} over the run: {np.nanmax(series):.3g}{unit}")
    print(f"trajectory: {result.trajectory}\nenergies: {result.log_csv}")
    if result.log_csv:
        print(f"plot: {Path(result.log_csv).with_suffix('.png')}")


def cmd_forces(args: argparse.Namespace) -> int:
    from pdmd.pipeline import add_forces

    counts = add_forces(args.data_dir, potential=args.potential, overwrite=args.overwrite)
    print(json.dumps(counts, indent=1))
    return 0 if counts["mismatched"] == 0 else 1


def add_parsers(sub) -> None:
    """Register md and forces."""
    from pdmd.cli.inputs import add_read_args
    from pdmd.dynamics.ase_engine import DEFAULT_TIMESTEP_FS

    s = command(
        sub, cmd_md, "md", help="molecular dynamics (ASE) with a pd-local model or a LAMMPS reference; extxyz out"
    )
    s.add_argument("model", help="model name or folder (pd-local), or a LAMMPS reference potential (e.g. tersoff1989)")
    s.add_argument("structure", help="structure file ASE reads (the last structure in it is used)")
    s.add_argument("--temperature-K", type=float, required=True, help="initial and (NVT) target temperature, K")
    s.add_argument("--steps", type=int, required=True)
    s.add_argument(
        "--timestep-fs",
        type=float,
        default=DEFAULT_TIMESTEP_FS,
        help=f"fs (default {DEFAULT_TIMESTEP_FS}: Tersoff carbon itself needs it, docs/local.md)",
    )
    s.add_argument("--ensemble", choices=["nvt", "nve"], default="nvt", help="nvt: Bussi thermostat; nve: Verlet")
    s.add_argument("--every", type=int, default=10, help="write a frame every this many steps")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="trajectory (extxyz; default STRUCTURE-ENSEMBLE-md.extxyz here)")
    s.add_argument("--max-extrapolation", type=float, metavar="GRADE",
                   help="stop when an atom's extrapolation grade passes this (1 = edge of the training data; "
                        "default: the model card's, derived from its training set; 0: never)")  # fmt: skip
    s.add_argument("--max-force-deviation", type=float, metavar="EV_PER_A",
                   help="committee models: stop when an atom's force deviation passes this, eV/Å (default: the "
                        "card's trust-window high end; 0: never)")  # fmt: skip
    s.add_argument(
        "--engine",
        choices=["ase", "lammps"],
        default="ase",
        help="ase: pdmd's integrator; lammps: LAMMPS runs an input script, the model behind fix external",
    )
    s.add_argument(
        "--lammps-script", help="--engine lammps: your input script (default lammps_inputs/pdmd_local_md.in)"
    )
    s.add_argument("--no-core", action="store_true", help="leave out the model's short-range (ZBL) repulsion")
    s.add_argument("--member-only", action="store_true",
                   help="committee models: evaluate member 0 only (no force deviation; 1/K the cost)")  # fmt: skip
    s.add_argument("--threads", type=int, help="threads of the model, torch and numba (default $OMP_NUM_THREADS or 1)")
    add_read_args(s)
    s = command(sub, cmd_forces, "forces", help="add single-point LAMMPS forces to stored structures that lack them")
    s.add_argument("data_dir", help="data folder (holds structures/)")
    s.add_argument("--potential", help="LAMMPS potential (default: each structure's own)")
    s.add_argument("--overwrite", action="store_true", help="recompute forces that are already stored")
