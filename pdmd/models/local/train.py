# SPDX-License-Identifier: GPL-3.0-or-later
"""Training pd-local on total energies and, where the data have them, forces.

Loss per batch = energy_weight · mean(((E_pred - E_ref) / N)²) / var(E/N)
               + force_weight · mean((F_pred - F_ref)²) / var(F)
over the structures of the batch (forces: over the in-plane components for 2D). The local
topologies (neighbourhoods, complexes, pairs and their sources) are computed once per structure;
each step recomputes the pair values from positions in torch, so the force loss is exact
(double backpropagation). Adam with a cosine learning-rate decay over the run's progress (epochs or
the time budget, whichever ends it first, so a time-limited run still anneals); the weights of the epoch with the
lowest loss on a validation part of the training structures are kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from pdmd.errors import InputError
from pdmd.models.local.complex import LocalTopology
from pdmd.models.local.features import LocalDescriptorConfig, atom_features
from pdmd.models.local.model import KIND, AtomicNet, LocalPDModel, batch_energies, save_weights
from pdmd.progress import ProgressLog
from pdmd.structure import Frame

log = logging.getLogger(__name__)


PRECISIONS = {"fp32": torch.float32, "fp64": torch.float64}


@dataclass(frozen=True)
class LocalTrainConfig:
    """Optimisation settings; weights are dimensionless (both loss terms are variance-normalised)."""

    epochs: int = 300
    lr: float = 3e-3
    batch_structures: int = 8
    energy_weight: float = 1.0
    force_weight: float = 1.0
    hidden: tuple[int, ...] = (128, 128)
    seed: int = 0
    max_minutes: float = 10.0
    validation_fraction: float = 0.1
    threads: int = 1
    atom_energy_scale_eV: float = 0.0
    """Output scale of the atomic network (eV); 0: the std of the training energies per atom."""
    precision: str = "fp32"
    """Training arithmetic of the feature expansions and network: "fp32" (1.75x faster per step than fp64,
    `benchmarks/local_train_speed.py`) or "fp64"; geometry, the saved model, prediction, forces and MD are fp64."""
    force_floor_eV_per_A: float = 0.0
    """0: one force normalisation, var(F) over all training structures. > 0: each structure's force
    error is divided by its own mean square force + floor² instead, so near-equilibrium structures
    (small forces) count as much as hot ones."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"pd-local: precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prepared:
    """Structures ready for training: topologies, positions (Å), energies (eV/atom), forces (eV/Å or None)."""

    topologies: list[LocalTopology]
    positions: list[np.ndarray]
    energies_eV_per_atom: np.ndarray
    forces: list[np.ndarray | None]

    def batch(self, idx: np.ndarray) -> tuple[LocalTopology, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Concatenated topology, positions (fp64, requires grad), atom->structure index, atom counts."""
        topo = LocalTopology.concat([self.topologies[i] for i in idx])
        pos = torch.tensor(np.concatenate([self.positions[i] for i in idx]), dtype=torch.float64, requires_grad=True)
        counts = np.array([len(self.positions[i]) for i in idx])
        atom_frame = torch.from_numpy(np.repeat(np.arange(len(idx)), counts))
        return topo, pos, atom_frame, torch.from_numpy(counts).to(torch.float64)


def prepare(
    frames: list[Frame], energies_eV_per_atom, forces: list[np.ndarray | None] | None, cfg: LocalDescriptorConfig
) -> Prepared:
    """Local topologies of all structures (progress with ETA)."""
    from pdmd.models.local.complex import local_topology

    progress = ProgressLog(len(frames), "pd-local topologies", log)
    topos = []
    for f in frames:
        topos.append(local_topology(f, cfg.dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2))
        progress.step()
    forces = list(forces) if forces is not None else [None] * len(frames)
    return Prepared(topos, [np.asarray(f.positions, float) for f in frames], np.asarray(energies_eV_per_atom, float),
                    forces)  # fmt: skip


def predict_prepared(net: AtomicNet, cfg: LocalDescriptorConfig, data: Prepared, idx: np.ndarray, batch: int = 16):
    """Energies (eV/atom) and forces (list of (N, 3) eV/Å) of structures `idx` (feature expansions and network
    in the network's dtype).
    """
    energies, forces = [], []
    for start in range(0, len(idx), batch):
        part = idx[start : start + batch]
        topo, pos, atom_frame, counts = data.batch(part)
        e = batch_energies(net, cfg, topo, pos, atom_frame, len(part))
        (grad,) = torch.autograd.grad(e.sum(), pos, materialize_grads=True)
        energies.append((e / counts).detach().numpy())
        forces += np.split(-grad.numpy(), np.cumsum(counts.numpy().astype(int))[:-1])
    return np.concatenate(energies) if energies else np.zeros(0), forces


def _force_arrays(forces: list, idx: np.ndarray, dim: int) -> np.ndarray:
    parts = [np.asarray(forces[i])[:, :dim].ravel() for i in idx if forces[i] is not None]
    return np.concatenate(parts) if parts else np.zeros(0)


def feature_moments(
    data: Prepared, idx: np.ndarray, cfg: LocalDescriptorConfig, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over all atoms of structures `idx` of the per-atom vectors, `chunk` structures at a time."""
    total = square = None
    count = 0
    for start in range(0, len(idx), chunk):
        topo, pos, _, _ = data.batch(idx[start : start + chunk])
        x = atom_features(pos.detach(), topo, cfg)
        total = x.sum(0) if total is None else total + x.sum(0)
        square = (x * x).sum(0) if square is None else square + (x * x).sum(0)
        count += len(x)
    mean = total / count
    return mean, torch.sqrt(torch.clamp(square / count - mean * mean, min=0.0) * count / max(count - 1, 1))


@dataclass
class _Fitting:
    """One training run: the network, its settings and data, and the loss normalisations var(E/N) (eV²/atom²)
    and var(F) (eV²/Å²) of the fitting structures (`use_forces`: the force term is on).
    """

    net: AtomicNet
    cfg: LocalDescriptorConfig
    tcfg: LocalTrainConfig
    data: Prepared
    var_e: float
    var_f: float
    use_forces: bool


def fit_local(
    data: Prepared, train_idx: np.ndarray, cfg: LocalDescriptorConfig, tcfg: LocalTrainConfig
) -> tuple[AtomicNet, list[dict]]:
    """Train an AtomicNet on structures `train_idx` of `data`; returns it and the per-epoch history."""
    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    train_idx = np.asarray(train_idx, int)
    n_val = int(round(tcfg.validation_fraction * len(train_idx))) if len(train_idx) >= 10 else 0
    perm = rng.permutation(train_idx)
    val_idx, fit_idx = perm[:n_val], perm[n_val:]
    fit = _start_fitting(data, fit_idx, cfg, tcfg)
    net = fit.net
    opt = torch.optim.Adam(net.parameters(), lr=tcfg.lr)
    batches = [fit_idx[i : i + tcfg.batch_structures] for i in range(0, len(fit_idx), tcfg.batch_structures)]
    cached = [data.batch(b) for b in batches]
    skipped = 0
    history: list[dict] = []
    best = (np.inf, None)
    start = time.perf_counter()
    budget_s = max(tcfg.max_minutes * 60.0, 1e-6)
    progress = ProgressLog(tcfg.epochs, "pd-local training epochs", log, every_s=10.0)
    for epoch in range(tcfg.epochs):
        total, steps = _train_epoch(fit, opt, [(batches[k], cached[k]) for k in rng.permutation(len(batches))])
        skipped += len(batches) - steps
        # cosine decay over the run's progress: epochs done or time budget used, whichever is further along
        frac = min(1.0, max((epoch + 1) / max(tcfg.epochs, 1), (time.perf_counter() - start) / budget_s))
        _anneal(opt, tcfg.lr, frac)
        row = {"epoch": epoch, "train_loss": total / steps if steps else None, "skipped_steps": len(batches) - steps}
        if len(val_idx):
            row["val_loss"] = _validation_loss(fit, val_idx)
        history.append(row)
        score = row.get("val_loss", row["train_loss"])
        if score is not None and np.isfinite(score) and score < best[0]:
            best = (score, {k: v.detach().clone() for k, v in net.state_dict().items()})
        progress.step(note=f"loss {row['train_loss'] or float('nan'):.4f}"
                           + (f" val {row['val_loss']:.4f}" if "val_loss" in row else ""))  # fmt: skip
        if time.perf_counter() - start > budget_s:
            log.info("pd-local: time budget of %.1f min reached after %d epochs", tcfg.max_minutes, epoch + 1)
            break
    if best[1] is not None:
        net.load_state_dict(best[1])
    if skipped:
        log.warning("pd-local: %d training step(s) with a non-finite loss or gradient were skipped", skipped)
    net.double().eval()
    return net, history


def _start_fitting(data: Prepared, fit_idx: np.ndarray, cfg: LocalDescriptorConfig, tcfg: LocalTrainConfig) -> _Fitting:
    """A new network standardized on the fitting structures (features; energy offset and scale in eV/atom), in the
    training precision, with the loss normalisations.
    """
    net = AtomicNet(cfg.n_features, tuple(tcfg.hidden))
    with torch.no_grad():  # standardization from the fitting structures, a few at a time (memory)
        mean, std = feature_moments(data, fit_idx, cfg)
        net.feat_mean.copy_(mean)
        net.feat_std.copy_(torch.clamp(std, min=1e-3))
        e = data.energies_eV_per_atom[fit_idx]
        net.e0.fill_(float(e.mean()))
        net.e_scale.fill_(float(tcfg.atom_energy_scale_eV or max(e.std(), 1e-3)))
    var_e = float(max(e.var(), 1e-8))
    f_ref = _force_arrays(data.forces, fit_idx, cfg.dim)
    use_forces = tcfg.force_weight > 0 and len(f_ref) > 0
    var_f = float(max(f_ref.var(), 1e-8)) if use_forces else 1.0
    net.to(PRECISIONS[tcfg.precision])
    return _Fitting(net, cfg, tcfg, data, var_e, var_f, use_forces)


def _train_epoch(
    fit: _Fitting, opt: torch.optim.Optimizer, batches: list[tuple[np.ndarray, tuple]]
) -> tuple[float, int]:
    """One pass over (structure indices, cached batch) pairs in the given order; (summed loss, steps taken)."""
    fit.net.train()
    total, steps = 0.0, 0
    for idx, batch in batches:
        loss = _batch_loss(fit, idx, batch)
        if not _step(fit.net, opt, loss):
            continue
        total += float(loss.detach())
        steps += 1
    return total, steps


def _step(net: AtomicNet, opt: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
    """One Adam step on `loss`; False (no step) when the loss or a gradient is not finite."""
    opt.zero_grad()
    if torch.isfinite(loss):
        loss.backward()
    if not (torch.isfinite(loss) and all(torch.isfinite(q.grad).all() for q in net.parameters())):
        return False  # a non-finite loss or gradient (a near-degenerate simplex): no step on it
    opt.step()
    return True


def _batch_loss(fit: _Fitting, idx: np.ndarray, batch: tuple) -> torch.Tensor:
    """The dimensionless loss of structures `idx` (their cached `Prepared.batch`): variance-normalised energy
    error per atom, plus the force term where structures have reference forces.
    """
    topo, pos, atom_frame, counts = batch
    e_pred = batch_energies(fit.net, fit.cfg, topo, pos, atom_frame, len(idx)) / counts
    e_ref = torch.from_numpy(fit.data.energies_eV_per_atom[idx])
    loss = fit.tcfg.energy_weight * ((e_pred - e_ref) ** 2).mean() / fit.var_e
    has_f = [fit.data.forces[i] is not None for i in idx]
    if fit.use_forces and any(has_f):
        (grad,) = torch.autograd.grad(e_pred.mul(counts).sum(), pos, create_graph=True, materialize_grads=True)
        sq = _force_square_errors(fit, idx, -grad, counts)
        mask = torch.from_numpy(np.repeat(np.array(has_f), counts.numpy().astype(int)))
        loss = loss + fit.tcfg.force_weight * sq[mask].mean() / (fit.cfg.dim * fit.var_f)
    return loss


def _force_square_errors(fit: _Fitting, idx: np.ndarray, f_pred: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per-atom squared force error summed over the first `dim` components ((eV/Å)²; reference 0 for structures
    without forces); with a force floor, each structure's is rescaled by var(F) / (its mean square force + floor²).
    """
    d, forces = fit.cfg.dim, fit.data.forces
    f_true = torch.from_numpy(
        np.concatenate([np.asarray(forces[i]) if forces[i] is not None else np.zeros((len(fit.data.positions[i]), 3))
                        for i in idx])
    )  # fmt: skip
    sq = ((f_pred - f_true)[:, :d] ** 2).sum(1)
    if fit.tcfg.force_floor_eV_per_A > 0:
        ms = np.array([float(np.mean(np.asarray(forces[i])[:, :d] ** 2)) if forces[i] is not None else 1.0
                       for i in idx])  # fmt: skip
        scale = fit.var_f / (ms + fit.tcfg.force_floor_eV_per_A**2)
        sq = sq * torch.from_numpy(np.repeat(scale, counts.numpy().astype(int)))
    return sq


def _anneal(opt: torch.optim.Optimizer, lr: float, frac: float) -> None:
    """Set the learning rate of the cosine decay from `lr` to 2 % of it at run progress `frac` (0 to 1)."""
    for group in opt.param_groups:
        group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1.0 + np.cos(np.pi * frac)))


def _validation_loss(fit: _Fitting, val_idx: np.ndarray) -> float:
    """The loss of the validation structures (the training loss's terms over all of them at once)."""
    fit.net.eval()
    d, data, tcfg = fit.cfg.dim, fit.data, fit.tcfg
    e_val, f_val = predict_prepared(fit.net, fit.cfg, data, val_idx)
    val_loss = tcfg.energy_weight * float(np.mean((e_val - data.energies_eV_per_atom[val_idx]) ** 2)) / fit.var_e
    fv_ref = _force_arrays(data.forces, val_idx, d)
    if fit.use_forces and len(fv_ref):
        fv = _force_arrays([f if data.forces[i] is not None else None for f, i in zip(f_val, val_idx)],
                           np.arange(len(val_idx)), d)  # fmt: skip
        val_loss += tcfg.force_weight * float(np.mean((fv - fv_ref) ** 2)) / fit.var_f
    return val_loss


def force_metrics(pred: list, ref: list, idx: np.ndarray, dim: int) -> dict:
    """Force-component RMSE (eV/Å), the reference std, and their ratio over structures `idx` with forces."""
    r = _force_arrays(ref, idx, dim)
    if not len(r):
        return {}
    p = _force_arrays([pred[i] if ref[i] is not None else None for i in range(len(ref))], idx, dim)
    rmse = float(np.sqrt(np.mean((p - r) ** 2)))
    std = float(r.std())
    return {"force_rmse_eV_per_A": rmse, "force_std_eV_per_A": std, "force_rmse_over_std": rmse / max(std, 1e-12),
            "mean_predictor_force_rmse_eV_per_A": float(np.sqrt(np.mean((r - r.mean()) ** 2)))}  # fmt: skip


def forces_from_store(root: str | Path, ids: list[str], groups: list[str]) -> list[np.ndarray | None]:
    """Stored forces (eV/Å) of structures `ids` (run ids `groups`), None where a structure has none."""
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    by_id: dict[str, np.ndarray | None] = {}
    for run in sorted(set(groups)):
        for doc in store.run_structures(run):
            by_id[doc["_id"]] = store.load_forces(doc)
    return [by_id.get(i) for i in ids]


def _frame_key(positions: np.ndarray, cell: np.ndarray, dim: int) -> bytes:
    """Positions as fractional coordinates mod 1 (rounded): equal for a structure and its wrapped copy."""
    frac = np.asarray(positions, float)[:, :dim] @ np.linalg.inv(np.asarray(cell, float)[:dim, :dim])
    frac = np.round(np.mod(frac, 1.0), 5) % 1.0
    return frac.tobytes()


def forces_from_file(path: str | Path, frames: list[Frame], dim: int) -> list[np.ndarray | None]:
    """Forces (eV/Å) stored in a structure file (extxyz `forces`, a calculator's results) for `frames`.

    Structures are matched by their positions (fractional, wrapped), so a reader that dropped or
    wrapped structures still gets the right forces; None where the file has none.
    """
    from pdmd.structure import read_frames

    found: dict[bytes, np.ndarray] = {}
    for atoms in read_frames(path):
        forces = None
        if atoms.calc is not None and "forces" in getattr(atoms.calc, "results", {}):
            forces = np.asarray(atoms.calc.results["forces"], float)
        elif "forces" in atoms.arrays:
            forces = np.asarray(atoms.arrays["forces"], float)
        if forces is not None:
            found[_frame_key(atoms.positions, atoms.cell[:], dim)] = forces
    return [found.get(_frame_key(f.positions, f.cell, dim)) for f in frames]


def sheets_in_their_frame(frames: list[Frame], forces: list | None, dim: int) -> tuple[list[Frame], list | None]:
    """For a 2D model, sheets in any plane in their own frame (flat in xy), their forces rotated with them."""
    from pdmd.models.local.model import in_sheet_frame

    if dim != 2:
        return list(frames), forces
    out_frames, out_forces = [], []
    for k, frame in enumerate(frames):
        local, rotation = in_sheet_frame(frame, dim)
        out_frames.append(local)
        f = None if forces is None else forces[k]
        out_forces.append(f if f is None or rotation is None else np.asarray(f, float) @ rotation.T)
    return out_frames, None if forces is None else out_forces


def train_pd_local(data, out_dir: Path, name: str, split, options: dict, provenance: dict) -> dict:
    """The pd-local model kind's train function (`pdmd.models.registry`): fit, evaluate, save, card.

    options: "descriptor" (LocalDescriptorConfig fields), "train" (LocalTrainConfig fields), "ensemble" (committee
    size K), "core" (true / false / {"width_A": Å}: the repulsion below the training r_min), and the
    forces: "forces" (one (N, 3) array or None per structure), "store_root" (read stored forces), else
    the forces in the labelled file the data came from (`provenance["data"]`), where it has them.
    """
    from pdmd.models.card import finish_card

    if data.frames is None:
        raise InputError("pd-local trains on structures (frames); the data has none")
    dim = data.descriptor.dim
    cfg = LocalDescriptorConfig.default(dim, options.get("descriptor"))
    train_opts = {"seed": split.seed, **options.get("train", {})}
    if "hidden" in train_opts:
        train_opts["hidden"] = tuple(train_opts["hidden"])
    tcfg = LocalTrainConfig(**train_opts)
    forces = options.get("forces")
    if forces is None and options.get("store_root"):
        forces = forces_from_store(options["store_root"], list(data.ids), list(data.groups))
    elif forces is None and provenance.get("data") and Path(provenance["data"]).is_file():
        forces = forces_from_file(provenance["data"], data.frames, dim)
    frames, forces = sheets_in_their_frame(data.frames, forces, dim)
    n_forces = sum(f is not None for f in forces) if forces is not None else 0
    log.info("pd-local %s: %d of %d structures have forces", name, n_forces, len(data))
    t0 = time.perf_counter()
    prepared = prepare(frames, data.energies_eV, forces, cfg)
    size = int(options.get("ensemble", 1) or 1)
    if size < 1:
        raise InputError(f"pd-local: ensemble (committee size) must be at least 1, got {size}")
    nets, history = [], []
    for m in range(size):
        if size > 1:
            log.info("pd-local %s: committee member %d of %d (seed %d)", name, m + 1, size, tcfg.seed + m)
        net, hist = fit_local(prepared, split.train_idx, cfg, replace(tcfg, seed=tcfg.seed + m))
        nets.append(net)
        history = history or hist
    all_idx = np.arange(len(data))
    core = training_core(prepared, split.train_idx, options.get("core", {}))
    member_preds = [with_core(predict_prepared(net, cfg, prepared, all_idx), core, prepared) for net in nets]
    pred_e, pred_f = member_preds[0]
    metrics = {"training_s": time.perf_counter() - t0, "epochs_run": len(history)}
    out_dir = Path(out_dir)
    plots = {}
    for part, idx in (("train", split.train_idx), ("test", split.test_idx)):
        for k, v in force_metrics(pred_f, prepared.forces, idx, dim).items():
            metrics[f"{part}_{k}"] = v
    png = _force_parity(out_dir, name, pred_f, prepared.forces, split, dim)
    if png is not None:
        plots["force_parity"] = str(png)
    sections = {"local_descriptor": cfg.as_dict(), "network": {"hidden": list(tcfg.hidden), "activation": "SiLU"},
                "train_config": tcfg.as_dict(), "history": history}  # fmt: skip
    sections.update(_uncertainty_sections(prepared, split, cfg, tcfg, member_preds, data, out_dir))
    if core is not None:
        sections["core"] = core.as_dict()
    for m, net in enumerate(nets):
        save_weights(out_dir, net, m)  # weights first; finish_card writes the card
    return finish_card(data, out_dir, name, KIND, split, pred_e, sections, metrics, provenance, plots)


def _force_parity(out_dir: Path, name: str, pred_f: list, ref: list, split, dim: int) -> Path | None:
    """The force parity PNG of train and test structures with reference forces (None without them)."""
    from pdmd.models.plots import parity_plot

    parts = (("train", split.train_idx), ("test", split.test_idx))
    ref_f = {p: _force_arrays(ref, i, dim) for p, i in parts}
    if not all(len(v) for v in ref_f.values()):
        return None
    masked = [pf if rf is not None else None for pf, rf in zip(pred_f, ref)]
    sets = {p: (ref_f[p], _force_arrays(masked, i, dim)) for p, i in parts}
    return parity_plot(out_dir / "force_parity.png", sets, f"{name}: force components", "force component (eV/Å)",
                       ("meV/Å", 1000.0))  # fmt: skip


def training_core(prepared: Prepared, train_idx: np.ndarray, options: dict | bool):
    """The core repulsion below the training set's shortest pair (`pdmd.models.local.core`); None when switched off
    (`"core": false`) or when the data have no pairs. options: {"width_A": Å} or False.
    """
    from pdmd.models.local.core import DEFAULT_WIDTH_A, CoreRepulsion
    from pdmd.models.local.uncertainty import training_r_min

    if options is False:
        return None
    options = {} if options is True or options is None else options
    if not isinstance(options, dict) or set(options) - {"width_A"}:
        raise InputError(f'pd-local: core must be true, false or {{"width_A": Å}}, got {options!r}')
    width = options.get("width_A", DEFAULT_WIDTH_A)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < 1.0:
        raise InputError(f"pd-local: core width_A must be a number in (0, 1) Å, got {width!r}")
    r_min = training_r_min(prepared, train_idx)
    return CoreRepulsion(r_min, width) if np.isfinite(r_min) and r_min > width else None


def with_core(pred: tuple[np.ndarray, list], core, prepared: Prepared) -> tuple[np.ndarray, list]:
    """Energies (eV/atom) and forces of `predict_prepared` plus the core repulsion (0 where no pair is below r_min)."""
    if core is None:
        return pred
    from pdmd.models.local.core import core_energy_forces

    energies, forces = np.array(pred[0], float), list(pred[1])
    for i, (topo, pos) in enumerate(zip(prepared.topologies, prepared.positions)):
        e, f = core_energy_forces(core, topo, pos)
        if e:
            energies[i] += e / len(pos)
            forces[i] = forces[i] + f
    return energies, forces


def _uncertainty_sections(prepared, split, cfg, tcfg, member_preds, data, out_dir: Path) -> dict:
    """The card's domain and (K > 1) committee sections; writes domain.npz into `out_dir`."""
    from pdmd.models.ensemble import ensemble_summary
    from pdmd.models.local.uncertainty import fit_local_domain, trust_window

    out: dict = {}
    groups = [data.groups[i] for i in split.train_idx]
    domain, out["domain"] = fit_local_domain(prepared, split.train_idx, cfg, tcfg.seed, groups)
    out_dir.mkdir(parents=True, exist_ok=True)
    domain.save(out_dir / out["domain"]["file"])
    if len(member_preds) > 1:
        energies = np.stack([e for e, _ in member_preds])
        out["committee"] = {
            "size": len(member_preds),
            "seeds": [tcfg.seed + m for m in range(len(member_preds))],
            "integrated_member": 0,
            **ensemble_summary(energies, data.energies_eV, split.test_idx),
            **trust_window([f for _, f in member_preds], split.train_idx),
        }
    return out


def load_pd_local(folder: Path) -> LocalPDModel:
    """The pd-local model kind's loader."""
    from pdmd.models.local.model import load_local_model

    return load_local_model(folder)
