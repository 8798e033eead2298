# SPDX-License-Identifier: GPL-3.0-or-later
"""The atomic network and the loaded pd-local model (energies, forces, saving and loading)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pdmd.domain import DomainModel
from pdmd.errors import InputError
from pdmd.models.local.complex import LocalTopology, local_topology
from pdmd.models.local.core import CoreRepulsion
from pdmd.models.local.features import LocalDescriptorConfig, atom_features, relative_points
from pdmd.store.documents import read_card, write_card
from pdmd.structure import Frame, sheet_frame_and_rotation
from pdmd.systems import SHEET_Z_SPAN_A

log = logging.getLogger(__name__)

KIND = "pd-local"
WEIGHTS = "weights.pt"


class AtomicNet(torch.nn.Module):
    """Per-atom energy (eV) from a standardized local-diagram vector: e0 + scale · MLP(x)."""

    def __init__(self, n_features: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.SiLU()]
            width = h
        layers.append(torch.nn.Linear(width, 1))
        self.mlp = torch.nn.Sequential(*layers)
        self.register_buffer("feat_mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("feat_std", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("e0", torch.zeros((), dtype=torch.float64))
        self.register_buffer("e_scale", torch.ones((), dtype=torch.float64))
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.e0 + self.e_scale * self.mlp((x - self.feat_mean) / self.feat_std).squeeze(-1)


def batch_energies(
    net: AtomicNet,
    cfg: LocalDescriptorConfig,
    topo: LocalTopology,
    positions: torch.Tensor,
    atom_frame: torch.Tensor,
    n_frames: int,
) -> torch.Tensor:
    """Total energy (eV) of each structure of a batch; positions (N, 3) Å of all its atoms.

    The geometry runs in the positions' dtype, the feature expansions and network in the network's.
    """
    e_atom = net(atom_features(positions, topo, cfg, dtype=net.e0.dtype))
    return e_atom.new_zeros(n_frames).index_add(0, atom_frame, e_atom)


@dataclass
class LocalResult:
    """One structure's evaluation: energy (eV), forces (N, 3) eV/Å, stress (Voigt, eV/Å³) and uncertainty.

    extrapolation: per-atom grade (dimensionless, 1 = edge of the training data; `pdmd.domain`), None
    when the card has no domain. force_deviation: per-atom committee force deviation (eV/Å,
    DP-GEN's max_devi_f is its maximum), energy_std: the members' total-energy std (eV) and
    atom_energy_std: per-atom energy std (eV); None unless a committee was asked for them.
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    extrapolation: np.ndarray | None = None
    force_deviation: np.ndarray | None = None
    energy_std: float | None = None
    atom_energy_std: np.ndarray | None = None


def in_sheet_frame(frame: Frame, dim: int) -> tuple[Frame, np.ndarray | None]:
    """For a 2D model, a sheet that is not flat in the xy plane in its own frame (`pdmd.structure.sheet_frame`)
    with the rotation that maps vectors back (w @ R); else the frame itself and None.
    """
    if dim != 2 or len(frame.positions) < 2 or np.ptp(np.asarray(frame.positions)[:, 2]) <= SHEET_Z_SPAN_A:
        return frame, None
    return sheet_frame_and_rotation(frame)


class LocalPDModel:
    """A loaded pd-local model: `evaluate`, `energy_and_forces`, `predict_frames`, and the card it came with.

    A committee (`pdmd train --model pd-local --ensemble K`) holds K networks on the same descriptor:
    member 0 gives energies and forces (the one MD integrates, as in DP-GEN), the others only the
    deviation. `core`: the short-range repulsion (`pdmd.models.local.core`) added to every energy, None on
    cards written before it existed (they predict as before) or when switched off (`use_core=False`).
    """

    def __init__(
        self,
        card: dict,
        net: AtomicNet | list[AtomicNet],
        cfg: LocalDescriptorConfig,
        skin_A: float = 0.3,
        *,
        core: CoreRepulsion | None = None,
        domain: DomainModel | None = None,
    ) -> None:
        """`skin_A`: Verlet skin of the topology cache that `evaluate` keeps between calls (MD)."""
        from pdmd.models.local.incremental import TopologyCache

        self.nets = list(net) if isinstance(net, (list, tuple)) else [net]
        self.card, self.cfg, self.core, self.domain = card, cfg, core, domain
        for n in self.nets:
            n.eval()
        self.cache = TopologyCache(cfg.dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2, skin_A=skin_A)

    @property
    def net(self) -> AtomicNet:
        """The network that gives energies and forces (a committee's member 0)."""
        return self.nets[0]

    @property
    def dim(self) -> int:
        return self.cfg.dim

    @property
    def committee_size(self) -> int:
        return len(self.nets)

    def topology(self, frame: Frame) -> LocalTopology:
        return local_topology(frame, self.cfg.dim, self.cfg.cutoff_A, self.cfg.inner_A, self.cfg.alpha_max_A2)

    def _atom_energies(self, net: AtomicNet, x: torch.Tensor, core_e: torch.Tensor | None) -> torch.Tensor:
        e = net(x)
        return e if core_e is None else e + core_e

    def evaluate(self, frame: Frame, *, stress: bool = False, deviation: bool = False) -> LocalResult:
        """Energy, forces, optionally the stress (3D periodic) and the committee deviation, with the grade.

        Stress: (1/V) dE/dε for the homogeneous strain x -> (I + ε) x of positions and cell, by autograd,
        as ASE's 6 Voigt components (xx, yy, zz, yz, xz, xy). Consecutive calls on nearby positions (MD)
        reuse neighbour lists and local triangulations (`pdmd.models.local.incremental`); the result is the same
        as from a fresh `topology`.
        """
        if stress and (self.dim != 3 or not all(frame.pbc)):
            raise InputError("stress needs a 3D pd-local model and a cell periodic in x, y and z")
        frame, rotation = in_sheet_frame(frame, self.dim)
        topo = self.cache(frame)
        pos = torch.tensor(np.asarray(frame.positions, float), dtype=torch.float64, requires_grad=True)
        inputs = [pos]
        strain = None
        if stress:
            strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
            inputs.append(strain)
        x = atom_features(pos, topo, self.cfg, strain, compiled=True)
        core_e = None
        if self.core is not None:
            core_e = self.core.atom_energies(relative_points(pos, topo, strain), topo.centre, topo.n_atoms)
        members = self.nets if deviation and len(self.nets) > 1 else self.nets[:1]
        energies, forces, sigma = [], [], None
        for m, net in enumerate(members):
            e_atoms = self._atom_energies(net, x, core_e)
            energy = e_atoms.sum()
            # materialize: 0, not an error, without pairs; the graph is kept for the other members
            grads = torch.autograd.grad(energy, inputs if m == 0 else [pos], materialize_grads=True,
                                        retain_graph=m < len(members) - 1)  # fmt: skip
            energies.append(e_atoms.detach().numpy())
            forces.append(-grads[0].numpy())
            if m == 0 and stress:
                g = grads[1].numpy()
                g = 0.5 * (g + g.T) / abs(np.linalg.det(np.asarray(frame.cell, float)))
                sigma = np.array([g[0, 0], g[1, 1], g[2, 2], g[1, 2], g[0, 2], g[0, 1]])
        if rotation is not None:  # a sheet given in another plane: forces back in the input's frame
            forces = [f @ rotation for f in forces]
        out = LocalResult(float(energies[0].sum()), forces[0], sigma)
        if self.domain is not None:
            out.extrapolation = self.domain.grade(x.detach().numpy())
        if len(members) > 1:
            f = np.stack(forces)
            out.force_deviation = np.sqrt(((f - f.mean(0)) ** 2).sum(2).mean(0))
            e = np.stack(energies)
            out.energy_std = float(e.sum(1).std())
            out.atom_energy_std = e.std(0)
        return out

    def energy_and_forces(self, frame: Frame) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (N, 3) eV/Å of one structure (z forces are 0 for a 2D model)."""
        r = self.evaluate(frame)
        return r.energy, r.forces

    def energy_forces_stress(self, frame: Frame, stress: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Energy (eV), forces (N, 3) eV/Å and, for a 3D model on a fully periodic cell, the stress (eV/Å³)."""
        r = self.evaluate(frame, stress=stress)
        return r.energy, r.forces, r.stress

    def features(self, frame: Frame) -> np.ndarray:
        """The per-atom descriptor vectors (N, n_features) of one structure."""
        frame, _ = in_sheet_frame(frame, self.dim)
        with torch.no_grad():
            pos = torch.tensor(np.asarray(frame.positions, float), dtype=torch.float64)
            return atom_features(pos, self.topology(frame), self.cfg, compiled=True).numpy()

    def atom_energies(self, frame: Frame) -> np.ndarray:
        """Per-atom energies (eV) of one structure (member 0, with the core repulsion where the card has one)."""
        frame, _ = in_sheet_frame(frame, self.dim)
        topo = self.topology(frame)
        with torch.no_grad():
            pos = torch.tensor(np.asarray(frame.positions, float), dtype=torch.float64)
            core_e = None
            if self.core is not None:
                core_e = self.core.atom_energies(relative_points(pos, topo), topo.centre, topo.n_atoms)
            x = atom_features(pos, topo, self.cfg, compiled=True)
            return self._atom_energies(self.net, x, core_e).numpy()

    def predict_frames(self, frames: list[Frame], labels: list[str] | None = None) -> tuple[np.ndarray, float]:
        """Energies (eV/atom) of structures (validated first: units, flatness, overlaps) and mean seconds each."""
        from pdmd.structure import validate_frame

        labels = labels or [f"structure {i}" for i in range(len(frames))]
        frames = [validate_frame(f, self.dim, label=lab) for f, lab in zip(frames, labels)]
        start = time.perf_counter()
        out = np.array([self.atom_energies(f).mean() for f in frames])
        return out, (time.perf_counter() - start) / max(len(frames), 1)

    def structure_grades(self, frames: list[Frame]) -> np.ndarray:
        """Largest per-atom extrapolation grade of each structure; NaN without a domain on the card."""
        if self.domain is None:
            return np.full(len(frames), np.nan)
        return np.array([float(self.domain.grade(self.features(f)).max(initial=0.0)) for f in frames])


DOMAIN = "domain.npz"


def member_weights(member: int) -> str:
    """File name of committee member `member`'s weights (member 0: weights.pt, as a single network)."""
    return WEIGHTS if member == 0 else f"weights-{member}.pt"


def save_weights(folder: str | Path, net: AtomicNet, member: int = 0) -> Path:
    """Write the network's (a committee member's) weights into `folder` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = member_weights(member)
    tmp = folder / (name + ".tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(folder / name)
    return folder


def save_model(folder: str | Path, card: dict, net: AtomicNet) -> Path:
    """Write the weights and the card (model.json, checked: `pdmd.store.documents.write_card`) into `folder`."""
    folder = save_weights(folder, net)
    write_card(folder, card)
    return folder


def load_local_model(folder: str | Path, *, use_core: bool = True) -> LocalPDModel:
    """Load a pd-local model folder (model.json + weights.pt [+ committee members, domain.npz]).

    use_core=False leaves the card's short-range repulsion out (to see what the network alone does).
    """
    folder = Path(folder)
    if not (folder / "model.json").is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(f"{folder} is not a pd-local model folder (needs model.json and {WEIGHTS})")
    card = read_card(folder)
    if card.get("model_kind") != KIND:
        raise InputError(f"{folder} holds a {card.get('model_kind', 'pd-cnn')!r} model, not {KIND!r}")
    cfg = LocalDescriptorConfig.from_dict(card["local_descriptor"])
    nets = []
    for m in range(int((card.get("committee") or {}).get("size", 1))):
        path = folder / member_weights(m)
        if not path.is_file():
            raise InputError(f"{folder}: committee member {m} has no weights ({path.name}); retrain the model")
        net = AtomicNet(cfg.n_features, tuple(card["network"]["hidden"]))
        net.load_state_dict(torch.load(path, weights_only=True))
        nets.append(net)
    domain_file = folder / (card.get("domain") or {}).get("file", DOMAIN)
    domain = DomainModel.load(domain_file) if card.get("domain") and domain_file.is_file() else None
    if card.get("domain") and domain is None:
        log.warning("%s: the card has a domain but %s is missing: no extrapolation grades (retrain to restore them)",
                    folder, domain_file.name)  # fmt: skip
    core = CoreRepulsion.from_dict(card.get("core")) if use_core else None
    return LocalPDModel(card, nets, cfg, core=core, domain=domain)
