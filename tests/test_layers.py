"""The package reads as the pipeline: no module imports a higher layer (at module level or inside a function),
no module loads another by a string, no module takes another module's private name, no function is long.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pdmd"

LAYERS = [
    {"errors", "checks", "domain", "systems", "runtime", "progress", "workers", "settings", "setup_env", "_lammps",
     "version", "files"},
    {"structure"},
    {"descriptor"},
    {"store", "md"},
    {"pipeline", "campaign", "campaign_runner"},
    {"models.split", "models.plots", "models.quality", "models.support", "models.ensemble", "models.labelled"},
    {"models.data", "models.global_domain"},
    {"models.card"},
    {"models.cnn", "models.kernel", "models.local"},
    {"models.registry"},
    {"models.training", "models"},
    {"analysis"},
    {"api", "calculator"},
    {"dynamics", "active"},
    {"workflow"},
    {"cli"},
]  # fmt: skip
"""Lowest first; a module may import its own layer and those below. A module's layer is that of the longest
dotted prefix listed (`models.cnn.fit` -> `models.cnn`)."""
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_FUNCTION_LINES = 60


def _layer(dotted: str) -> str | None:
    """The LAYERS entry of a module path relative to pdmd ('models.cnn.fit' -> 'models.cnn')."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    return None


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or parts[0] == "__main__":
            continue
        yield path, ".".join(parts), ast.parse(path.read_text())


def _imports():
    for path, me, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pdmd."):
                yield path, me, node


def test_every_module_has_a_layer():
    missing = sorted(me for _, me, _ in _modules() if _layer(me) is None and not me.startswith("data"))
    assert not missing, missing  # data/: shipped data files only


def test_no_module_imports_a_higher_layer():
    upward = [f"{p.relative_to(PACKAGE)}:{n.lineno} {me} -> {n.module}" for p, me, n in _imports()
              if RANK[_layer(n.module.removeprefix("pdmd."))] > RANK[_layer(me)]]  # fmt: skip
    assert not upward, upward


def test_no_module_is_loaded_by_a_string():
    """importlib / __import__ hide an import from this test and from readers: import by name instead."""
    hidden = []
    for path, _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("import_module", "__import__"):
                    hidden.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "importlib" for a in node.names):
                hidden.append(f"{path.relative_to(PACKAGE)}:{node.lineno} import importlib")
    assert not hidden, hidden


def test_no_module_imports_another_modules_private_name():
    private = [f"{p.relative_to(PACKAGE)}:{n.lineno} {a.name} from {n.module}" for p, me, n in _imports()
               for a in n.names
               if a.name.startswith("_") and not a.name.startswith("__") and n.module != f"pdmd.{me}"]  # fmt: skip
    assert not private, private


def test_no_function_is_longer_than_the_limit():
    long = [f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name} {node.end_lineno - node.lineno + 1} lines"
            for p, _, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # fmt: skip
    assert not long, long
