# SPDX-License-Identifier: GPL-3.0-or-later
"""Value checks of user settings: each `check(where, value, problems)` appends one line per problem.

The workflow check (`pdmd.workflow.check`) and the model options (`pdmd.models.cnn.options`) build their rules from
these, so a bad value reads the same wherever it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

Problems = list[str]
Check = Callable[[str, Any, Problems], None]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def non_empty_str(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, str) or not v.strip():
        out.append(f"{where}: must be a non-empty string, got {v!r}")


def int_at_least(lo: int) -> Callable[[str, Any, Problems], None]:
    def check(where: str, v: Any, out: Problems) -> None:
        if not is_int(v) or v < lo:
            out.append(f"{where}: must be an integer >= {lo}, got {v!r}")

    return check


def fraction(where: str, v: Any, out: Problems) -> None:
    if not is_num(v) or not 0 < v < 1:
        out.append(f"{where}: must be a number between 0 and 1 (exclusive), got {v!r}")


def one_of(options) -> Callable[[str, Any, Problems], None]:
    def check(where: str, v: Any, out: Problems) -> None:
        if not isinstance(v, Hashable) or v not in options:
            out.append(f"{where}: must be one of {sorted(options)}, got {v!r}")

    return check


def positive(where: str, v: Any, out: Problems) -> None:
    if not is_num(v) or v <= 0:
        out.append(f"{where}: must be a positive number, got {v!r}")


def optional_positive(where: str, v: Any, out: Problems) -> None:
    if v is not None:
        positive(where, v, out)


def non_negative(where: str, v: Any, out: Problems) -> None:
    if not is_num(v) or v < 0:
        out.append(f"{where}: must be a number >= 0, got {v!r}")


def channels(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, (list, tuple)) or not v or not all(is_int(c) and c >= 1 for c in v):
        out.append(f"{where}: must be a non-empty list of positive integers, got {v!r}")


def degrees(where: str, v: Any, out: Problems) -> None:
    """A list of distinct homology degrees (0, 1 or 2), possibly empty."""
    if not isinstance(v, (list, tuple)) or not all(is_int(d) and d in (0, 1, 2) for d in v) or len(set(v)) < len(v):
        out.append(f"{where}: must be a list of distinct homology degrees (0, 1 or 2), got {v!r}")


def boolean(where: str, v: Any, out: Problems) -> None:
    if not isinstance(v, bool):
        out.append(f"{where}: must be true or false, got {v!r}")
