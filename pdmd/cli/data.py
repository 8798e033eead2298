# SPDX-License-Identifier: GPL-3.0-or-later
"""Data commands: status, structures, pd, reindex."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pdmd.cli.common import command, open_store, print_active_campaigns, require_launchpad_config
from pdmd.cli.inputs import add_descriptor_args, add_read_args


def cmd_status(args: argparse.Namespace) -> int:
    from pdmd.store.datastore import DESCRIPTORS, MODELS, STRUCTURES

    lp, store = open_store()
    wfs = list(lp.workflows.find({}, {"state": 1, "name": 1}))
    states: dict[str, int] = {}
    for fw in lp.fireworks.find({}, {"state": 1}):
        states[fw["state"]] = states.get(fw["state"], 0) + 1
    print(f"workflows: {len(wfs)}  " + ", ".join(f"{w['name']}: {w['state']}" for w in wfs[:5]))
    print("fireworks: " + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none"))
    n_final = lp.db[STRUCTURES].count_documents({"kind": "final"})
    n_all = lp.db[STRUCTURES].count_documents({})
    print(f"structures: {n_all} ({n_final} final states, {n_all - n_final} intermediate snapshots)")
    print(f"descriptors: {lp.db[DESCRIPTORS].count_documents({})}   models: {lp.db[MODELS].count_documents({})}")
    print(f"results folder: {store.root}")
    print_active_campaigns(store.root)
    from pdmd.settings import is_embedded
    from pdmd.setup_env import hook_installed

    if is_embedded():
        guard = "installed" if hook_installed() else "NOT installed: run `pdmd init` before using lpad/rlaunch"
        print(f"database: embedded store (guard {guard})")
    return 0


def _structure_query(args: argparse.Namespace) -> dict:
    query = json.loads(args.query) if args.query else {}
    if args.run:
        query["run_id"] = args.run
    if args.kind:
        query["kind"] = args.kind
    return query


def cmd_structures(args: argparse.Namespace) -> int:
    from ase.io import write

    _, store = open_store()
    docs = list(store.iter_structures(_structure_query(args)))
    docs.sort(key=lambda d: (d.get("run_id", ""), d.get("kind") == "final", d.get("step", 0)))
    if args.limit:
        docs = docs[: args.limit]
    print(
        f"{'id':12} {'run':28} {'kind':12} {'atoms':>5} {'T_set/K':>7} {'E/eV/atom':>10} {'3-fold%':>7} "
        f"{'rings 5/6/7 %':>14} {'bond/Å':>6}"
    )
    for d in docs:
        net = d.get("network", {})
        rings = net.get("ring_fractions", {})
        ring_txt = "/".join(f"{100 * rings.get(k, 0):.0f}" for k in ("5", "6", "7"))
        print(
            f"{d['_id'][:12]} {d.get('run_id', ''):28.28} {d.get('kind', ''):12} {d['n_atoms']:5d} "
            f"{d.get('setpoint_K', float('nan')):7.0f} {d['energy_eV_per_atom']:10.4f} "
            f"{100 * net.get('coordination_fractions', {}).get('3', 0):7.1f} {ring_txt:>14} "
            f"{net.get('mean_bond_A', float('nan')):6.3f}"
        )
    print(f"{len(docs)} structures")
    if args.export:
        images = []
        for d in docs:
            atoms = store.load_frame(d).to_ase()
            atoms.info.update(
                {
                    "energy_eV_per_atom": d["energy_eV_per_atom"],
                    "run_id": d.get("run_id"),
                    "kind": d.get("kind"),
                    "id": d["_id"],
                    "setpoint_K": d.get("setpoint_K"),
                }
            )
            atoms.info["energy"] = d["energy_eV_per_atom"] * len(atoms)
            images.append(atoms)
        write(args.export, images, format="extxyz")
        print(f"wrote {len(images)} structures to {args.export} (info: energy = total eV, energy_eV_per_atom)")
    return 0


def cmd_pd(args: argparse.Namespace) -> int:
    import numpy as np

    from pdmd.cli.inputs import descriptor_spec, read_options
    from pdmd.models.plots import pd_image_plot
    from pdmd.structure import Frame, read_frames, structure_dim

    atoms = read_frames(args.structure, index=str(args.index), options=read_options(args))[0]
    frame = Frame.from_ase(atoms)
    dim = args.dim or structure_dim(frame, str(args.structure))
    spec = descriptor_spec(args, f"{dim}d")  # the same defaults as training (by dimension)
    t0 = time.perf_counter()
    diagram = spec.diagram(frame, str(args.structure))
    ms = 1000 * (time.perf_counter() - t0)
    image = spec.image(diagram)
    print(
        f"{args.structure}: {frame.n_atoms} atoms, {'2D sheet' if dim == 2 else '3D periodic cell'}, "
        f"H{args.degree}: {diagram.n_pairs} finite pairs, "
        f"{len(diagram.essential_births_A2)} essential; {image.n_outside} pairs outside [{spec.lo_A2:g}, "
        f"{spec.hi_A2:g}]² Å² ({100 * image.fraction_outside:.1f}%); {ms:.0f} ms"
    )
    if diagram.n_pairs == 0:
        print(
            f"warning: empty diagram (no finite H{args.degree} pairs: no rings close in the alpha filtration, e.g. "
            "too few or too sparse atoms): the histogram is all zeros",
            file=sys.stderr,
        )
    if args.png:
        pd_image_plot(
            Path(args.png), image.image, spec.lo_A2, spec.hi_A2, f"{Path(args.structure).name}: H{args.degree}"
        )
        print(f"wrote {args.png}")
    if args.npz:
        np.savez_compressed(
            args.npz,
            births_A2=diagram.births_A2,
            deaths_A2=diagram.deaths_A2,
            essential_births_A2=diagram.essential_births_A2,
            image=image.image,
        )
        print(f"wrote {args.npz}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from pdmd.settings import data_dir
    from pdmd.store.datastore import DataStore
    from pdmd.store.launchpad import open_launchpad

    require_launchpad_config()
    lp = open_launchpad(read_only_if_busy=False)
    counts = DataStore(data_dir(), db=lp.db).reindex()
    print("re-indexed from files: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def add_parsers(sub) -> None:
    """Register the data commands."""
    s = command(sub, cmd_status, "status", help="workflow, firework, structure, descriptor and model counts")
    s = command(
        sub, cmd_structures, "structures", help="list stored structures (energies eV/atom, T K, bonds Å); export extxyz"
    )
    s.add_argument("--query", help='MongoDB query as JSON, e.g. \'{"energy_eV_per_atom": {"$lt": -6.5}}\'')
    s.add_argument("--run", help="only this run id")
    s.add_argument("--kind", choices=["final", "intermediate"])
    s.add_argument("--limit", type=int, default=0)
    s.add_argument("--export", help="write the selection to this extxyz file (ASE)")
    s = command(sub, cmd_pd, "pd", help="persistence diagram + histogram image of any structure file ASE reads")
    s.add_argument("structure")
    s.add_argument("--index", default=0, help="which frame of a multi-frame file (ASE index)")
    s.add_argument(
        "--dim",
        type=int,
        choices=[2, 3],
        help="2 = periodic sheet (vacuum along any lattice direction), 3 = periodic cell (default: from the vacuum)",
    )
    add_descriptor_args(s, degree=True)
    add_read_args(s)
    s.add_argument("--png", help="draw the histogram to this PNG")
    s.add_argument("--npz", help="save pairs (Å²) and image to this .npz")
    s = command(
        sub, cmd_reindex, "reindex", help="rebuild the database index of structures/descriptors from the result files"
    )
