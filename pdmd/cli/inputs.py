# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of every command that reads structure files: format, LAMMPS settings, sheet mode, label keys."""

from __future__ import annotations

import argparse


def add_read_args(s: argparse.ArgumentParser, labels: bool = False, sheet: bool = False) -> None:
    """--format, --atom-style, --units; --sheet where PDs are made; --energy-key/--forces-key for training data."""
    g = s.add_argument_group("reading structures")
    g.add_argument(
        "--format",
        help="ASE format of the files (default: guessed; .data/.lmp = lammps-data, dumps = lammps-dump-text)",
    )
    g.add_argument("--atom-style", help="LAMMPS data atom style: atomic, charge, full, ... (default: from the file)")
    g.add_argument("--units", help="LAMMPS units of a data file or dump: metal (default), real, ...")
    if sheet:
        g.add_argument(
            "--sheet",
            choices=["projection", "3d"],
            help="2D sheets: real 3D coordinates, periodic in-plane and open across the vacuum (default; the "
            "same diagram as the projection for flat sheets), or the in-plane projection (the paper's setting)",
        )
    if labels:
        g.add_argument(
            "--energy-key",
            help="info key of the total energy (eV) or per-atom energy array (summed); default: "
            "energy_eV_per_atom, else the total energy",
        )
        g.add_argument("--forces-key", help="per-atom forces array (eV/Å) to read and check, e.g. forces, REF_forces")


def read_options(args: argparse.Namespace):
    """`pdmd.structure.ReadOptions` from the parsed arguments."""
    from pdmd.structure import ReadOptions

    return ReadOptions(format=args.format, atom_style=args.atom_style, units=args.units)


def label_keys(args: argparse.Namespace):
    """`pdmd.ml.dataset_files.LabelKeys` from the parsed arguments."""
    from pdmd.ml.dataset_files import LabelKeys

    return LabelKeys(energy_key=getattr(args, "energy_key", None), forces_key=getattr(args, "forces_key", None))
