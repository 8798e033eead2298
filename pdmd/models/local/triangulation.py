# SPDX-License-Identifier: GPL-3.0-or-later
"""Regular (weighted Delaunay) triangulations of every atom's weighted local point set: lower convex hulls of the
lifted points (x, |x|² + entry), compiled (numba; 2D every triple tested, 3D gift wrapping) with qhull (scipy) for
degenerate sets and without numba. A non-degenerate set has one regular triangulation, so both give the same tops.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from pdmd.models.local.compiled import compiled_available, in_chunks, jit

HULL_TOL = 1e-9
"""Relative distance (to the largest lifted coordinate) within which a point counts as on a candidate facet's
plane, and relative size below which three lifted points count as collinear or a facet as vertical: the
compiled lower hull leaves such sets to qhull, so degenerate sets are triangulated as before."""
MAX_TETS_PER_POINT = 12
"""Tets per point the compiled 3D lower hull has room for (random sets of carbon neighbourhoods have about 4-6);
a set with more goes to qhull."""


@jit
def _lifted(rel, entry, lo, n):  # pragma: no cover - compiled
    """Points rel[lo:lo + n] lifted to (x, |x|² + entry) (n, d + 1), and their largest absolute coordinate."""
    d = rel.shape[1]
    pts = np.empty((n, d + 1))
    scale = 0.0
    for p in range(n):
        r2 = 0.0
        for c in range(d):
            pts[p, c] = rel[lo + p, c]
            r2 += rel[lo + p, c] ** 2
            scale = max(scale, abs(rel[lo + p, c]))
        pts[p, d] = r2 + entry[lo + p]
        scale = max(scale, abs(pts[p, d]))
    return pts, scale


@jit
def _lower_hulls_2d(lo_t, hi_t, rel, entry, start, atoms, tops, counts, degenerate):  # pragma: no cover - compiled
    """Lower convex hull of the lifted points (x, y, x² + y² + entry) of atoms[lo_t:hi_t] by testing every triple.

    A triple is a top when its plane is not vertical (qhull's test of a lower facet: normal z below -1e-12) and
    every other point lies above it. Writes the tops of atoms[t] (global ids) into tops[t] and their number into
    counts[t]; sets degenerate[t] when a point lies within HULL_TOL of a candidate's plane, three lifted points
    are (nearly) collinear, a candidate's plane is (nearly) vertical or there are more tops than a
    triangulation has (the caller then asks qhull, as for every set before).
    """
    for t in range(lo_t, hi_t):
        a = atoms[t]
        lo, n = start[a], start[a + 1] - start[a]
        pts, scale = _lifted(rel, entry, lo, n)
        tol = HULL_TOL * scale
        c = 0
        for i in range(n):
            for j in range(i + 1, n):
                ax, ay, az = pts[j, 0] - pts[i, 0], pts[j, 1] - pts[i, 1], pts[j, 2] - pts[i, 2]
                for k in range(j + 1, n):
                    bx, by, bz = pts[k, 0] - pts[i, 0], pts[k, 1] - pts[i, 1], pts[k, 2] - pts[i, 2]
                    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
                    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
                    if norm <= HULL_TOL * np.sqrt((ax * ax + ay * ay + az * az) * (bx * bx + by * by + bz * bz)):
                        degenerate[t] = True  # (nearly) collinear lifted points
                        continue
                    if nz > 0.0:  # the outward normal of a lower facet points down
                        nx, ny, nz = -nx, -ny, -nz
                    if -nz < HULL_TOL * norm:  # (nearly) vertical: qhull's own test (-1e-12) decides
                        degenerate[t] = True
                        continue
                    lower = True
                    for m in range(n):
                        if m in (i, j, k):
                            continue
                        d = ((pts[m, 0] - pts[i, 0]) * nx + (pts[m, 1] - pts[i, 1]) * ny
                             + (pts[m, 2] - pts[i, 2]) * nz) / norm  # fmt: skip
                        if d > -tol:
                            if d < tol:
                                degenerate[t] = True
                            lower = False
                            break
                    if lower:
                        if c == 2 * n - 5:  # a triangulation of n points has at most 2n - 5 triangles
                            degenerate[t] = True
                            break
                        tops[t, c, 0], tops[t, c, 1], tops[t, c, 2] = lo + i, lo + j, lo + k
                        c += 1
        counts[t] = c


@jit
def _lower_hull_3d(pts, tol, out, hkey, hn):  # pragma: no cover - compiled
    """Lower hull of one set of lifted 3D points `pts` (n, 4) by gift wrapping; its tets (local ids) into `out`.

    Returns their number, or -1 when the set is degenerate (a point within `tol` of a facet's hyperplane, a flat
    ridge, a nearly vertical facet, a face shared by three tets, more tets than `out` holds or no first tet).
    `hkey`, `hn`: scratch of a face hash table (a power of two long): key, number of tets (or 2 at the hull).
    """
    mask = len(hkey) - 1
    hkey[:] = -1
    if not _first_tet(pts, tol, out) or not _register(out, 0, hkey, hn, mask):
        return -1
    count = 1
    cols = np.ascontiguousarray(pts.T)
    hs, ds, vec = np.empty(len(pts)), np.empty(len(pts)), np.empty((4, 3))
    t = 0
    while t < count:
        for f in range(4):
            a, b, c = _face(out, t, f)
            slot = _slot(hkey, mask, (a << 16) | (b << 8) | c)
            if hn[slot] == 2:  # both sides known, or a face of the convex hull
                continue
            apex = _across(pts, cols, a, b, c, out[t, f], tol, hs, ds, vec)
            if apex == -2:
                return -1
            if apex == -1:  # a face of the convex hull
                hn[slot] = 2
                continue
            if count == out.shape[0]:
                return -1
            out[count, 0], out[count, 1], out[count, 2], out[count, 3] = a, b, c, apex
            if not _register(out, count, hkey, hn, mask):
                return -1
            count += 1
        t += 1
    return count


@jit
def _first_tet(pts, tol, out):  # pragma: no cover - compiled
    """A first lower facet into out[0]: the lowest lifted point (a vertex) and three others, its nearest first.

    False when none is found or one is degenerate.
    """
    n = len(pts)
    low = np.argmin(pts[:, 3])
    dist = np.empty(n)
    for p in range(n):
        dist[p] = (pts[p, 0] - pts[low, 0]) ** 2 + (pts[p, 1] - pts[low, 1]) ** 2 + (pts[p, 2] - pts[low, 2]) ** 2
    near = np.argsort(dist)[1:]
    grad = np.empty(3)
    for i in range(n - 1):
        for j in range(i + 1, n - 1):
            for k in range(j + 1, n - 1):
                ids = (low, near[i], near[j], near[k])
                if not _hyperplane(pts, ids, grad):
                    continue
                ok = _all_above(pts, ids, grad, tol)
                if ok < 0:
                    return False
                if ok == 1:
                    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = low, near[i], near[j], near[k]
                    return True
    return False


@jit
def _across(pts, cols, a, b, c, o, tol, hs, ds, vec):  # pragma: no cover - compiled
    """The apex of the lower facet across face (a, b, c) from the tet with apex o: the point the hyperplane through
    the face meets first as it turns away from o; -1 at the convex hull, -2 when degenerate (a point within `tol`
    of the new facet's hyperplane, a flat face, a nearly vertical facet). `hs`, `ds`: scratch (n,); `vec` (4, 3).
    """
    e1, e2, nv, g = vec[0], vec[1], vec[2], vec[3]
    for d in range(3):
        e1[d], e2[d] = pts[b, d] - pts[a, d], pts[c, d] - pts[a, d]
    _cross3(e1, e2, nv)
    g11, g12, g22 = _dot3(e1, e1), _dot3(e1, e2), _dot3(e2, e2)
    det = g11 * g22 - g12 * g12
    if det <= HULL_TOL * g11 * g22:
        return -2
    db, dc = pts[b, 3] - pts[a, 3], pts[c, 3] - pts[a, 3]
    al, be = (g22 * db - g12 * dc) / det, (g11 * dc - g12 * db) / det
    for d in range(3):
        g[d] = al * e1[d] + be * e2[d]  # the lifted slope within the face's plane
    if nv[0] * (pts[o, 0] - pts[a, 0]) + nv[1] * (pts[o, 1] - pts[a, 1]) + nv[2] * (pts[o, 2] - pts[a, 2]) > 0:
        nv[0], nv[1], nv[2] = -nv[0], -nv[1], -nv[2]  # the new tet lies on the side away from o
    tol_h = tol * np.sqrt(_dot3(nv, nv))
    for m in range(len(pts)):  # height over the face's plane, and lifted height over its flat hyperplane
        d0, d1, d2 = cols[0, m] - pts[a, 0], cols[1, m] - pts[a, 1], cols[2, m] - pts[a, 2]
        hs[m] = nv[0] * d0 + nv[1] * d1 + nv[2] * d2
        ds[m] = cols[3, m] - pts[a, 3] - (g[0] * d0 + g[1] * d1 + g[2] * d2)
    best, s_best, flat = -1, np.inf, False
    for m in range(len(pts)):
        if m in (a, b, c, o):
            continue
        if hs[m] > tol_h:
            if ds[m] < s_best * hs[m]:
                best, s_best = m, ds[m] / hs[m]
        elif hs[m] > -tol_h:
            flat = True
    if best < 0:
        return -2 if flat else -1
    norm = 0.0
    for d in range(3):
        norm += (g[d] + s_best * nv[d]) ** 2
    norm = np.sqrt(1.0 + norm)
    if HULL_TOL * norm > 1.0:  # (nearly) vertical
        return -2
    for m in range(len(pts)):  # every other point above the new tet's hyperplane by more than tol
        if m != a and m != b and m != c and m != best and ds[m] - s_best * hs[m] < tol * norm:
            return -2
    return best


@jit
def _dot3(u, v):  # pragma: no cover - compiled
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


@jit
def _cross3(u, v, out):  # pragma: no cover - compiled
    out[0], out[1], out[2] = u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]


@jit
def _hyperplane(pts, ids, grad):  # pragma: no cover - compiled
    """Gradient of the lifted hyperplane h = h0 + grad · (x - x0) through points ids (4) into `grad`; False when
    they are (nearly) flat in 3D.
    """
    m = np.empty((3, 3))
    r = np.empty(3)
    for i in range(3):
        for d in range(3):
            m[i, d] = pts[ids[i + 1], d] - pts[ids[0], d]
        r[i] = pts[ids[i + 1], 3] - pts[ids[0], 3]
    c12, c20, c01 = np.empty(3), np.empty(3), np.empty(3)  # m^-1 = (m1 x m2, m2 x m0, m0 x m1) / det, as columns
    _cross3(m[1], m[2], c12)
    _cross3(m[2], m[0], c20)
    _cross3(m[0], m[1], c01)
    det = _dot3(m[0], c12)
    size = np.sqrt(_dot3(m[0], m[0]) * _dot3(m[1], m[1]) * _dot3(m[2], m[2]))
    if abs(det) <= HULL_TOL * size:
        return False
    for d in range(3):
        grad[d] = (c12[d] * r[0] + c20[d] * r[1] + c01[d] * r[2]) / det
    return True


@jit
def _all_above(pts, ids, grad, tol):  # pragma: no cover - compiled
    """1: every other point lies above the lifted hyperplane through points ids with gradient `grad` (by more than
    `tol` along its normal); 0: one lies below; -1: none below, but one within `tol` or the hyperplane (nearly)
    vertical: degenerate.
    """
    norm = np.sqrt(1.0 + _dot3(grad, grad))
    o = ids[0]
    result = -1 if HULL_TOL * norm > 1.0 else 1
    for m in range(len(pts)):
        if m in (ids[0], ids[1], ids[2], ids[3]):
            continue
        v = pts[m, 3] - pts[o, 3]
        for d in range(3):
            v -= grad[d] * (pts[m, d] - pts[o, d])
        v /= norm
        if v <= -tol:
            return 0
        if v < tol:
            result = -1
    return result


@jit
def _face(out, t, f):  # pragma: no cover - compiled
    """The face of tet t opposite its vertex f: its local ids, sorted."""
    a, b, c = out[t, (f + 1) % 4], out[t, (f + 2) % 4], out[t, (f + 3) % 4]
    if a > b:
        a, b = b, a
    if b > c:
        b, c = c, b
    if a > b:
        a, b = b, a
    return a, b, c


@jit
def _slot(hkey, mask, key):  # pragma: no cover - compiled
    """The slot of `key` in the open-addressing table `hkey` (a free one, key -1, when it is not there)."""
    s = (key * 2654435761) & mask
    while hkey[s] != -1 and hkey[s] != key:
        s = (s + 1) & mask
    return s


@jit
def _register(out, t, hkey, hn, mask):  # pragma: no cover - compiled
    """Record tet t at its four faces (key: local ids, 8 bits each); False when a face already has two tets."""
    for f in range(4):
        a, b, c = _face(out, t, f)
        key = (a << 16) | (b << 8) | c
        s = _slot(hkey, mask, key)
        if hkey[s] == -1:
            hkey[s], hn[s] = key, 1
        elif hn[s] == 1:
            hn[s] = 2
        else:
            return False
    return True


@jit
def _lower_hulls_3d(lo_t, hi_t, rel, entry, start, atoms, tops, counts, degenerate):  # pragma: no cover - compiled
    """Lower convex hull of the lifted points (x, y, z, |x|² + entry) of atoms[lo_t:hi_t] by gift wrapping
    (`_lower_hull_3d`).

    Writes the tops of atoms[t] (global ids) into tops[t] and their number into counts[t]; sets degenerate[t] where
    the set is degenerate (the caller then asks qhull, as for every set before).
    """
    cap = tops.shape[1]
    size = 1
    while size < 8 * cap:
        size *= 2
    hkey = np.empty(size, np.int64)
    hn = np.empty(size, np.int64)
    out = np.empty((cap, 4), np.int64)
    for t in range(lo_t, hi_t):
        a = atoms[t]
        lo, n = start[a], start[a + 1] - start[a]
        pts, scale = _lifted(rel, entry, lo, n)
        c = _lower_hull_3d(pts, HULL_TOL * scale, out, hkey, hn)
        if c < 0:
            degenerate[t] = True
            c = 0
        for i in range(c):
            for d in range(4):
                tops[t, i, d] = lo + out[i, d]
        counts[t] = c


def _qhull_tops(pts: np.ndarray, entry: np.ndarray, lo: int, dim: int) -> tuple[np.ndarray | None, bool]:
    """(tops with global ids or None, joggled) of one weighted local set by qhull's lower hull."""
    lifted = np.column_stack([pts, (pts**2).sum(1) + entry])
    joggled = False
    try:
        hull = ConvexHull(lifted)
    except QhullError:
        joggled = True
        try:  # flat or degenerate neighbourhood: a joggled triangulation, values still exact
            hull = ConvexHull(lifted, qhull_options="QJ")
        except QhullError:
            return None, joggled
    lower = hull.equations[:, dim] < -1e-12
    return hull.simplices[lower] + lo, joggled


def regular_tops(
    rel: np.ndarray, entry: np.ndarray, start: np.ndarray, dim: int, atoms=None, fragile: set[int] | None = None
) -> np.ndarray:
    """Top simplices (global point ids, (T, dim+1)) of the regular triangulation of every weighted local set.

    `atoms`: only these atoms' sets (default all). `fragile` collects atoms whose triangulation needed a
    joggle or failed (degenerate sets: no cached triangulation can be certified for them). In 2D with the
    compiled kernels the lower hulls are found by `_lower_hulls_2d` (the same tops: a non-degenerate set has
    one regular triangulation), in 3D by `_lower_hulls_3d` (gift wrapping), and qhull serves the sets they flag as
    degenerate.
    """
    todo = np.arange(len(start) - 1) if atoms is None else np.asarray(atoms, np.int64)
    found: dict[int, np.ndarray] = {}  # atom: its tops, joined in the order of `todo` at the end
    sizes = start[todo + 1] - start[todo]
    for a in todo[sizes == dim + 1]:  # a single simplex
        found[int(a)] = np.arange(start[a], start[a + 1])[None, :]
    rest = todo[sizes > dim + 1]
    if len(rest) and compiled_available():
        n_max = int((start[rest + 1] - start[rest]).max())
        hulls = np.empty((len(rest), (2 if dim == 2 else MAX_TETS_PER_POINT) * n_max, dim + 1), np.int64)
        counts = np.zeros(len(rest), np.int64)
        degenerate = np.zeros(len(rest), np.bool_)
        kernel = _lower_hulls_2d if dim == 2 else _lower_hulls_3d
        in_chunks(kernel, len(rest), rel, entry, start.astype(np.int64), rest, hulls, counts, degenerate)
        for t in np.flatnonzero(~degenerate):
            found[int(rest[t])] = hulls[t, : counts[t]]
        rest = rest[degenerate]
    for a in rest:
        lo, hi = int(start[a]), int(start[a + 1])
        simplices, joggled = _qhull_tops(rel[lo:hi], entry[lo:hi], lo, dim)
        if joggled and fragile is not None:
            fragile.add(int(a))
        if simplices is not None:
            found[int(a)] = simplices
    tops = [found[a] for a in todo.tolist() if a in found]
    if not tops:
        return np.zeros((0, dim + 1), int)
    return np.sort(np.concatenate(tops), axis=1)
