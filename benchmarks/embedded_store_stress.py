# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the embedded-store stress test (tests/embedded_stress.py) many times in a row.

Each run: `lpad reset`, `lpad add` of N independent short fireworks whose pings (every
millisecond) store a 1000-line tracked file, `rlaunch rapidfire`, then a fresh process counts the
fireworks whose own or whose launch's state is not COMPLETED. Prints one line per run and the total.

    .venv/bin/python benchmarks/embedded_store_stress.py [--runs 20] [--fireworks 100] [--pythonpath DIR]

--pythonpath DIR runs FireWorks with another copy of the `pdmd` package first on the path, e.g.
the previous version (`git archive <commit> pdmd | tar -x -C DIR`), to compare. The table of
docs/embedded_store.md:

    .venv/bin/python benchmarks/embedded_store_stress.py --runs 20
    .venv/bin/python benchmarks/embedded_store_stress.py --runs 5 --pythonpath OLD
    .venv/bin/python benchmarks/embedded_store_stress.py --quick    # seconds: one run of 5 fireworks
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _quick import add_quick_arguments  # noqa: E402
from embedded_stress import prepare, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--fireworks", type=int, default=100)
    parser.add_argument("--ping-s", type=float, default=0.001)
    parser.add_argument("--pythonpath", help="a folder holding another `pdmd` package to test instead")
    add_quick_arguments(parser, data=False)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.fireworks = 1, 5
    env = {"PYTHONPATH": args.pythonpath} if args.pythonpath else {}
    total_bad = total = 0
    runs_with_failures = 0
    for i in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="pdmd-stress-"))
        try:
            prepare(tmp, args.fireworks, ping_s=args.ping_s)
            result = run(tmp, env)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        bad = len(result["inconsistent"])
        total_bad += bad
        total += result["n"]
        runs_with_failures += bad > 0
        print(
            f"run {i + 1}/{args.runs}: {bad} of {result['n']} fireworks inconsistent "
            f"(rapidfire {result['wall_s']:.1f} s) {result['inconsistent'][:3]}",
            flush=True,
        )
    print(f"total: {total_bad} of {total} fireworks inconsistent; {runs_with_failures} of {args.runs} runs failed")


if __name__ == "__main__":
    main()
