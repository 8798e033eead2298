# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-kernel: kernel ridge regression on vectorized persistence diagrams, chosen by cross-validation.

Vectorizations of a diagram's finite pairs (birth b, death d in Å²; persistence p = d − b):
- "hist": the paper's histogram on the descriptor window [lo, hi]², `bins`×`bins`, as in
  `pdmd.descriptor.histogram` (coarser than the CNN's 128 bins).
- "pi": persistence image (Adams et al., JMLR 18, 2017): each pair a Gaussian (σ Å²) in (b, p),
  integrated exactly over the pixels, weighted linearly by persistence (p / p_max); the grid spans
  the training diagrams' range (0.1 % quantiles clipped).
- "swq": sliced-Wasserstein embedding: the pairs' projections on `directions` angles in [0, π)
  at `quantiles` quantile levels; the Euclidean distance of two embeddings is their sliced
  2-Wasserstein distance (of the diagrams as probability measures), so a Gaussian kernel on it
  is the sliced-Wasserstein kernel (Carrière et al., ICML 2017, for measures).
Normalization ("hist", "pi"): "pairs" divides by the number of finite pairs (the paper's
probability), "atoms" by the number of atoms (pairs per atom: intensive, so 4× larger cells of
the same material give the same vector).

Kernel ridge: RBF exp(−g·D/m) on squared Euclidean distances D, Laplacian on L1 distances (m
the median distance among the training rows, so g is scale-free), or linear (dot products of the
centred features over their mean squared norm: ridge regression; with "atoms" normalization this
is the additive model "energy per atom = Σ over rings of a function of (birth, death) / atoms");
the target z-scored on the training part. Hyper-parameters (vectorization, kernel, g, α; and block weights for
pd-hybrid) by k-fold cross-validation on the training structures only, folds grouped by run
(whole melt-quench runs held out, like the test split). The α grid is solved for all values at
once from one eigendecomposition per (fold, kernel, g).

Options (`pdmd train --model pd-kernel`, train firework `model_options`): vectorizations (list of
dicts, default `DEFAULT_VECTORIZATIONS`), kernels, gammas, alphas, folds, ablation_test (default
True: also report each candidate's test RMSE in the card, never used for the choice), and from
Python only ablation_transfer (a `ModelData` of larger cells whose RMSE each candidate reports).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.files import read_npz, write_npz_atomic
from pdmd.models.card import finish_card
from pdmd.models.data import ModelData, TrainSplit
from pdmd.models.plots import rmse_meV
from pdmd.models.support import CardModel
from pdmd.progress import ProgressLog
from pdmd.store.documents import read_card

log = logging.getLogger(__name__)

DEFAULT_VECTORIZATIONS: tuple[dict, ...] = (
    {"method": "hist", "bins": 32, "norm": "pairs"},
    {"method": "hist", "bins": 32, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.05, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.1, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.2, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.3, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.2, "norm": "pairs"},
    {"method": "swq", "directions": 16, "quantiles": 32},
)
ARRAYS = "kernel_model.npz"


# -- vectorizations ----------------------------------------------------------------------------
def fit_vectorization(vec: dict, births: list[np.ndarray], deaths: list[np.ndarray], spec: DescriptorSpec) -> dict:
    """The vectorization with its grid fixed from the (training) diagrams (window: `spec`'s); stored on the card."""
    method = vec.get("method")
    if method == "hist":
        return {"norm": "pairs", "lo_A2": spec.lo_A2, "hi_A2": spec.hi_A2, **vec}
    if method == "pi":
        sigma = float(vec.get("sigma_A2", 0.05))
        b = np.concatenate(births) if births else np.zeros(1)
        p = np.concatenate(deaths) - b if births else np.ones(1)
        lo_b, hi_b = np.quantile(b, [0.001, 0.999]) if len(b) else (0.0, 1.0)
        hi_p = np.quantile(p, 0.999) if len(p) else 1.0
        return {"norm": "atoms", "bins": 32, **vec, "sigma_A2": sigma, "birth_range_A2": [float(lo_b - 2 * sigma),
                float(hi_b + 2 * sigma)], "persistence_max_A2": float(hi_p + 2 * sigma)}  # fmt: skip
    if method == "swq":
        return {"directions": 16, "quantiles": 32, **vec}
    raise InputError(f"unknown PD vectorization {vec!r}: method must be 'hist', 'pi' or 'swq'")


def _pixel_mass(x: np.ndarray, edges: np.ndarray, sigma: float) -> np.ndarray:
    """(n, bins) mass of a unit Gaussian at each x (σ) inside each pixel of `edges`."""
    return np.diff(ndtr((edges[None, :] - x[:, None]) / sigma), axis=1)


def vectorize(vec: dict, births: np.ndarray, deaths: np.ndarray, n_atoms: int) -> np.ndarray:
    """Feature vector of one diagram under a fitted vectorization."""
    n = len(births)
    if vec["method"] == "swq":
        m, q = int(vec["directions"]), int(vec["quantiles"])
        if n == 0:
            return np.zeros(m * q)
        theta = np.pi * (np.arange(m) + 0.5) / m
        proj = np.column_stack([births, deaths]) @ np.vstack([np.cos(theta), np.sin(theta)])
        return np.quantile(proj, (np.arange(q) + 0.5) / q, axis=0, method="inverted_cdf").T.ravel()
    bins = int(vec["bins"])
    if vec["method"] == "hist":
        from pdmd.descriptor.histogram import HistogramSpec, pd_histogram

        image = pd_histogram(births, deaths, HistogramSpec(vec["lo_A2"], vec["hi_A2"], bins)).image.astype(float)
        image *= n  # counts
    else:
        sigma = float(vec["sigma_A2"])
        pmax = float(vec["persistence_max_A2"])
        pers = deaths - births
        wb = _pixel_mass(births, np.linspace(*vec["birth_range_A2"], bins + 1), sigma)
        wp = _pixel_mass(pers, np.linspace(0.0, pmax, bins + 1), sigma)
        image = (wb * (pers / pmax)[:, None]).T @ wp
    denom = n if vec["norm"] == "pairs" else n_atoms
    return image.ravel() / max(denom, 1)


def pd_features(vec: dict, data: ModelData) -> np.ndarray:
    """(N, F) features of every diagram of `data`."""
    if data.births_A2 is None:
        raise InputError("PD features need the persistence diagrams (births/deaths) of the structures")
    return np.stack([vectorize(vec, b, d, int(n)) for b, d, n in zip(data.births_A2, data.deaths_A2, data.n_atoms)])


def describe(vec: dict) -> str:
    """Short label of a vectorization, e.g. 'pi σ0.05 atoms'."""
    if vec["method"] == "swq":
        return f"swq {vec['directions']}×{vec['quantiles']}"
    sigma = f" σ{vec['sigma_A2']:g}" if vec["method"] == "pi" else ""
    return f"{vec['method']} {vec['bins']}{sigma} {vec['norm']}"


# -- kernel ridge on blocks of features ---------------------------------------------------------
KERNELS = ("rbf", "laplacian", "linear")


@dataclass(frozen=True)
class KernelGrid:
    """Hyper-parameter grid: kernels, g (× 1/median distance), α (on the z-scored target), block weights."""

    kernels: tuple[str, ...] = ("rbf", "laplacian", "linear")
    gammas: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0)
    alphas: tuple[float, ...] = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    weights: tuple[tuple[float, ...], ...] = ((1.0,),)
    folds: int = 4

    @classmethod
    def from_options(cls, options: dict, **defaults) -> KernelGrid:
        keys = ("kernels", "gammas", "alphas", "weights", "folds")
        merged = {**defaults, **{k: options[k] for k in keys if k in options}}
        for k in ("kernels", "gammas", "alphas"):
            if k in merged:
                merged[k] = tuple(merged[k])
        if "weights" in merged:
            merged["weights"] = tuple(tuple(float(x) for x in w) for w in merged["weights"])
        grid = cls(**merged)
        if set(grid.kernels) - set(KERNELS):
            raise InputError(f"unknown kernel in {grid.kernels}; use some of {KERNELS}")
        return grid


@dataclass
class BlockScaling:
    """Per-block feature shift and scale (standardized blocks: per feature; others: centred only)."""

    shifts: list[np.ndarray]
    scales: list[np.ndarray]

    @classmethod
    def fit(cls, blocks: list[np.ndarray], standardize: list[bool]) -> BlockScaling:
        shifts = [b.mean(axis=0) for b in blocks]
        scales = [np.where(b.std(axis=0) > 0, b.std(axis=0), 1.0) if s else np.ones(b.shape[1])
                  for b, s in zip(blocks, standardize)]  # fmt: skip
        return cls(shifts, scales)

    def transform(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        return [(b - s) / c for b, s, c in zip(blocks, self.shifts, self.scales)]


def pair_matrix(kernel: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Between the rows of a and b: squared Euclidean (rbf) or L1 (laplacian) distances, dot products (linear)."""
    from sklearn.metrics.pairwise import euclidean_distances, manhattan_distances

    if kernel == "rbf":
        return np.maximum(euclidean_distances(a, b, squared=True), 0.0)
    if kernel == "linear":
        return a @ b.T
    return manhattan_distances(a, b)


def normaliser(kernel: str, d: np.ndarray) -> float:
    """Scale of a training pair matrix: median off-diagonal distance, or mean squared norm (linear)."""
    n = len(d)
    if kernel == "linear":
        m = float(np.trace(d) / max(n, 1))
    else:
        m = float(np.median(d[~np.eye(n, dtype=bool)])) if n > 1 else 1.0
    return m if m > 0 else 1.0


def kernel_values(kernel: str, d: np.ndarray, g: float) -> np.ndarray:
    """Kernel from a normalized pair matrix: exp(−g·d), or d itself for the linear kernel (g unused)."""
    return d if kernel == "linear" else np.exp(-g * d)


def cv_folds(groups: list[str], n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, validation) index pairs within the training part: whole runs held out when runs repeat."""
    from sklearn.model_selection import GroupKFold, KFold

    n = len(groups)
    n_groups = len(set(groups))
    if 3 <= n_groups < n:
        splitter = GroupKFold(n_splits=min(n_folds, n_groups))
        return list(splitter.split(np.zeros(n), groups=groups))
    return list(KFold(n_splits=min(n_folds, n), shuffle=True, random_state=seed).split(np.zeros(n)))


@dataclass
class CVResult:
    """Best hyper-parameters and the CV RMSE (normalized target units) of every grid point."""

    best: dict
    best_rmse: float
    table: list[dict] = field(default_factory=list)


def cross_validate(
    blocks: list[np.ndarray],
    standardize: list[bool],
    y: np.ndarray,
    groups: list[str],
    grid: KernelGrid,
    seed: int = 0,
) -> CVResult:
    """Grouped k-fold CV of kernel ridge over `grid`, on the given (training) rows only.

    y: normalized targets; returns the RMSE in the same units (multiply by the target std).
    """
    folds = cv_folds(groups, grid.folds, seed)
    sse: dict[tuple, np.ndarray] = {}
    per_fold = {k: [s or k == "linear" for s in standardize] for k in grid.kernels}  # linear: centred per fold
    raw = {k: [None if f else pair_matrix(k, b, b) for b, f in zip(blocks, per_fold[k])] for k in grid.kernels}
    progress = ProgressLog(len(folds) * len(grid.kernels), "kernel ridge CV", log, every_s=10)
    alphas = np.asarray(grid.alphas, float)
    for fit_idx, val_idx in folds:
        scaling = BlockScaling.fit([b[fit_idx] for b in blocks], standardize)
        scaled = scaling.transform(blocks)
        y_fit = y[fit_idx] - y[fit_idx].mean()
        y_val = y[val_idx] - y[fit_idx].mean()
        for kernel in grid.kernels:
            parts_ff, parts_vf = [], []
            for i, fold_wise in enumerate(per_fold[kernel]):
                if fold_wise:
                    dff = pair_matrix(kernel, scaled[i][fit_idx], scaled[i][fit_idx])
                    dvf = pair_matrix(kernel, scaled[i][val_idx], scaled[i][fit_idx])
                else:
                    dff = raw[kernel][i][np.ix_(fit_idx, fit_idx)]
                    dvf = raw[kernel][i][np.ix_(val_idx, fit_idx)]
                m = normaliser(kernel, dff)
                parts_ff.append(dff / m)
                parts_vf.append(dvf / m)
            for weights in grid.weights:
                d_ff = sum(w * d for w, d in zip(weights, parts_ff))
                d_vf = sum(w * d for w, d in zip(weights, parts_vf))
                for g in (1.0,) if kernel == "linear" else grid.gammas:
                    lam, vecs = np.linalg.eigh(kernel_values(kernel, d_ff, g))
                    coefs = vecs @ ((vecs.T @ y_fit)[:, None] / (np.maximum(lam, 0.0)[:, None] + alphas[None, :]))
                    err = ((kernel_values(kernel, d_vf, g) @ coefs - y_val[:, None]) ** 2).sum(axis=0)
                    key = (kernel, tuple(weights), g)
                    sse[key] = sse.get(key, 0.0) + err
            progress.step()
    n = sum(len(v) for _, v in folds)
    table = []
    for (kernel, weights, g), errs in sse.items():
        for a, e in zip(alphas, errs):
            table.append({"kernel": kernel, "weights": list(weights), "gamma_rel": g, "alpha": float(a),
                          "cv_rmse": float(np.sqrt(e / n))})  # fmt: skip
    best = min(table, key=lambda r: r["cv_rmse"])
    return CVResult({k: best[k] for k in ("kernel", "weights", "gamma_rel", "alpha")}, best["cv_rmse"], table)


@dataclass
class KernelRidgeFit:
    """A fitted kernel ridge model on scaled feature blocks; predicts normalized targets."""

    kernel: str
    gamma_rel: float
    alpha: float
    weights: list[float]
    medians: list[float]
    scaling: BlockScaling
    x_train: list[np.ndarray]
    dual_coef: np.ndarray
    y_shift: float

    @classmethod
    def fit(cls, blocks: list[np.ndarray], standardize: list[bool], y: np.ndarray, params: dict) -> KernelRidgeFit:
        from scipy.linalg import solve

        scaling = BlockScaling.fit(blocks, standardize)
        x = scaling.transform(blocks)
        kernel, weights = params["kernel"], list(params["weights"])
        dists = [pair_matrix(kernel, b, b) for b in x]
        medians = [normaliser(kernel, d) for d in dists]
        k = kernel_values(kernel, sum(w * d / m for w, d, m in zip(weights, dists, medians)), params["gamma_rel"])
        shift = float(y.mean())
        coef = solve(k + params["alpha"] * np.eye(len(k)), y - shift, assume_a="pos")
        return cls(kernel, float(params["gamma_rel"]), float(params["alpha"]), weights, medians, scaling, x, coef,
                   shift)  # fmt: skip

    def predict(self, blocks: list[np.ndarray]) -> np.ndarray:
        x = self.scaling.transform(blocks)
        d = sum(w * pair_matrix(self.kernel, a, b) / m
                for w, a, b, m in zip(self.weights, x, self.x_train, self.medians))  # fmt: skip
        return kernel_values(self.kernel, d, self.gamma_rel) @ self.dual_coef + self.y_shift

    def card(self) -> dict:
        return {"kernel": self.kernel, "gamma_rel": self.gamma_rel, "alpha": self.alpha, "weights": self.weights,
                "median_distances": self.medians, "y_shift": self.y_shift}  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"dual_coef": self.dual_coef}
        for i, (x, s, c) in enumerate(zip(self.x_train, self.scaling.shifts, self.scaling.scales)):
            out |= {f"x_train_{i}": x, f"shift_{i}": s, f"scale_{i}": c}
        return out

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray]) -> KernelRidgeFit:
        n = len(meta["weights"])
        scaling = BlockScaling([arrays[f"shift_{i}"] for i in range(n)], [arrays[f"scale_{i}"] for i in range(n)])
        x_train = [arrays[f"x_train_{i}"] for i in range(n)]
        return cls(meta["kernel"], meta["gamma_rel"], meta["alpha"], meta["weights"], meta["median_distances"],
                   scaling, x_train, arrays["dual_coef"], meta["y_shift"])  # fmt: skip


# -- blocks: what each feature block of a model is ---------------------------------------------
def block_features(block: dict, data: ModelData) -> np.ndarray:
    """(N, F) features of one block ({"type": "pd", "vectorization": ...} | {"type": "acsf"|"soap"} | cnn)."""
    kind = block["type"]
    if kind == "pd":
        return pd_features(block["vectorization"], data)
    if data.features is not None and kind in data.features:
        return np.asarray(data.features[kind], float)
    if kind in ("acsf", "soap"):
        from pdmd.descriptor.atomic import structure_features

        if data.frames is None:
            raise InputError(f"{kind} features need the structures (frames)")
        return structure_features(kind, data.frames, f"{kind} features")[0]
    if kind == "cnn":
        from pdmd.models.cnn.potential import cnn_features

        return cnn_features(Path(block["model"]), data)
    raise InputError(f"unknown feature block {block!r}")


@dataclass
class KernelModel(CardModel):
    """A loaded pd-kernel or pd-hybrid model (`pdmd.models.registry.LoadedModel`)."""

    card: dict
    fit: KernelRidgeFit

    def predict_data(self, data: ModelData) -> np.ndarray:
        """Energies (eV/atom) of structures whose diagrams (and frames, for ACSF/SOAP) `data` holds."""
        blocks = [block_features(b, data) for b in self.card["kernel_model"]["blocks"]]
        t = self.card["kernel_model"]["target"]
        return self.fit.predict(blocks) * t["std_eV"] + t["mean_eV"]

    def frame_data(self, frames: list, labels: list[str], needs: set[str] | None = None) -> ModelData:
        """`ModelData` of structures with the inputs this model predicts from (or `needs`): diagrams (Å²), and
        frames / images where its blocks take them; the structures are checked against the training data first.
        """
        from pdmd.models.data import data_from_frames

        for frame, label in zip(frames, labels):
            self.check_fits(frame, label)
        if needs is None:
            types = {b["type"] for b in self.card["kernel_model"]["blocks"]}
            needs = {"diagrams"} | ({"frames"} if types - {"pd"} else set()) | ({"images"} if "cnn" in types else set())
        n = len(frames)
        return data_from_frames(frames, np.zeros(n), list(labels), list(labels), self.spec, needs)

    def predict_frames(self, frames: list, labels: list[str]) -> tuple[np.ndarray, float]:
        """Energies (eV/atom) of structures and the mean seconds per structure (PD + features + kernel)."""
        t0 = time.perf_counter()
        energies = self.predict_data(self.frame_data(frames, labels))
        return energies, (time.perf_counter() - t0) / max(len(frames), 1)


def load_kernel_model(folder: str | Path) -> KernelModel:
    """A pd-kernel / pd-hybrid model folder (model.json + kernel_model.npz)."""
    folder = Path(folder)
    card = read_card(folder)
    if not (folder / ARRAYS).is_file():
        raise InputError(f"{folder}: no {ARRAYS} (an unfinished or damaged model folder: train it again)")
    return KernelModel(card, KernelRidgeFit.from_saved(card["kernel_model"]["fit"], read_npz(folder / ARRAYS)))


def select_and_fit(
    candidates: list[tuple[str, list[dict], list[bool], KernelGrid]],
    data: ModelData,
    split: TrainSplit,
    ablation_test: bool = True,
    transfer: ModelData | None = None,
) -> tuple[dict, KernelRidgeFit, list[dict], np.ndarray]:
    """CV each candidate (label, blocks, standardize, grid) on the training part; fit the best on all of it.

    Returns (chosen candidate summary, fit, ablation rows, predictions (eV/atom) of all data).
    Only the training rows ever reach `cross_validate`; `ablation_test` adds each candidate's test RMSE
    and, given `transfer` (e.g. 4× larger cells), its RMSE there: reported, never used for the choice.
    """
    tr, te = split.train_idx, split.test_idx
    y = data.energies_eV
    mean, std = float(y[tr].mean()), float(y[tr].std() or 1.0)
    z_train = (y[tr] - mean) / std
    train_groups = [data.groups[i] for i in tr]
    rows, best = [], None
    for label, blocks, standardize, grid in candidates:
        t0 = time.perf_counter()
        feats = [block_features(b, data) for b in blocks]
        cv = cross_validate([f[tr] for f in feats], standardize, z_train, train_groups, grid, split.seed)
        row = {"candidate": label, "blocks": blocks, "n_features": int(sum(f.shape[1] for f in feats)),
               **cv.best, "cv_rmse_meV_per_atom": 1000 * std * cv.best_rmse}  # fmt: skip
        if ablation_test or best is None or cv.best_rmse < best[0].best_rmse:
            fit = KernelRidgeFit.fit([f[tr] for f in feats], standardize, z_train, cv.best)
            z_all = fit.predict(feats)
            pred = z_all * std + mean
            row["train_rmse_meV_per_atom"] = rmse_meV(pred[tr], y[tr])
            if ablation_test:
                row["test_rmse_meV_per_atom (not used for the choice)"] = rmse_meV(pred[te], y[te])
                if transfer is not None:
                    p_big = fit.predict([block_features(b, transfer) for b in blocks]) * std + mean
                    row["transfer_rmse_meV_per_atom (not used for the choice)"] = rmse_meV(p_big, transfer.energies_eV)
                    row["transfer_bias_meV_per_atom"] = float(1000 * (p_big - transfer.energies_eV).mean())
            if best is None or cv.best_rmse < best[0].best_rmse:
                best = (cv, fit, z_all, row, blocks, standardize)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        log.info("%s: CV RMSE %.2f meV/atom (%s, g %.3g, α %.0e) in %.0f s", label, row["cv_rmse_meV_per_atom"],
                 cv.best["kernel"], cv.best["gamma_rel"], cv.best["alpha"], row["seconds"])  # fmt: skip
    cv, fit, z_all, row, blocks, standardize = best
    by_kernel = [{**r, "cv_rmse_meV_per_atom": 1000 * std * r.pop("cv_rmse")} for r in _best_per_kernel(cv)]
    chosen = {"candidate": row["candidate"], "blocks": blocks, "standardize": standardize,
              "target": {"mean_eV": mean, "std_eV": std}, "cv_rmse_meV_per_atom": row["cv_rmse_meV_per_atom"],
              "cv_best_by_kernel_and_weights": by_kernel}  # fmt: skip
    return chosen, fit, rows, z_all * std + mean


def _best_per_kernel(cv: CVResult) -> list[dict]:
    """The best grid point for each (kernel, block weights): the CV ablation of those two choices."""
    keys = sorted({(r["kernel"], tuple(r["weights"])) for r in cv.table})
    return [dict(min((r for r in cv.table if (r["kernel"], tuple(r["weights"])) == k), key=lambda r: r["cv_rmse"]))
            for k in keys]  # fmt: skip


def save_kernel_model(
    data: ModelData,
    out_dir: Path,
    name: str,
    kind: str,
    split: TrainSplit,
    chosen: dict,
    fit: KernelRidgeFit,
    ablation: list[dict],
    pred_eV: np.ndarray,
    train_seconds: float,
    provenance: dict,
    settings: dict,
) -> dict:
    """Arrays to kernel_model.npz (atomic), then the card (`finish_card`) with CV, ablation and settings."""
    write_npz_atomic(Path(out_dir) / ARRAYS, **fit.arrays())
    t0 = time.perf_counter()
    n = min(len(split.test_idx), 50)
    timing_card = {"kernel_model": {**chosen, "fit": fit.card()}, "descriptor": data.descriptor.to_dict()}
    KernelModel(timing_card, fit).predict_data(data.subset(split.test_idx[:n]))
    predict_ms = 1000 * (time.perf_counter() - t0) / max(n, 1)
    sections = {
        "kernel_model": {**chosen, "fit": fit.card(), "folds": settings.get("folds"), "cv_grouping": "run"},
        "ablation": ablation,
        "training": settings,
    }
    metrics = {"train_seconds": train_seconds, "predict_ms_per_structure": predict_ms,
               "cv_rmse_meV_per_atom": chosen["cv_rmse_meV_per_atom"]}  # fmt: skip
    return finish_card(data, out_dir, name, kind, split, pred_eV, sections, metrics, provenance)


def train_pd_kernel(
    data: ModelData, out_dir: Path, name: str, split: TrainSplit, options: dict, provenance: dict
) -> dict:
    """Fit every vectorization's kernel ridge by CV on the training part; keep the best; save and card it."""
    t0 = time.perf_counter()
    grid = KernelGrid.from_options(options)
    tr = split.train_idx
    train_b = [data.births_A2[i] for i in tr]
    train_d = [data.deaths_A2[i] for i in tr]
    vecs = [fit_vectorization(v, train_b, train_d, data.descriptor)
            for v in options.get("vectorizations", DEFAULT_VECTORIZATIONS)]  # fmt: skip
    candidates = [(describe(v), [{"type": "pd", "vectorization": v}], [False], grid) for v in vecs]
    chosen, fit, ablation, pred = select_and_fit(candidates, data, split, bool(options.get("ablation_test", True)),
                                                 options.get("ablation_transfer"))  # fmt: skip
    settings = {"grid": {"kernels": list(grid.kernels), "gammas": list(grid.gammas), "alphas": list(grid.alphas)},
                "folds": grid.folds, "vectorizations": vecs}  # fmt: skip
    return save_kernel_model(data, out_dir, name, "pd-kernel", split, chosen, fit, ablation, pred,
                             time.perf_counter() - t0, provenance, settings)  # fmt: skip
