# SPDX-License-Identifier: GPL-3.0-or-later
"""The atomic network and the loaded pd-local model (energies, forces, saving and loading)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from pdmd.errors import InputError
from pdmd.local.complex import LocalTopology, local_topology
from pdmd.local.features import LocalDescriptorConfig, atom_features
from pdmd.store.documents import read_card, write_card
from pdmd.structure import Frame

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


class LocalPDModel:
    """A loaded pd-local model: `energy_and_forces`, `predict_frames`, and the card it came with."""

    def __init__(self, card: dict, net: AtomicNet, cfg: LocalDescriptorConfig, skin_A: float = 0.3) -> None:
        """`skin_A`: Verlet skin of the topology cache that `energy_and_forces` keeps between calls (MD)."""
        from pdmd.local.incremental import TopologyCache

        self.card, self.net, self.cfg = card, net, cfg
        self.net.eval()
        self.cache = TopologyCache(cfg.dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2, skin_A=skin_A)

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def topology(self, frame: Frame) -> LocalTopology:
        return local_topology(frame, self.cfg.dim, self.cfg.cutoff_A, self.cfg.inner_A, self.cfg.alpha_max_A2)

    def energy_and_forces(self, frame: Frame) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (N, 3) eV/Å of one structure (z forces are 0 for a 2D model).

        Consecutive calls on nearby positions (MD) reuse neighbour lists and local triangulations
        (`pdmd.local.incremental`); the result is the same as from a fresh `topology`.
        """
        energy, forces, _ = self.energy_forces_stress(frame, stress=False)
        return energy, forces

    def energy_forces_stress(self, frame: Frame, stress: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Energy (eV), forces (N, 3) eV/Å and, for a 3D model on a fully periodic cell, the stress (eV/Å³).

        Stress: (1/V) dE/dε for the homogeneous strain x -> (I + ε) x of positions and cell, by
        autograd, as ASE's 6 Voigt components (xx, yy, zz, yz, xz, xy); None when not asked for.
        """
        if stress and (self.dim != 3 or not all(frame.pbc)):
            raise InputError("stress needs a 3D pd-local model and a cell periodic in x, y and z")
        topo = self.cache(frame)
        pos = torch.tensor(np.asarray(frame.positions, float), dtype=torch.float64, requires_grad=True)
        inputs = [pos]
        strain = None
        if stress:
            strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
            inputs.append(strain)
        energy = self.net(atom_features(pos, topo, self.cfg, strain)).sum()
        grads = torch.autograd.grad(energy, inputs, materialize_grads=True)  # 0, not an error, without pairs
        sigma = None
        if stress:
            g = grads[1].numpy()
            g = 0.5 * (g + g.T) / abs(np.linalg.det(np.asarray(frame.cell, float)))
            sigma = np.array([g[0, 0], g[1, 1], g[2, 2], g[1, 2], g[0, 2], g[0, 1]])
        return float(energy.detach()), -grads[0].numpy(), sigma

    def atom_energies(self, frame: Frame) -> np.ndarray:
        """Per-atom energies (eV) of one structure."""
        topo = self.topology(frame)
        with torch.no_grad():
            pos = torch.tensor(np.asarray(frame.positions, float), dtype=torch.float64)
            return self.net(atom_features(pos, topo, self.cfg)).numpy()

    def predict_frames(self, frames: list[Frame], labels: list[str] | None = None) -> tuple[np.ndarray, float]:
        """Energies (eV/atom) of structures (validated first: units, flatness, overlaps) and mean seconds each."""
        from pdmd.structure import validate_frame

        labels = labels or [f"structure {i}" for i in range(len(frames))]
        frames = [validate_frame(f, self.dim, label=lab) for f, lab in zip(frames, labels)]
        start = time.perf_counter()
        out = np.array([self.atom_energies(f).mean() for f in frames])
        return out, (time.perf_counter() - start) / max(len(frames), 1)


def save_weights(folder: str | Path, net: AtomicNet) -> Path:
    """Write the network's weights into `folder` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(folder / WEIGHTS)
    return folder


def save_model(folder: str | Path, card: dict, net: AtomicNet) -> Path:
    """Write the weights and the card (model.json, checked: `pdmd.store.documents.write_card`) into `folder`."""
    folder = save_weights(folder, net)
    write_card(folder, card)
    return folder


def load_local_model(folder: str | Path) -> LocalPDModel:
    """Load a pd-local model folder (model.json + weights.pt)."""
    folder = Path(folder)
    if not (folder / "model.json").is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(f"{folder} is not a pd-local model folder (needs model.json and {WEIGHTS})")
    card = read_card(folder)
    if card.get("model_kind") != KIND:
        raise InputError(f"{folder} holds a {card.get('model_kind', 'pd-cnn')!r} model, not {KIND!r}")
    cfg = LocalDescriptorConfig.from_dict(card["local_descriptor"])
    net = AtomicNet(cfg.n_features, tuple(card["network"]["hidden"]))
    net.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True))
    return LocalPDModel(card, net, cfg)
