"""Bond-network measures of periodic carbon: coordination (sp/sp²/sp³), rings (2D), bond length.

Bonds are pairs closer than `BOND_CUTOFF_A` (between the first, 1.42 Å, and second, 2.46 Å,
neighbour shells of graphene). Rings are the faces of the planar bond graph on the torus: each
directed bond i->j is followed by the bond j->k that comes next clockwise around j after j->i;
every directed bond belongs to exactly one face.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from pdmd.structure import Frame

BOND_CUTOFF_A = 1.85


@dataclass(frozen=True)
class NetworkStats:
    """Fractions of atoms by coordination, of rings by size, and the mean bond length (Å)."""

    coordination_fractions: dict[str, float]
    ring_fractions: dict[str, float]
    n_rings: int
    mean_bond_A: float

    @property
    def threefold_fraction(self) -> float:
        return self.coordination_fractions.get("3", 0.0)

    def as_dict(self) -> dict:
        return asdict(self)


def bond_pairs(frame: Frame, cutoff_A: float = BOND_CUTOFF_A, dim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unique bonded pairs (i<j) and their minimum-image bond vectors (Å) in an orthorhombic cell.

    dim = 2 uses the xy plane of a sheet, dim = 3 the full cell.
    """
    lengths = np.diag(frame.cell)[:dim]
    xy = np.mod(frame.positions[:, :dim], lengths)
    pairs = cKDTree(xy, boxsize=lengths).query_pairs(cutoff_A, output_type="ndarray")
    vec = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    vec -= lengths * np.round(vec / lengths)
    return pairs, vec


def ring_sizes(n_atoms: int, pairs: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Sizes of the faces of the periodic planar bond graph (one entry per face)."""
    # directed edges: e and its reverse
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dvec = np.concatenate([vec, -vec])
    angle = np.arctan2(dvec[:, 1], dvec[:, 0])
    n_edges = len(src)
    order = np.lexsort((angle, src))  # outgoing edges of each atom sorted by angle
    start = np.searchsorted(src[order], np.arange(n_atoms))
    count = np.bincount(src, minlength=n_atoms)
    rank = np.empty(n_edges, dtype=int)
    rank[order] = np.arange(n_edges) - np.repeat(start, count)
    half = len(pairs)
    reverse = np.concatenate([np.arange(half, n_edges), np.arange(half)])
    # next edge of the face after i->j: at j, the outgoing edge preceding (clockwise from) j->i
    rev = reverse
    at = src[rev]
    prev_rank = (rank[rev] - 1) % count[at]
    nxt = order[start[at] + prev_rank]
    seen = np.zeros(n_edges, dtype=bool)
    sizes = []
    for e in range(n_edges):
        if seen[e]:
            continue
        size = 0
        while not seen[e]:
            seen[e] = True
            size += 1
            e = nxt[e]
        sizes.append(size)
    return np.asarray(sizes, dtype=int)


def network_stats(frame: Frame, dim: int = 2, cutoff_A: float = BOND_CUTOFF_A) -> NetworkStats:
    """Coordination fractions, mean bond length and, for a 2D sheet (dim = 2), ring-size fractions.

    In 3D the "4" coordination fraction is the sp³ fraction; rings are not counted there.
    """
    n = frame.n_atoms
    pairs, vec = bond_pairs(frame, cutoff_A, dim)
    coord = np.bincount(pairs.ravel(), minlength=n)
    cf = {str(k): float(np.mean(coord == k)) for k in range(int(coord.max(initial=0)) + 1) if np.any(coord == k)}
    sizes = ring_sizes(n, pairs, vec) if len(pairs) and dim == 2 else np.zeros(0, int)
    rf = {str(k): float(np.mean(sizes == k)) for k in np.unique(sizes)}
    mean_bond = float(np.linalg.norm(vec, axis=1).mean()) if len(vec) else float("nan")
    return NetworkStats(coordination_fractions=cf, ring_fractions=rf, n_rings=int(len(sizes)), mean_bond_A=mean_bond)
