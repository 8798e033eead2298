# SPDX-License-Identifier: GPL-3.0-or-later
"""A short-range repulsion under the learned energy, so no pair can fall into a hole without data.

The pair energy is the universal ZBL screened Coulomb potential (Ziegler, Biersack, Littmark 1985),

    φ(r) = Z² e²/(4πε₀ r) · Σ_k a_k exp(-b_k r / a),   a = 0.46850 Å / (2 Z^0.23),

times a switch S(r): 1 below r_min - width, 0 from r_min (the shortest pair distance in the training
data, recorded on the card) on, a quintic smoothstep between (C2). So the learned energy is untouched
wherever the training data have pairs (value and forces exactly unchanged), and below r_min - width a
pair costs the full ZBL energy (C–C: ≈ 22 eV at 0.9 Å, ≈ 8 eV at 1.2 Å). Both S and φ fall
monotonically with r, so the repulsion is repulsive everywhere it is on. Each atom carries half of
each of its pairs' energies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

ZBL_A = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_B = (3.19980, 0.94229, 0.40290, 0.20162)
COULOMB_EV_A = 14.399645
"""e²/(4πε₀) in eV·Å."""
DEFAULT_WIDTH_A = 0.3
"""Width (Å) of the switch below r_min."""


def zbl(r: torch.Tensor, z: int = 6) -> torch.Tensor:
    """ZBL pair energy (eV) of two atoms of atomic number `z` at distance r (Å)."""
    a = 0.46850 / (2.0 * z**0.23)
    screen = sum(ak * torch.exp(-bk * r / a) for ak, bk in zip(ZBL_A, ZBL_B))
    return z * z * COULOMB_EV_A / r * screen


def switch(r: torch.Tensor, r_on: float, r_off: float) -> torch.Tensor:
    """1 for r <= r_on, 0 for r >= r_off, a quintic smoothstep (C2) between."""
    t = torch.clamp((r - r_on) / (r_off - r_on), 0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t * t)


@dataclass(frozen=True)
class CoreRepulsion:
    """ZBL repulsion switched off at `r_min_A` (Å), fully on below `r_min_A - width_A`."""

    r_min_A: float
    width_A: float = DEFAULT_WIDTH_A
    z: int = 6

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        """Switched ZBL energy (eV) at distances r (Å); exactly 0 (value and slope) for r >= r_min."""
        r = torch.clamp(r, min=1e-3)
        return zbl(r, self.z) * switch(r, self.r_min_A - self.width_A, self.r_min_A)

    def atom_energies(self, rel: torch.Tensor, centre: np.ndarray, n_atoms: int) -> torch.Tensor:
        """Per-atom repulsion (N,) eV from neighbour vectors `rel` (P, d) Å of centre atoms `centre` (P,).

        Each pair appears once from each of its atoms, so each carries half; the centres themselves
        (zero vectors) contribute nothing.
        """
        r2 = (rel * rel).sum(1)
        near = np.flatnonzero((r2.detach().numpy() < self.r_min_A**2) & (r2.detach().numpy() > 0.0))
        out = rel.new_zeros(n_atoms)
        if not len(near):
            return out
        idx = torch.from_numpy(near)
        e = 0.5 * self.pair_energy(torch.sqrt(r2[idx]))
        return out.index_add(0, torch.from_numpy(centre[near]), e)

    def as_dict(self) -> dict:
        return {"kind": "zbl", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict | None) -> CoreRepulsion | None:
        if not d:
            return None
        return cls(float(d["r_min_A"]), float(d.get("width_A", DEFAULT_WIDTH_A)), int(d.get("z", 6)))


def core_energy_forces(core: CoreRepulsion, topo, positions: np.ndarray) -> tuple[float, np.ndarray]:
    """Total repulsion (eV) and its forces (N, 3) eV/Å of one structure from its local topology (`LocalTopology`)."""
    from pdmd.models.local.features import relative_points

    pos = torch.tensor(np.asarray(positions, float), dtype=torch.float64, requires_grad=True)
    energy = core.atom_energies(relative_points(pos, topo), topo.centre, topo.n_atoms).sum()
    if not energy.requires_grad:  # no pair inside r_min
        return 0.0, np.zeros((len(pos), 3))
    (grad,) = torch.autograd.grad(energy, pos)
    return float(energy.detach()), -grad.numpy()


def shortest_pair_A(rel: np.ndarray) -> float:
    """Shortest non-zero neighbour distance (Å) among relative vectors (P, d); inf without pairs."""
    r2 = (np.asarray(rel, float) ** 2).sum(1)
    r2 = r2[r2 > 0]
    return float(np.sqrt(r2.min())) if len(r2) else float("inf")
