# SPDX-License-Identifier: GPL-3.0-or-later
"""Local topologies of a moving structure (MD): neighbour lists and local triangulations reused between calls.

`TopologyCache(...)(frame)` returns the same diagrams as `local_topology` (same pairs and values), but

- the neighbour list is built with `cutoff_A + skin_A` and kept until some atom has moved more than
  `skin_A / 2` (or the cell, periodicity or atom count changes). Points between the cutoff and the
  skin enter the weighted filtration at `alpha_max_A2` (g is clamped there), so every simplex that
  contains one has a value >= `alpha_max_A2` and cannot attach a cheaper face: the truncated
  filtration, hence every pair, is exactly the one without them;
- each atom's regular triangulation is kept while it is still the regular triangulation of the
  moved points, and recomputed (`regular_tops`) only for atoms where it is not. The certificate, vectorized
  over all atoms: every top simplex keeps its orientation (no fold-over), the boundary stays locally
  convex (so the tops still triangulate the convex hull), every interior facet is locally regular
  (the opposite vertex across it lies outside the top's orthogonal sphere: the lifted surface is
  locally, hence globally, convex) and every hidden point stays hidden (above every top's sphere,
  inside the hull). Near-ties fail the test (relative margin), so degenerate sets are recomputed.

Alpha values, attachments and persistence are recomputed at every call (they change with every
move), by the compiled kernels (`pdmd.models.local.pairing`) or, on the numpy path, on the faces and
incidences kept with the triangulation. A retriangulation replaces only the redone atoms' tops and
certificate rows: no check spans two atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pdmd.models.local.compiled import compiled_available, jit, orthosphere_power
from pdmd.models.local.complex import (
    LocalTopology,
    Neighbourhoods,
    Skeleton,
    entry_values,
    neighbourhoods,
    orthospheres_np,
    skeleton,
    topology_of,
)
from pdmd.models.local.triangulation import regular_tops
from pdmd.structure import Frame

MARGIN = 1e-9
"""Relative margin of the certificate's inequalities (a closer call is recomputed)."""


def _orient(points: np.ndarray) -> np.ndarray:
    """Signed volume (× d!) of simplices (M, d+1, d), d = 2 or 3."""
    e = points[:, 1:, :] - points[:, :1, :]
    if e.shape[2] == 2:
        return e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
    return np.einsum("md,md->m", e[:, 0, :], np.cross(e[:, 1, :], e[:, 2, :]))


def _side(facet: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Signed volume of the simplex of facet points (M, d, d) and a point x (M, d)."""
    return _orient(np.concatenate([facet, x[:, None, :]], axis=1))


@dataclass
class _Certificate:
    """Index arrays of the checks of one triangulation (see the module docstring)."""

    top_atom: np.ndarray  # (T,) centre atom of each top
    sign: np.ndarray  # (T,) orientation sign when built
    power_top: np.ndarray  # (K,) top that must keep point power_point outside its sphere
    power_point: np.ndarray
    side_facet: np.ndarray  # (L, d) boundary facet points that must keep side_point on the side of side_ref
    side_point: np.ndarray
    side_ref: np.ndarray
    side_atom: np.ndarray


def _hidden_point_checks(tops: np.ndarray, point_atom: np.ndarray, top_atom: np.ndarray, bf: np.ndarray,
                         bo: np.ndarray, b_atom: np.ndarray) -> tuple[np.ndarray, ...] | None:  # fmt: skip
    """Checks that keep every hidden point of an atom hidden: (power point, power top) pairs against each of its
    atom's tops and (facet, point, reference, atom) rows against each boundary facet; None without hidden points.
    """
    used = np.zeros(len(point_atom), bool)
    used[tops.ravel()] = True
    has_tops = np.zeros(int(point_atom.max()) + 1 if len(point_atom) else 0, bool)
    has_tops[top_atom] = True
    hidden = np.flatnonzero(~used & has_tops[point_atom])
    if not len(hidden):
        return None
    t_order = np.argsort(top_atom, kind="stable")
    t_start = np.searchsorted(top_atom[t_order], np.arange(len(has_tops) + 1))
    h_atom = point_atom[hidden]
    n_t = t_start[h_atom + 1] - t_start[h_atom]
    power_point = np.repeat(hidden, n_t)
    power_top = t_order[np.concatenate([np.arange(t_start[a], t_start[a + 1]) for a in h_atom])]
    b_order = np.argsort(b_atom, kind="stable")
    b_start = np.searchsorted(b_atom[b_order], np.arange(len(has_tops) + 1))
    n_b = b_start[h_atom + 1] - b_start[h_atom]
    rows = b_order[np.concatenate([np.arange(b_start[a], b_start[a + 1]) for a in h_atom])]
    return power_point, power_top, bf[rows], np.repeat(hidden, n_b), bo[rows], b_atom[rows]


def _certificate(skel: Skeleton, point_atom: np.ndarray, fragile: set[int], sign: np.ndarray) -> _Certificate:
    """The checks that certify `skel`'s triangulation as regular at later positions, built once per triangulation.

    `sign`: the orientation of each top when it was built (or last certified): a top that
    has turned over since fails.
    """
    dim, tops = skel.dim, skel.tops
    top_atom = point_atom[tops[:, 0]] if len(tops) else np.zeros(0, int)
    which, coface, opposite, facets = skel.which[0], skel.coface[0], skel.opposite[0], skel.faces_all[0]
    order = np.argsort(which, kind="stable")
    counts = np.bincount(which, minlength=len(skel.faces[0]))
    per_row = counts[which[order]]
    # interior facets: two incidences in consecutive sorted rows; each top checks the other's opposite vertex
    inner = order[per_row == 2].reshape(-1, 2)
    power_top = [coface[inner[:, 0]], coface[inner[:, 1]]]
    power_point = [opposite[inner[:, 1]], opposite[inner[:, 0]]]
    # boundary facets and their ridges (each shared by two boundary facets): local convexity
    rb = order[per_row == 1]
    bf, bo = facets[rb], opposite[rb]
    b_atom = point_atom[bf[:, 0]] if len(rb) else np.zeros(0, int)
    ridges = np.concatenate([np.delete(bf, j, axis=1) for j in range(dim)]) if len(rb) else np.zeros((0, dim - 1), int)
    dropped = np.concatenate([bf[:, j] for j in range(dim)]) if len(rb) else np.zeros(0, int)
    owner = np.tile(np.arange(len(rb)), dim)
    key = ridges[:, 0].astype(np.int64) << 24
    for c in range(1, dim - 1):
        key |= (ridges[:, c] - ridges[:, 0]).astype(np.int64) << (8 * (3 - c))
    rorder = np.argsort(key, kind="stable")
    _, rstart, rcount = np.unique(key[rorder], return_index=True, return_counts=True)
    bad_ridge = rcount != 2
    for r in np.flatnonzero(bad_ridge):  # not a closed hull surface: cannot certify these atoms
        fragile.add(int(b_atom[owner[rorder[rstart[r]]]]))
    two = rstart[~bad_ridge]
    f1, f2 = owner[rorder[two]], owner[rorder[two + 1]]
    v1, v2 = dropped[rorder[two]], dropped[rorder[two + 1]]
    side_facet = [bf[f1], bf[f2]]
    side_point = [v2, v1]
    side_ref = [bo[f1], bo[f2]]
    side_atom = [b_atom[f1], b_atom[f2]]
    # hidden points of atoms with tops: outside every top's sphere of their atom, inside every boundary facet
    hidden = _hidden_point_checks(tops, point_atom, top_atom, bf, bo, b_atom)
    if hidden is not None:
        for acc, more in zip((power_point, power_top, side_facet, side_point, side_ref, side_atom), hidden):
            acc.append(more)
    return _Certificate(top_atom, sign, np.concatenate(power_top), np.concatenate(power_point),
                        np.concatenate(side_facet), np.concatenate(side_point), np.concatenate(side_ref),
                        np.concatenate(side_atom))  # fmt: skip


def _invalid_atoms(cert: _Certificate, tops: np.ndarray, rel: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Atoms whose cached triangulation is not certified as regular at points `rel` (entries `entry`)."""
    if compiled_available():
        bad = _compiled_check(tops, cert.sign, cert.top_atom, cert.power_top, cert.power_point, cert.side_facet,
                              cert.side_point, cert.side_ref, cert.side_atom, rel, entry, MARGIN)  # fmt: skip
        return np.flatnonzero(bad)
    pts = rel[tops]
    vol = _orient(pts) * cert.sign
    scale = ((pts - pts[:, :1, :]) ** 2).sum((1, 2)) ** (0.5 * (pts.shape[2]))
    bad = [cert.top_atom[~(vol > MARGIN * scale)]]
    centre, value = orthospheres_np(pts, entry[tops])
    t, q = cert.power_top, cert.power_point
    gap = rel[q] - centre[t]
    excess = np.einsum("md,md->m", gap, gap) + entry[q] - value[t]
    with np.errstate(invalid="ignore"):
        ok = excess > MARGIN * (np.abs(value[t]) + np.einsum("md,md->m", gap, gap) + 1.0)
    bad.append(cert.top_atom[t[~ok]])
    if len(cert.side_point):
        f = rel[cert.side_facet]
        s_point = _side(f, rel[cert.side_point])
        s_ref = _side(f, rel[cert.side_ref])
        fscale = ((f - f[:, :1, :]) ** 2).sum((1, 2)) + ((rel[cert.side_point] - f[:, 0, :]) ** 2).sum(1)
        ok = s_point * np.sign(s_ref) > MARGIN * fscale ** (0.5 * f.shape[2])
        bad.append(cert.side_atom[~ok])
    return np.unique(np.concatenate(bad))


@jit
def _orient_c(rel, ids, x):  # pragma: no cover - compiled
    """Signed volume (x d!) of the simplex of points rel[ids[:d]] and rel[x] (x < 0: ids[:d+1]), d = 2 or 3."""
    d = rel.shape[1]
    o = ids[0]
    a, b = ids[1], (ids[d] if x < 0 else x) if d == 2 else ids[2]
    ax, ay = rel[a, 0] - rel[o, 0], rel[a, 1] - rel[o, 1]
    bx, by = rel[b, 0] - rel[o, 0], rel[b, 1] - rel[o, 1]
    if d == 2:
        return ax * by - ay * bx
    c = ids[3] if x < 0 else x
    az, bz = rel[a, 2] - rel[o, 2], rel[b, 2] - rel[o, 2]
    cx, cy, cz = rel[c, 0] - rel[o, 0], rel[c, 1] - rel[o, 1], rel[c, 2] - rel[o, 2]
    return ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)


@jit
def _spread(rel, ids, n, x):  # pragma: no cover - compiled
    """Sum of squared distances of rel[ids[1:n]] (and rel[x] when x >= 0) to rel[ids[0]]."""
    s = 0.0
    for i in range(1, n + (1 if x >= 0 else 0)):
        p = ids[i] if i < n else x
        for c in range(rel.shape[1]):
            s += (rel[p, c] - rel[ids[0], c]) ** 2
    return s


@jit
def _compiled_check(tops, sign, top_atom, power_top, power_point, side_facet, side_point, side_ref, side_atom,
                    rel, entry, margin):  # fmt: skip  # pragma: no cover - compiled
    """The certificate's checks (orientation, local regularity, boundary convexity) in one pass: a bad-atom mask."""
    d = rel.shape[1]
    n_atoms = top_atom.max() + 1 if len(top_atom) else 0
    if len(side_atom):
        n_atoms = max(n_atoms, side_atom.max() + 1)
    bad = np.zeros(n_atoms, np.bool_)
    value = np.empty(len(tops))
    centre = np.empty((len(tops), 3))
    coef = np.empty(3)
    for t in range(len(tops)):
        vol = _orient_c(rel, tops[t], -1) * sign[t]
        if not vol > margin * _spread(rel, tops[t], d + 1, -1) ** (0.5 * d):
            bad[top_atom[t]] = True
        value[t] = orthosphere_power(rel, entry, tops[t], 0, d + 1, centre[t], coef)
    for i in range(len(power_top)):
        t, q = power_top[i], power_point[i]
        g2 = 0.0
        for c in range(d):
            g2 += (rel[q, c] - centre[t, c]) ** 2
        if not g2 + entry[q] - value[t] > margin * (abs(value[t]) + g2 + 1.0):
            bad[top_atom[t]] = True
    for i in range(len(side_point)):
        f = side_facet[i]
        s_point = _orient_c(rel, f, side_point[i])
        s_ref = _orient_c(rel, f, side_ref[i])
        scale = _spread(rel, f, d, side_point[i])
        if not s_point * np.sign(s_ref) > margin * scale ** (0.5 * d):
            bad[side_atom[i]] = True
    return bad


class TopologyCache:
    """`local_topology` for a sequence of nearby structures (MD steps): see the module docstring.

    `stats` counts calls, neighbour-list builds and atoms whose triangulation was recomputed.
    """

    def __init__(self, dim: int, cutoff_A: float, inner_A: float, alpha_max_A2: float, skin_A: float = 0.3) -> None:
        self.dim, self.cutoff_A, self.inner_A, self.alpha_max_A2 = dim, cutoff_A, inner_A, alpha_max_A2
        self.skin_A = skin_A
        self.stats = {"calls": 0, "neighbour_builds": 0, "atoms_retriangulated": 0}
        self._key: tuple | None = None

    def _entry(self, rel: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            r2 = torch.from_numpy((rel**2).sum(1))
            return entry_values(r2, self.inner_A, self.cutoff_A, self.alpha_max_A2).numpy()

    def __call__(self, frame: Frame) -> LocalTopology:
        self.stats["calls"] += 1
        pos = np.asarray(frame.positions, float)
        key = (len(pos), np.asarray(frame.cell, float).tobytes(), tuple(bool(p) for p in frame.pbc))
        moved = np.inf if key != self._key else float(np.sqrt(((pos - self._ref) ** 2).sum(1).max(initial=0.0)))
        if moved > 0.5 * self.skin_A:
            self._rebuild_all(frame, key)
        nb: Neighbourhoods = self._nb
        rel = nb.relative(pos)
        entry = self._entry(rel)
        redo = np.union1d(_invalid_atoms(self._cert, self._tops, rel, entry), self._fragile_array)
        if len(redo):
            self._retriangulate(rel, entry, redo)
        return topology_of(nb, rel, entry, self._tops, self.alpha_max_A2, self._skel)

    def _rebuild_all(self, frame: Frame, key: tuple) -> None:
        """New neighbour lists; atoms whose point list is unchanged keep their triangulation (checked later)."""
        self.stats["neighbour_builds"] += 1
        old = self._nb if key == self._key else None
        self._key, self._ref = key, np.asarray(frame.positions, float).copy()
        nb = self._nb = neighbourhoods(frame, self.dim, self.cutoff_A + self.skin_A)
        rel = nb.relative(frame.positions)
        entry = self._entry(rel)
        kept, sign = self._carried_tops(old, nb) if old is not None else (np.zeros((0, self.dim + 1), int), np.zeros(0))
        redo = np.setdiff1d(np.arange(nb.n_atoms), nb.centre[kept[:, 0]] if len(kept) else [])
        self._fragile: set[int] = set()
        new = regular_tops(rel, entry, nb.start, self.dim, atoms=redo, fragile=self._fragile)
        self.stats["atoms_retriangulated"] += len(redo)
        self._set_tops(np.concatenate([kept, new]), np.concatenate([sign, np.sign(_orient(rel[new]))]), rel)

    def _carried_tops(self, old: Neighbourhoods, nb: Neighbourhoods) -> np.ndarray:
        """Cached tops (renumbered) and their orientation signs, of atoms with the same neighbour points as before."""
        size_old, size_new = np.diff(old.start), np.diff(nb.start)
        cand = np.flatnonzero(size_old == size_new)
        if not len(cand):
            return np.zeros((0, self.dim + 1), int), np.zeros(0)
        sizes = size_new[cand]
        local = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        p_old = np.repeat(old.start[cand], sizes) + local
        p_new = np.repeat(nb.start[cand], sizes) + local
        same = (old.atom[p_old] == nb.atom[p_new]) & (np.abs(old.offset[p_old] - nb.offset[p_new]).max(1) < 1e-9)
        ok = np.zeros(nb.n_atoms, bool)
        ok[cand] = np.bincount(np.repeat(np.arange(len(cand)), sizes), weights=~same, minlength=len(cand)) == 0
        ok[list(self._fragile)] = False
        tops = self._tops
        take = ok[self._cert.top_atom]
        shift = nb.start - old.start
        return tops[take] + shift[self._cert.top_atom[take]][:, None], self._cert.sign[take]

    def _retriangulate(self, rel: np.ndarray, entry: np.ndarray, atoms: np.ndarray) -> None:
        self.stats["atoms_retriangulated"] += len(atoms)
        keep = ~np.isin(self._cert.top_atom, atoms)
        self._fragile = set()
        new = regular_tops(rel, entry, self._nb.start, self.dim, atoms=atoms, fragile=self._fragile)
        sign_new = np.sign(_orient(rel[new]))
        if self._skel is not None or not len(new):  # the full skeleton (numpy path) is rebuilt whole
            self._set_tops(
                np.concatenate([self._tops[keep], new]), np.concatenate([self._cert.sign[keep], sign_new]), rel
            )
            return
        self._splice(keep, atoms, new, sign_new, rel)

    def _splice(self, keep: np.ndarray, atoms: np.ndarray, new: np.ndarray, sign_new: np.ndarray, rel: np.ndarray):
        """Replace the tops and certificate rows of `atoms` by those of their new triangulations `new`; the other
        atoms' rows are kept (no check spans two atoms).
        """
        order = np.lexsort(new.T[::-1])
        part = _certificate(skeleton(new[order], self.dim, len(rel), 1), self._nb.centre, self._fragile,
                            sign_new[order])  # fmt: skip
        c, n_kept = self._cert, int(keep.sum())
        index = np.cumsum(keep) - 1
        rows = keep[c.power_top]
        kept_atom = np.ones(self._nb.n_atoms, bool)
        kept_atom[atoms] = False
        side = kept_atom[c.side_atom]
        self._tops = np.concatenate([self._tops[keep], new[order]])
        self._cert = _Certificate(
            np.concatenate([c.top_atom[keep], part.top_atom]), np.concatenate([c.sign[keep], part.sign]),
            np.concatenate([index[c.power_top[rows]], part.power_top + n_kept]),
            np.concatenate([c.power_point[rows], part.power_point]),
            *(np.concatenate([getattr(c, f)[side], getattr(part, f)]) for f in ("side_facet", "side_point", "side_ref",
                                                                                 "side_atom")),
        )  # fmt: skip
        self._fragile_array = np.array(sorted(self._fragile), int)

    def _set_tops(self, tops: np.ndarray, sign: np.ndarray, rel: np.ndarray) -> None:
        """Install a triangulation; `sign`: each top's orientation when it was last certified or built.

        The full skeleton is kept for the numpy path only; the compiled one needs the tops and the certificate.
        """
        order = np.lexsort(tops.T[::-1]) if len(tops) else np.zeros(0, int)
        self._tops = tops[order]
        compiled = compiled_available()
        skel = skeleton(self._tops, self.dim, len(rel), 1 if compiled else None)
        self._skel = None if compiled else skel
        self._cert = _certificate(skel, self._nb.centre, self._fragile, sign[order])
        self._fragile_array = np.array(sorted(self._fragile), int)
