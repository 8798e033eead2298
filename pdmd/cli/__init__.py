# SPDX-License-Identifier: GPL-3.0-or-later
"""`pdmd` command line. Units: lengths Å, energies eV/atom (errors meV/atom), temperatures K,
persistence birth/death squared alpha radii Å².

One module per command group (data, workflow, model, analysis); each command is a thin parser over
a library function.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pdmd.cli import analysis, data, md, model, workflow
from pdmd.errors import PdmdError

GROUPS = (workflow, data, model, analysis, md)


def build_parser() -> argparse.ArgumentParser:
    """The `pdmd` argument parser with every command group's sub-commands."""
    p = argparse.ArgumentParser(prog="pdmd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except PdmdError as err:
        print(f"pdmd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
