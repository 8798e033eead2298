"""Check a workflow before FireWorks sees it: structure and every pdmd firetask's parameters.

`lpad add` of a malformed file ends in a bare `KeyError: 'spec'`, and a firework with a bad
parameter (n_atoms -5, bins 0) is accepted and fizzles when it runs, perhaps hours later.
`pdmd check WORKFLOW.yaml` finds both up front and names each bad field by its path, e.g.
`fws[3].spec._tasks[0].protocol.n_atoms`. The builders check what they build, and every pdmd
firetask checks its own parameters first thing (`check_firetask`), so a bad one fails at once
with the field's name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pdmd.checks import (
    Problems,
    boolean,
    fraction,
    int_at_least,
    is_int,
    is_num,
    non_empty_str,
    non_negative,
    one_of,
)
from pdmd.errors import InputError, PdmdError
from pdmd.ml.options import config_rule


def _range_A2(where: str, v: Any, out: Problems) -> None:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(is_num(x) for x in v) and 0 <= v[0] < v[1]):
        out.append(f"{where}: must be [lo, hi] in Å² with 0 <= lo < hi, got {v!r}")


def _run_ids(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(r, str) and r for r in v):
        out.append(f"{where}: must be a non-empty list of run ids, got {v!r}")


def _protocol(where: str, v: Any, out: Problems) -> None:
    from pdmd.md.protocol import MeltQuenchProtocol

    if not isinstance(v, dict):
        out.append(f"{where}: must be a mapping of melt-quench parameters, got {v!r}")
        return
    try:
        MeltQuenchProtocol.from_dict(v)
    except TypeError as err:  # a required field (seed, cooling_rate_K_per_ps) is missing
        out.append(f"{where}: {err}")
    except PdmdError as err:
        out.append(f"{where}: {err}")


def _analysis(where: str, v: Any, out: Problems) -> None:
    from pdmd.analysis.registry import ANALYSES

    one_of(set(ANALYSES))(where, v, out)


def _active(where: str, v: Any, out: Problems) -> None:
    """An active-learning campaign's settings (`pdmd.active.ActiveSettings`)."""
    from pdmd.active import ActiveSettings

    if not isinstance(v, dict):
        out.append(f"{where}: must be a mapping of active-learning settings")
        return
    try:
        ActiveSettings.from_dict(v)
    except (InputError, TypeError) as err:
        out.append(f"{where}: {err}")


def _descriptor_rules() -> dict:
    from pdmd.descriptor.persistence import BACKENDS
    from pdmd.systems import MD_SYSTEMS

    return {
        "range_A2": _range_A2,
        "bins": int_at_least(2),
        "backend": one_of(set(BACKENDS)),
        "system": one_of(set(MD_SYSTEMS)),
        "degree": one_of({0, 1, 2}),
        "data_dir": non_empty_str,
    }


def _task_rules() -> dict[str, dict[str, Callable]]:
    """Per pdmd firetask: parameter -> check."""
    from pdmd.campaign import PLANS

    desc = _descriptor_rules()
    melt = {"protocol": _protocol, "omp_threads": int_at_least(1), "data_dir": non_empty_str}
    active = {"active": _active, "iteration": int_at_least(0), "data_dir": non_empty_str}
    return {
        "MeltQuenchTask": melt,
        "VaspMeltQuenchTask": {
            **melt,
            "vasp_cmd": non_empty_str,
            "templates_dir": non_empty_str,
            "write_potcar": boolean,
            "relax_steps": int_at_least(0),
            "workdir": non_empty_str,
        },
        "PersistenceDescriptorTask": {"run_id": non_empty_str, "workers": int_at_least(1), **desc},
        "TrainPotentialTask": {
            "run_ids": _run_ids,
            "name": non_empty_str,
            "train": config_rule("train"),
            "cnn": config_rule("cnn"),
            "split": one_of({"run", "snapshot"}),
            "test_fraction": fraction,
            **desc,
        },
        "ValidatePotentialTask": {"run_ids": _run_ids, "name": non_empty_str, "label": non_empty_str, **desc},
        "ActiveTrainTask": active,
        "ActiveExploreTask": {**active, "temperature_K": non_negative, "seed": int_at_least(0)},
        "ActiveSelectTask": active,
        "AnalysisTask": {
            "analysis": _analysis,
            "name": non_empty_str,
            "plan": one_of(set(PLANS)),
            "options": lambda w, v, out: None if isinstance(v, dict) else out.append(f"{w}: must be a mapping"),
            "data_dir": non_empty_str,
        },
    }


def _task_class_name(fw_name: str) -> str:
    """'{{pdmd.workflow.tasks.MeltQuenchTask}}' or 'MeltQuenchTask' -> 'MeltQuenchTask'."""
    return fw_name.strip("{}").rsplit(".", 1)[-1]


def check_task_params(fw_name: str, params: dict, where: str = "task") -> Problems:
    """Problems with one firetask's parameters (only pdmd's tasks are checked; others pass)."""
    from pdmd.workflow import active as active_module
    from pdmd.workflow import tasks as task_module

    name = _task_class_name(fw_name)
    rules = _task_rules().get(name)
    if rules is None:
        return []
    cls = getattr(task_module, name, None) or getattr(active_module, name)
    out: Problems = []
    given = {k: v for k, v in params.items() if not k.startswith("_")}
    for key in cls.required_params:
        if key not in given:
            out.append(f"{where}.{key}: missing (required by {name})")
    known = set(cls.required_params) | set(getattr(cls, "optional_params", []) or [])
    for key, value in given.items():
        if key not in known:
            out.append(f"{where}.{key}: unknown parameter of {name}; known: {sorted(known)}")
        elif isinstance(value, str) and value.startswith(">>") and value.endswith("<<"):
            continue  # resolved from the FWorker's env when the task runs
        elif key in rules:
            rules[key](f"{where}.{key}", value, out)
    return out


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


def check_firetask(task) -> None:
    """Raise InputError naming the bad field if a pdmd firetask's parameters are invalid (first thing in run_task)."""
    problems = check_task_params(type(task).__name__, dict(task), type(task).__name__)
    if problems:
        raise InputError("; ".join(problems))
