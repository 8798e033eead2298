# SPDX-License-Identifier: GPL-3.0-or-later
"""Workflow commands: init, demo, campaign, check."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from pdmd.cli.common import command, fireworks_cli
from pdmd.cli.data import cmd_status
from pdmd.cli.model import cmd_results


def cmd_init(args: argparse.Namespace) -> int:
    """`pdmd init [DIR]`: FireWorks config + workflows into a working folder, and the embedded-store guard."""
    from pdmd.setup_env import hook_path, init_workdir

    folder = Path(getattr(args, "folder", None) or ".")
    written, kept = init_workdir(folder)
    for path in written:
        print(f"wrote {path}")
    if kept:
        print(f"kept {len(kept)} existing files in {folder.resolve()}")
    print(f"embedded-store guard installed: {hook_path()}")
    print(f"run lpad / rlaunch / pdmd from {folder.resolve()} (e.g. lpad reset; lpad add workflows/agr_tiny.yaml)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Lpad reset -> lpad add workflows/<file> -> rlaunch rapidfire -> print results."""
    from pdmd.workflow.builders import workflow_file

    wf_file = workflow_file(args.plan)
    cmd_init(args)
    lpad, rlaunch = fireworks_cli("lpad"), fireworks_cli("rlaunch")
    t0 = time.perf_counter()
    steps = [
        [lpad, "reset", "--password", time.strftime("%Y-%m-%d")],
        [lpad, "add", str(wf_file)],
        [rlaunch, "rapidfire"],
    ]
    for step in steps:
        print("+", " ".join(Path(step[0]).name if i == 0 else s for i, s in enumerate(step)), flush=True)
        rc = subprocess.call(step, cwd=Path.cwd())  # the folder `pdmd init` just set up
        if rc:
            print(f"pdmd demo: `{' '.join(step[:2])}` failed with exit code {rc}", file=sys.stderr)
            return rc
    wall = time.perf_counter() - t0
    print(f"\nworkflow finished in {wall / 60:.1f} min")
    cmd_status(args)
    args.model = None  # every model the workflow trained (a fresh store: this demo's)
    cmd_results(args)
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    from pdmd.campaign import plan_descriptor
    from pdmd.campaign_runner import run_plan
    from pdmd.descriptor.spec import channel_specs
    from pdmd.settings import data_dir

    root = Path(args.data_dir) if args.data_dir else data_dir()
    extra = tuple(channel_specs(plan_descriptor(args.plan), tuple(args.extra_degrees)))  # one line if bad
    results = run_plan(args.plan, root, workers=args.workers, include_validation=not args.no_validation,
                       extra_specs=extra)  # fmt: skip
    failed = [r for r in results if "error" in r]
    print(f"{len(results) - len(failed)} runs stored in {root}; {len(failed)} failed")
    for r in failed[:10]:
        print(f"  {r['run_id']}: {r['error']}")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check workflow files before `lpad add`: one line per problem, naming the field; exit 1 if any."""
    from pdmd.errors import InputError
    from pdmd.workflow.check import check_workflow_file

    bad = 0
    for path in args.workflow:
        try:
            summary = check_workflow_file(path)
        except InputError as err:
            print(err, file=sys.stderr)
            bad += 1
            continue
        print(f"{path}: OK ({summary['fireworks']} fireworks, {summary['tasks']} firetasks)")
    return 1 if bad else 0


def add_parsers(sub) -> None:
    """Register the workflow commands."""
    s = command(
        sub,
        cmd_init,
        "init",
        help="set up a working folder (FireWorks config, workflows, embedded store) and the store guard",
    )
    s.add_argument("folder", nargs="?", default=".", help="working folder (default: the current folder)")
    s = command(
        sub, cmd_demo, "demo", help="lpad reset + lpad add workflows/agr_demo.yaml + rlaunch rapidfire, then results"
    )
    s.add_argument(
        "--plan",
        default="agr-demo",
        help="agr-demo (default, ~10 min), ac-demo (aC stand-in, ~10 min), agr-tiny (seconds), "
        "agr-paper, ac-paper (hours)",
    )
    s = command(sub, cmd_campaign, "campaign", help="fill the store for a plan without FireWorks (parallel, resumable)")
    s.add_argument("plan", help="agr-paper | agr-demo | agr-tiny | ac-paper | ac-demo")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--data-dir")
    s.add_argument("--no-validation", action="store_true")
    s.add_argument(
        "--extra-degrees",
        type=int,
        nargs="+",
        default=[],
        metavar="DEGREE",
        help="also store the descriptors of these homology degrees beside the plan's H1 ones: the inputs of the "
        "pd-cnn option cnn.extra_degrees (0: H1 and H0 as two channels); finished runs get only what they lack",
    )
    s = command(sub, cmd_check, "check", help="check workflow YAML files (structure, every firework's parameters)")
    s.add_argument("workflow", nargs="+", help="workflow YAML/JSON files, e.g. workflows/agr_demo.yaml")
