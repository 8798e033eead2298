# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local's atom vectors and their gradient, compiled (numba): the features of `pdmd.models.local.features`.

`compiled_features(rel, topo, cfg)` is `atom_features` for evaluation: one loop computes every block
from the relative points (PD blocks from the sources' orthogonal spheres, radial and angular symmetry
functions), and the backward pass is one loop of the analytic gradient, a `torch.autograd.Function`
whose input is the relative points (so positions and strain get their gradients through torch):

- power radius ρ of a simplex's smallest orthogonal sphere (points p_i, entries e_i, centre c with
  barycentric coordinates λ_i): dρ = Σ_i λ_i (2 (p_i - c) · dp_i + de_i);
- entry e = g(|p|) (the smoothstep of `entry_values`), pair weight ramp(d - b) · cap(d), Gaussians,
  the cosine cutoff and cos θ_jik: their derivatives as written.

Float64 only; equal to torch's autograd to rounding (tests compare them). One backward pass only:
training needs the gradient of forces and uses torch (`compiled=False`).
"""

from __future__ import annotations

import numpy as np
import torch

from pdmd.models.local.compiled import in_chunks, jit, orthosphere_power


@jit
def _smoothstep(x, width):  # pragma: no cover - compiled
    """(s, ds/dx) of the C1 smoothstep of x / width clamped to [0, 1]."""
    t = x / width
    if t <= 0.0:
        return 0.0, 0.0
    if t >= 1.0:
        return 1.0, 0.0
    return t * t * (3.0 - 2.0 * t), 6.0 * t * (1.0 - t) / width


@jit
def _cosine_cutoff(r, rc):  # pragma: no cover - compiled
    """(fc, dfc/dr): 0.5 (cos(π r / rc) + 1) below rc, else 0."""
    if r >= rc:
        return 0.0, 0.0
    return 0.5 * (np.cos(np.pi * r / rc) + 1.0), -0.5 * np.pi / rc * np.sin(np.pi * r / rc)


@jit
def _gaussians(x, axes, ax, out):  # pragma: no cover - compiled
    """exp(-(x - c_i)² / 2s²) on axis `ax` (evenly spaced centres axes[ax, 1:n+1], width axes[ax, 0]) into out[:n];
    returns n.

    Four exponentials instead of n: from the centre nearest x outwards each value is the one before times a
    ratio exp(±u k - k²/2) (u = (x - c) / s of the one before, k = spacing / s) that itself shrinks by exp(-k²)
    per step. Away from the nearest centre |u| only grows, so an underflow to 0 is the direct value's too;
    the values equal the direct exponentials to a few 1e-15.
    """
    s = axes[ax, 0]
    n = int(axes[ax, -1])
    if n == 1 or not abs(x - axes[ax, 1]) < 1e6 * s:  # one centre, or x not finite / far off: directly
        for i in range(n):
            u = (x - axes[ax, 1 + i]) / s
            out[i] = np.exp(-0.5 * u * u)
        return n
    k = (axes[ax, n] - axes[ax, 1]) / ((n - 1) * s)
    i0 = min(max(int(np.floor((x - axes[ax, 1]) / (s * k) + 0.5)), 0), n - 1)
    u = (x - axes[ax, 1 + i0]) / s
    g0 = np.exp(-0.5 * u * u)
    out[i0] = g0
    q = np.exp(-k * k)
    g, r = g0, np.exp(u * k - 0.5 * k * k)
    for i in range(i0 + 1, n):
        g *= r
        r *= q
        out[i] = g
    g, r = g0, np.exp(-u * k - 0.5 * k * k)
    for i in range(i0 - 1, -1, -1):
        g *= r
        r *= q
        out[i] = g
    return n


@jit
def _ipow(x, n):  # pragma: no cover - compiled
    """x**n for an integer n >= 0, by multiplication."""
    out = 1.0
    for _ in range(n):
        out *= x
    return out


@jit
def _pair_weight(b, d, scal):  # pragma: no cover - compiled
    """A pair's weight w = ramp(d - b) (1 - cap(d)) and its derivatives dw/db, dw/dd."""
    ramp, d_ramp = _smoothstep(d - b, scal[4])
    cap, d_cap = _smoothstep(d - scal[3], scal[2] - scal[3])
    return ramp * (1.0 - cap), -d_ramp * (1.0 - cap), d_ramp * (1.0 - cap) - ramp * d_cap


@jit
def _pair_grid(b, d, ax_b, ax_d, axes, gb, gd):  # pragma: no cover - compiled
    """Birth and death Gaussians of one pair (gb[0] = 1 and nb = 1 without a birth axis)."""
    if ax_b < 0:
        gb[0] = 1.0
        nb = 1
    else:
        nb = _gaussians(b, axes, ax_b, gb)
    return nb, _gaussians(d, axes, ax_d, gd)


@jit
def _entries(rel, scal):  # pragma: no cover - compiled
    """Distances r (P,), entries e = g(r) and de/dr (the smoothstep from `inner` to `cutoff`)."""
    inner, cutoff, alpha_max = scal[0], scal[1], scal[2]
    n = rel.shape[0]
    r = np.empty(n)
    e = np.empty(n)
    de = np.empty(n)
    for p in range(n):
        s = 0.0
        for c in range(rel.shape[1]):
            s += rel[p, c] * rel[p, c]
        r[p] = np.sqrt(s)
        g, dg = _smoothstep(max(r[p], inner) - inner, cutoff - inner)
        e[p] = alpha_max * g
        de[p] = alpha_max * dg if r[p] > inner else 0.0
    return r, e, de


@jit
def _sources_chunk(lo, hi, rel, e, src, rho, lam, cen):  # pragma: no cover - compiled
    """Power radius ρ, barycentric coordinates λ and centre of the orthogonal spheres of sources lo..hi."""
    coef = np.empty(3)
    for m in range(lo, hi):
        q = 1
        while q < 4 and src[m, q] >= 0:
            q += 1
        rho[m] = orthosphere_power(rel, e, src[m], 0, q, cen[m], coef)
        lam[m, 0] = 1.0
        for i in range(1, q):
            lam[m, i] = coef[i - 1]
            lam[m, 0] -= coef[i - 1]


@jit
def _atoms_fwd_chunk(lo, hi, rel, r, start, pairs, pair_start, rho, axes, deg_axes, cols, scal, zetas, pref, x):  # noqa: E501  # pragma: no cover
    """Rows lo..hi of the atom vectors x: the atoms' pairs on their grids, then their symmetry functions."""
    gb = np.empty(axes.shape[1])
    gd = np.empty(axes.shape[1])
    g = np.empty(axes.shape[1])
    for a in range(lo, hi):
        for t in range(pair_start[a], pair_start[a + 1]):
            h = pairs[t, 0]
            b, dd = rho[pairs[t, 2]], rho[pairs[t, 3]]
            wt, _, _ = _pair_weight(b, dd, scal)
            nb, nd = _pair_grid(b, dd, deg_axes[h, 0], deg_axes[h, 1], axes, gb, gd)
            for i in range(nb):
                for j in range(nd):
                    x[a, cols[h] + i * nd + j] += wt * gb[i] * gd[j]
        _symmetry_atom_fwd(a, rel, r, start, axes, cols, scal, zetas, pref, x, g)


@jit
def _atom_shells(a, r, start, axes, ax, rc, g):  # pragma: no cover - compiled
    """Angular shells R_s(r) = G_s(r) fc(r) of atom a's points within rc and dR_s/dr (rows: point - start[a])."""
    base = start[a]
    n_s = int(axes[ax, -1])
    s_w = axes[ax, 0]
    shell = np.zeros((start[a + 1] - base, n_s))
    d_shell = np.zeros((start[a + 1] - base, n_s))
    for p in range(base + 1, start[a + 1]):
        if r[p] < rc:
            fc, dfc = _cosine_cutoff(r[p], rc)
            _gaussians(r[p], axes, ax, g)
            for i in range(n_s):
                shell[p - base, i] = fc * g[i]
                d_shell[p - base, i] = -g[i] * (r[p] - axes[ax, 1 + i]) / (s_w * s_w) * fc + g[i] * dfc
    return shell, d_shell


@jit
def _angle_terms(rel, r, j, k, zetas, pref, term, dterm):  # pragma: no cover - compiled
    """The cosine of θ_jik (raw, not clamped); T_m(cos), dT_m/dcos into term, dterm (m = 2 · ζ index + λ index)."""
    dot = 0.0
    for c in range(rel.shape[1]):
        dot += rel[j, c] * rel[k, c]
    raw = dot / (r[j] * r[k])
    cos = min(1.0, max(-1.0, raw))
    for zi in range(len(zetas)):
        for li in range(2):
            lam = 1.0 - 2.0 * li
            power = _ipow(1.0 + lam * cos, zetas[zi] - 1)
            term[2 * zi + li] = pref[zi] * power * (1.0 + lam * cos)
            dterm[2 * zi + li] = pref[zi] * zetas[zi] * lam * power
    return raw


@jit
def _symmetry_atom_fwd(a, rel, r, start, axes, cols, scal, zetas, pref, x, g):  # pragma: no cover - compiled
    """Atom a's radial and angular symmetry functions into x[a] (columns from cols[-3] and cols[-2])."""
    col_r, col_a = cols[len(cols) - 3], cols[len(cols) - 2]
    if scal[5] > 0:
        for p in range(start[a] + 1, start[a + 1]):
            fc, _ = _cosine_cutoff(r[p], scal[1])
            n = _gaussians(r[p], axes, int(scal[5]) - 1, g)
            for i in range(n):
                x[a, col_r + i] += fc * g[i]
    if scal[6] <= 0:
        return
    ax, rc, base = int(scal[6]) - 1, scal[7], start[a]
    n_s = int(axes[ax, -1])
    shell, _ = _atom_shells(a, r, start, axes, ax, rc, g)
    term, dterm = np.empty(2 * len(zetas)), np.empty(2 * len(zetas))
    for j in range(base + 1, start[a + 1]):
        for k in range(j + 1, start[a + 1]):
            if r[j] >= rc or r[k] >= rc:
                continue
            _angle_terms(rel, r, j, k, zetas, pref, term, dterm)
            for s in range(n_s):
                g[s] = shell[j - base, s] * shell[k - base, s]
            for m in range(2 * len(zetas)):
                for s in range(n_s):
                    x[a, col_a + m * n_s + s] += term[m] * g[s]


@jit
def _pair_gradient(go_row, b, d, wt, dw_db, dw_dd, ax_b, ax_d, axes, gb, gd):  # pragma: no cover - compiled
    """dL/db and dL/dd of one pair from dL/dx of its atom's block `go_row` (weight wt and its derivatives)."""
    nb, nd = _pair_grid(b, d, ax_b, ax_d, axes, gb, gd)
    s_d = axes[ax_d, 0]
    g_w = 0.0
    g_b = 0.0
    g_d = 0.0
    for i in range(nb):
        db_i = -(b - axes[ax_b, 1 + i]) / (axes[ax_b, 0] ** 2) if ax_b >= 0 else 0.0
        for j in range(nd):
            go = go_row[i * nd + j] * gb[i] * gd[j]
            g_w += go
            g_b += go * db_i
            g_d -= go * (d - axes[ax_d, 1 + j]) / (s_d * s_d)
    return g_b * wt + g_w * dw_db, g_d * wt + g_w * dw_dd


@jit
def _atoms_bwd_chunk(lo, hi, gout, rel, start, src, pairs, pair_start, axes, deg_axes, cols, scal, zetas, pref, r,
                     de, rho, lam, cen, g_rel):  # fmt: skip  # pragma: no cover - compiled
    """dL/d rel of the points of atoms lo..hi (each atom's points get only its own terms) from dL/dx `gout`."""
    d = rel.shape[1]
    gb = np.empty(axes.shape[1])
    gd = np.empty(axes.shape[1])
    for a in range(lo, hi):
        g_ra = np.zeros(start[a + 1] - start[a])  # dL/dr (radial, angular, entries) of atom a's points
        for t in range(pair_start[a], pair_start[a + 1]):
            h = pairs[t, 0]
            b, dd = rho[pairs[t, 2]], rho[pairs[t, 3]]
            wt, dw_db, dw_dd = _pair_weight(b, dd, scal)
            g_b, g_d = _pair_gradient(gout[a, cols[h] :], b, dd, wt, dw_db, dw_dd, deg_axes[h, 0], deg_axes[h, 1],
                                      axes, gb, gd)  # fmt: skip
            for m, gm in ((pairs[t, 2], g_b), (pairs[t, 3], g_d)):
                for i in range(4):
                    p = src[m, i]
                    if p < 0:
                        break
                    g_ra[p - start[a]] += gm * lam[m, i] * de[p]
                    for k in range(d):
                        g_rel[p, k] += 2.0 * gm * lam[m, i] * (rel[p, k] - cen[m, k])
        _symmetry_atom_bwd(a, gout, rel, r, start, axes, cols, scal, zetas, pref, g_ra, g_rel, gb)
        for p in range(start[a], start[a + 1]):
            gr = g_ra[p - start[a]]
            if gr != 0.0 and r[p] > 0.0:
                for k in range(d):
                    g_rel[p, k] += gr * rel[p, k] / r[p]


@jit
def _symmetry_atom_bwd(a, gout, rel, r, start, axes, cols, scal, zetas, pref, g_ra, g_rel, g):  # noqa: E501  # pragma: no cover
    """Adds atom a's symmetry-function dL/dr (g_ra, per point of a) and the angles' dL/d rel (g_rel)."""
    d = rel.shape[1]
    col_r, col_a = cols[len(cols) - 3], cols[len(cols) - 2]
    base = start[a]
    if scal[5] > 0:
        ax = int(scal[5]) - 1
        s = axes[ax, 0]
        for p in range(base + 1, start[a + 1]):
            fc, dfc = _cosine_cutoff(r[p], scal[1])
            n = _gaussians(r[p], axes, ax, g)
            for i in range(n):
                dg = -g[i] * (r[p] - axes[ax, 1 + i]) / (s * s)
                g_ra[p - base] += gout[a, col_r + i] * (dg * fc + g[i] * dfc)
    if scal[6] <= 0:
        return
    ax, rc = int(scal[6]) - 1, scal[7]
    n_s = int(axes[ax, -1])
    shell, d_shell = _atom_shells(a, r, start, axes, ax, rc, g)
    g_shell = np.zeros(shell.shape)
    term, dterm = np.empty(2 * len(zetas)), np.empty(2 * len(zetas))
    for j in range(base + 1, start[a + 1]):
        for k in range(j + 1, start[a + 1]):
            if r[j] >= rc or r[k] >= rc:
                continue
            raw = _angle_terms(rel, r, j, k, zetas, pref, term, dterm)
            g_cos = 0.0
            for sh in range(n_s):
                acc_t = 0.0
                acc_d = 0.0
                for m in range(2 * len(zetas)):
                    go = gout[a, col_a + m * n_s + sh]
                    acc_t += go * term[m]
                    acc_d += go * dterm[m]
                sj, sk = shell[j - base, sh], shell[k - base, sh]
                g_cos += acc_d * sj * sk
                g_shell[j - base, sh] += acc_t * sk
                g_shell[k - base, sh] += acc_t * sj
            if -1.0 <= raw <= 1.0:  # the clamp's gradient is zero outside
                inv = 1.0 / (r[j] * r[k])
                for c in range(d):
                    g_rel[j, c] += g_cos * (rel[k, c] * inv - raw * rel[j, c] / (r[j] * r[j]))
                    g_rel[k, c] += g_cos * (rel[j, c] * inv - raw * rel[k, c] / (r[k] * r[k]))
    for p in range(1, len(shell)):
        for i in range(n_s):
            g_ra[p] += g_shell[p, i] * d_shell[p, i]


class _LocalFeatures(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rel, args):
        start, src, pairs, pair_start, axes, deg, cols, scal, zetas, pref = args
        rel_np = np.ascontiguousarray(rel.detach().numpy())
        r, e, de = _entries(rel_np, scal)
        rho, lam, cen = np.empty(len(src)), np.zeros((len(src), 4)), np.empty((len(src), 3))
        if len(pairs):
            in_chunks(_sources_chunk, len(src), rel_np, e, src, rho, lam, cen)
        x = np.zeros((len(start) - 1, cols[-1]))
        in_chunks(_atoms_fwd_chunk, len(start) - 1, rel_np, r, start, pairs, pair_start, rho, axes, deg, cols, scal,
                  zetas, pref, x)  # fmt: skip
        ctx.args, ctx.saved, ctx.rel = args, (r, de, rho, lam, cen), rel_np
        return torch.from_numpy(x)

    @staticmethod
    def backward(ctx, gout):
        if torch.is_grad_enabled():
            raise RuntimeError("pd-local compiled features give forces, not their gradient: train with compiled=False")
        start, src, pairs, pair_start, axes, deg, cols, scal, zetas, pref = ctx.args
        g_rel = np.zeros(ctx.rel.shape)
        in_chunks(_atoms_bwd_chunk, len(start) - 1, np.ascontiguousarray(gout.numpy()), ctx.rel, start, src, pairs,
                  pair_start, axes, deg, cols, scal, zetas, pref, *ctx.saved, g_rel)  # fmt: skip
        return torch.from_numpy(g_rel), None


def _kernel_args(topo, cfg) -> tuple:
    """The topology and settings as the kernels take them (point sets, sources, pairs, axes, columns)."""
    start = np.searchsorted(topo.centre, np.arange(topo.n_atoms + 1)).astype(np.int64)
    src = np.full((sum(len(s) for s in topo.sources), 4), -1, np.int64)
    base = np.zeros(topo.dim + 2, np.int64)
    for k, s in enumerate(topo.sources):
        base[k + 1] = base[k] + len(s)
        src[base[k] : base[k + 1], : k + 1] = s
    pairs = np.stack([topo.pair_degree, topo.pair_centre, base[topo.birth_level] + topo.birth_index,
                      base[topo.death_level] + topo.death_index], axis=1).astype(np.int64)  # fmt: skip
    pairs = pairs[np.argsort(pairs[:, 1], kind="stable")]
    specs: list[tuple[float, float, int]] = []
    widths: list[float] = []

    def axis(spec, width=1.0) -> int:
        if spec is None:
            return -1
        specs.append(spec)
        widths.append(width * (spec[1] - spec[0]) / max(int(spec[2]) - 1, 1))
        return len(specs) - 1

    deg_axes = [(axis(cfg.h0_birth_grid), axis(cfg.h0_grid))] + [(axis(b), axis(dd)) for b, dd in cfg.grids]
    n_pd = [(specs[b][2] if b >= 0 else 1) * specs[dd][2] for b, dd in deg_axes] if cfg.use_pd else []
    if not cfg.use_pd:
        deg_axes, pairs = [], pairs[:0]
    radial = axis(cfg.radial_A, cfg.radial_width)
    shells = axis(cfg.angular_shells_A)
    n_rad = cfg.radial_A[2] if cfg.radial_A else 0
    n_ang = cfg.angular_shells_A[2] * 2 * len(cfg.angular_zetas) if cfg.angular_shells_A else 0
    cols = np.cumsum([0] + n_pd + [n_rad, n_ang]).astype(np.int64)
    axes = np.zeros((max(len(specs), 1), max([int(s[2]) for s in specs] + [1]) + 2))
    for i, (spec, width) in enumerate(zip(specs, widths)):
        axes[i, 0], axes[i, -1] = width, spec[2]
        axes[i, 1 : 1 + int(spec[2])] = np.linspace(spec[0], spec[1], int(spec[2]))
    scal = np.array([cfg.inner_A, cfg.cutoff_A, cfg.alpha_max_A2, cfg.cap_start_A2, cfg.persistence_ramp_A2,
                     radial + 1 if radial >= 0 else 0, shells + 1 if shells >= 0 else 0,
                     min(cfg.angular_cutoff_A, cfg.cutoff_A)], float)  # fmt: skip
    deg = np.array(deg_axes if deg_axes else np.zeros((0, 2)), np.int64).reshape(-1, 2)
    pair_start = np.searchsorted(pairs[:, 1], np.arange(topo.n_atoms + 1)).astype(np.int64)
    zetas = np.asarray(cfg.angular_zetas, np.int64)
    return start, src, pairs, pair_start, axes, deg, cols, scal, zetas, 2.0 ** (1 - zetas.astype(float))


def compiled_features(rel: torch.Tensor, topo, cfg) -> torch.Tensor:
    """`atom_features` of relative points `rel` (P, d) Å (float64), by the compiled kernels; one backward pass."""
    return _LocalFeatures.apply(rel, _kernel_args(topo, cfg))
