"""Check a workflow before FireWorks sees it: structure and every pdmd firetask's parameters.

`lpad add` of a malformed file ends in a bare `KeyError: 'spec'`, and a firework with a bad
parameter (n_atoms -5, bins 0) is accepted and fizzles when it runs, perhaps hours later.
`pdmd check WORKFLOW.yaml` finds both up front and names each bad field by its path, e.g.
`fws[3].spec._tasks[0].protocol.n_atoms`. The builders check what they build, and every pdmd
firetask checks its own parameters first thing (`check_firetask`), so a bad one fails at once
with the field's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdmd.checks import (
    Problems,
    is_int,
)
from pdmd.errors import InputError
from pdmd.workflow.params import check_task_params


def check_workflow_dict(wf: Any, source: str = "workflow") -> Problems:
    """Problems with a workflow (or single firework) as `lpad add` would read it."""
    if not isinstance(wf, dict):
        return [
            f"{source}: the top level must be a mapping (a workflow with fws/links/metadata), got {type(wf).__name__}"
        ]
    if "fws" not in wf:  # FireWorks reads it as one firework
        return _check_firework(wf, source, f"{source}: ")
    out: Problems = []
    fws = wf["fws"]
    for key, kind in (("links", dict), ("metadata", dict)):
        if key not in wf:
            out.append(f"{source}: {key}: missing (lpad add needs it; use {{}} for none)")
        elif not isinstance(wf[key], kind):
            out.append(f"{source}: {key}: must be a mapping, got {type(wf[key]).__name__}")
    if not isinstance(fws, list) or not fws:
        return [*out, f"{source}: fws: must be a non-empty list of fireworks"]
    ids: list = []
    for i, fw in enumerate(fws):
        name = fw.get("name") if isinstance(fw, dict) else None
        where = f"{source}: fws[{i}]" + (f" ({name})" if name else "")
        out += _check_firework(fw, where, f"{where}.")
        if isinstance(fw, dict):
            if not is_int(fw.get("fw_id")):
                out.append(f"{where}.fw_id: must be an integer, got {fw.get('fw_id')!r}")
            elif fw["fw_id"] in ids:
                out.append(f"{where}.fw_id: {fw['fw_id']} is used by another firework")
            ids.append(fw.get("fw_id"))
    if isinstance(wf.get("links"), dict):
        known = {str(i) for i in ids}
        for parent, children in wf["links"].items():
            if str(parent) not in known:
                out.append(f"{source}: links.{parent}: no firework has fw_id {parent}")
            if not isinstance(children, list) or not all(str(c) in known for c in children):
                out.append(f"{source}: links.{parent}: must list fw_ids of fireworks in this file, got {children!r}")
    return out


def _check_firework(fw: Any, where: str, prefix: str) -> Problems:
    if not isinstance(fw, dict):
        return [f"{where}: must be a mapping (a firework), got {type(fw).__name__}"]
    spec = fw.get("spec")
    if not isinstance(spec, dict):
        return [f"{prefix}spec: missing or not a mapping (every firework needs spec with _tasks)"]
    tasks = spec.get("_tasks")
    if not isinstance(tasks, list) or not tasks:
        return [f"{prefix}spec._tasks: must be a non-empty list of firetasks"]
    out: Problems = []
    for j, task in enumerate(tasks):
        tw = f"{prefix}spec._tasks[{j}]"
        if not isinstance(task, dict) or not isinstance(task.get("_fw_name"), str):
            out.append(f"{tw}: must be a mapping with _fw_name (the firetask class)")
            continue
        out += check_task_params(task["_fw_name"], task, tw)
    return out


def load_workflow_yaml(path: str | Path) -> Any:
    """Parse a workflow file (YAML or JSON); a syntax error becomes an InputError with line and column."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it ({err})") from err
    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}: {err.problem or err}") from err
    except YAMLError as err:
        raise InputError(f"{path}: not valid YAML: {err}") from err


def check_workflow_file(path: str | Path) -> dict:
    """Check a workflow file; returns {"fireworks": n, "tasks": n}, or raises InputError listing every problem."""
    wf = load_workflow_yaml(path)
    problems = check_workflow_dict(wf, str(path))
    if problems:
        raise InputError("\n".join(problems))
    fws = wf.get("fws", [wf])
    return {"fireworks": len(fws), "tasks": sum(len(fw["spec"]["_tasks"]) for fw in fws)}


def check_workflow(wf) -> None:
    """Raise InputError if a built FireWorks `Workflow` has a problem (called by the builders)."""
    problems = check_workflow_dict(wf.to_dict(), f"workflow {wf.name!r}")
    if problems:
        raise InputError("\n".join(problems))
