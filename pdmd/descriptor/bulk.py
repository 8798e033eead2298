# SPDX-License-Identifier: GPL-3.0-or-later
"""Size-consistent periodic diagrams: the finite H1 pairs a periodic sheet would have per cell in bulk.

A periodic 2D cell's alpha filtration is a torus: two H1 classes (the loops around the cell) never
die and are kept apart as essential, so the cell has n finite pairs. Its k×k repeat has k²(n + 1) − 1
(measured: 4n + 3 for 2×2 and 9n + 8 for 3×3 on the demo sheets): per cell the bulk limit is n + 1, and
every periodic cell lacks one finite pair, born where the torus loops are (≈ 0.51 Å² for carbon sheets)
and dying just above the cell's largest finite death (≈ 3 Å²). Per atom that is 1/680 of a pair in a 680-atom cell
and 1/2,720 in a 2,720-atom one: a size effect in the descriptor itself, in a corner of the diagram few
pairs reach, which a model trained on one cell size extrapolates (docs/models.md, "Where the 2,720-atom bias
comes from": −18 meV/atom on the same structures tiled 2×2 before, +0.5 after adding the pair).

`bulk_pairs` adds that pair: (lowest essential birth, largest finite death); the repeat's pairs die within
0.03 Å² of that (3.043 vs 3.017, 2.964 vs 2.944, 3.112 vs 3.111 Å² on three demo cells). 3D cells (3-torus) lack
two pairs per cell (2×2×2 repeat: 8n + 14), but those die inside the diagram, not at its largest
value, so no rule is offered for them.
"""

from __future__ import annotations

import numpy as np

from pdmd.errors import InputError
from pdmd.structure import Frame


def bulk_pairs(
    births_A2: np.ndarray, deaths_A2: np.ndarray, essential_births_A2: np.ndarray, dim: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Finite pairs (Å²) of a periodic 2D diagram plus the one pair per cell its torus classes hide.

    A diagram without essential classes (open, or degree 0) or without finite pairs is returned unchanged.
    """
    if dim != 2:
        raise InputError(f"bulk completion is defined for periodic 2D diagrams (sheets), not dim {dim}")
    births, deaths = np.asarray(births_A2, float), np.asarray(deaths_A2, float)
    essential = np.asarray(essential_births_A2, float)
    if len(essential) == 0 or len(deaths) == 0:
        return births, deaths
    return np.append(births, essential.min()), np.append(deaths, deaths.max())


def repeat_cell(frame: Frame, reps: tuple[int, ...]) -> Frame:
    """The periodic cell repeated reps[i] times along cell vector i (the same structure and energy per atom)."""
    reps = tuple(int(r) for r in reps) + (1,) * (3 - len(reps))
    if min(reps) < 1:
        raise InputError(f"repeats {reps} must be positive integers")
    grid = np.stack(np.meshgrid(*(np.arange(r) for r in reps), indexing="ij"), -1).reshape(-1, 3)
    shifts = grid @ frame.cell
    cell = frame.cell * np.asarray(reps, float)[:, None]
    positions = (frame.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    return Frame(positions, cell, np.tile(frame.numbers, len(shifts)), frame.pbc)
