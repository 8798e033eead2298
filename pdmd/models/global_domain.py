# SPDX-License-Identifier: GPL-3.0-or-later
"""The training domain of the global model kinds (pd-cnn, pd-kernel, pd-hybrid): one vector per structure.

Domain vector of a structure (`domain_vectors`): its persistence diagram's histogram image (the
descriptor's own channel on the card's bins×bins grid over [lo, hi]² Å²) as finite pairs per atom,
sum-pooled to `POOL`×`POOL` blocks (0.5 Å² wide for the 2D window [0, 4] Å², 1 Å² for the 3D
[0, 8] Å²), and the pairs per atom outside the window (pairs dying beyond hi: voids, stretched
cells); the square root of each: POOL² + 1 components.

- Pairs per atom, not the image's probabilities: a density change moves every pair (births and deaths
  scale with length²) and changes how many rings there are per atom; a hole in a periodic sheet leaves
  the diagram's shape nearly as it was (the hole's loop dies when the rest of the sheet fills in) but
  removes rings with the atoms. Intensive: a 2×2 repeat of a cell has (nearly) the same vector.
- 8×8 blocks keep where the pairs lie while a training set of tens of structures can still span the
  space; with 16×16 the maxvol basis needs about as many components as there are training structures
  and the grades of new runs of the same material scatter as much as those of 10 % stretched cells.
- Square root: pair counts become variance-stabilised (Anscombe: the counting noise of √c is about 1/2
  whatever the count c), so rare pairs (big rings, voids) weigh as much as the dense core.
- A block no training structure ever occupied has no spread to standardize by: its scale is the
  vector's value for one pair in a typical training structure (`one_pair_unit`), so one stray pair
  there has grade 2 and several pairs more (`fit_structure_domain`).

Geometry domain: the pooled image is blind to a uniform change of bond length (a 3 % shorter bond moves
the diagram's pairs by under one pooled block), yet a cell relaxed with another potential or functional,
whose bonds are 3 % shorter, is far from the training data for the reference (the aC demo models miss
Tersoff energies of AIREBO-quenched cells by 0.2–0.9 eV/atom; `benchmarks/ac_foreign_cells.py`). So each
structure's density and bond lengths (`pdmd.structure.geometry_features`) get a domain of their own
(`GEOMETRY_FILE`), graded alike; its threshold is `GEOMETRY_MARGIN` × the held-out training structures'
largest grade (4 features that new runs of the same process reproduce closely, so a smaller margin than the
pooled image's 64 + 1 blocks need), and `pdmd predict` warns above either threshold.

The grade itself is `pdmd.domain` (maxvol D-optimality and box, 1 = edge of the training data). Its
threshold for warnings comes from the training set as for pd-local: the domain is fitted without
about 10 % of the training structures (whole groups, e.g. melt-quench runs, where there are 3 or
more) and graded on them; threshold = max(`MIN_GRADE_THRESHOLD`, `GRADE_MARGIN` × their largest grade).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pdmd.descriptor.histogram import HistogramSpec, as_channels, pd_histogram
from pdmd.domain import DomainModel, calibrated_domain, fit_domain
from pdmd.structure import GEOMETRY_FEATURES, Frame, geometry_features

log = logging.getLogger(__name__)

GLOBAL_KINDS = ("pd-cnn", "pd-kernel", "pd-hybrid")
"""Model kinds with one energy per structure, whose domain is that of `domain_vectors`."""
POOL = 8
"""Blocks per axis of the pooled PD image."""
DOMAIN_FILE = "domain.npz"
MIN_GRADE_THRESHOLD = 2.0
"""The warning threshold is at least this grade."""
GEOMETRY_FILE = "geometry_domain.npz"
GEOMETRY_MARGIN = 1.25
"""The geometry warning threshold is this multiple of the held-out training structures' largest geometry grade."""
OUTSIDE_TOLERANCE = 1e-6
"""Probability outside the window below this is float32 rounding of the image's sum, not pairs."""


def pool_edges(bins: int, pool: int) -> np.ndarray:
    """Start pixel of each of min(pool, bins) blocks along an axis of `bins` pixels."""
    return np.linspace(0, bins, min(pool, bins) + 1).round().astype(int)[:-1]


def pairs_per_atom(n_atoms: np.ndarray | None, n_pairs: np.ndarray | None) -> np.ndarray | None:
    """Finite pairs per atom (N,) of structures, or None unless both counts are known (vectors stay per pair)."""
    if n_atoms is None or n_pairs is None:
        return None
    return np.asarray(n_pairs, float) / np.maximum(np.asarray(n_atoms, float), 1.0)


def domain_vectors(images: np.ndarray, n_atoms: np.ndarray | None = None, n_pairs: np.ndarray | None = None,
                   pool: int = POOL) -> np.ndarray:  # fmt: skip
    """Domain vectors (N, P² + 1) of PD images (N, [C,] S, S) of probabilities (channel 0 is used).

    √ of the pairs per atom in each of P×P blocks (P = min(pool, S)), then √ of the pairs per atom outside the
    window; n_atoms (N,) atoms per structure, n_pairs (N,) the finite pairs each image is the histogram of.
    Without either count: √ of the probabilities (per pair).
    """
    img = as_channels(np.asarray(images))[:, 0].astype(float)
    edges = pool_edges(img.shape[-1], pool)
    blocks = np.add.reduceat(np.add.reduceat(img, edges, axis=2), edges, axis=1).reshape(len(img), -1)
    inside = img.sum(axis=(1, 2))
    outside = np.where((1.0 - inside > OUTSIDE_TOLERANCE) & (inside > 0), 1.0 - inside, 0.0)
    per_atom = pairs_per_atom(n_atoms, n_pairs)
    weight = np.ones(len(img)) if per_atom is None else per_atom
    return np.sqrt(weight[:, None] * np.clip(np.column_stack([blocks, outside]), 0.0, None))


def pair_images(births_A2: list[np.ndarray], deaths_A2: list[np.ndarray], histogram: HistogramSpec) -> np.ndarray:
    """PD images (N, bins, bins) of the diagrams' finite pairs (Å²) on `histogram`'s grid (probabilities)."""
    return np.stack([pd_histogram(np.asarray(b, float), np.asarray(d, float), histogram).image
                     for b, d in zip(births_A2, deaths_A2)])  # fmt: skip


def one_pair_unit(images: np.ndarray, n_atoms: np.ndarray | None = None, n_pairs: np.ndarray | None = None) -> float:
    """Domain-vector value of a single pair in a typical structure of `images` (as in `domain_vectors`):
    √(median of 1/atoms); per pair, √(median of the smallest non-zero pixel), i.e. of 1/pairs.
    """
    if pairs_per_atom(n_atoms, n_pairs) is not None:
        return float(np.sqrt(np.median(1.0 / np.maximum(np.asarray(n_atoms, float), 1.0))))
    img = as_channels(np.asarray(images))[:, 0]
    smallest = [float(i[i > 0].min()) for i in img if (i > 0).any()]
    return float(np.sqrt(np.median(smallest))) if smallest else 1.0


def fit_structure_domain(vectors: np.ndarray, unit: float, seed: int = 0) -> DomainModel:
    """`pdmd.domain.fit_domain` of domain vectors (n, F), with the scale of components that every training
    vector has alike (blocks no training diagram occupied) raised to `unit` (see the module docstring).
    """
    model = fit_domain(vectors, seed=seed)
    flat = (model.high - model.low) * model.scale <= 1e-12  # no spread in the vectors' own units
    scale = np.where(flat, np.maximum(model.scale, unit), model.scale)
    ratio = model.scale / scale  # standardized training values of the flat components shrink alike
    return replace(model, scale=scale, low=model.low * ratio, high=model.high * ratio)


def fit_training_domain(
    images: np.ndarray,
    out_dir: Path,
    groups: list[str] | None = None,
    seed: int = 0,
    n_atoms: np.ndarray | None = None,
    n_pairs: np.ndarray | None = None,
    pool: int = POOL,
    geometry: np.ndarray | None = None,
) -> dict | None:
    """Fit the domain of the training structures' PD images (N, [C,] S, S), write `DOMAIN_FILE` into `out_dir`;
    the card's `domain` section (None, with a warning, when the images cannot span a domain).

    groups: each training structure's group (e.g. melt-quench run), for the held-out part of the threshold;
    n_atoms / n_pairs: atoms per structure and finite pairs of each image's diagram (see `domain_vectors`;
    without them the vectors are per pair and blind to how many rings a structure has); geometry: (N, 4)
    `geometry_features` of the structures, for the geometry domain (`GEOMETRY_FILE`, the section's `geometry`).
    """
    x = domain_vectors(images, n_atoms, n_pairs, pool)
    unit = one_pair_unit(images, n_atoms, n_pairs)
    try:
        domain, held_max, threshold, held = calibrated_domain(
            len(x), groups, np.random.default_rng(seed), lambda idx: fit_structure_domain(x[idx], unit, seed),
            lambda model, idx: model.grade(x[idx]).max(), MIN_GRADE_THRESHOLD,
        )  # fmt: skip
    except (ValueError, np.linalg.LinAlgError) as err:
        log.warning("no extrapolation grade for this model: the training PD images span no domain (%s)", err)
        return None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    domain.save(out_dir / DOMAIN_FILE)
    p = len(pool_edges(np.asarray(images).shape[-1], pool))
    per = "atom" if pairs_per_atom(n_atoms, n_pairs) is not None else "pair"
    section = {
        "file": DOMAIN_FILE,
        "features": f"sqrt of the PD's finite pairs per {per} in {p}x{p} blocks of its histogram and outside its "
        f"window ({p * p + 1} components)",
        "pool": p,
        "normalization": f"{per}s",
        "one_pair_unit": unit,
        "components": int(domain.components.shape[0]),
        "n_training_structures": int(len(x)),
        "n_held_out": int(len(held)),
        "max_grade_training": float(domain.grade(x).max()),
        "max_grade_held_out_training": held_max,
        "max_extrapolation_default": float(threshold),
    }
    log.info("domain: %d components; largest grade of held-out training structures %.2f; warnings above %.2f",
             section["components"], held_max, threshold)  # fmt: skip
    geo = fit_geometry_domain(geometry, out_dir, groups, seed)
    return {**section, **({"geometry": geo} if geo else {})}


def fit_geometry_domain(geometry: np.ndarray | None, out_dir: Path, groups: list[str] | None, seed: int) -> dict | None:
    """The training structures' geometry domain (density, bond lengths): `GEOMETRY_FILE` in `out_dir` and its card
    entry, or None without geometry (a caller that has no structures) or where it spans no domain.
    """
    if geometry is None or not np.isfinite(geometry).all():
        return None
    x = np.asarray(geometry, float)
    try:
        domain, held_max, threshold, _ = calibrated_domain(
            len(x), groups, np.random.default_rng(seed), lambda idx: fit_domain(x[idx], seed=seed),
            lambda model, idx: model.grade(x[idx]).max(), GEOMETRY_MARGIN, margin=GEOMETRY_MARGIN,
        )  # fmt: skip
    except (ValueError, np.linalg.LinAlgError) as err:
        log.warning("no geometry grade for this model: %s", err)
        return None
    domain.save(Path(out_dir) / GEOMETRY_FILE)
    return {"file": GEOMETRY_FILE, "features": list(GEOMETRY_FEATURES), "training_min": x.min(axis=0).tolist(),
            "training_max": x.max(axis=0).tolist(), "max_grade_held_out_training": held_max,
            "max_extrapolation_default": float(threshold)}  # fmt: skip


@dataclass
class StructureDomain:
    """A global model's fitted domain with its card section: grades of PD images or diagrams."""

    model: DomainModel
    section: dict
    geometry: DomainModel | None = None
    """The geometry domain (density, bond lengths), where the card has one."""

    @property
    def threshold(self) -> float:
        return float(self.section["max_extrapolation_default"])

    @property
    def per_atom(self) -> bool:
        """Whether the domain vectors count pairs per atom (else per pair)."""
        return self.section.get("normalization") == "atoms"

    def grade_images(self, images: np.ndarray, n_atoms: np.ndarray | None = None,
                     n_pairs: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Extrapolation grades (N,) of PD images (N, [C,] S, S) on the model's grid; n_atoms (N,) the structures'
        atom counts and n_pairs (N,) their diagrams' finite pairs (needed when the domain counts pairs per atom).
        """
        if self.per_atom and pairs_per_atom(n_atoms, n_pairs) is None:
            raise ValueError("this domain counts pairs per atom: give the structures' atoms and finite pairs")
        counts = (n_atoms, n_pairs) if self.per_atom else (None, None)
        return self.model.grade(domain_vectors(images, *counts, pool=int(self.section.get("pool", POOL))))

    @property
    def geometry_threshold(self) -> float | None:
        return None if self.geometry is None else float(self.section["geometry"]["max_extrapolation_default"])

    def grade_geometry(self, frames: list[Frame], dim: int) -> np.ndarray:
        """Geometry grades (N,) of structures (NaN without a geometry domain or for a structure without bonds)."""
        if self.geometry is None:
            return np.full(len(frames), np.nan)
        x = np.array([geometry_features(f, dim) for f in frames])
        ok = np.isfinite(x).all(axis=1)
        out = np.full(len(frames), np.nan)
        if ok.any():
            out[ok] = self.geometry.grade(x[ok])
        return out

    def grade_pairs(self, births_A2: list[np.ndarray], deaths_A2: list[np.ndarray], histogram: HistogramSpec,
                    n_atoms: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Extrapolation grades (N,) of diagrams given as their finite pairs (Å²) on `histogram`'s grid."""
        n_pairs = np.array([len(b) for b in births_A2], int)
        return self.grade_images(pair_images(births_A2, deaths_A2, histogram), n_atoms, n_pairs)


def load_structure_domain(folder: str | Path, card: dict) -> StructureDomain | None:
    """The domain of a global model in `folder` (None: a kind without one, a card from before grades, no file)."""
    section = card.get("domain")
    if card.get("model_kind", "pd-cnn") not in GLOBAL_KINDS or not section:
        return None
    path = Path(folder) / section.get("file", DOMAIN_FILE)
    if not path.is_file():
        log.warning("model %s: its card names %s but the file is missing: no extrapolation grades",
                    card.get("name"), path)  # fmt: skip
        return None
    geometry = None
    if section.get("geometry"):
        geo_path = Path(folder) / section["geometry"].get("file", GEOMETRY_FILE)
        geometry = DomainModel.load(geo_path) if geo_path.is_file() else None
    return StructureDomain(DomainModel.load(path), section, geometry)


def extrapolation_warning(grade: float | None, threshold: float | None) -> str | None:
    """The warning for a structure whose grade exceeds the model's threshold (None: no warning)."""
    if grade is None or threshold is None or not np.isfinite(grade) or grade <= threshold:
        return None
    return f"descriptor-space extrapolation grade {grade:.1f} > {threshold:.1f} (1 = edge of the training data)"


def geometry_warning(grade: float | None, threshold: float | None, section: dict | None) -> str | None:
    """The warning for a structure whose density or bond lengths lie outside the training structures' (None: no
    warning); `section` is the card's `domain.geometry` (training ranges).
    """
    if grade is None or threshold is None or not np.isfinite(grade) or grade <= threshold:
        return None
    lo, hi = (section or {}).get("training_min"), (section or {}).get("training_max")
    where = "" if lo is None else (f" (training: density {lo[0]:.4g}–{hi[0]:.4g}, mean bond {lo[1]:.3f}–{hi[1]:.3f} Å)")
    return f"density / bond-length grade {grade:.1f} > {threshold:.1f}{where}"
