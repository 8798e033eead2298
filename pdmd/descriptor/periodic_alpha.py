"""Periodic alpha filtrations without HomCloud: the `delaunay` persistence backend.

The periodic Delaunay triangulation is read off the ordinary Delaunay triangulation (qhull,
through scipy) of the atoms plus their periodic images within a margin of the cell; every
simplex with a vertex in the central cell is folded back onto the torus (atom ids plus relative
lattice shifts) and duplicates merge. The margin grows until every such simplex's empty
circumsphere lies inside the padded region, which makes the folded triangulation exactly the
periodic one. Alpha values (squared radii, Å²) follow Edelsbrunner's rule: a simplex enters at
its smallest circumsphere's squared radius unless a coface's opposite vertex lies inside that
sphere (it is "attached"), in which case it enters with the cheapest attaching coface.
Persistence is computed by gudhi over Z/2, as HomCloud does.

Works for any lattice (orthorhombic, triclinic, any aspect ratio) in 2D and 3D. It needs the
periodic complex to be simplicial on the atoms (no two simplices with the same atoms but different
lattice shifts), which holds unless the cell is only a few atoms wide; otherwise it raises
`BackendUnsuitable` so a caller can fall back to HomCloud. Degenerate (co-circular / co-spherical,
e.g. perfect crystal) input, whose copies qhull may triangulate differently, is detected by the
Euler characteristic of the folded complex and triangulated once more from slightly displaced
atoms, with alpha values from the exact positions (`periodic_alpha_persistence`).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import Delaunay, cKDTree

from pdmd.errors import DescriptorError

RELATIVE_TOL = 1e-10
"""Relative tolerance of the in-sphere (attachment) test and of the degeneracy test."""


INITIAL_MARGIN = 2.1
"""First padding tried, in mean interatomic spacings; it grows by 1.3× until the triangulation is proven."""


class BackendUnsuitable(DescriptorError):
    """The structure is valid but this backend cannot triangulate it (use HomCloud)."""


def _plane_spacings(cell: np.ndarray) -> np.ndarray:
    """Distance between lattice planes along each lattice direction (Å)."""
    return 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)


def _padded_images(frac: np.ndarray, margin_frac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional images within `margin_frac` of the unit cell: (coords, atom index, integer shift)."""
    d = frac.shape[1]
    reach = np.ceil(margin_frac).astype(int)
    shifts = np.array(list(itertools.product(*[range(-k, k + 1) for k in reach])), dtype=int)
    shifts = shifts[np.argsort(np.abs(shifts).sum(axis=1), kind="stable")]  # central cell first
    images = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, d)
    atom = np.tile(np.arange(len(frac)), len(shifts))
    shift = np.repeat(shifts, len(frac), axis=0)
    inside = np.all((images >= -margin_frac) & (images <= 1.0 + margin_frac), axis=1)
    return images[inside], atom[inside], shift[inside]


def _circumspheres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest circumsphere (centre in the affine hull) of simplices `points` (M, k+1, d): centres, r² (Å²)."""
    k = points.shape[1] - 1
    if k == 0:
        return points[:, 0, :], np.zeros(len(points))
    edges = points[:, 1:, :] - points[:, :1, :]
    gram = edges @ edges.transpose(0, 2, 1)
    rhs = 0.5 * np.einsum("mii->mi", gram)
    scale = np.einsum("mii->m", gram) / k
    det = np.linalg.det(gram / scale[:, None, None])
    if np.any(np.abs(det) < RELATIVE_TOL):
        raise BackendUnsuitable(
            f"degenerate (flat) {k}-simplices in the Delaunay triangulation: co-spherical or crystalline input"
        )
    lam = np.linalg.solve(gram, rhs[..., None])[..., 0]
    offset = np.einsum("mi,mid->md", lam, edges)
    return points[:, 0, :] + offset, np.einsum("md,md->m", offset, offset)


class _Folded:
    """Simplices of one dimension on the torus: atom ids (M, k+1) sorted, shifts relative to the first atom."""

    def __init__(self, atoms: np.ndarray, shifts: np.ndarray) -> None:
        self.atoms, self.shifts = atoms, shifts

    @classmethod
    def canonical(cls, atoms: np.ndarray, shifts: np.ndarray) -> tuple[_Folded, np.ndarray]:
        """Fold simplices given by (atom, shift) per vertex; returns unique ones and each input's index."""
        m, q = atoms.shape
        order = np.argsort(atoms, axis=1)
        atoms = np.take_along_axis(atoms, order, axis=1)
        shifts = np.take_along_axis(shifts, order[..., None], axis=1)
        if q > 1 and np.any(np.diff(atoms, axis=1) == 0):
            raise BackendUnsuitable("a simplex joins an atom to its own periodic image: the cell is too small")
        shifts = shifts - shifts[:, :1, :]
        key = np.concatenate([atoms, shifts.reshape(m, -1)], axis=1)
        unique, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        folded = cls(atoms[first], shifts[first])
        if len(np.unique(folded.atoms, axis=0)) != len(folded.atoms):
            raise BackendUnsuitable(
                "two periodic simplices share their atoms (the cell is only a few atoms wide): "
                "the periodic complex is not simplicial"
            )
        return folded, inverse.reshape(-1)

    def coordinates(self, cart: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """Cartesian vertex coordinates (M, k+1, d) in Å, unwrapped across the boundary."""
        return cart[self.atoms] + self.shifts @ cell


def _periodic_delaunay_tops(
    frac: np.ndarray, cell: np.ndarray, initial_margin_A: float, frac_tri: np.ndarray | None = None
) -> tuple[_Folded, np.ndarray, np.ndarray]:
    """Top-dimensional periodic Delaunay simplices, their circumcentres and r² (Å²).

    frac_tri: slightly displaced coordinates to triangulate (degenerate input); geometry uses `frac`.
    """
    n, d = frac.shape
    frac_tri = frac if frac_tri is None else frac_tri
    cart = frac @ cell
    spacing = _plane_spacings(cell)
    margin = initial_margin_A
    unsuitable: BackendUnsuitable | None = None
    for _ in range(8):
        margin_frac = margin / spacing
        images, atom, shift = _padded_images(frac_tri, margin_frac)
        try:
            tri = Delaunay(images @ cell)
            images = frac[atom] + shift  # the exact positions of the triangulated images
        except Exception as err:  # qhull errors on degenerate input
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BackendUnsuitable(f"qhull could not triangulate the padded cell: {first}") from err
        simplices = tri.simplices
        central = np.all(shift[simplices] == 0, axis=2).any(axis=1)
        simplices = simplices[central]
        try:
            tops, _ = _Folded.canonical(atom[simplices], shift[simplices])
        except BackendUnsuitable as err:  # simplices near the padding's hull are not yet the periodic ones
            unsuitable = err
            margin *= 1.3
            continue
        centres, r2 = _circumspheres(tops.coordinates(cart, cell))
        reach = np.sqrt(r2)[:, None] / spacing
        cfrac = centres @ np.linalg.inv(cell)
        if np.all(cfrac - reach >= -margin_frac) and np.all(cfrac + reach <= 1.0 + margin_frac):
            # qhull's floating-point output is not always Delaunay near the hull of the padded set: verify
            # that every circumsphere is empty (a point strictly inside means a wrong simplex; retry wider)
            inside = cKDTree(images @ cell).query_ball_point(centres, np.sqrt(r2) * (1 - 1e-9), return_length=True)
            if np.any(inside > 0):
                margin *= 1.3
                continue
            if len(np.unique(tops.atoms)) != n:
                raise DescriptorError("some atoms are in no Delaunay simplex: overlapping (coincident) atoms")
            return tops, centres, r2
        margin *= 1.3
    if unsuitable is not None:
        raise unsuitable
    raise BackendUnsuitable(f"periodic Delaunay did not converge (margin {margin:.1f} Å): too few atoms for the cell")


def periodic_alpha_complex(
    positions: np.ndarray, cell: np.ndarray, jitter_A: float = 0.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Simplices of the periodic alpha complex by dimension: [(atom ids (M, k+1), alpha Å²), k = 0..d].

    `positions` (N, d) Cartesian Å, `cell` (d, d) lattice vectors as rows (Å). jitter_A > 0: triangulate
    atoms displaced by this much (seeded; one Delaunay triangulation of degenerate input), alpha values
    still from the exact positions.
    """
    positions = np.asarray(positions, float)
    cell = np.asarray(cell, float)
    n, d = positions.shape
    if cell.shape != (d, d) or abs(np.linalg.det(cell)) <= 0:
        raise DescriptorError(f"cell must be a non-singular {d}x{d} matrix, got {cell.tolist()}")
    if n < d + 2:
        raise BackendUnsuitable(f"{n} atoms are too few for a periodic triangulation in {d}D")
    frac = np.mod(positions @ np.linalg.inv(cell), 1.0)
    frac[frac >= 1.0] = 0.0
    cart = frac @ cell
    volume = abs(np.linalg.det(cell))
    spacing = (volume / n) ** (1.0 / d)
    frac_tri = None
    if jitter_A > 0:
        frac_tri = frac + np.random.default_rng(0).normal(0.0, jitter_A, frac.shape) @ np.linalg.inv(cell)
    tops, _, r2_top = _periodic_delaunay_tops(frac, cell, INITIAL_MARGIN * spacing, frac_tri)

    levels: list[tuple[np.ndarray, np.ndarray]] = [(tops.atoms, r2_top)]
    upper, upper_alpha = tops, r2_top
    for k in range(d - 1, 0, -1):
        face_atoms, face_shifts, opposite_atom, opposite_shift, coface = [], [], [], [], []
        for drop in range(k + 2):
            keep = [j for j in range(k + 2) if j != drop]
            face_atoms.append(upper.atoms[:, keep])
            face_shifts.append(upper.shifts[:, keep, :])
            opposite_atom.append(upper.atoms[:, drop])
            opposite_shift.append(upper.shifts[:, drop, :])
            coface.append(np.arange(len(upper.atoms)))
        faces, which = _Folded.canonical(np.concatenate(face_atoms), np.concatenate(face_shifts))
        coface_idx = np.concatenate(coface)
        # the opposite vertex in the frame of the (unfolded) face: same shifts as the coface's vertices
        opp = cart[np.concatenate(opposite_atom)] + np.concatenate(opposite_shift) @ cell
        all_face_pts = cart[np.concatenate(face_atoms)] + np.concatenate(face_shifts) @ cell
        centres_u, r2_u = _circumspheres(all_face_pts)
        attached = np.einsum("md,md->m", opp - centres_u, opp - centres_u) < r2_u * (1.0 - RELATIVE_TOL)
        r2 = np.empty(len(faces.atoms))
        r2[which] = r2_u
        via_coface = np.full(len(faces.atoms), np.inf)
        np.minimum.at(via_coface, which[attached], upper_alpha[coface_idx[attached]])
        alpha = np.where(np.isfinite(via_coface), via_coface, r2)
        levels.append((faces.atoms, alpha))
        upper, upper_alpha = faces, alpha
    levels.append((np.arange(n)[:, None], np.zeros(n)))
    return levels[::-1]


DEGENERATE_JITTER_A = 1e-6
"""Deterministic displacement (Å) that puts co-circular / co-spherical input (perfect crystals) in general position."""


def _euler_characteristic(levels: list[tuple[np.ndarray, np.ndarray]]) -> int:
    return sum((-1) ** k * len(atoms) for k, (atoms, _) in enumerate(levels))


def periodic_alpha_persistence(
    positions: np.ndarray, cell: np.ndarray, degree: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Degree-`degree` diagram of the periodic alpha filtration over Z/2: births, deaths, essential births (Å²).

    Pairs of zero persistence are dropped (as HomCloud does). Degenerate input (co-circular or co-spherical
    atoms, as in perfect crystals) has no unique Delaunay triangulation, and qhull may split the copies of one
    polygon differently: the folded complex is then not a triangulation of the torus (Euler characteristic
    != 0). Such input is triangulated once more with the atoms displaced by `DEGENERATE_JITTER_A` (seeded),
    which picks one valid triangulation; alpha values still come from the exact positions.
    """
    import gudhi

    levels = periodic_alpha_complex(positions, cell)
    if _euler_characteristic(levels) != 0:
        levels = periodic_alpha_complex(positions, cell, jitter_A=DEGENERATE_JITTER_A)
        if _euler_characteristic(levels) != 0:
            raise BackendUnsuitable("the periodic Delaunay complex is not a torus triangulation (degenerate input)")
    st = gudhi.SimplexTree()
    for atoms, alpha in levels:
        st.insert_batch(np.ascontiguousarray(atoms.T, dtype=np.int32), np.asarray(alpha, float))
    st.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    intervals = np.asarray(st.persistence_intervals_in_dimension(degree), float).reshape(-1, 2)
    finite = np.isfinite(intervals[:, 1])
    keep = finite & (intervals[:, 1] - intervals[:, 0] > RELATIVE_TOL * np.maximum(1.0, np.abs(intervals[:, 1])))
    return intervals[keep, 0], intervals[keep, 1], intervals[~finite, 0]
