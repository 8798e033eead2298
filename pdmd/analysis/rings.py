"""From birth-death pairs back to atoms: HomCloud's inverse analysis (optimal volumes).

For each requested H1 pair, HomCloud's optimal volume (Obayashi, SIAM J. Appl. Algebra
Geometry 2 (2018)) is the smallest set of triangles (2D) or tetrahedra (3D) that kills the
cycle; its boundary is a ring of atoms representing that pair. Needs HomCloud's periodic alpha
complex, so axis-aligned cells (the same limits as the `homcloud` backend).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdmd.descriptor.persistence import MAX_ASPECT_RATIO
from pdmd.errors import DescriptorError
from pdmd.structure import Frame, is_axis_aligned, validate_frame


@dataclass(frozen=True)
class PairRing:
    """Atoms (indices into the frame) on the boundary of one pair's optimal volume, and its edges."""

    birth_A2: float
    death_A2: float
    atoms: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    method: str  # "optimal volume" or "stable volume"


def pair_rings(frame: Frame, dim: int, pairs: np.ndarray, label: str = "structure") -> list[PairRing]:
    """Rings of atoms for each (birth, death) in `pairs` (Å², degree 1), nearest diagram pair matched."""
    import homcloud.interface as hc

    frame = validate_frame(frame, dim, label=label)
    lattice = frame.cell[:dim, :dim]
    lengths = np.diag(lattice)
    if not is_axis_aligned(lattice) or lengths.max() / lengths.min() > MAX_ASPECT_RATIO:
        raise DescriptorError(
            f"{label}: the inverse analysis needs HomCloud's periodic alpha complex, which takes axis-aligned cells "
            f"with aspect ratio <= {MAX_ASPECT_RATIO}"
        )
    points = np.ascontiguousarray(frame.positions[:, :dim])
    try:
        pdl = hc.PDList.from_alpha_filtration(
            points,
            vertex_symbols=[str(i) for i in range(len(points))],
            periodicity=[(0.0, float(L)) for L in lengths],
            save_boundary_map=True,
        )
        diagram = pdl.dth_diagram(1)
    except Exception as exc:
        raise DescriptorError(f"{label}: HomCloud failed: {type(exc).__name__}: {exc}") from exc
    rings = []
    for birth, death in np.asarray(pairs, float).reshape(-1, 2):
        pair = diagram.nearest_pair_to(float(birth), float(death))
        method = "optimal volume"
        try:
            volume = pair.optimal_volume()
        except Exception:
            volume, method = pair.stable_volume(0.01 * max(pair.lifetime(), 1e-6)), "stable volume"
        edges = tuple(sorted(tuple(sorted(int(s) for s in edge)) for edge in volume.boundary_symbols()))
        atoms = tuple(sorted({i for edge in edges for i in edge}))
        rings.append(PairRing(float(pair.birth_time()), float(pair.death_time()), atoms, edges, method))
    return rings


def min_image_distances(frame: Frame, dim: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Minimum-image distances (Å) between atom index pairs of a periodic frame."""
    if not pairs:
        return np.zeros(0)
    idx = np.asarray(pairs)
    lattice = frame.cell[:dim, :dim]
    frac = (frame.positions[idx[:, 1], :dim] - frame.positions[idx[:, 0], :dim]) @ np.linalg.inv(lattice)
    frac -= np.round(frac)
    return np.linalg.norm(frac @ lattice, axis=1)
