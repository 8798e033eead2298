"""Reader for the LAMMPS `custom` dump files that the melt-quench template writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import MeltQuenchError


@dataclass(frozen=True)
class DumpFrame:
    """One dump: timestep, orthogonal box lengths (Å), and per-atom columns by name."""

    step: int
    box_lo_A: np.ndarray
    box_hi_A: np.ndarray
    columns: dict[str, np.ndarray]


def read_custom_dump(path: str | Path) -> DumpFrame:
    """Parse a single-frame orthogonal-box `dump custom` file (sorted by id)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    try:
        step = int(lines[lines.index("ITEM: TIMESTEP") + 1])
        n = int(lines[lines.index("ITEM: NUMBER OF ATOMS") + 1])
        ib = next(i for i, line in enumerate(lines) if line.startswith("ITEM: BOX BOUNDS"))
        bounds = np.array([[float(v) for v in lines[ib + 1 + k].split()[:2]] for k in range(3)])
        ia = next(i for i, line in enumerate(lines) if line.startswith("ITEM: ATOMS"))
        names = lines[ia].split()[2:]
        data = np.array([line.split() for line in lines[ia + 1 : ia + 1 + n]], dtype=float)
    except (ValueError, IndexError, StopIteration) as err:
        raise MeltQuenchError(f"malformed LAMMPS dump {path}: {err}") from err
    if data.shape != (n, len(names)):
        raise MeltQuenchError(f"truncated LAMMPS dump {path}: expected {n} atoms, read {len(data)}")
    return DumpFrame(step=step, box_lo_A=bounds[:, 0], box_hi_A=bounds[:, 1], columns=dict(zip(names, data.T)))
