# SPDX-License-Identifier: GPL-3.0-or-later
"""Differentiable per-atom vectors of the local diagrams (torch, float64).

A pair (b, d) of degree h of atom i contributes w(b, d) · G_h(b, d) to i's vector, where G_h are
Gaussians on a grid (H0: on the death value; H1, H2: on (birth, death)), and

    w(b, d) = ramp(d - b) · cap(d)

ramp is a C1 smoothstep from 0 at zero persistence to 1 at `persistence_ramp_A2` (pairs born on or
dying into the diagonal are continuous); cap falls from 1 at `cap_start_A2` to 0 at `alpha_max_A2`
(C1), where neighbours at the cutoff enter the weighted filtration (`pdmd.models.local.complex`). The
weight depends on the pair's values only, never on which simplices carry them: when two simplices
swap roles (a degenerate configuration, e.g. two bonds of equal length) the diagram is continuous
and so is the energy; only the force, the derivative, can jump there, and it stays finite.

Optionally (the paper's outlook: PD features used together with ACSF) each atom's vector also gets
smooth symmetry functions of the same neighbourhood (Behler's G2 and G5 forms): radial Gaussians of
the neighbour distances and angular terms 2^(1-ζ) (1 + λ cos θ_jik)^ζ per radial shell, all times a
cosine cutoff, so they are smooth everywhere (no pair swaps) and give the network the bond lengths
and angles a short-range potential such as Tersoff depends on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from pdmd.models.local.compiled import compiled_available
from pdmd.models.local.complex import LocalTopology, batched_dot, entry_values, orthospheres
from pdmd.models.local.kernels import compiled_features

ANGULAR_SHELLS_A = (1.2, 2.4, 7)
"""Default angular shells (lo, hi, n), Å: 0.2 Å apart over the bonds and the cut-off region of carbon potentials."""
RADIAL_N = 32
"""Default number of radial Gaussians, from 0.9 Å to 0.4 Å inside the cutoff."""


@dataclass(frozen=True)
class LocalDescriptorConfig:
    """Neighbourhood, filtration cap and Gaussian grids (all lengths Å, filtration values Å²).

    grids: per homology degree h, (lo, hi, n) of the death axis for h = 0, and
    ((birth lo, hi, n), (death lo, hi, n)) for h >= 1. Gaussian widths are the grid spacings.
    h0_birth_grid: when set, H0 pairs are placed on a (birth, death) grid too: with a small `inner_A`
    neighbours enter by their distance from the atom, so an H0 birth says how far a neighbour is
    and its death how far it is from the atoms already present.
    """

    dim: int
    cutoff_A: float
    inner_A: float
    alpha_max_A2: float
    cap_start_A2: float
    persistence_ramp_A2: float
    h0_grid: tuple[float, float, int]
    grids: tuple[tuple[tuple[float, float, int], tuple[float, float, int]], ...]
    h0_birth_grid: tuple[float, float, int] | None = None
    radial_A: tuple[float, float, int] | None = None
    """Radial symmetry functions: Gaussian centres (lo, hi, n) of the neighbour distance, Å (width
    `radial_width` × the spacing), times the cosine cutoff at `cutoff_A`; None: none."""
    radial_width: float = 1.0
    """Width (standard deviation) of the radial Gaussians in units of their spacing."""
    angular_shells_A: tuple[float, float, int] | None = None
    """Angular symmetry functions: radial shells (lo, hi, n) Å; per shell a, zeta and lambda = ±1,
    sum over neighbour pairs j < k of 2^(1-ζ) (1 + λ cos θ_jik)^ζ R_a(r_ij) R_a(r_ik); None: none."""
    angular_cutoff_A: float = 3.0
    """Cosine cutoff (Å) of the angular terms, at most `cutoff_A` (the number of pairs grows as its square)."""
    angular_zetas: tuple[int, ...] = (1, 2, 4, 8)
    use_pd: bool = True
    """False: the symmetry functions alone (an ablation: what the diagrams add)."""

    @classmethod
    def default(cls, dim: int, overrides: dict | None = None) -> LocalDescriptorConfig:
        """Settings for aGr (dim 2) and aC (dim 3), chosen for carbon at its usual densities.

        Diagrams plus radial symmetry functions up to the cutoff (32 Gaussians, 0.09 Å apart for aGr)
        and angular ones on seven shells 0.2 Å apart from 1.2 to 2.4 Å (the bonds and the cut-off
        region of carbon potentials); docs/local.md has the ablation (3 shells / 16 radial before).
        `overrides`: fields to change (JSON values welcome); the radial grid follows a changed
        `cutoff_A` unless `radial_A` is given too.
        """
        if dim == 2:
            base = cls(2, 4.0, 3.0, 8.0, 6.0, 0.1, (0.2, 1.3, 12), (((0.2, 1.4, 6), (0.6, 6.0, 12)),))
        else:
            base = cls(3, 3.6, 2.8, 8.0, 6.0, 0.1, (0.2, 1.3, 12),
                       (((0.2, 2.0, 6), (0.5, 4.5, 10)), ((0.4, 3.0, 6), (0.6, 6.0, 10))))  # fmt: skip
        values = {**base.as_dict(), "angular_shells_A": ANGULAR_SHELLS_A, **(overrides or {})}
        if "radial_A" not in (overrides or {}):
            values["radial_A"] = (0.9, float(values["cutoff_A"]) - 0.4, RADIAL_N)
        return cls.from_dict(values)

    def __post_init__(self) -> None:
        from pdmd.errors import InputError

        if self.dim not in (2, 3) or len(self.grids) != self.dim - 1:
            raise InputError(f"pd-local: dim must be 2 or 3 with dim-1 (birth, death) grids, got dim {self.dim}")
        if not 0 < self.inner_A < self.cutoff_A:
            raise InputError(f"pd-local: need 0 < inner_A ({self.inner_A}) < cutoff_A ({self.cutoff_A})")
        width = self.radial_width
        if isinstance(width, bool) or not (isinstance(width, (int, float, np.integer, np.floating)) and width > 0):
            raise InputError(f"pd-local: radial_width must be > 0 (× the Gaussian spacing), got {self.radial_width}")
        if self.angular_shells_A and not self.angular_cutoff_A > 0:
            raise InputError(f"pd-local: angular_cutoff_A must be > 0 Å, got {self.angular_cutoff_A}")
        zetas = self.angular_zetas
        if self.angular_shells_A and not (zetas and all(isinstance(z, int) and z >= 1 for z in zetas)):
            raise InputError(f"pd-local: angular_zetas must be integers >= 1 (e.g. [1, 2, 4, 8]), got {list(zetas)}")
        if not (self.use_pd or self.radial_A or self.angular_shells_A):
            raise InputError("pd-local: use_pd is False and no symmetry functions are set: no features")
        grids = [self.h0_grid, self.h0_birth_grid, self.radial_A, self.angular_shells_A] + [g for bd in self.grids
                                                                                           for g in bd]  # fmt: skip
        for lo, hi, n in (g for g in grids if g is not None):
            if not (int(n) >= 1 and float(hi) > float(lo)):
                raise InputError(f"pd-local: a Gaussian grid (lo, hi, n) needs hi > lo and n >= 1, got {[lo, hi, n]}")
        if not self.persistence_ramp_A2 > 0:
            raise InputError(f"pd-local: persistence_ramp_A2 must be > 0 Å², got {self.persistence_ramp_A2}")
        if not 0 < self.cap_start_A2 < self.alpha_max_A2:
            raise InputError(
                f"pd-local: need 0 < cap_start_A2 ({self.cap_start_A2}) < alpha_max_A2 ({self.alpha_max_A2})"
            )

    @property
    def n_features(self) -> int:
        h0 = self.h0_grid[2] * (self.h0_birth_grid[2] if self.h0_birth_grid else 1)
        pd = h0 + sum(b[2] * d[2] for b, d in self.grids) if self.use_pd else 0
        radial = self.radial_A[2] if self.radial_A else 0
        angular = self.angular_shells_A[2] * 2 * len(self.angular_zetas) if self.angular_shells_A else 0
        return pd + radial + angular

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LocalDescriptorConfig:
        def tup(x):
            return tuple(tup(v) for v in x) if isinstance(x, (list, tuple)) else x

        return cls(**{k: tup(v) for k, v in d.items()})


def _axis(spec: tuple[float, float, int], dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    lo, hi, n = spec
    centres = torch.linspace(lo, hi, int(n), dtype=dtype)
    return centres, (hi - lo) / max(int(n) - 1, 1)


def smooth_ramp(p: torch.Tensor, width: float) -> torch.Tensor:
    """C1 smoothstep of persistence p (Å²): 0 at p <= 0, 1 at p >= width."""
    x = torch.clamp(p / width, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def relative_points(positions: torch.Tensor, topo: LocalTopology, strain: torch.Tensor | None = None) -> torch.Tensor:
    """Local point coordinates relative to their centre atom (P, d), Å, differentiable in positions (N, 3).

    `strain` (d, d): the homogeneous deformation x -> (I + strain) x of positions and cell, applied to
    the relative vectors (periodic images included), for the stress (dE/dstrain).
    """
    d = topo.dim
    atom = torch.from_numpy(topo.atom)
    centre = torch.from_numpy(topo.centre)
    offset = torch.from_numpy(topo.offset).to(positions.dtype)
    rel = positions[atom, :d] + offset - positions[centre, :d]
    return rel if strain is None else rel + rel @ strain.T


def pair_values(rel: torch.Tensor, topo: LocalTopology, cfg: LocalDescriptorConfig):
    """Birth, death (Å²) and weight of every pair (Q,), differentiable in the relative points `rel` (P, d) Å."""
    entry = entry_values(batched_dot(rel, rel), cfg.inner_A, cfg.cutoff_A, cfg.alpha_max_A2)
    values = []
    for k in range(topo.dim + 1):
        src = torch.from_numpy(topo.sources[k])
        values.append(orthospheres(rel[src], entry[src])[1] if len(src) else rel.new_zeros(0))
    base = np.cumsum([0] + [len(v) for v in values[:-1]])
    flat = torch.cat(values)
    birth = flat[torch.from_numpy(base[topo.birth_level] + topo.birth_index)]
    death = flat[torch.from_numpy(base[topo.death_level] + topo.death_index)]
    cap = 1.0 - smooth_ramp(death - cfg.cap_start_A2, cfg.alpha_max_A2 - cfg.cap_start_A2)
    return birth, death, smooth_ramp(death - birth, cfg.persistence_ramp_A2) * cap


def cosine_cutoff(r: torch.Tensor, cutoff_A: float) -> torch.Tensor:
    """0.5 (cos(π r / rc) + 1) for r < rc, else 0 (value and slope vanish at rc)."""
    return torch.where(r < cutoff_A, 0.5 * (torch.cos(torch.pi * torch.clamp(r / cutoff_A, max=1.0)) + 1.0), 0.0)


def _pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (a, b), a < b, of the entries of `group` that share a group value."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, len(g)])
    rank = np.arange(len(g)) - np.repeat(starts, counts)
    n_after = np.repeat(counts, counts) - 1 - rank
    first = np.repeat(np.arange(len(g)), n_after)
    step = np.arange(len(first)) - np.repeat(np.cumsum(n_after) - n_after, n_after)
    return order[first], order[first + 1 + step]


def symmetry_functions(
    rel: torch.Tensor, topo: LocalTopology, cfg: LocalDescriptorConfig, dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """Radial and angular symmetry-function blocks (N, ·) from relative points `rel` (P, d) Å.

    Distances and angle cosines in `rel`'s dtype, their Gaussian expansions in `dtype`.
    """
    dtype = dtype or rel.dtype
    blocks: list[torch.Tensor] = []
    neighbour = np.flatnonzero((topo.atom != topo.centre) | np.abs(topo.offset).any(axis=1))
    rel_n = rel[torch.from_numpy(neighbour)]
    r_exact = torch.sqrt(batched_dot(rel_n, rel_n))
    r = r_exact.to(dtype)
    centre = topo.centre[neighbour]
    if cfg.radial_A:
        c, s = _axis(cfg.radial_A, dtype)
        g = torch.exp(-0.5 * ((r[:, None] - c) / (s * cfg.radial_width)) ** 2) * cosine_cutoff(r, cfg.cutoff_A)[:, None]
        blocks.append(g.new_zeros(topo.n_atoms, g.shape[1]).index_add(0, torch.from_numpy(centre), g))
    if cfg.angular_shells_A:
        rc = min(cfg.angular_cutoff_A, cfg.cutoff_A)  # only points within cutoff_A are listed
        near = np.flatnonzero(r_exact.detach().numpy() < rc)
        j, k = (near[x] for x in _pairs_within_groups(centre[near]))
        tj, tk = torch.from_numpy(j), torch.from_numpy(k)
        cos = torch.clamp(batched_dot(rel_n[tj], rel_n[tk]) / (r_exact[tj] * r_exact[tk]), -1.0, 1.0).to(dtype)
        c, s = _axis(cfg.angular_shells_A, dtype)
        shell = torch.exp(-0.5 * ((r[:, None] - c) / s) ** 2) * cosine_cutoff(r, rc)[:, None]
        radial = shell[tj] * shell[tk]  # (T, shells)
        terms = [2.0 ** (1 - z) * (1.0 + lam * cos) ** z for z in cfg.angular_zetas for lam in (1.0, -1.0)]
        g = (torch.stack(terms, 1)[:, :, None] * radial[:, None, :]).reshape(len(j), len(terms) * radial.shape[1])
        blocks.append(g.new_zeros(topo.n_atoms, g.shape[1]).index_add(0, torch.from_numpy(centre[j]), g))
    return blocks


def atom_features(
    positions: torch.Tensor,
    topo: LocalTopology,
    cfg: LocalDescriptorConfig,
    strain: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    compiled: bool = False,
) -> torch.Tensor:
    """Per-atom vectors (N, n_features): local diagrams, then symmetry functions; differentiable in positions Å.

    The geometry (relative points, simplex radii, distances, angles) is computed in the positions'
    dtype (fp64: its degeneracy tolerances are set for it); `dtype` (e.g. fp32 for training) is the
    arithmetic of the Gaussian expansions that follow, where the time goes. `compiled`: the compiled kernels
    (`pdmd.models.local.kernels`; float64, one backward pass: evaluation, not training).
    """
    rel = relative_points(positions, topo, strain)
    if compiled and rel.dtype == torch.float64 and compiled_available():
        return compiled_features(rel, topo, cfg)
    dtype = dtype or rel.dtype
    blocks = pd_blocks(rel, topo, cfg, dtype) if cfg.use_pd else []
    if cfg.radial_A or cfg.angular_shells_A:
        blocks += symmetry_functions(rel, topo, cfg, dtype)
    return torch.cat(blocks, dim=1)


def pd_blocks(
    rel: torch.Tensor, topo: LocalTopology, cfg: LocalDescriptorConfig, dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """The persistence-image blocks (N, ·) per homology degree of the local diagrams of relative points `rel`."""
    dtype = dtype or rel.dtype
    birth, death, weight = (v.to(dtype) for v in pair_values(rel, topo, cfg))
    degree = torch.from_numpy(topo.pair_degree)
    centre = torch.from_numpy(topo.pair_centre)
    blocks = []
    specs = [(cfg.h0_birth_grid, cfg.h0_grid)] + list(cfg.grids)
    for h, (bspec, dspec) in enumerate(specs):
        sel = degree == h
        cd, sd = _axis(dspec, dtype)
        g = torch.exp(-0.5 * ((death[sel, None] - cd) / sd) ** 2)
        if bspec is not None:
            cb, sb = _axis(bspec, dtype)
            gb = torch.exp(-0.5 * ((birth[sel, None] - cb) / sb) ** 2)
            g = (gb[:, :, None] * g[:, None, :]).reshape(len(gb), gb.shape[1] * g.shape[1])
        g = g * weight[sel, None]
        blocks.append(g.new_zeros(topo.n_atoms, g.shape[1]).index_add(0, centre[sel], g))
    return blocks
