# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-atom neighbourhood weighted alpha complexes, built for all atoms at once, and their persistence pairs.

For atom i the point set is i itself (at the origin) and every neighbour image within the cutoff,
as vectors relative to i. Neighbour j enters the filtration late: it carries the weight
w_j = -g(|r_j|), g = 0 inside `inner_A` and rising smoothly to `alpha_max_A2` at the cutoff, so its
ball appears at filtration value g. The filtration is the weighted alpha (power) filtration of these
points, truncated at `alpha_max_A2`: a simplex enters at the power radius of its smallest orthogonal
sphere, unless an attaching coface's opposite vertex has a smaller power distance to its centre, in
which case it enters with the cheapest attaching coface (Edelsbrunner's rule, as in
`pdmd.descriptor.periodic_alpha`, applied down to the vertices). The triangulation is the regular
(weighted Delaunay) one, the lower convex hull of the lifted points (`regular_tops`: compiled kernels,
qhull through scipy for degenerate sets or without numba). A point at the cutoff enters at
`alpha_max_A2`, and nothing that involves it enters earlier, so every pair that dies below
`alpha_max_A2` is unchanged when atoms cross the cutoff: the diagram
up to that value is a continuous function of the positions (the stability theorem for power
filtrations), and so is any vectorization that vanishes on the diagonal and above the cap.

Alongside each value the simplex that produces it (its "source": itself or, recursively, the
attaching coface) is recorded, so the value can be recomputed from positions in torch. All complexes
go into one gudhi SimplexTree as a disjoint union (point ids are global, complex a's values shifted
by a constant), so one persistence computation (over Z/2) serves every atom. Essential classes are
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from pdmd.errors import DescriptorError, InputError
from pdmd.models.local.compiled import ATTACH_TOL, DEGENERATE_TOL
from pdmd.models.local.pairing import compiled_pairs
from pdmd.models.local.triangulation import regular_tops
from pdmd.structure import Frame
from pdmd.systems import SHEET_Z_SPAN_A

MAX_NEIGHBOURS = 254
"""Most neighbours one atom may have within the cutoff (simplex keys use 8 bits per local index)."""


def entry_values(r2: torch.Tensor, inner_A: float, cutoff_A: float, alpha_max_A2: float) -> torch.Tensor:
    """g: the filtration value (Å²) at which a neighbour at squared distance r2 (Å²) enters; minus its weight.

    0 inside `inner_A`, a C1 smoothstep up to `alpha_max_A2` at `cutoff_A`.
    """
    r = torch.sqrt(torch.clamp(r2, min=inner_A**2))  # no sqrt at 0 (the centre atom): gradient 0 there
    t = torch.clamp((r - inner_A) / (cutoff_A - inner_A), 0.0, 1.0)
    return alpha_max_A2 * t * t * (3.0 - 2.0 * t)


def batched_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot product of (M, d) tensors, written out over the d <= 3 components.

    (torch's reductions over a last axis of 2 or 3 are slow.)
    """
    out = a[:, 0] * b[:, 0]
    for c in range(1, a.shape[1]):
        out = out + a[:, c] * b[:, c]
    return out


def orthospheres(points: torch.Tensor, entry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres (M, d) and power radii (Å²) of the smallest orthogonal spheres of weighted simplices.

    points (M, k+1, d) Å (k <= 3), entry (M, k+1) = minus the weights (Å²). With zero entries this is
    the smallest circumsphere (centre, squared radius). Differentiable (twice) for non-flat simplices;
    flat ones get +inf. The k x k Gram system is solved with its explicit adjugate.
    """
    m, q, _ = points.shape
    if q == 1:
        return points[:, 0, :], entry[:, 0]
    p0 = points[:, 0, :]
    e = [points[:, i, :] - p0 for i in range(1, q)]
    gram = [[batched_dot(e[i], e[j]) if j >= i else None for j in range(q - 1)] for i in range(q - 1)]
    for i in range(q - 1):
        for j in range(i):
            gram[i][j] = gram[j][i]
    rhs = [0.5 * (gram[i][i] + entry[:, i + 1] - entry[:, 0]) for i in range(q - 1)]
    if q == 2:
        lam = [rhs[0] / gram[0][0]]
        flat = torch.zeros_like(rhs[0], dtype=torch.bool)
    else:
        g = gram
        if q == 3:
            adj = [[g[1][1], -g[0][1]], [-g[0][1], g[0][0]]]
        else:
            a, b, c = (1, 2, 0), (2, 0, 1), range(3)  # cofactors of a symmetric 3x3 matrix
            adj = [[g[a[i]][a[j]] * g[b[i]][b[j]] - g[a[i]][b[j]] * g[b[i]][a[j]] for j in c] for i in c]
        det = sum(g[0][j] * adj[j][0] for j in range(q - 1))
        scale = sum(g[i][i] for i in range(q - 1)) / (q - 1)
        flat = (det / scale ** (q - 1)).abs() < DEGENERATE_TOL
        safe = torch.where(flat, torch.ones_like(det), det)
        lam = [sum(adj[i][j] * rhs[j] for j in range(q - 1)) / safe for i in range(q - 1)]
    u = lam[0][:, None] * e[0]
    for i in range(1, q - 1):
        u = u + lam[i][:, None] * e[i]
    value = batched_dot(u, u) + entry[:, 0]
    return p0 + u, torch.where(flat, torch.full_like(value, float("inf")), value)


def orthospheres_np(points: np.ndarray, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`orthospheres` on numpy arrays, without gradients: (centres, squared radii)."""
    with torch.no_grad():
        centre, value = orthospheres(torch.from_numpy(points), torch.from_numpy(entry))
    return centre.numpy(), value.numpy()


@dataclass
class Neighbourhoods:
    """Local point sets of all atoms: global point p belongs to centre atom `centre[p]`, is atom `atom[p]`
    shifted by `offset[p]` (Cartesian, Å, d components); the centre itself is the first point of its set.
    """

    dim: int
    n_atoms: int
    centre: np.ndarray
    atom: np.ndarray
    offset: np.ndarray
    start: np.ndarray  # (n_atoms + 1,) first point of each atom's set

    def relative(self, positions: np.ndarray) -> np.ndarray:
        """Point coordinates relative to their centre atom (P, d), Å."""
        pos = np.asarray(positions, float)[:, : self.dim]
        return pos[self.atom] + self.offset - pos[self.centre]


def frame_points(frame: Frame, dim: int) -> tuple[np.ndarray, np.ndarray, tuple[bool, ...]]:
    """Positions (N, dim) Å, lattice (dim, dim) Å and periodicity used by the local descriptor."""
    if dim not in (2, 3):
        raise InputError(f"pd-local descriptor dimension must be 2 or 3, got {dim}")
    pos = np.asarray(frame.positions, float)
    if not np.isfinite(pos).all():
        raise InputError("structure has non-finite coordinates")
    if dim == 2 and len(pos) > 1 and np.ptp(pos[:, 2]) > SHEET_Z_SPAN_A:
        raise InputError(
            f"a 2D (sheet) model needs a flat sheet; this one is {np.ptp(pos[:, 2]):.3f} Å thick (buckled): train a 3D "
            "pd-local model on buckled sheets (--system 3d, the sheet in a cell with vacuum)"
        )
    return pos[:, :dim], np.asarray(frame.cell, float)[:dim, :dim], tuple(bool(p) for p in frame.pbc[:dim])


def neighbourhoods(frame: Frame, dim: int, cutoff_A: float) -> Neighbourhoods:
    """Every atom's neighbours (with periodic images) within `cutoff_A`, the atom itself first."""
    from ase.neighborlist import primitive_neighbor_list

    pos, lattice, pbc = frame_points(frame, dim)
    n = len(pos)
    cell3 = np.eye(3) * max(1.0, 4 * cutoff_A)
    cell3[:dim, :dim] = lattice
    pos3 = np.zeros((n, 3))
    pos3[:, :dim] = pos
    pbc3 = tuple(pbc) + (False,) * (3 - dim)
    i, j, shift = primitive_neighbor_list("ijS", pbc3, cell3, pos3, cutoff_A, self_interaction=False)
    order = np.lexsort((j, i))
    i, j, shift = i[order], j[order], shift[order]
    counts = np.bincount(i, minlength=n)
    if n and counts.max() > MAX_NEIGHBOURS:
        raise InputError(
            f"atom {int(np.argmax(counts))} has {int(counts.max())} neighbours within {cutoff_A} Å "
            f"(at most {MAX_NEIGHBOURS}): overlapping atoms or wrong units?"
        )
    sizes = counts + 1
    start = np.concatenate([[0], np.cumsum(sizes)])
    total = int(start[-1])
    centre = np.repeat(np.arange(n), sizes)
    atom = centre.copy()
    offset = np.zeros((total, dim))
    slot = np.ones(total, bool)
    slot[start[:-1]] = False  # the centre's own slot
    atom[slot] = j
    offset[slot] = (shift @ cell3)[:, :dim]
    return Neighbourhoods(dim, n, centre, atom, offset, start)


def _keys(simplices: np.ndarray) -> np.ndarray:
    """int64 key of sorted simplices of one local set: first id (high bits) + 8-bit local offsets."""
    key = simplices[:, 0].astype(np.int64) << 24
    for c in range(1, simplices.shape[1]):
        key |= (simplices[:, c] - simplices[:, 0]).astype(np.int64) << (8 * (3 - c))
    return key


@dataclass
class AlphaLevels:
    """Simplices of dimension k (global point ids), alpha (Å²) and the source of each value (index at `src_level`)."""

    simplices: list[np.ndarray]
    alpha: list[np.ndarray]
    src_level: list[np.ndarray]
    src_index: list[np.ndarray]


@dataclass
class Skeleton:
    """The combinatorics of the local complexes, fixed while the triangulation is: per level k < dim, every
    (face, coface) incidence of the level above (`faces_all` rows, `opposite` vertex, `coface` index,
    `which` face), the distinct faces and the row of each face's first incidence (`first`).
    """

    dim: int
    n_points: int
    tops: np.ndarray
    faces_all: list[np.ndarray]
    opposite: list[np.ndarray]
    coface: list[np.ndarray]
    which: list[np.ndarray]
    faces: list[np.ndarray]
    first: list[np.ndarray]


def skeleton(tops: np.ndarray, dim: int, n_points: int, depth: int | None = None) -> Skeleton:
    """All faces of the top simplices `tops` (global point ids) and their incidences, level by level down to edges.

    `depth`: only that many levels below the tops (1: the facets, all a triangulation certificate needs).
    """
    upper = tops
    acc: dict[str, list[np.ndarray]] = {k: [] for k in ("faces_all", "opposite", "coface", "which", "faces", "first")}
    for k in range(dim - 1, dim - 1 - (dim if depth is None else depth), -1):
        q = k + 2
        faces_all = np.concatenate([np.delete(upper, drop, axis=1) for drop in range(q)])
        _, first, which = np.unique(_keys(faces_all), return_index=True, return_inverse=True)
        faces = faces_all[first]
        opposite = np.concatenate([upper[:, drop] for drop in range(q)])
        coface = np.tile(np.arange(len(upper)), q)
        for name, value in (("faces_all", faces_all), ("opposite", opposite), ("coface", coface),
                            ("which", which.reshape(-1)), ("faces", faces), ("first", first)):  # fmt: skip
            acc[name].append(value)
        upper = faces
    return Skeleton(dim, n_points, tops, **acc)


def alpha_levels(rel: np.ndarray, entry: np.ndarray, skel: Skeleton) -> AlphaLevels:
    """Weighted alpha values of all simplices of a skeleton at points `rel` with entries `entry`, with sources."""
    dim, n_pts, tops = skel.dim, skel.n_points, skel.tops
    _, v_top = orthospheres_np(rel[tops], entry[tops]) if len(tops) else (None, np.zeros(0))
    simplices, alpha, src_level, src_index = [tops], [v_top], [np.full(len(tops), dim)], [np.arange(len(tops))]
    upper_alpha, upper_sl, upper_si = v_top, src_level[0], src_index[0]
    for level, k in enumerate(range(dim - 1, -1, -1)):
        opposite, coface, which, faces = skel.opposite[level], skel.coface[level], skel.which[level], skel.faces[level]
        n_upper = len(upper_alpha)
        centres, own = orthospheres_np(rel[faces], entry[faces])  # once per face, not per incidence
        v_all = own[which]
        gap = rel[opposite] - centres[which]
        with np.errstate(invalid="ignore"):
            power = np.einsum("md,md->m", gap, gap) + entry[opposite]
            attached = power < v_all - ATTACH_TOL * (np.abs(v_all) + 1.0)
        # cheapest attaching coface of each face
        cand = np.flatnonzero(attached)
        order = cand[np.lexsort((upper_alpha[coface[cand]], which[cand]))]
        best = np.full(len(faces), -1)
        uniq, pos_first = np.unique(which[order], return_index=True)
        best[uniq] = coface[order[pos_first]]
        inherit = best >= 0
        via = np.maximum(best, 0)
        a = np.where(inherit, upper_alpha[via] if n_upper else own, own)
        sl = np.where(inherit, upper_sl[via] if n_upper else k, k)
        si = np.where(inherit, upper_si[via] if n_upper else 0, np.arange(len(faces)))
        if k == 0:  # points in no simplex (hidden, or too few neighbours) stay as isolated vertices
            ids = faces[:, 0]
            a_all, sl_all, si_all = entry.copy(), np.zeros(n_pts, int), np.arange(n_pts)
            a_all[ids], sl_all[ids], si_all[ids] = a, sl, np.where(inherit, si, ids)
            faces, a, sl, si = np.arange(n_pts)[:, None], a_all, sl_all, si_all
        simplices.append(faces)
        alpha.append(a)
        src_level.append(sl)
        src_index.append(si)
        upper_alpha, upper_sl, upper_si = a, sl, si
    return AlphaLevels(simplices[::-1], alpha[::-1], src_level[::-1], src_index[::-1])


@dataclass
class LocalTopology:
    """The combinatorics of all atoms' diagrams: everything needed to recompute them from positions.

    Points (P): `centre`, `atom`, `offset` (P, d) as in `Neighbourhoods`. Value sources:
    `sources[k]` (M_k, k+1) point ids of the simplices (k = 0..dim) whose orthogonal-sphere power
    radii are birth/death values. Pairs (Q): homology degree, centre atom, and birth and death as
    (level k, index into `sources[k]`).
    """

    dim: int
    n_atoms: int
    centre: np.ndarray
    atom: np.ndarray
    offset: np.ndarray
    sources: list[np.ndarray]
    pair_degree: np.ndarray
    pair_centre: np.ndarray
    birth_level: np.ndarray
    birth_index: np.ndarray
    death_level: np.ndarray
    death_index: np.ndarray

    @property
    def n_pairs(self) -> int:
        return len(self.pair_degree)

    @classmethod
    def concat(cls, parts: list[LocalTopology]) -> LocalTopology:
        """One topology of several structures (atoms, points and sources renumbered): a batch."""
        dim = parts[0].dim
        atom_off = point_off = 0
        src_off = np.zeros(dim + 1, int)
        acc: dict[str, list] = {f.name: [] for f in fields(cls)}
        sources: list[list[np.ndarray]] = [[] for _ in range(dim + 1)]
        for p in parts:
            for k in range(dim + 1):
                sources[k].append(p.sources[k] + point_off)
            acc["centre"].append(p.centre + atom_off)
            acc["atom"].append(p.atom + atom_off)
            acc["offset"].append(p.offset)
            acc["pair_degree"].append(p.pair_degree)
            acc["pair_centre"].append(p.pair_centre + atom_off)
            acc["birth_level"].append(p.birth_level)
            acc["birth_index"].append(p.birth_index + src_off[p.birth_level])
            acc["death_level"].append(p.death_level)
            acc["death_index"].append(p.death_index + src_off[p.death_level])
            for k in range(dim + 1):
                src_off[k] += len(p.sources[k])
            atom_off += p.n_atoms
            point_off += len(p.centre)
        merged = {name: np.concatenate(acc[name]) for name in acc if acc[name]}
        return cls(dim=dim, n_atoms=atom_off, sources=[np.concatenate(sources[k]) for k in range(dim + 1)], **merged)


def local_topology(frame: Frame, dim: int, cutoff_A: float, inner_A: float, alpha_max_A2: float) -> LocalTopology:
    """Neighbourhoods, weighted local alpha complexes and persistence pairs (with value sources) of all atoms."""
    nb = neighbourhoods(frame, dim, cutoff_A)
    rel = nb.relative(frame.positions)
    with torch.no_grad():
        entry = entry_values(torch.from_numpy((rel**2).sum(1)), inner_A, cutoff_A, alpha_max_A2).numpy()
    return topology_of(nb, rel, entry, regular_tops(rel, entry, nb.start, dim), alpha_max_A2)


def topology_of(
    nb: Neighbourhoods, rel: np.ndarray, entry: np.ndarray, tops: np.ndarray, alpha_max_A2: float,
    skel: Skeleton | None = None,
) -> LocalTopology:  # fmt: skip
    """The LocalTopology of triangulations `tops` of the weighted point sets (`rel` Å, `entry` Å²) of `nb`.

    Compiled (`pdmd.models.local.pairing`) where numba is present; else, or where that declines, the
    skeleton (`skel`, when the caller has it), alpha levels and gudhi.
    """
    out = compiled_pairs(rel, entry, nb.start, tops, nb.dim, alpha_max_A2)
    if out is None:
        skel = skel if skel is not None and len(skel.faces) == nb.dim else skeleton(tops, nb.dim, len(rel))
        return topology_from_levels(nb, alpha_levels(rel, entry, skel), alpha_max_A2)
    pairs, sources, level = out
    rank = np.zeros(len(level), int)
    for k in range(nb.dim + 1):
        rank[level == k] = np.arange(int((level == k).sum()))
    return LocalTopology(
        dim=nb.dim,
        n_atoms=nb.n_atoms,
        centre=nb.centre,
        atom=nb.atom,
        offset=nb.offset,
        sources=[sources[level == k, : k + 1] for k in range(nb.dim + 1)],
        pair_degree=pairs[:, 0],
        pair_centre=pairs[:, 1],
        birth_level=level[pairs[:, 2]],
        birth_index=rank[pairs[:, 2]],
        death_level=level[pairs[:, 3]],
        death_index=rank[pairs[:, 3]],
    )


def _simplex_tree(nb: Neighbourhoods, levels: AlphaLevels, alpha_max_A2: float):
    """One gudhi SimplexTree of every atom's complex, persistence computed, and each level's shifted values.

    Complex a's values are shifted by a * stride, which leaves its pairs unchanged (the complexes are
    disjoint) and lets each interval name its complex and its simplices.
    """
    import gudhi

    stride = alpha_max_A2 + 1.0
    shifted = [levels.alpha[k] + nb.centre[levels.simplices[k][:, 0]] * stride for k in range(nb.dim + 1)]
    keep = [lv_alpha <= alpha_max_A2 for lv_alpha in levels.alpha]
    st = gudhi.SimplexTree()
    for k in range(nb.dim + 1):
        if keep[k].any():
            st.insert_batch(
                np.ascontiguousarray(levels.simplices[k][keep[k]].T, dtype=np.int32),
                np.ascontiguousarray(shifted[k][keep[k]]),
            )
    st.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    return st, shifted


def _simplex_of_value(shifted: list[np.ndarray]):
    """`lookup(k, values)`: a level-k simplex whose shifted value is each of `values` (all such share one value)."""
    order = [np.argsort(v, kind="stable") for v in shifted]
    ordered = [v[o] for v, o in zip(shifted, order)]

    def lookup(k: int, values: np.ndarray) -> np.ndarray:
        where = np.clip(np.searchsorted(ordered[k], values), 1, max(len(ordered[k]) - 1, 1))
        left = np.abs(ordered[k][where - 1] - values) <= np.abs(ordered[k][where] - values)
        pick = np.where(left, where - 1, where)
        if len(values) and np.abs(ordered[k][pick] - values).max() > 1e-6:
            raise DescriptorError("pd-local: a persistence value matches no simplex (internal error)")
        return order[k][pick]

    return lookup


def _gudhi_pairs(nb: Neighbourhoods, levels: AlphaLevels, alpha_max_A2: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per degree h: (birth index at level h, death index at level h + 1) of every finite interval, by gudhi."""
    st, shifted = _simplex_tree(nb, levels, alpha_max_A2)
    lookup = _simplex_of_value(shifted)
    out = []
    for h in range(nb.dim):
        iv = np.asarray(st.persistence_intervals_in_dimension(h), float).reshape(-1, 2)
        iv = iv[np.isfinite(iv[:, 1])]  # essential classes are dropped
        out.append((lookup(h, iv[:, 0]), lookup(h + 1, iv[:, 1])))
    return out


def _finite_pairs(nb: Neighbourhoods, levels: AlphaLevels, pairs) -> tuple[list[tuple], list[list[np.ndarray]]]:
    """Per degree h: (h, centre atom, birth level, birth source, death level, death source) of the finite pairs
    `pairs` (per h, birth and death simplex indices), and per level the source simplices they use.
    """
    dim = nb.dim
    used: list[list[np.ndarray]] = [[] for _ in range(dim + 1)]
    parts = []
    for h, (b_idx, d_idx) in enumerate(pairs):
        if not len(d_idx):
            continue
        b_lvl, b_src = levels.src_level[h][b_idx], levels.src_index[h][b_idx]
        d_lvl, d_src = levels.src_level[h + 1][d_idx], levels.src_index[h + 1][d_idx]
        parts.append((h, nb.centre[levels.simplices[h + 1][d_idx, 0]], b_lvl, b_src, d_lvl, d_src))
        for lvl, src in ((b_lvl, b_src), (d_lvl, d_src)):
            for k in range(dim + 1):
                used[k].append(src[lvl == k])
    return parts, used


def _used_sources(levels: AlphaLevels, used: list[list[np.ndarray]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The source simplices the pairs use, per level, and each level's map from all simplices to those (-1: unused)."""
    sources, remaps = [], []
    for k in range(len(levels.simplices)):
        u = np.unique(np.concatenate(used[k])) if used[k] else np.zeros(0, int)
        remap = np.full(len(levels.simplices[k]), -1)
        remap[u] = np.arange(len(u))
        remaps.append(remap)
        sources.append(levels.simplices[k][u])
    return sources, remaps


def topology_from_levels(nb: Neighbourhoods, levels: AlphaLevels, alpha_max_A2: float) -> LocalTopology:
    """Persistence pairs (with their value sources) of the complexes `levels` on neighbourhoods `nb`, by gudhi."""
    dim = nb.dim
    parts, used = _finite_pairs(nb, levels, _gudhi_pairs(nb, levels, alpha_max_A2))
    sources, remaps = _used_sources(levels, used)

    def renumber(lvl: np.ndarray, src: np.ndarray) -> np.ndarray:
        out = np.zeros(len(lvl), int)
        for k in range(dim + 1):
            sel = lvl == k
            out[sel] = remaps[k][src[sel]]
        return out

    def cat(column) -> np.ndarray:
        return np.concatenate([column(p) for p in parts]) if parts else np.zeros(0, int)

    return LocalTopology(
        dim=dim,
        n_atoms=nb.n_atoms,
        centre=nb.centre,
        atom=nb.atom,
        offset=nb.offset,
        sources=sources,
        pair_degree=cat(lambda p: np.full(len(p[1]), p[0])),
        pair_centre=cat(lambda p: p[1]),
        birth_level=cat(lambda p: p[2]),
        birth_index=cat(lambda p: renumber(p[2], p[3])),
        death_level=cat(lambda p: p[4]),
        death_index=cat(lambda p: renumber(p[4], p[5])),
    )
