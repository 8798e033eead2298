"""The kinds of structure pdmd knows, and their periodic dimension (a bottom layer: imports only pdmd.errors)."""

from __future__ import annotations

from pdmd.errors import InputError

SYSTEM_DIM: dict[str, int] = {"agr": 2, "ac": 3, "2d": 2, "3d": 3}
"""Periodic dimension of each system: amorphous graphene sheets (agr) and amorphous carbon cells (ac),
plus "2d" / "3d" for a user's own structures of either shape."""

MD_SYSTEMS: tuple[str, ...] = ("agr", "ac")
"""Systems the melt-quench protocols generate."""

SHEET_Z_SPAN_A = 0.5
"""Largest z span (Å) of a structure that a 2D (sheet) model treats as flat: pd-local's input check, 2D MD."""


def system_dim(system: str) -> int:
    """Periodic dimension (2 or 3) of a system name; InputError naming the choices otherwise."""
    try:
        return SYSTEM_DIM[system]
    except (KeyError, TypeError):
        raise InputError(f"unknown system {system!r}; choose one of {sorted(SYSTEM_DIM)}") from None
