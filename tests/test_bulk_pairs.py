"""bulk_pairs: a periodic sheet and its 2×2 repeat get the same finite pairs per atom (issue 12, size transfer)."""

import numpy as np
import pytest

from pdmd.descriptor.bulk import bulk_pairs, repeat_cell
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.structure import Frame


def jittered_honeycomb(seed: int = 0, jitter_A: float = 0.12) -> Frame:
    """112-atom honeycomb sheet (bond 1.42 Å) in a 17.2 × 17.0 Å rectangular cell, positions jittered."""
    bond = 1.42
    w, h = np.sqrt(3) * bond, 3 * bond
    unit = Frame(np.array([[0, 0, 0], [w / 2, bond / 2, 0], [w / 2, 1.5 * bond, 0], [0, 2 * bond, 0]]),
                 np.diag([w, h, 10.0]), np.full(4, 6), (True, True, False))  # fmt: skip
    cell = repeat_cell(unit, (7, 4))
    rng = np.random.default_rng(seed)
    jitter = rng.normal(0, jitter_A, (cell.n_atoms, 2))
    cell.positions[:, :2] = (cell.positions[:, :2] + jitter) % np.diag(cell.cell)[:2]
    return cell


def per_atom_histogram(births, deaths, n_atoms):
    return np.histogram2d(births, deaths, bins=16, range=[[0, 4], [0, 4]])[0] / n_atoms


def test_bulk_pair_makes_a_repeated_sheet_size_consistent():
    spec = DescriptorSpec.for_system("agr")
    cell = jittered_honeycomb()
    big_cell = repeat_cell(cell, (2, 2))
    assert big_cell.n_atoms == 4 * cell.n_atoms
    np.testing.assert_allclose(np.diag(big_cell.cell)[:2], 2 * np.diag(cell.cell)[:2])
    small = spec.diagram(cell, "cell", isolate=False)
    big = spec.diagram(big_cell, "2x2", isolate=False)
    assert len(small.essential_births_A2) == 2 and len(big.essential_births_A2) == 2
    assert big.n_pairs == 4 * small.n_pairs + 3  # the torus hides one finite pair per cell
    b1, d1 = bulk_pairs(small.births_A2, small.deaths_A2, small.essential_births_A2)
    b4, d4 = bulk_pairs(big.births_A2, big.deaths_A2, big.essential_births_A2)
    assert len(b4) == 4 * len(b1)
    before = np.abs(per_atom_histogram(small.births_A2, small.deaths_A2, cell.n_atoms)
                    - per_atom_histogram(big.births_A2, big.deaths_A2, big_cell.n_atoms)).sum()  # fmt: skip
    after = np.abs(per_atom_histogram(b1, d1, cell.n_atoms) - per_atom_histogram(b4, d4, big_cell.n_atoms)).sum()
    assert before > 0 and after < 0.5 * before


def test_bulk_pairs_leaves_open_diagrams_and_refuses_3d():
    b, d = np.array([0.5, 0.6]), np.array([1.0, 2.0])
    b2, d2 = bulk_pairs(b, d, np.array([]))
    np.testing.assert_array_equal(b2, b)
    np.testing.assert_array_equal(d2, d)
    with pytest.raises(InputError, match="2D"):
        bulk_pairs(b, d, np.array([0.5]), dim=3)
