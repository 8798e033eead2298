"""Alpha-filtration persistence diagrams of periodic atomic structures, with two backends.

Birth and death values are squared alpha radii in Å² (HomCloud's convention).

- `homcloud` (the reference): HomCloud's periodic alpha complex (CGAL). It takes only
  axis-aligned cells and crashes the whole process on anisotropic ones, so the cell is checked
  first and the call runs in a worker process: a crash there becomes a `DescriptorError` for that
  structure, never a dead FireWorks worker. For a 2D sheet the xy coordinates are passed as 2D
  points (3D points with z = 0 crash HomCloud).
- `delaunay` (`pdmd.descriptor.periodic_alpha`): qhull Delaunay of padded periodic images folded
  onto the torus + gudhi persistence over Z/2. Identical diagrams (tested against HomCloud), any
  lattice, about 5× faster for 216-atom 3D cells. Falls back to HomCloud on input it cannot
  triangulate (degenerate crystals, cells a few atoms wide) and records that in `computed_by`.

Pairs with death = birth (they occur only for degenerate, e.g. crystalline, input and depend on
tie-breaking) are dropped by both backends.

Essential classes (H1 of the periodic torus: 2 in 2D, 3 in 3D, death = ∞) describe the cell,
not the structure; they are kept apart in `essential_births_A2` and left out of histograms.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import multiprocessing
import threading
from dataclasses import dataclass

import numpy as np

from pdmd.descriptor.periodic_alpha import BackendUnsuitable, periodic_alpha_persistence
from pdmd.errors import DescriptorError
from pdmd.structure import Frame, is_axis_aligned, validate_frame

log = logging.getLogger(__name__)

MAX_ASPECT_RATIO = 1.3
"""Largest cell aspect ratio passed to HomCloud's periodic alpha complex (it segfaulted at 1.35 in 2D)."""

BACKENDS = ("homcloud", "delaunay")
DEFAULT_BACKEND = {2: "homcloud", 3: "delaunay"}
"""Fastest correct backend per dimension (HomCloud stays the aGr default so stored 2D descriptors keep their ids)."""
BACKEND_REVISION = {"homcloud": 1, "delaunay": 2}
"""Revision of each backend's results; r2 of delaunay verifies qhull's simplices (empty circumspheres)."""


@dataclass(frozen=True)
class PersistenceDiagram:
    """Finite pairs (birth, death in Å²) and essential births (Å²) of one homology degree."""

    degree: int
    births_A2: np.ndarray
    deaths_A2: np.ndarray
    essential_births_A2: np.ndarray
    computed_by: str = "homcloud"

    @property
    def n_pairs(self) -> int:
        return len(self.births_A2)

    def pairs(self) -> np.ndarray:
        """Finite pairs as an (n, 2) array of (birth, death) in Å²."""
        return np.column_stack([self.births_A2, self.deaths_A2])


def _homcloud_worker(points: np.ndarray, periodicity: list[tuple[float, float]] | None, degree: int):
    import homcloud.interface as hc

    pdl = hc.PDList.from_alpha_filtration(points, periodicity=periodicity, save_boundary_map=False)
    d = pdl.dth_diagram(degree)
    return np.asarray(d.births, float), np.asarray(d.deaths, float), np.asarray(d.essential_births, float)


class _IsolatedRunner:
    """One long-lived worker process; rebuilt after a crash so later structures still run."""

    def __init__(self) -> None:
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def call(self, fn, *args):
        with self._lock:
            try:
                return self._get().submit(fn, *args).result()
            except cf.process.BrokenProcessPool as err:
                self._pool = None
                raise DescriptorError("the persistence backend crashed (process aborted) on this structure") from err

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


_RUNNER = _IsolatedRunner()
atexit.register(_RUNNER.shutdown)


def alpha_diagram(
    frame: Frame,
    dim: int,
    degree: int = 1,
    *,
    backend: str | None = None,
    isolate: bool = True,
    label: str = "structure",
) -> PersistenceDiagram:
    """Persistence diagram of the periodic alpha filtration of `frame` (dim = 2 or 3).

    backend: "homcloud" or "delaunay" (default: `DEFAULT_BACKEND[dim]`).
    """
    if dim not in (2, 3):
        raise DescriptorError(f"{label}: dim must be 2 or 3, got {dim}")
    if not 0 <= degree < dim:
        raise DescriptorError(f"{label}: degree {degree} is not available in {dim}D (0..{dim - 1})")
    backend = backend or DEFAULT_BACKEND[dim]
    if backend not in BACKENDS:
        raise DescriptorError(f"{label}: unknown persistence backend {backend!r}; choose one of {BACKENDS}")
    if 0 < frame.n_atoms < 3 * dim:
        raise DescriptorError(
            f"{label}: {frame.n_atoms} atoms are too few for a periodic alpha triangulation in {dim}D "
            f"(need at least {3 * dim})"
        )
    frame = validate_frame(frame, dim, label=label)
    points = np.ascontiguousarray(frame.positions[:, :dim])
    lattice = frame.cell[:dim, :dim]
    if backend == "delaunay":
        try:
            births, deaths, essential = periodic_alpha_persistence(points, lattice, degree)
        except BackendUnsuitable as err:
            if not is_axis_aligned(lattice):
                raise DescriptorError(f"{label}: {err}; HomCloud cannot take this non-orthogonal cell either") from err
            log.info("%s: delaunay backend unsuitable (%s); using HomCloud", label, err)
        else:
            return _sorted_diagram(degree, births, deaths, essential, "delaunay")
    return _homcloud_diagram(points, lattice, degree, isolate, label)


def _homcloud_diagram(
    points: np.ndarray, lattice: np.ndarray, degree: int, isolate: bool, label: str
) -> PersistenceDiagram:
    if not is_axis_aligned(lattice):
        raise DescriptorError(
            f"{label}: HomCloud's periodic alpha complex takes only axis-aligned (orthorhombic) cells; "
            "use backend 'delaunay' for this cell"
        )
    lengths = np.diag(lattice)
    aspect = float(lengths.max() / lengths.min())
    if aspect > MAX_ASPECT_RATIO:
        raise DescriptorError(
            f"{label}: cell aspect ratio {aspect:.2f} exceeds {MAX_ASPECT_RATIO}, which HomCloud's periodic alpha "
            "complex cannot take (it crashes); use backend 'delaunay' or a supercell closer to square/cubic"
        )
    return points_diagram(points, [(0.0, float(L)) for L in lengths], degree, isolate=isolate, label=label)


def _sorted_diagram(
    degree: int, births: np.ndarray, deaths: np.ndarray, essential: np.ndarray, computed_by: str
) -> PersistenceDiagram:
    order = np.lexsort((deaths, births))
    return PersistenceDiagram(degree, births[order], deaths[order], np.sort(essential), computed_by)


def points_diagram(
    points: np.ndarray,
    periodicity: list[tuple[float, float]] | None,
    degree: int = 1,
    *,
    isolate: bool = True,
    label: str = "points",
) -> PersistenceDiagram:
    """Alpha-filtration diagram of raw points (Å), periodic in the given (lo, hi) ranges or open (None)."""
    try:
        if isolate:
            births, deaths, essential = _RUNNER.call(_homcloud_worker, points, periodicity, degree)
        else:
            births, deaths, essential = _homcloud_worker(points, periodicity, degree)
    except DescriptorError as err:
        raise DescriptorError(f"{label}: {err}") from err
    except Exception as err:
        raise DescriptorError(f"{label}: HomCloud failed: {type(err).__name__}: {err}") from err
    positive = deaths > births  # zero-persistence pairs: tie-breaking artefacts of degenerate input
    return _sorted_diagram(degree, births[positive], deaths[positive], essential, "homcloud")
