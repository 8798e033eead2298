"""Alpha-filtration persistence diagrams of periodic atomic structures, with two backends.

Birth and death values are squared alpha radii in Å² (HomCloud's convention).

- `homcloud` (the reference): HomCloud's periodic alpha complex (CGAL). It takes only
  axis-aligned cells and crashes the whole process on anisotropic ones, so the cell is checked
  first and the call runs in a worker process: a crash there becomes a `DescriptorError` for that
  structure, never a dead FireWorks worker. For a 2D sheet the xy coordinates are passed as 2D
  points (3D points with z = 0 crash HomCloud).
- `delaunay` (`pdmd.descriptor.periodic_alpha`): qhull Delaunay of padded periodic images folded
  onto the torus + gudhi persistence over Z/2. Identical diagrams (tested against HomCloud), any
  lattice, about 5× faster for 216-atom 3D cells. When no backend is named it falls back to
  HomCloud on input it cannot triangulate (cells a few atoms wide) and records that in `computed_by`.

Pairs with death = birth (they occur only for degenerate, e.g. crystalline, input and depend on
tie-breaking) are dropped by both backends.

Essential classes (H1 of the periodic torus: 2 in 2D, 3 in 3D, death = ∞) describe the cell,
not the structure; they are kept apart in `essential_births_A2` and left out of histograms.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import logging
import sys
import threading
from dataclasses import dataclass

import numpy as np

from pdmd.descriptor.histogram import DEFAULT_RANGE_A2
from pdmd.descriptor.periodic_alpha import BackendUnsuitable, periodic_alpha_persistence
from pdmd.errors import DescriptorError
from pdmd.structure import Frame, is_axis_aligned, validate_frame
from pdmd.workers import process_pool

log = logging.getLogger(__name__)

MAX_ASPECT_RATIO = 1.3
"""Largest cell aspect ratio passed to HomCloud's periodic alpha complex (it segfaulted at 1.35 in 2D)."""

BACKENDS = ("homcloud", "delaunay")
DEFAULT_BACKEND = {2: "homcloud", 3: "delaunay"}
"""Fastest correct backend per dimension (HomCloud stays the aGr default so stored 2D descriptors keep their ids)."""
SHEET_MODES = ("projection", "3d")
DEFAULT_SHEET_MODE = "3d"
"""How a 2D sheet becomes points: "3d" (real coordinates, periodic in-plane, open across the vacuum) or
"projection" (in-plane coordinates as 2D points, the paper's setting for its flat sheets). Both give the
same diagram for a flat sheet (which therefore takes the faster 2D path); on relaxed buckled aGr "3d"
predicts energies 2.3x better (benchmarks/sheet_projection_vs_3d.py, docs/inputs.md)."""
FLAT_SHEET_A = 1e-6
"""A sheet whose heights span less than this (Å) is flat: its "3d" diagram is its 2D one."""
SLAB_VACUUM_A = 10.0
"""Filler-layer spacing (Å) in the vacuum of a sheet's "3d" diagram: exact below (d/2)², d the smallest filler
distance (≥ 14 Å² in cells wider than 22 Å; smaller cells whose bound falls below the 4 Å² window are refused)."""
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


@contextlib.contextmanager
def _quiet_native_output():
    """Send what C/C++ libraries (CGAL, qhull) print to stdout/stderr to a temporary file instead of the user."""
    import os
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _homcloud_worker(points: np.ndarray, periodicity: list[tuple[float, float]] | None, degree: int):
    import homcloud.interface as hc

    with _quiet_native_output():
        pdl = hc.PDList.from_alpha_filtration(points, periodicity=periodicity, save_boundary_map=False)
        d = pdl.dth_diagram(degree)
    return np.asarray(d.births, float), np.asarray(d.deaths, float), np.asarray(d.essential_births, float)


@contextlib.contextmanager
def _main_module_hidden():
    """Spawned workers need nothing from `__main__`: hide it so a user's script without an
    `if __name__ == "__main__"` guard is not re-run in the worker (which would kill it).
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


class _IsolatedRunner:
    """One long-lived worker process; rebuilt after a crash so later structures still run."""

    def __init__(self) -> None:
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = process_pool(1)  # dies with this process, even after SIGKILL
        return self._pool

    def call(self, fn, *args):
        with self._lock:
            try:
                with _main_module_hidden():  # the worker process starts on the first submit
                    future = self._get().submit(fn, *args)
                return future.result()
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
    sheet: str | None = None,
    periodic: bool = True,
) -> PersistenceDiagram:
    """Persistence diagram of the periodic alpha filtration of `frame` (dim = 2 or 3).

    backend: "homcloud" or "delaunay"; a named backend is always the one used (its refusal is an
    error saying what to use instead). None: `DEFAULT_BACKEND[dim]`, or the other backend (same
    diagram) for cells the default cannot take (HomCloud: non-orthogonal or elongated cells).
    sheet (dim 2): "3d" (the real coordinates, periodic in-plane and open across the vacuum) or
    "projection" (in-plane coordinates as 2D points, the paper's setting); default `DEFAULT_SHEET_MODE`.
    periodic False: the open diagram of the atoms in the cell, without periodic images (the paper's
    setting for its aGr sheets; HomCloud only): rings cut by the cell boundary are missing or larger.
    """
    if dim not in (2, 3):
        raise DescriptorError(f"{label}: dim must be 2 or 3, got {dim}")
    if not 0 <= degree < dim:
        raise DescriptorError(f"{label}: degree {degree} is not available in {dim}D (0..{dim - 1})")
    if backend is not None and backend not in BACKENDS:
        raise DescriptorError(f"{label}: unknown persistence backend {backend!r}; choose one of {BACKENDS}")
    sheet = sheet or DEFAULT_SHEET_MODE
    if sheet not in SHEET_MODES:
        raise DescriptorError(f"{label}: unknown sheet mode {sheet!r}; choose one of {SHEET_MODES}")
    if 0 < frame.n_atoms < 3 * dim:
        raise DescriptorError(
            f"{label}: {frame.n_atoms} atoms are too few for a periodic alpha triangulation in {dim}D "
            f"(need at least {3 * dim})"
        )
    frame = validate_frame(frame, dim, label=label)
    buckled = dim == 2 and sheet == "3d" and np.ptp(frame.positions[:, 2]) > FLAT_SHEET_A
    if not periodic:
        if backend not in (None, "homcloud"):
            raise DescriptorError(f"{label}: open (non-periodic) diagrams are computed by HomCloud; drop backend "
                                  f"{backend!r}")  # fmt: skip
        coords = frame.positions if dim == 3 or buckled else frame.positions[:, :2]
        return points_diagram(np.ascontiguousarray(coords, float), None, degree, isolate=isolate, label=label)
    if buckled:
        return _slab_diagram(frame, degree, backend, isolate, label)
    points = np.ascontiguousarray(frame.positions[:, :dim])
    return _periodic_diagram(points, frame.cell[:dim, :dim], degree, backend, isolate, label)


def _homcloud_refusal(lattice: np.ndarray) -> str | None:
    """Why HomCloud's periodic alpha complex cannot take this cell (None: it can)."""
    if not is_axis_aligned(lattice):
        return "HomCloud's periodic alpha complex takes only axis-aligned (orthorhombic) cells"
    lengths = np.diag(lattice)
    aspect = float(lengths.max() / lengths.min())
    if aspect > MAX_ASPECT_RATIO:
        return (
            f"cell aspect ratio {aspect:.2f} exceeds {MAX_ASPECT_RATIO}, which HomCloud's periodic alpha complex "
            "cannot take (it crashes)"
        )
    return None


def _periodic_diagram(
    points: np.ndarray, lattice: np.ndarray, degree: int, backend: str | None, isolate: bool, label: str
) -> PersistenceDiagram:
    """Diagram of points periodic in `lattice` with the named backend, or the best one when None."""
    dim = lattice.shape[0]
    refusal = _homcloud_refusal(lattice)
    chosen = backend or DEFAULT_BACKEND[dim]
    if backend is None and chosen == "homcloud" and refusal:
        log.info("%s: %s; using the delaunay backend (same diagram)", label, refusal)
        chosen = "delaunay"
    if chosen == "delaunay":
        try:
            births, deaths, essential = periodic_alpha_persistence(points, lattice, degree)
        except BackendUnsuitable as err:
            if backend is not None or refusal:
                instead = "; use backend 'homcloud' (or name no backend)" if not refusal else f" and {refusal}"
                reason = f"the delaunay backend cannot take this structure ({err}){instead}"
                raise DescriptorError(f"{label}: {reason}") from err
            log.info("%s: delaunay backend unsuitable (%s); using HomCloud (same diagram)", label, err)
        else:
            return _sorted_diagram(degree, births, deaths, essential, "delaunay")
    if refusal:
        raise DescriptorError(f"{label}: {refusal}; use backend 'delaunay' (or name no backend) for this cell")
    periodicity = [(0.0, float(L)) for L in np.diag(lattice)]
    return points_diagram(points, periodicity, degree, isolate=isolate, label=label)


def _vacuum_fillers(frame: Frame, top_A: float) -> np.ndarray:
    """Two sparse layers of points (Å) in the vacuum above a sheet, `SLAB_VACUUM_A` apart: jittered grids."""
    a1, a2 = frame.cell[0], frame.cell[1]
    n1, n2 = (max(3, int(np.linalg.norm(a) // SLAB_VACUUM_A)) for a in (a1, a2))  # >= 3: a simplicial complex
    rng = np.random.default_rng(0)  # fixed: the same sheet always gets the same fillers
    grid = np.array([(i + 0.5, j + 0.5) for i in range(n1) for j in range(n2)]) / [n1, n2]
    frac = grid
    layers = []
    for k in (1, 2):  # one layer per side: a single shared layer would close a sheet edge from both sides
        xyz = (frac + rng.uniform(-0.05, 0.05, grid.shape) / [n1, n2]) @ np.stack([a1, a2])
        xyz[:, 2] = top_A + k * SLAB_VACUUM_A + rng.uniform(-0.3, 0.3, len(xyz))
        layers.append(xyz)
    return np.concatenate(layers)


def _slab_diagram(frame: Frame, degree: int, backend: str | None, isolate: bool, label: str) -> PersistenceDiagram:
    """Sheet in its own frame (`sheet_frame`) as 3D points, periodic in-plane, open across the vacuum.

    The sheet goes into a periodic 3D cell with 3×`SLAB_VACUUM_A` of vacuum, and two sparse layers of
    filler points in the vacuum keep the triangulation local (without it, simplices
    across the vacuum join a single-layer sheet's atoms to their own images, which no periodic
    backend takes). Balls of squared radius below `cut` = (d/2)², d the smallest distance from a
    filler to any other point, never meet a filler or the sheet's image across the vacuum, so the
    filtration below `cut` is exactly that of the open sheet: pairs born above `cut` are dropped, and
    classes alive at `cut` (the sheet's in-plane torus loops) are reported as essential.
    """
    from scipy.spatial import cKDTree

    heights = frame.positions[:, 2]
    base = frame.positions - [0.0, 0.0, heights.min()]
    top = float(np.ptp(heights))
    lattice = np.array(frame.cell, float)
    lattice[2] = [0.0, 0.0, top + 3 * SLAB_VACUUM_A]
    fillers = _vacuum_fillers(frame, top)
    points = np.ascontiguousarray(np.concatenate([base, fillers]))
    shifts = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) @ lattice
    images = (points[None] + shifts[:, None]).reshape(-1, 3)
    dist, _ = cKDTree(images).query(fillers, k=2)
    cut = (float(dist[:, 1].min()) / 2) ** 2  # the sheet's own image is 3 SLAB_VACUUM_A away: further
    if cut < DEFAULT_RANGE_A2[2][1]:
        raise DescriptorError(
            f"{label}: the sheet's cell is too small for its 3D diagram (exact only below {cut:.1f} Å², less than "
            f"the {DEFAULT_RANGE_A2[2][1]:g} Å² window); use a supercell, or the projection (sheet 'projection')"
        )
    try:
        d = _periodic_diagram(points, lattice, degree, backend, isolate, label)
    except DescriptorError as err:
        raise DescriptorError(f"{err} (3D diagram of a sheet; its in-plane projection: sheet 'projection')") from err
    finite = (d.births_A2 < cut) & (d.deaths_A2 < cut)
    alive = (d.births_A2 < cut) & (d.deaths_A2 >= cut)
    essential = np.sort(np.concatenate([d.essential_births_A2[d.essential_births_A2 < cut], d.births_A2[alive]]))
    return PersistenceDiagram(d.degree, d.births_A2[finite], d.deaths_A2[finite], essential, d.computed_by)


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
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if "too few" in first.lower():
            first += (
                " (HomCloud's periodic triangulation needs atoms spread through the whole cell; a sheet or a cell "
                "with a large empty region is refused: use backend 'delaunay')"
            )
        raise DescriptorError(f"{label}: HomCloud failed: {first}") from err
    positive = deaths > births  # zero-persistence pairs: tie-breaking artefacts of degenerate input
    return _sorted_diagram(degree, births[positive], deaths[positive], essential, "homcloud")
