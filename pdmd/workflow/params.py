# SPDX-License-Identifier: GPL-3.0-or-later
"""Every pdmd firetask's parameters, declared once: name, required or optional, and the check of its value.

The firetasks take their `required_params` / `optional_params` from here, every firetask checks its
parameters first thing (`check_firetask`, so a bad one fails at once with the field's name), and
`pdmd check WORKFLOW.yaml` checks a workflow file's tasks with the same table before FireWorks sees it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pdmd.checks import (
    Problems,
    boolean,
    fraction,
    int_at_least,
    is_num,
    non_empty_str,
    non_negative,
    one_of,
)
from pdmd.errors import InputError, PdmdError


@dataclass(frozen=True)
class Param:
    """One firetask parameter: its value check (`(where, value, problems)`) and whether it is required."""

    check: Callable[[str, Any, Problems], None]
    required: bool = False


def _mapping(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, dict):
        out.append(f"{where}: must be a mapping")


def _name_in(names: Callable[[], Any]) -> Callable[[str, Any, Problems], None]:
    """A check that the value is one of `names()` (read when checked, so the lists' modules load lazily)."""

    def check(where: str, v: Any, out: Problems) -> None:
        one_of(set(names()))(where, v, out)

    return check


def _plans() -> Any:
    from pdmd.campaign import PLANS

    return PLANS


def _kinds() -> Any:
    from pdmd.models.registry import KINDS

    return KINDS


def _analyses() -> Any:
    from pdmd.analysis.registry import ANALYSES

    return ANALYSES


def _config(kind: str) -> Callable[[str, Any, Problems], None]:
    def check(where: str, v: Any, out: Problems) -> None:
        from pdmd.models.cnn.options import config_rule

        config_rule(kind)(where, v, out)

    return check


def _range_A2(where: str, v: Any, out: Problems) -> None:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(is_num(x) for x in v) and 0 <= v[0] < v[1]):
        out.append(f"{where}: must be [lo, hi] in Å² with 0 <= lo < hi, got {v!r}")


def _run_ids(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(r, str) and r for r in v):
        out.append(f"{where}: must be a non-empty list of run ids, got {v!r}")


def _built_by(what: str, build: Callable[[dict], Any]) -> Callable[[str, Any, Problems], None]:
    """A check that the value is a mapping `build` accepts (its error, or a missing field, is reported)."""

    def check(where: str, v: Any, out: Problems) -> None:
        if not isinstance(v, dict):
            out.append(f"{where}: must be a mapping of {what}, got {v!r}")
            return
        try:
            build(v)
        except (PdmdError, TypeError) as err:  # TypeError: a required field is missing
            out.append(f"{where}: {err}")

    return check


def _protocol_from(v: dict) -> Any:
    from pdmd.md.protocol import MeltQuenchProtocol

    return MeltQuenchProtocol.from_dict(v)


def _active_from(v: dict) -> Any:
    """An active-learning campaign's settings (`pdmd.active.ActiveSettings`)."""
    from pdmd.active import ActiveSettings

    return ActiveSettings.from_dict(v)


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


def _req(check: Callable) -> Param:
    return Param(check, required=True)


@functools.cache
def task_params() -> dict[str, dict[str, Param]]:
    """Per pdmd firetask (class name): parameter name -> `Param`."""
    desc = {k: Param(v) for k, v in _descriptor_rules().items()}
    data_dir = {"data_dir": Param(non_empty_str)}
    protocol = _req(_built_by("melt-quench parameters", _protocol_from))
    melt = {"protocol": protocol, "omp_threads": Param(int_at_least(1)), **data_dir}
    active = {"active": _req(_built_by("active-learning settings", _active_from)), "iteration": _req(int_at_least(0)),
              **data_dir}  # fmt: skip
    return {
        "MeltQuenchTask": melt,
        "VaspMeltQuenchTask": {
            **melt,
            "vasp_cmd": Param(non_empty_str),
            "templates_dir": Param(non_empty_str),
            "write_potcar": Param(boolean),
            "relax_steps": Param(int_at_least(0)),
            "workdir": Param(non_empty_str),
        },
        "PersistenceDescriptorTask": {"run_id": _req(non_empty_str), "workers": Param(int_at_least(1)), **desc},
        "TrainPotentialTask": {
            "run_ids": _req(_run_ids),
            "name": _req(non_empty_str),
            "train": Param(_config("train")),
            "cnn": Param(_config("cnn")),
            "split": Param(one_of({"run", "snapshot"})),
            "test_fraction": Param(fraction),
            "model": Param(_name_in(_kinds)),
            "model_options": Param(_mapping),
            **{k: v for k, v in desc.items() if k != "degree"},
        },
        "ValidatePotentialTask": {
            "run_ids": _req(_run_ids),
            "name": _req(non_empty_str),
            "label": Param(non_empty_str),
            **{k: v for k, v in desc.items() if k != "degree"},
        },
        "ActiveTrainTask": active,
        "ActiveExploreTask": {**active, "temperature_K": _req(non_negative), "seed": _req(int_at_least(0))},
        "ActiveSelectTask": {**active, "vasp_cmd": Param(non_empty_str)},
        "AnalysisTask": {
            "analysis": _req(_name_in(_analyses)),
            "name": _req(non_empty_str),
            "plan": _req(_name_in(_plans)),
            "options": Param(_mapping),
            **data_dir,
        },
    }


def required_params(task: str) -> list[str]:
    """The required parameter names of firetask `task` (its `required_params`)."""
    return [k for k, p in task_params()[task].items() if p.required]


def optional_params(task: str) -> list[str]:
    """The optional parameter names of firetask `task` (its `optional_params`)."""
    return [k for k, p in task_params()[task].items() if not p.required]


def _task_class_name(fw_name: str) -> str:
    """'{{pdmd.workflow.tasks.MeltQuenchTask}}' or 'MeltQuenchTask' -> 'MeltQuenchTask'."""
    return fw_name.strip("{}").rsplit(".", 1)[-1]


def check_task_params(fw_name: str, params: dict, where: str = "task") -> Problems:
    """Problems with one firetask's parameters (only pdmd's tasks are checked; others pass)."""
    name = _task_class_name(fw_name)
    table = task_params().get(name)
    if table is None:
        return []
    out: Problems = []
    given = {k: v for k, v in params.items() if not k.startswith("_")}
    for key, p in table.items():
        if p.required and key not in given:
            out.append(f"{where}.{key}: missing (required by {name})")
    for key, value in given.items():
        if key not in table:
            out.append(f"{where}.{key}: unknown parameter of {name}; known: {sorted(table)}")
        elif isinstance(value, str) and value.startswith(">>") and value.endswith("<<"):
            continue  # resolved from the FWorker's env when the task runs
        else:
            table[key].check(f"{where}.{key}", value, out)
    return out


def check_firetask(task) -> None:
    """Raise InputError naming the bad field if a pdmd firetask's parameters are invalid (first thing in run_task)."""
    problems = check_task_params(type(task).__name__, dict(task), type(task).__name__)
    if problems:
        raise InputError("; ".join(problems))
