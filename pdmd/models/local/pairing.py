# SPDX-License-Identifier: GPL-3.0-or-later
"""Every atom's weighted alpha complex and its persistence pairs, compiled (numba): one loop over the atoms.

Per atom, from its regular triangulation (the top simplices) and its weighted points, the same steps
as the numpy/gudhi path of `pdmd.models.local.complex`:

1. faces level by level, found through a hash table in (dropped vertex, coface) order;
2. each simplex's smallest orthogonal sphere (the same Gram solve as `orthospheres`), and
   Edelsbrunner's attachment rule down to the vertices: a face attached to a coface (the opposite
   vertex has a smaller power distance to its centre) takes the cheapest such coface's value and
   source (the first in that order among equal values; those share a source unless the points are
   degenerate, e.g. a perfect crystal, where the force is not unique);
3. gudhi's filtration order of the simplices up to `alpha_max_A2`: by value, ties by the reverse
   lexicographic order of their vertex lists (`is_before_in_filtration`; faces come first);
4. the Z/2 boundary matrix reduced column by column, top dimension first with clearing (a column
   that is another's pivot is a birth and needs no reduction). The pairing of a total order is
   unique, so the pairs are the simplex pairs gudhi's persistent cohomology gives for that order.

Pairs of zero persistence and essential classes are dropped, as `compute_persistence(min_persistence=0)`
and the descriptor do. The result: each pair's degree, atom and the sources (point ids) of its birth
and death, the simplices whose orthogonal spheres give the values. `compiled_pairs` returns None when
numba is missing, or when a complex is not a filtration (a face after one of its cofaces: within
rounding of the attachment test only); the caller then takes the numpy/gudhi path.
"""

from __future__ import annotations

import numpy as np

from pdmd.models.local.compiled import ATTACH_TOL, compiled_available, in_chunks, jit, orthosphere_power


@jit
def _rl_less(verts, a, b):  # pragma: no cover - compiled
    """Reverse lexicographic order of vertex rows sorted in decreasing order, padded with -1 (a prefix is less)."""
    for i in range(verts.shape[1]):
        if verts[a, i] != verts[b, i]:
            return verts[a, i] < verts[b, i]
    return False


@jit
def _filtration_order(members, n, value, rdesc, order):  # pragma: no cover - compiled
    """`members[:n]` into `order[:n]` in filtration order: by value, ties in reverse lexicographic order of `rdesc`."""
    idx = np.argsort(value[members[:n]])
    for p in range(n):
        order[p] = members[idx[p]]
    i = 0
    while i < n:
        j = i + 1
        while j < n and value[order[j]] == value[order[i]]:
            j += 1
        for p in range(i + 1, j):  # insertion sort of the tie run (a total order: the run's start order is irrelevant)
            x = order[p]
            r = p - 1
            while r >= i and _rl_less(rdesc, x, order[r]):
                order[r + 1] = order[r]
                r -= 1
            order[r + 1] = x
        i = j


@jit
def _lookup_or_add(key, mask, tab_key, tab_id, slots, n_slots, next_id):  # pragma: no cover - compiled
    """Id of `key` in an open-addressing table of mask + 1 slots (a new id `next_id` if absent); (id, n_slots)."""
    h = ((key * 2654435761) >> 11) & mask  # key < 2**24: no overflow
    while tab_key[h] != -1:
        if tab_key[h] == key:
            return tab_id[h], n_slots
        h = (h + 1) & mask
    tab_key[h] = key
    tab_id[h] = next_id
    slots[n_slots] = h
    return next_id, n_slots + 1


@jit
def _is_filtration(order, n, pos, level, bnd):  # pragma: no cover - compiled
    """Every face of every member is a member and comes before it (columns skipped by clearing included)."""
    for p in range(n):
        s = order[p]
        for i in range(level[s] + 1 if level[s] > 0 else 0):
            r = pos[bnd[s, i]]
            if r < 0 or r >= p:
                return False
    return True


@jit
def _store_column(touched, n_t, mark, pool, used):  # pragma: no cover - compiled
    """Append the marked rows of the reduced column to `pool` (grown when full), unmarking them."""
    for t in range(n_t):
        r = touched[t]
        if mark[r]:
            if used == len(pool):
                pool = np.concatenate((pool, np.empty(len(pool), np.int64)))
            pool[used] = r
            used += 1
            mark[r] = False
    return used, pool


@jit
def _reduce(order, n, pos, level, bnd, dim, pairs_out, w_pivot, w_cleared, w_start, w_len, mark, touched, pool):  # noqa: E501  # pragma: no cover
    """Pair the simplices `order[:n]` (filtration order; pos: simplex -> position): (birth, death) rows of
    `pairs_out`, top dimension first with clearing. Returns (number of pairs, touched, pool) (the last two grown
    where needed).
    """
    for p in range(n):
        w_pivot[p] = -1
        w_cleared[p] = False
    used = 0
    n_pairs = 0
    for k in range(dim, 0, -1):
        for p in range(n):
            s = order[p]
            if level[s] != k or w_cleared[p]:
                continue
            n_t = 0
            for i in range(k + 1):  # every face a member before s: `_is_filtration`
                r = pos[bnd[s, i]]
                mark[r] = True
                touched[n_t] = r
                n_t += 1
            low = -1
            while True:
                low = -1
                for t in range(n_t):
                    if mark[touched[t]] and touched[t] > low:
                        low = touched[t]
                if low < 0 or w_pivot[low] < 0:
                    break
                q = w_pivot[low]
                for e in range(w_start[q], w_start[q] + w_len[q]):
                    r = pool[e]
                    if not mark[r]:
                        if n_t == len(touched):
                            touched = np.concatenate((touched, np.empty(n_t, np.int64)))
                        touched[n_t] = r
                        n_t += 1
                    mark[r] = not mark[r]
            if low >= 0:
                w_pivot[low] = p
                w_cleared[low] = True
                w_start[p] = used
                used, pool = _store_column(touched, n_t, mark, pool, used)
                w_len[p] = used - w_start[p]
                pairs_out[n_pairs, 0] = order[low]
                pairs_out[n_pairs, 1] = s
                n_pairs += 1
            for t in range(n_t):
                mark[touched[t]] = False
    return n_pairs, touched, pool


@jit
def _workspace(m_max, inc_max, dim):  # pragma: no cover - compiled
    """Work arrays of `_atom_pairs` for complexes of at most m_max simplices and inc_max incidences per level."""
    size = 1
    while size < 2 * inc_max:
        size *= 2
    ints4 = np.full((3, m_max, 4), -1, np.int64)  # vertices, reverse-lex keys, boundaries
    ints = np.empty((10, m_max), np.int64)  # source, level, best, members, order, pos, source id, pivot, start, len
    ints[5] = -1
    ints[6] = -1
    flags = np.zeros((2, m_max), np.bool_)  # cleared, mark
    incs = np.empty((4, inc_max), np.int64)  # face, opposite vertex, coface, table slot
    table = np.full((2, size), -1, np.int64)
    levels = np.zeros((4, dim + 1), np.int64)  # incidence ranges, row ranges per level
    return (ints4, ints, flags, np.empty(m_max), np.empty((m_max, 3)), incs, table, np.empty((m_max, 2), np.int64),
            levels, np.empty(4 * m_max, np.int64), np.empty(16 * m_max, np.int64))  # fmt: skip


@jit
def _build_faces(verts, bnd, incs, table, levels, n_pts, n_top, dim):  # pragma: no cover - compiled
    """Rows of one complex: its tops (rows 0..n_top, already in `verts`), then each lower level's faces in
    first-seen (dropped vertex, coface) order, the vertices last (point p is row row_lo[0] + p); per level the
    (face, opposite vertex, coface) incidences and each simplex's boundary. Returns the number of rows.
    """
    which, opposite, inc_upper, slots = incs[0], incs[1], incs[2], incs[3]
    ilo, ihi, row_lo, row_hi = levels[0], levels[1], levels[2], levels[3]
    row_lo[dim], row_hi[dim] = 0, n_top
    n_rows = n_top
    n_inc = 0
    for k in range(dim - 1, -1, -1):
        u_lo, u_hi = row_lo[k + 1], row_hi[k + 1]
        row_lo[k] = n_rows
        ilo[k] = n_inc
        if k == 0:
            for p in range(n_pts):
                verts[n_rows + p, 0] = p
                verts[n_rows + p, 1:] = -1
            n_rows += n_pts
        n_slots = 0
        n_new = 0
        mask = 15  # the table's first slots: at least twice this level's incidences (a sparse, cached table)
        while mask + 1 < 2 * (k + 2) * (u_hi - u_lo):
            mask = 2 * mask + 1
        for drop in range(k + 2):
            for u in range(u_lo, u_hi):
                key = 0
                for i in range(k + 2):
                    if i != drop:
                        key = key * 256 + verts[u, i]
                if k == 0:
                    f = row_lo[0] + key
                else:
                    fid, n_slots = _lookup_or_add(key, mask, table[0], table[1], slots, n_slots, n_new)
                    if fid == n_new:
                        c = 0
                        for i in range(k + 2):
                            if i != drop:
                                verts[n_rows + n_new, c] = verts[u, i]
                                c += 1
                        verts[n_rows + n_new, k + 1 :] = -1
                        n_new += 1
                    f = row_lo[k] + fid
                which[n_inc], opposite[n_inc], inc_upper[n_inc] = f, verts[u, drop], u
                bnd[u, drop] = f
                n_inc += 1
        for h in range(n_slots):
            table[0, slots[h]] = -1
        if k > 0:
            n_rows += n_new
        row_hi[k] = n_rows
        ihi[k] = n_inc
    return n_rows


@jit
def _values(rel, entry, base, verts, rdesc, ints, value, centres, incs, levels, dim, alpha_max):  # pragma: no cover
    """Own orthogonal spheres top down; a face attached to cofaces takes the cheapest one's value and source.

    An edge or higher simplex with a vertex p that enters at `alpha_max` or later (a point at or beyond the cutoff)
    gets +inf without a solve: its orthogonal sphere's power radius |c - p|² + entry(p) exceeds `alpha_max` (but
    where c is p), and so does every value it passes on, so neither it nor the faces it decides enter the
    truncated filtration.
    """
    src, level, best = ints[0], ints[1], ints[2]
    which, opposite, inc_upper = incs[0], incs[1], incs[2]
    ilo, ihi, row_lo, row_hi = levels[0], levels[1], levels[2], levels[3]
    coef = np.empty(3)
    for k in range(dim, -1, -1):
        for s in range(row_lo[k], row_hi[k]):
            src[s] = s
            level[s] = k
            late = False
            for i in range(k + 1 if k > 0 else 0):
                late = late or entry[base + verts[s, i]] >= alpha_max
            value[s] = np.inf if late else orthosphere_power(rel, entry, verts[s], base, k + 1, centres[s], coef)
            best[s] = -1
            for i in range(4):
                rdesc[s, i] = verts[s, k - i] if i <= k else -1
        if k == dim:
            continue
        for r in range(ilo[k], ihi[k]):
            f, u, o = which[r], inc_upper[r], opposite[r] + base
            own = value[f]
            if own == np.inf:  # above the truncation whatever it attaches to
                continue
            power = entry[o]
            for c in range(rel.shape[1]):
                gap = rel[o, c] - centres[f, c]
                power += gap * gap
            attached = power < own - ATTACH_TOL * (abs(own) + 1.0)
            if attached and (best[f] < 0 or value[u] < value[best[f]]):
                best[f] = u
        for f in range(row_lo[k], row_hi[k]):
            if best[f] >= 0:
                value[f] = value[best[f]]
                src[f] = src[best[f]]


@jit
def _write_pairs(a, base, n_found, found, value, verts, ints, pairs, p0, sources, source_level, s0):  # noqa: E501  # pragma: no cover
    """The pairs of positive persistence of atom a into pairs[p0:], their sources (once each) into sources[s0:]."""
    src, level, src_id = ints[0], ints[1], ints[6]
    n_pairs = 0
    n_src = 0
    for t in range(n_found):
        b, d = found[t, 0], found[t, 1]
        if not value[d] > value[b]:
            continue
        pairs[p0 + n_pairs, 0] = level[b]
        pairs[p0 + n_pairs, 1] = a
        for c in range(2):
            s = src[found[t, c]]
            if src_id[s] < 0:
                src_id[s] = n_src
                source_level[s0 + n_src] = level[s]
                for i in range(4):
                    sources[s0 + n_src, i] = verts[s, i] + base if i <= level[s] else -1
                n_src += 1
            pairs[p0 + n_pairs, 2 + c] = src_id[s]
        n_pairs += 1
    for t in range(n_found):
        src_id[src[found[t, 0]]] = -1
        src_id[src[found[t, 1]]] = -1
    return n_pairs, n_src


@jit
def _atom_pairs(a, rel, entry, start, tops, top_start, dim, alpha_max, ints4, ints, flags, value, centres, incs,
                table, found, levels, touched, pool, pairs, p0, sources, source_level, s0):  # noqa: E501  # fmt: skip  # pragma: no cover
    """Atom a's finite pairs of positive persistence into pairs[p0:], their sources into sources[s0:] (atom-local
    source ids); returns (pairs, sources, touched, pool), (-1, -1, ...) when the complex is not a filtration.
    """
    verts, rdesc, bnd = ints4[0], ints4[1], ints4[2]
    members, order, pos = ints[3], ints[4], ints[5]
    base = start[a]
    n_top = top_start[a + 1] - top_start[a]
    if n_top == 0:
        return 0, 0, touched, pool
    for t in range(n_top):
        for i in range(4):
            verts[t, i] = tops[top_start[a] + t, i] - base if i <= dim else -1
    n_rows = _build_faces(verts, bnd, incs, table, levels, start[a + 1] - base, n_top, dim)
    _values(rel, entry, base, verts, rdesc, ints, value, centres, incs, levels, dim, alpha_max)
    n_mem = 0
    for s in range(n_rows):
        if value[s] <= alpha_max:
            members[n_mem] = s
            n_mem += 1
    _filtration_order(members, n_mem, value, rdesc, order)
    for p in range(n_mem):
        pos[order[p]] = p
    if not _is_filtration(order, n_mem, pos, ints[1], bnd):
        for p in range(n_mem):
            pos[order[p]] = -1
        return -1, -1, touched, pool
    n_found, touched, pool = _reduce(order, n_mem, pos, ints[1], bnd, dim, found, ints[7], flags[0], ints[8],
                                     ints[9], flags[1], touched, pool)  # fmt: skip
    for p in range(n_mem):
        pos[order[p]] = -1
    n_pairs, n_src = _write_pairs(a, base, n_found, found, value, verts, ints, pairs, p0, sources, source_level, s0)
    return n_pairs, n_src, touched, pool


@jit
def _capacities(start, top_start, dim):  # pragma: no cover - compiled
    """Output offsets per atom (pairs <= half its simplices, bounded level by level from its tops), and the
    largest complex's simplex and incidence counts (work array sizes).
    """
    n_atoms = len(start) - 1
    n_max = 1
    t_max = 1
    cap = np.zeros(n_atoms + 1, np.int64)
    for a in range(n_atoms):
        n_pts, n_top = start[a + 1] - start[a], top_start[a + 1] - top_start[a]
        n_max = max(n_max, n_pts)
        t_max = max(t_max, n_top)
        bound, level_k = n_pts + n_top, n_top
        for k in range(dim - 1, 0, -1):
            level_k *= k + 2
            bound += level_k
        cap[a + 1] = cap[a] + bound // 2 + 1
    cap_level = np.zeros(dim + 1, np.int64)
    cap_level[dim] = t_max
    for k in range(dim - 1, 0, -1):
        cap_level[k] = (k + 2) * cap_level[k + 1]
    cap_level[0] = n_max
    inc_max = 0
    for k in range(dim):
        inc_max += (k + 2) * cap_level[k + 1]
    return cap, cap_level.sum(), inc_max


@jit
def _pairs_chunk(lo, hi, rel, entry, start, tops, top_start, dim, alpha_max, m_max, inc_max, cap, pairs, sources,
                 source_level, counts):  # fmt: skip  # pragma: no cover - compiled
    """Atoms lo..hi into their own output slices (pairs from cap[a], sources from 2 cap[a]); counts (-1: not a
    filtration).
    """
    ints4, ints, flags, value, centres, incs, table, found, levels, touched, pool = _workspace(
        m_max, inc_max, dim)  # fmt: skip
    for a in range(lo, hi):
        out = _atom_pairs(a, rel, entry, start, tops, top_start, dim, alpha_max, ints4, ints, flags, value, centres,
                          incs, table, found, levels, touched, pool, pairs, cap[a], sources, source_level,
                          2 * cap[a])  # fmt: skip
        counts[a, 0], counts[a, 1], touched, pool = out


@jit
def _compact(counts, cap, pairs, sources, source_level):  # pragma: no cover - compiled
    """The atoms' slices made contiguous, source ids made global; returns the numbers of pairs and sources."""
    n_pairs, n_src = 0, 0
    for a in range(len(counts)):
        for t in range(counts[a, 0]):
            for i in range(2):
                pairs[n_pairs, i] = pairs[cap[a] + t, i]
            for i in range(2, 4):
                pairs[n_pairs, i] = pairs[cap[a] + t, i] + n_src
            n_pairs += 1
        for t in range(counts[a, 1]):
            source_level[n_src] = source_level[2 * cap[a] + t]
            for i in range(4):
                sources[n_src, i] = sources[2 * cap[a] + t, i]
            n_src += 1
    return n_pairs, n_src


def compiled_pairs(rel: np.ndarray, entry: np.ndarray, start: np.ndarray, tops: np.ndarray, dim: int,
                   alpha_max_A2: float):  # fmt: skip
    """Pairs and their sources of every atom's complex, or None (use numpy/gudhi; see the module docstring).

    rel (P, d) Å and entry (P,) Å² of the points of all sets (atom a's set: start[a]..start[a+1]);
    tops (T, d+1): the top simplices (point ids, each row sorted). Returns (pairs (Q, 4): degree, atom,
    birth source, death source; sources (S, dim+1) point ids, padded -1; source levels (S,)).
    """
    if not compiled_available():
        return None
    owner = np.searchsorted(start, tops[:, 0], side="right") - 1 if len(tops) else np.zeros(0, np.int64)
    order = np.argsort(owner, kind="stable")
    top_start = np.searchsorted(owner[order], np.arange(len(start)))
    rel, entry = np.ascontiguousarray(rel, float), np.ascontiguousarray(entry, float)
    start, tops = np.asarray(start, np.int64), np.ascontiguousarray(tops[order], np.int64)
    top_start = top_start.astype(np.int64)
    cap, m_max, inc_max = _capacities(start, top_start, dim)
    pairs = np.empty((cap[-1], 4), np.int64)
    sources = np.empty((2 * cap[-1], 4), np.int64)
    source_level = np.empty(2 * cap[-1], np.int64)
    counts = np.zeros((len(start) - 1, 2), np.int64)
    in_chunks(_pairs_chunk, len(start) - 1, rel, entry, start, tops, top_start, dim, float(alpha_max_A2), m_max,
              inc_max, cap, pairs, sources, source_level, counts)  # fmt: skip
    if (counts < 0).any():
        return None
    n_pairs, n_src = _compact(counts, cap, pairs, sources, source_level)
    return pairs[:n_pairs], sources[:n_src, : dim + 1], source_level[:n_src]
