"""The `delaunay` backend gives HomCloud's diagrams, on any lattice, and refuses what it cannot take."""

import numpy as np
import pytest

from pdmd.descriptor.periodic_alpha import BackendUnsuitable, periodic_alpha_persistence
from pdmd.descriptor.persistence import alpha_diagram
from pdmd.errors import DescriptorError, InputError
from pdmd.md.random_cell import cubic_cell_length_A, random_positions
from pdmd.structure import Frame


def bulk(pos: np.ndarray, cell: np.ndarray) -> Frame:
    return Frame(np.asarray(pos, float), np.asarray(cell, float), np.full(len(pos), 6), (True, True, True))


def carbon_cell(n: int, density: float, seed: int) -> Frame:
    L = cubic_cell_length_A(n, density)
    cell = np.eye(3) * L
    return bulk(random_positions(n, cell, 1.2, seed), cell)


def assert_same(a, b):
    assert a.n_pairs == b.n_pairs > 0
    np.testing.assert_allclose(a.births_A2, b.births_A2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.deaths_A2, b.deaths_A2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.essential_births_A2, b.essential_births_A2, rtol=0, atol=1e-9)


@pytest.mark.parametrize("density", [2.0, 3.4])
def test_3d_periodic_diagram_equals_homcloud(density):
    frame = carbon_cell(216, density, seed=int(density * 10))
    ours = alpha_diagram(frame, 3, backend="delaunay")
    ref = alpha_diagram(frame, 3, backend="homcloud")
    assert ours.computed_by == "delaunay" and ref.computed_by == "homcloud"
    assert len(ours.essential_births_A2) == 3  # H1 of the 3-torus
    assert_same(ours, ref)


def test_atoms_near_and_on_the_boundary_equal_homcloud():
    frame = carbon_cell(120, 2.5, seed=5)
    L = frame.cell[0, 0]
    pos = frame.positions.copy()
    pos[0] = [0.0, 0.0, 0.0]  # on a corner
    pos[1] = [L, 0.5 * L, 0.3 * L]  # exactly on a face: the same point as x = 0
    pos[2] = [L - 1e-9, 0.25 * L, 0.75 * L]  # a hair inside the far face
    pos[3] = [1e-9, 0.75 * L, L - 1e-9]
    pos[4] = [-0.3, 0.6 * L, 0.1 * L]  # slightly outside: wrapped
    keep = np.ones(len(pos), bool)
    for i in range(5):  # drop atoms that would now be too close to the moved ones
        d = pos - pos[i]
        d -= np.round(d / L) * L
        close = np.linalg.norm(d, axis=1) < 1.2
        close[: i + 1] = False
        keep &= ~close
    frame = bulk(pos[keep], frame.cell)
    assert_same(alpha_diagram(frame, 3, backend="delaunay"), alpha_diagram(frame, 3, backend="homcloud"))


def test_2d_sheet_equals_homcloud():
    L = np.sqrt(150 / 0.38)
    cell = np.diag([L, L, 10.0])
    xy = random_positions(150, cell[:2, :2], 1.3, seed=11)
    frame = Frame(np.column_stack([xy, np.zeros(150)]), cell, np.full(150, 6), (True, True, False))
    assert_same(alpha_diagram(frame, 2, backend="delaunay"), alpha_diagram(frame, 2, backend="homcloud"))


def test_triclinic_basis_of_the_same_crystal_gives_homclouds_diagram():
    """(a, b + a, c - b) spans the same lattice as (a, b, c): same periodic point set, same diagram."""
    frame = carbon_cell(160, 2.4, seed=8)
    a, b, c = frame.cell
    sheared = np.array([a, b + a, c - b])
    tri = bulk((frame.positions @ np.linalg.inv(sheared) % 1.0) @ sheared, sheared)
    with pytest.raises(DescriptorError, match="axis-aligned"):
        alpha_diagram(tri, 3, backend="homcloud")
    assert_same(alpha_diagram(tri, 3, backend="delaunay"), alpha_diagram(frame, 3, backend="homcloud"))


def test_elongated_cell_that_crashes_homcloud_works():
    n = 200
    cell = np.diag([10.0, 10.0, 20.0])
    frame = bulk(random_positions(n, cell, 1.2, seed=2), cell)
    with pytest.raises(DescriptorError, match="aspect ratio 2.00"):
        alpha_diagram(frame, 3, backend="homcloud")
    d = alpha_diagram(frame, 3, backend="delaunay")
    assert d.n_pairs > 100 and len(d.essential_births_A2) == 3
    assert np.all(d.deaths_A2 > d.births_A2)


def test_bad_input_is_named():
    frame = carbon_cell(64, 2.5, seed=1)
    L = frame.cell[0, 0]
    with pytest.raises(DescriptorError, match="too few"):
        alpha_diagram(bulk(frame.positions[:5], frame.cell), 3, backend="delaunay")
    over = frame.positions.copy()
    over[9] = over[4] + 0.01
    with pytest.raises(InputError, match="overlapping"):
        alpha_diagram(bulk(over, frame.cell), 3)
    flat = frame.cell.copy()
    flat[2] = flat[0] + flat[1]
    with pytest.raises(InputError, match="positive volume"):
        alpha_diagram(bulk(frame.positions, flat), 3)
    with pytest.raises(BackendUnsuitable, match="too few"):
        periodic_alpha_persistence(frame.positions[:4], np.eye(3) * L)
    nan = frame.positions.copy()
    nan[3, 1] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        alpha_diagram(bulk(nan, frame.cell), 3)


def test_degenerate_crystal_matches_homcloud_without_zero_persistence_pairs():
    from ase.build import bulk as ase_bulk

    diamond = Frame.from_ase(ase_bulk("C", "diamond", a=3.567, cubic=True).repeat(3))
    ours, ref = alpha_diagram(diamond, 3, backend="delaunay"), alpha_diagram(diamond, 3, backend="homcloud")
    assert_same(ours, ref)
    # one chair-ring class per independent cycle: 2N bonds - N atoms + 1 - 3 torus classes
    assert ours.n_pairs == 2 * 216 - 216 + 1 - 3
    np.testing.assert_allclose(ours.births_A2, (3.567 * np.sqrt(3) / 4 / 2) ** 2)


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_quench_snapshot_where_qhull_output_is_not_delaunay_equals_homcloud(degree):
    # a 216-atom aC snapshot (2.2 g/cm³) on which qhull returned 6 non-Delaunay tetrahedra near the padding:
    # revision 1 of the backend gave one extra H1 and one extra H2 pair around 7.1-7.3 Å²
    from pathlib import Path

    arrays = np.load(Path(__file__).with_name("data") / "ac216_qhull_non_delaunay.npz")
    frame = bulk(arrays["positions"], arrays["cell"])
    ours = alpha_diagram(frame, 3, degree, backend="delaunay", isolate=False)
    ref = alpha_diagram(frame, 3, degree, backend="homcloud", isolate=False)
    assert ours.computed_by == "delaunay"
    assert_same(ours, ref)
