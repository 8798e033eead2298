# SPDX-License-Identifier: GPL-3.0-or-later
"""Workflow commands: init, demo, campaign."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from pdmd.cli.common import REPO_ROOT, fireworks_cli
from pdmd.cli.data import cmd_status
from pdmd.cli.model import cmd_results


def cmd_init(args: argparse.Namespace) -> int:
    from pdmd.setup_env import install_embedded_hook

    path = install_embedded_hook()
    (REPO_ROOT / ".pdmd").mkdir(exist_ok=True)
    print(f"embedded-store guard installed: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Lpad reset -> lpad add workflows/<file> -> rlaunch rapidfire -> print results."""
    from pdmd.workflow.builders import workflow_file

    cmd_init(args)
    wf_file = workflow_file(args.plan)
    lpad, rlaunch = fireworks_cli("lpad"), fireworks_cli("rlaunch")
    t0 = time.perf_counter()
    steps = [
        [lpad, "reset", "--password", time.strftime("%Y-%m-%d")],
        [lpad, "add", str(wf_file)],
        [rlaunch, "rapidfire"],
    ]
    for step in steps:
        print("+", " ".join(Path(step[0]).name if i == 0 else s for i, s in enumerate(step)), flush=True)
        rc = subprocess.call(step, cwd=REPO_ROOT)
        if rc:
            print(f"pdmd demo: `{' '.join(step[:2])}` failed with exit code {rc}", file=sys.stderr)
            return rc
    wall = time.perf_counter() - t0
    print(f"\nworkflow finished in {wall / 60:.1f} min")
    cmd_status(args)
    args.model = f"{args.plan}-cnn"
    cmd_results(args)
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    from pdmd.campaign_runner import run_plan
    from pdmd.settings import data_dir

    root = Path(args.data_dir) if args.data_dir else data_dir()
    results = run_plan(args.plan, root, workers=args.workers, include_validation=not args.no_validation)
    failed = [r for r in results if "error" in r]
    print(f"{len(results) - len(failed)} runs stored in {root}; {len(failed)} failed")
    for r in failed[:10]:
        print(f"  {r['run_id']}: {r['error']}")
    return 1 if failed else 0


def add_parsers(sub) -> None:
    """Register the workflow commands."""
    s = sub.add_parser("init", help="install the embedded-store guard into this Python environment")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("demo", help="lpad reset + lpad add workflows/agr_demo.yaml + rlaunch rapidfire, then results")
    s.add_argument(
        "--plan",
        default="agr-demo",
        help="agr-demo (default, ~10 min), ac-demo (aC stand-in, ~10 min), agr-tiny (seconds), "
        "agr-paper, ac-paper (hours)",
    )
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("campaign", help="fill the store for a plan without FireWorks (parallel, resumable)")
    s.add_argument("plan", help="agr-paper | agr-demo | agr-tiny | ac-paper | ac-demo")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--data-dir")
    s.add_argument("--no-validation", action="store_true")
    s.set_defaults(func=cmd_campaign)
