"""`pdmd compare-descriptors` (paper Fig. 2): cyclo-octane conformations seen through four descriptors.

Descriptors per conformation (8 ring carbons, open boundaries):
- raw: the 24 Cartesian coordinates (Å), as given (each conformation centred at the origin);
- SOAP and ACSF: DScribe, settings of `pdmd.descriptor.atomic` (non-periodic), averaged over atoms;
- PI: persistence images (HomCloud `PIVectorizeSpec`) of the alpha-filtration diagrams of degree 1
  and 2, birth/death range [0.5, 3.5] Å² in 32×32 bins, Gaussian sigma 0.05 Å², no weight (an
  atan(10 · persistence) weight or sigma 0.1 Å² merged about twice as many conformations), the two
  images concatenated.
Constant features are dropped; SOAP and ACSF features are standardized (z-score per feature: mixed
units), coordinates and PI pixels only centred (one unit each, and z-scores would blow up the
rarely-lit PI pixels); then each is projected on its first 3 principal components.
Numbers: variance explained by the 3 PCs; trustworthiness of the 3D projection (k = 10
neighbours; 1 = the neighbourhoods of the descriptor space are kept); the TwoNN intrinsic
dimension of the descriptor space (Facco et al., Sci. Rep. 7, 12140 (2017); the conformation
space is a 2D surface); and how many conformations the descriptor tells apart (connected groups
of vectors closer than 1e-4 of the descriptor's RMS spread).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from pdmd.errors import InputError
from pdmd.progress import ProgressLog

log = logging.getLogger(__name__)

DESCRIPTORS = ("raw", "soap", "acsf", "pi")
PI_RANGE_A2, PI_BINS, PI_SIGMA_A2 = (0.5, 3.5), 32, 0.05
STANDARDIZE = {"raw": False, "soap": True, "acsf": True, "pi": False}
"""Per-feature z-scores for descriptors whose features have mixed units; coordinates (Å) and PI pixels share one."""


def load_conformations() -> np.ndarray:
    """The shipped cyclo-octane set: (6040, 8, 3) Å (see pdmd/data/CYCLOOCTANE_NOTICE.txt)."""
    with resources.files("pdmd.data").joinpath("cyclooctane.npz").open("rb") as fh:
        return np.load(fh)["conformations_A"]


def _molecules(conformations: np.ndarray):
    from ase import Atoms

    return [Atoms("C8", positions=c) for c in conformations]


def persistence_images(conformations: np.ndarray) -> np.ndarray:
    """PI vectors (N, 2 · PI_BINS²) of degree-1 and degree-2 alpha diagrams."""
    import homcloud.interface as hc

    spec = hc.PIVectorizeSpec(PI_RANGE_A2, PI_BINS, sigma=PI_SIGMA_A2, weight="none")
    progress = ProgressLog(len(conformations), "persistence images", log)
    rows = []
    for c in conformations:
        pdl = hc.PDList.from_alpha_filtration(c)
        rows.append(np.concatenate([spec.vectorize(pdl.dth_diagram(d)) for d in (1, 2)]))
        progress.step()
    return np.asarray(rows)


def descriptor_matrix(kind: str, conformations: np.ndarray) -> np.ndarray:
    """(N, F) features of one descriptor kind."""
    if kind == "raw":
        return conformations.reshape(len(conformations), -1)
    if kind == "pi":
        return persistence_images(conformations)
    if kind in ("soap", "acsf"):
        from pdmd.descriptor.atomic import make_descriptor

        desc = make_descriptor(kind, ["C"], periodic=False)
        out = desc.create(_molecules(conformations), n_jobs=1)
        return out if out.ndim == 2 else out.mean(axis=1)
    raise ValueError(f"unknown descriptor {kind!r}; choose from {DESCRIPTORS}")


def twonn_dimension(x: np.ndarray) -> float:
    """TwoNN maximum-likelihood intrinsic dimension (points with a duplicate neighbour are skipped)."""
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    r1, r2 = dist[:, 1], dist[:, 2]
    ok = r1 > 0
    mu = r2[ok] / r1[ok]
    return float(ok.sum() / np.sum(np.log(mu)))


def distinct_count(x: np.ndarray, rel_tol: float = 1e-4) -> int:
    """Number of groups of vectors closer than rel_tol × RMS spread (connected components)."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    spread = float(np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean()))
    graph = radius_neighbors_graph(x, rel_tol * spread, mode="connectivity", include_self=False)
    return int(connected_components(graph, directed=False)[0])


def compare_descriptors(out_dir: Path, n_highlight: int = 20, seed: int = 0, subset: int | None = None) -> dict:
    """Compute the four descriptors, their 3-PC projections, numbers, PNG and JSON in `out_dir`."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import trustworthiness
    from sklearn.preprocessing import StandardScaler

    from pdmd.files import write_json_atomic
    from pdmd.models.plots import pca_panels_plot

    conf = load_conformations()
    if subset is not None and not max(n_highlight, 20) <= subset <= len(conf):
        raise InputError(
            f"subset {subset}: use between {max(n_highlight, 20)} (PCA, trustworthiness with k=10 and the "
            f"highlighted ones need that many) and {len(conf)} conformations, or leave it out for all of them"
        )
    if subset:
        conf = conf[np.random.default_rng(seed).choice(len(conf), subset, replace=False)]
    highlight = np.sort(np.random.default_rng(seed + 1).choice(len(conf), n_highlight, replace=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    projections, numbers = {}, {}
    for kind in DESCRIPTORS:
        log.info("descriptor %s for %d conformations", kind, len(conf))
        x = descriptor_matrix(kind, conf)
        x = x[:, x.std(0) > 1e-12]
        z = StandardScaler().fit_transform(x) if STANDARDIZE[kind] else x - x.mean(0)
        pca = PCA(n_components=3, random_state=seed).fit(z)
        proj = pca.transform(z)
        projections[kind] = proj
        numbers[kind] = {
            "n_features": int(x.shape[1]),
            "variance_explained_3pc": float(pca.explained_variance_ratio_.sum()),
            "trustworthiness_k10": float(trustworthiness(z, proj, n_neighbors=10)),
            "twonn_dimension": twonn_dimension(z),
            "distinct_conformations": distinct_count(z),
        }
        log.info("%s: %s", kind, numbers[kind])
    png = pca_panels_plot(out_dir / "cyclooctane_pca.png", projections, highlight, numbers)
    np.savez_compressed(out_dir / "cyclooctane_pca.npz", highlight=highlight, **projections)
    result = {"n_conformations": int(len(conf)), "highlighted": highlight.tolist(), "descriptors": numbers,
              "png": str(png), "settings": {"pi_range_A2": PI_RANGE_A2, "pi_bins": PI_BINS,
                                            "pi_sigma_A2": PI_SIGMA_A2, "pi_weight": "none"}}  # fmt: skip
    write_json_atomic(out_dir / "cyclooctane_pca.json", result)
    return result
