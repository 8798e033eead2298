# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of every command that reads structure files (format, LAMMPS settings, label keys) or makes PD images
(the descriptor setting: window, bins, backend, sheet mode, degree).
"""

from __future__ import annotations

import argparse


def add_read_args(s: argparse.ArgumentParser, labels: bool = False) -> None:
    """--format, --atom-style, --units; --energy-key/--forces-key for training data."""
    g = s.add_argument_group("reading structures")
    g.add_argument(
        "--format",
        help="ASE format of the files (default: guessed; .data/.lmp = lammps-data, dumps = lammps-dump-text)",
    )
    g.add_argument("--atom-style", help="LAMMPS data atom style: atomic, charge, full, ... (default: from the file)")
    g.add_argument("--units", help="LAMMPS units of a data file or dump: metal (default), real, ...")
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
    """`pdmd.models.labelled.LabelKeys` from the parsed arguments."""
    from pdmd.models.labelled import LabelKeys

    return LabelKeys(energy_key=getattr(args, "energy_key", None), forces_key=getattr(args, "forces_key", None))


def add_descriptor_args(s: argparse.ArgumentParser, degree: bool = False) -> None:
    """--range, --bins, --backend, --sheet (and --degree): a `DescriptorSpec` with the paper's defaults by dimension."""
    from pdmd.descriptor.persistence import BACKENDS, SHEET_MODES

    g = s.add_argument_group("descriptor (defaults: the paper's setting for the dimension)")
    g.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="histogram window in Å² (squared alpha radii); default 0 4 for sheets, 0 8 for 3D")  # fmt: skip
    g.add_argument("--bins", type=int, help="histogram bins per axis (default 128)")
    g.add_argument("--backend", choices=BACKENDS, help="PD backend (default: homcloud for 2D, delaunay for 3D)")
    g.add_argument(
        "--sheet",
        choices=SHEET_MODES,
        help="2D sheets: real 3D coordinates, periodic in-plane and open across the vacuum (default; the "
        "same diagram as the projection for flat sheets), or the in-plane projection (the paper's setting)",
    )
    g.add_argument("--boundary", choices=["periodic", "open"], default="periodic",
                   help="periodic diagrams (default) or open ones of the atoms in the cell, without periodic images "
                   "(the paper's aGr setting; HomCloud)")  # fmt: skip
    if degree:
        g.add_argument("--degree", type=int, default=1, help="homology degree (default 1: rings)")


def descriptor_spec(args: argparse.Namespace, system: str):
    """The `pdmd.descriptor.spec.DescriptorSpec` of `system` with the options of `add_descriptor_args`."""
    from pdmd.descriptor.spec import DescriptorSpec

    sheet = args.sheet if system in ("agr", "2d") else None
    degree = getattr(args, "degree", 1)
    return DescriptorSpec.for_system(system, range_A2=args.range, bins=args.bins, degree=degree, backend=args.backend,
                                     sheet=sheet, periodic=args.boundary == "periodic")  # fmt: skip


def json_option(text: str | None, flag: str) -> dict:
    """The JSON object given to `flag` ({} when not given); a one-line error when it is not one."""
    import json

    from pdmd.errors import InputError

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{flag}: not valid JSON ({exc.msg} at character {exc.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise InputError(f"{flag}: expected a JSON object like '{{\"key\": value}}', got {text!r}")
    return value
