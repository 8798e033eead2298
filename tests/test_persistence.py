import numpy as np
import pytest

from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import _RUNNER, alpha_diagram, points_diagram
from pdmd.errors import DescriptorError, InputError
from pdmd.structure import Frame


def sheet(points_xy: np.ndarray, L: float) -> Frame:
    pos = np.column_stack([points_xy, np.zeros(len(points_xy))])
    return Frame(pos, np.diag([L, L, 10.0]), np.full(len(pos), 6), (True, True, False))


def random_sheet(n=150, seed=0, min_dist=1.3):
    rng = np.random.default_rng(seed)
    L = np.sqrt(n / 0.38)
    pts = []
    while len(pts) < n:
        p = rng.uniform(0, L, 2)
        if all(np.linalg.norm((p - q + L / 2) % L - L / 2) > min_dist for q in pts):
            pts.append(p)
    return np.array(pts), L


def same(d1, d2):
    np.testing.assert_allclose(d1.births_A2, d2.births_A2, atol=1e-8)
    np.testing.assert_allclose(d1.deaths_A2, d2.deaths_A2, atol=1e-8)


def test_square_has_one_pair_at_quarter_and_half_side_squared():
    a = 1.7
    d = points_diagram(np.array([[0, 0], [a, 0], [a, a], [0, a]], float), None)
    np.testing.assert_allclose(d.births_A2, [a**2 / 4])
    np.testing.assert_allclose(d.deaths_A2, [a**2 / 2])


def test_triangles_acute_has_short_cycle_obtuse_none():
    """In an alpha filtration an acute triangle's edges appear (a²/4) before its face (circumradius² =
    a²/3 for the equilateral one), so it has one short pair; an obtuse triangle's face appears with
    its longest edge, so it has none."""
    a = 1.4
    d = points_diagram(np.array([[0, 0], [a, 0], [a / 2, a * np.sqrt(3) / 2]]), None)
    np.testing.assert_allclose(d.pairs(), [[a**2 / 4, a**2 / 3]])
    assert points_diagram(np.array([[0, 0], [2.0, 0], [1.0, 0.3]]), None).n_pairs == 0


def test_invariance_translation_rotation_permutation_periodic_shift():
    pts, L = random_sheet()
    ref = alpha_diagram(sheet(pts, L), 2)
    assert ref.n_pairs > 50 and len(ref.essential_births_A2) == 2  # H1 of the torus
    shifted = (pts + [L / 2 + 0.37, L / 3]) % L  # moves atoms across the boundary
    same(ref, alpha_diagram(sheet(shifted, L), 2))
    rotated = np.column_stack([pts[:, 1], L - pts[:, 0]]) % L  # 90° rotation of the square cell
    same(ref, alpha_diagram(sheet(rotated, L), 2))
    perm = np.random.default_rng(1).permutation(len(pts))
    same(ref, alpha_diagram(sheet(pts[perm], L), 2))


def test_histogram_probability_and_out_of_range_pairs():
    births = np.array([0.5, 1.0, 3.9, 4.5])
    deaths = np.array([1.0, 2.0, 4.2, 5.0])  # last two outside [0, 4]²
    img = pd_histogram(births, deaths, HistogramSpec(0, 4, 128))
    assert img.image.shape == (128, 128) and img.n_outside == 2
    assert img.image.sum() == pytest.approx(0.5)
    assert img.image[16, 32] == pytest.approx(0.25)  # birth 0.5 -> bin 16, death 1.0 -> bin 32
    empty = pd_histogram(np.zeros(0), np.zeros(0))
    assert empty.n_pairs == 0 and empty.image.sum() == 0
    with pytest.raises(DescriptorError, match="non-finite"):
        pd_histogram(np.array([0.1]), np.array([np.inf]))


def test_bad_structures_give_clear_errors():
    pts, L = random_sheet(60)
    nan = pts.copy()
    nan[3, 0] = np.nan
    with pytest.raises(InputError, match="atom 3 .*non-finite"):
        alpha_diagram(sheet(nan, L), 2)
    far = pts.copy()
    far[5] += 5 * L  # unwrapped periodic coordinates (image flags): wrapped, same diagram
    same(alpha_diagram(sheet(far, L), 2), alpha_diagram(sheet(pts, L), 2))
    with pytest.raises(InputError, match="nearest-neighbour distance .* Å"):
        alpha_diagram(sheet(pts / 10, L / 10), 2)  # nm-like input
    with pytest.raises(InputError, match="zero atoms"):
        alpha_diagram(sheet(np.zeros((0, 2)), L), 2)
    with pytest.raises(DescriptorError, match="too few for a periodic alpha triangulation"):
        alpha_diagram(sheet(pts[:2], L), 2)
    overlapping = pts.copy()
    overlapping[7] = overlapping[3] + [0.05, 0.0]
    with pytest.raises(InputError, match="overlapping atoms"):
        alpha_diagram(sheet(overlapping, L), 2)


def test_anisotropic_cell_is_refused_before_homcloud_can_crash():
    pts, L = random_sheet(80)
    frame = Frame(
        np.column_stack([pts * [1.5, 1], np.zeros(len(pts))]),
        np.diag([1.5 * L, L, 10]),
        np.full(len(pts), 6),
        (True, True, False),
    )
    with pytest.raises(DescriptorError, match="aspect ratio 1.50.*use backend 'delaunay'"):
        alpha_diagram(frame, 2, backend="homcloud")  # a named backend is always the one used
    assert alpha_diagram(frame, 2).computed_by == "delaunay"  # none named: the backend that takes the cell


def test_backend_crash_becomes_error_and_next_structure_still_works():
    import os

    with pytest.raises(DescriptorError, match="crashed"):
        _RUNNER.call(os.abort)
    pts, L = random_sheet(60, seed=3)
    assert alpha_diagram(sheet(pts, L), 2).n_pairs > 0
