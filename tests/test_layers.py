"""The package reads as the pipeline: no module imports a higher layer or another module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pdmd"

LAYERS = [
    {"errors", "checks", "domain", "systems", "runtime", "progress", "workers", "settings", "setup_env", "_lammps"},
    {"structure"},
    {"descriptor"},
    {"store"},
    {"md", "vasp"},
    {"pipeline", "campaign", "campaign_runner"},
    {"ml"},
    {"local"},
    {"analysis"},
    {"api", "calculator", "simulate", "lammps_md", "active"},
    {"workflow"},
    {"cli"},
]
"""Lowest first; a module may import its own layer and those below (at module level or inside a function)."""
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if part in ("__init__", "__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pdmd."):
                yield path, part, node


def test_every_top_level_module_has_a_layer():
    names = {p.relative_to(PACKAGE).with_suffix("").parts[0] for p in PACKAGE.rglob("*.py")}
    names -= {"__init__", "__main__", "data"}  # data: a package of shipped data files only
    assert names <= set(RANK), sorted(names - set(RANK))


def test_no_module_imports_a_higher_layer():
    upward = [f"{p.relative_to(PACKAGE)}:{n.lineno} {me} -> {n.module}" for p, me, n in _imports()
              if RANK[n.module.split(".")[1]] > RANK[me]]  # fmt: skip
    assert not upward, upward


def test_no_module_imports_another_modules_private_name():
    def own(path: Path) -> str:
        return ".".join(("pdmd", *path.relative_to(PACKAGE).with_suffix("").parts))

    private = [f"{p.relative_to(PACKAGE)}:{n.lineno} {a.name} from {n.module}" for p, _, n in _imports()
               for a in n.names if a.name.startswith("_") and n.module != own(p)]  # fmt: skip
    assert not private, private
