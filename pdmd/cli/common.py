# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the command modules: the store, model folders, the analysis database."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pdmd.errors import PdmdError

REPO_ROOT = Path(__file__).resolve().parents[2]


def command(sub, func, name: str, **kwargs):
    """Add the subcommand `name` (argparse sub-parsers `sub`) that runs `func(args)`; its parser."""
    parser = sub.add_parser(name, **kwargs)
    parser.set_defaults(func=func)
    return parser


def require_launchpad_config() -> None:
    """Refuse at once (instead of a 30 s MongoDB time-out) when no database is configured for this folder."""
    from fireworks import fw_config

    from pdmd.settings import is_embedded

    if not (fw_config.LAUNCHPAD_LOC or is_embedded()):
        raise PdmdError(
            f"no FireWorks database is configured in {Path.cwd()} (no my_launchpad.yaml / FW_config.yaml found): "
            "run pdmd from your working folder, or set one up with `pdmd init`"
        )


def open_store(read_only: bool = True):
    """(LaunchPad, DataStore) of this folder's configuration; read-only view while a launcher holds the store."""
    require_launchpad_config()
    from pdmd.settings import data_dir
    from pdmd.store.datastore import DataStore
    from pdmd.store.launchpad import open_launchpad

    lp = open_launchpad(read_only_if_busy=read_only)
    if getattr(lp, "read_only", False):
        print(
            "(the embedded store is in use by a running FireWorks process: showing its current state read-only)",
            file=sys.stderr,
        )
    return lp, DataStore(data_dir(), db=lp.db)


def fireworks_cli(name: str) -> str:
    """Path of a FireWorks console script of this environment (lpad, rlaunch)."""
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else (shutil.which(name) or name)


def register_card(model_dir: Path) -> None:
    """Put the model's card (with its analyses) into the database, when there is one and it is free.

    Called after the analysis, so the embedded store is not held while it computes.
    """
    from pdmd.models.card import upsert_model_card
    from pdmd.store.documents import read_card

    db = analysis_db()
    if db is not None:
        upsert_model_card(db, read_card(model_dir))


def analysis_db():
    """The database to record analyses in; None (files only, said why) without a LaunchPad or when it is busy."""
    from fireworks import fw_config

    from pdmd.settings import is_embedded
    from pdmd.store.launchpad import open_launchpad

    if not (fw_config.LAUNCHPAD_LOC or is_embedded()):
        print("(no LaunchPad configured here: the results are recorded in model.json only)", file=sys.stderr)
        return None
    lp = open_launchpad(read_only_if_busy=True)
    if getattr(lp, "read_only", False):
        print("(the embedded store is busy: the results are recorded in model.json only)", file=sys.stderr)
        return None
    return lp.db


def print_active_campaigns(root) -> None:
    """One line per active-learning iteration under a data folder (`pdmd.active`): labels, fractions, test RMSE."""
    from pdmd.active import campaign_summaries

    for name, rows in campaign_summaries(root).items():
        print(f"active learning {name}: {len(rows)} iteration(s)" + (", converged" if rows[-1]["converged"] else ""))
        for r in rows:
            print(f"  iteration {r['iteration']}: labelled {r['n_labelled']} (total {r['labelled_total']}), "
                  f"frames {r['n_frames']}: candidate {r['candidate_fraction']:.2f} / accurate "
                  f"{r['accurate_fraction']:.2f} / failed {r['failed_fraction']:.2f}; model {r['model']} test RMSE "
                  f"{r['test_rmse_meV_per_atom']:.2f} meV/atom (mean predictor "
                  f"{r['mean_predictor_test_rmse_meV_per_atom']:.2f})")  # fmt: skip
