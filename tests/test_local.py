# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local: local diagrams, exact forces, invariances, additivity, training on LAMMPS data, MD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import LOCAL_RUNS

from pdmd.models.local.complex import entry_values, local_topology, neighbourhoods
from pdmd.models.local.features import RADIAL_N, LocalDescriptorConfig, atom_features, pair_values, relative_points
from pdmd.models.local.model import AtomicNet, LocalPDModel
from pdmd.structure import Frame

DENSITY = {2: 0.38, 3: 0.15}  # atoms per Å² (graphene) / Å³ (about 3 g/cm³)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_packing(n: int, dim: int, seed: int, min_dist: float = 1.25) -> Frame:
    """Random periodic points at carbon density with a minimum separation (an amorphous-like cell)."""
    rng = np.random.default_rng(seed)
    length = (n / DENSITY[dim]) ** (1 / dim)
    pts: list[np.ndarray] = []
    while len(pts) < n:
        p = rng.uniform(0, length, dim)
        if pts:
            d = np.asarray(pts) - p
            d -= length * np.round(d / length)
            if (d**2).sum(1).min() < min_dist**2:
                continue
        pts.append(p)
    pos = np.zeros((n, 3))
    pos[:, :dim] = pts
    cell = np.diag([length] * dim + [10.0] * (3 - dim))
    return Frame(pos, cell, np.full(n, 6), (True, True, dim == 3))


RADIAL_2D = {"inner_A": 1.0, "h0_birth_grid": (0.0, 7.0, 12), "h0_grid": (0.3, 7.5, 12),
             "grids": (((0.3, 6.0, 8), (0.6, 7.6, 10)),)}  # fmt: skip
"""A 2D setting where neighbours enter by distance and H0 pairs sit on a (birth, death) grid."""
PD_ONLY = {"radial_A": None, "angular_shells_A": None}
"""The diagrams alone (the default adds radial and angular symmetry functions)."""
SYMMETRY_ONLY = {"use_pd": False}


def random_model(dim: int, seed: int = 0, descriptor: dict | None = None) -> LocalPDModel:
    """An untrained model with random weights: forces are non-trivial, which is all the exactness tests need."""
    torch.manual_seed(seed)
    cfg = LocalDescriptorConfig.default(dim, descriptor)
    net = AtomicNet(cfg.n_features, (16, 16))
    with torch.no_grad():
        net.feat_std.fill_(2.0)
    return LocalPDModel({"model_kind": "pd-local"}, net, cfg)


def moved(frame: Frame, positions: np.ndarray, cell: np.ndarray | None = None) -> Frame:
    return Frame(positions, frame.cell if cell is None else cell, frame.numbers, frame.pbc)


@pytest.mark.parametrize("dim", [2, 3])
def test_local_diagrams_equal_gudhi_weighted_alpha_complex(dim):
    """Every atom's pairs (values recomputed in torch from their sources) equal gudhi's weighted AlphaComplex."""
    import gudhi

    frame = random_packing(40 if dim == 2 else 50, dim, seed=1)
    cfg = LocalDescriptorConfig.default(dim)
    topo = local_topology(frame, dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2)
    birth, death, _ = pair_values(relative_points(torch.tensor(frame.positions), topo), topo, cfg)
    nb = neighbourhoods(frame, dim, cfg.cutoff_A)
    rel = nb.relative(frame.positions)
    entry = entry_values(torch.from_numpy((rel**2).sum(1)), cfg.inner_A, cfg.cutoff_A, cfg.alpha_max_A2).numpy()
    worst, compared = 0.0, 0
    for a in range(frame.n_atoms):
        part = slice(nb.start[a], nb.start[a + 1])
        st = gudhi.AlphaComplex(points=rel[part], weights=-entry[part]).create_simplex_tree()
        st.prune_above_filtration(cfg.alpha_max_A2)
        st.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
        for h in range(dim):
            ref = sorted(tuple(x) for x in st.persistence_intervals_in_dimension(h) if np.isfinite(x[1]))
            sel = (topo.pair_centre == a) & (topo.pair_degree == h)
            mine = sorted(zip(birth[sel].numpy(), death[sel].numpy()))
            assert len(mine) == len(ref), (a, h)
            if ref:
                worst = max(worst, float(np.abs(np.array(ref) - np.array(mine)).max()))
                compared += len(ref)
    print(f"{dim}D: {compared} pairs, max |difference| to gudhi {worst:.2e} Å²")
    assert compared > 10 * frame.n_atoms
    assert worst < 1e-9


@pytest.mark.parametrize(
    "dim, descriptor",
    [(2, None), (3, None), (2, RADIAL_2D), (2, PD_ONLY), (3, PD_ONLY), (2, SYMMETRY_ONLY)],
    ids=["2D", "3D", "2D-radial", "2D-pd-only", "3D-pd-only", "2D-symmetry-only"],
)
def test_forces_match_finite_differences(dim, descriptor):
    frame = random_packing(60 if dim == 2 else 48, dim, seed=2)
    model = random_model(dim, descriptor=descriptor)
    energy, forces = model.energy_and_forces(frame)
    assert np.abs(forces).max() > 0.01  # a non-trivial test
    h = 1e-5
    worst = 0.0
    rng = np.random.default_rng(0)
    for a in rng.choice(frame.n_atoms, 8 if dim == 2 else 4, replace=False):
        for c in range(dim):
            plus, minus = frame.positions.copy(), frame.positions.copy()
            plus[a, c] += h
            minus[a, c] -= h
            fd = -(model.energy_and_forces(moved(frame, plus))[0] - model.energy_and_forces(moved(frame, minus))[0])
            worst = max(worst, abs(fd / (2 * h) - forces[a, c]))
    print(f"{dim}D: max |F_autograd - F_finite-difference| = {worst:.2e} eV/Å (max |F| {np.abs(forces).max():.3f})")
    assert worst < 1e-6
    if dim == 2:
        assert np.all(forces[:, 2] == 0.0)


@pytest.mark.parametrize(
    "dim, descriptor",
    [(2, None), (3, None), (2, RADIAL_2D), (3, PD_ONLY), (2, SYMMETRY_ONLY)],
    ids=["2D", "3D", "2D-radial", "3D-pd-only", "2D-symmetry-only"],
)
def test_compiled_features_equal_torch(dim, descriptor):
    """The compiled feature kernels (evaluation) give torch's features and vector-Jacobian products (stress too)."""
    from pdmd.models.local.compiled import compiled_available

    assert compiled_available()
    frame = random_packing(80 if dim == 2 else 64, dim, seed=4)
    cfg = LocalDescriptorConfig.default(dim, descriptor)
    topo = local_topology(frame, dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2)
    pos = torch.tensor(frame.positions, requires_grad=True)
    strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True) if dim == 3 else None
    weights = torch.randn(
        (frame.n_atoms, cfg.n_features), dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    out = []
    for compiled in (False, True):
        x = atom_features(pos, topo, cfg, strain, compiled=compiled)
        grads = torch.autograd.grad((x * weights).sum() + 0.01 * (x**2).sum(), [pos] + ([strain] if dim == 3 else []))
        out.append([x.detach().numpy()] + [g.numpy() for g in grads])
    for torch_value, compiled_value in zip(*out):
        assert np.abs(torch_value).max() > 1.0  # non-trivial
        assert np.abs(torch_value - compiled_value).max() < 1e-11 * np.abs(torch_value).max()
    with pytest.raises(RuntimeError):  # training needs the gradient of the forces: the compiled path refuses it
        x = atom_features(pos, topo, cfg, compiled=True)
        (g,) = torch.autograd.grad((x**2).sum(), pos, create_graph=True)
        torch.autograd.grad(g.sum(), pos)


@pytest.mark.parametrize(
    "descriptor", [PD_ONLY, {**RADIAL_2D, **PD_ONLY}, SYMMETRY_ONLY], ids=["diagrams", "radial-diagrams", "symmetry"]
)
def test_energy_is_the_path_integral_of_the_forces(descriptor):
    """All atoms move up to 0.4 Å (atoms cross cutoffs, bonds swap order): ΔE = -∫F·dx, no jumps on the way."""
    frame = random_packing(40, 2, seed=3)
    model = random_model(2, descriptor=descriptor)
    rng = np.random.default_rng(0)
    path = np.zeros_like(frame.positions)
    path[:, :2] = rng.normal(size=(frame.n_atoms, 2))
    path *= 0.4 / np.abs(path).max()
    steps = 200
    energies, work = [], []
    for k in range(steps + 1):
        e, f = model.energy_and_forces(moved(frame, frame.positions + path * k / steps))
        energies.append(e)
        work.append(-(f * path / steps).sum())
    de = np.diff(energies)
    mismatch = de - 0.5 * (np.array(work[:-1]) + np.array(work[1:]))  # trapezoid rule
    total = abs(energies[-1] - energies[0])
    print(f"ΔE {total:.3f} eV; |ΔE - ∫F·dx| {abs(mismatch.sum()):.1e} eV; worst step {np.abs(mismatch).max():.1e} "
          f"of max |ΔE| {np.abs(de).max():.1e} eV")  # fmt: skip
    assert total > 0.1
    assert abs(mismatch.sum()) < 2e-3 * total
    assert np.abs(mismatch).max() < 0.15 * np.abs(de).max()


@pytest.mark.parametrize("dim", [2, 3])
def test_degenerate_crystal_gives_finite_energy_and_forces(dim):
    """Pristine graphene (co-circular hexagons) and diamond (co-spherical atoms): every Delaunay choice is a tie."""
    from ase.build import bulk, graphene

    if dim == 2:
        atoms = graphene(a=2.46, vacuum=5.0).repeat((6, 6, 1))
        atoms.positions[:, 2] = 0.0
        atoms.cell[2, 2] = 10.0
    else:
        atoms = bulk("C", "diamond", a=3.567, cubic=True).repeat((3, 3, 3))
    frame = Frame.from_ase(atoms)
    energy, forces = random_model(dim).energy_and_forces(frame)
    print(f"{dim}D crystal: E {energy:.4f} eV, max |F| {np.abs(forces).max():.2e} eV/Å")
    assert np.isfinite(energy) and np.isfinite(forces).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_invariance_and_covariance(dim):
    frame = random_packing(50, dim, seed=4)
    model = random_model(dim)
    energy, forces = model.energy_and_forces(frame)
    rng = np.random.default_rng(5)
    if dim == 2:
        t = 0.7
        rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    else:
        rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rot *= np.sign(np.linalg.det(rot))
    e_rot, f_rot = model.energy_and_forces(moved(frame, frame.positions @ rot.T, frame.cell @ rot.T))
    shift = np.zeros(3)
    shift[:dim] = rng.uniform(-3, 3, dim)
    e_tr, f_tr = model.energy_and_forces(moved(frame, frame.positions + shift))
    perm = rng.permutation(frame.n_atoms)
    e_perm, f_perm = model.energy_and_forces(moved(frame, frame.positions[perm]))
    print(f"{dim}D: |ΔE| rotation {abs(e_rot - energy):.1e}, translation {abs(e_tr - energy):.1e}, "
          f"permutation {abs(e_perm - energy):.1e} eV")  # fmt: skip
    for e in (e_rot, e_tr, e_perm):
        assert abs(e - energy) < 1e-8 * max(1.0, abs(energy))
    np.testing.assert_allclose(f_rot, forces @ rot.T, atol=1e-8)
    np.testing.assert_allclose(f_tr, forces, atol=1e-8)
    np.testing.assert_allclose(f_perm, forces[perm], atol=1e-8)


@pytest.mark.parametrize("dim", [2, 3])
def test_additivity(dim):
    """A 2×1 supercell and two far-apart copies of a cluster have exactly twice the energy."""
    frame = random_packing(40 if dim == 2 else 30, dim, seed=6)
    model = random_model(dim)
    energy, _ = model.energy_and_forces(frame)
    cell2 = frame.cell.copy()
    cell2[0] *= 2
    double = Frame(np.concatenate([frame.positions, frame.positions + frame.cell[0]]), cell2,
                   np.concatenate([frame.numbers] * 2), frame.pbc)  # fmt: skip
    assert abs(model.energy_and_forces(double)[0] - 2 * energy) < 1e-8 * abs(energy)
    # a non-periodic cluster and two copies 30 Å apart (farther than the cutoff)
    box = np.diag([60.0, 60.0, 60.0])
    cluster = Frame(frame.positions, box, frame.numbers, (False, False, False))
    e1 = model.energy_and_forces(cluster)[0]
    far = np.zeros(3)
    far[0] = 30.0 + frame.cell[0, 0]
    pair = Frame(np.concatenate([frame.positions, frame.positions + far]), box, np.concatenate([frame.numbers] * 2),
                 (False, False, False))  # fmt: skip
    e2 = model.energy_and_forces(pair)[0]
    print(f"{dim}D: supercell/cell - 2 = {model.energy_and_forces(double)[0] / energy - 2:.1e}; "
          f"two clusters {e2:.6f} vs 2 × {e1:.6f} eV")  # fmt: skip
    assert abs(e2 - 2 * e1) < 1e-8 * abs(e1)


@pytest.mark.parametrize("dim", [2, 3])
def test_topology_cache_gives_the_fresh_result_along_a_trajectory(dim):
    """MD-like straight-line motion: cached neighbour lists/triangulations give fresh energies and forces."""
    from pdmd.models.local.model import batch_energies

    frame = random_packing(60 if dim == 2 else 48, dim, seed=7)
    model = random_model(dim)
    rng = np.random.default_rng(1)
    velocity = np.zeros_like(frame.positions)
    velocity[:, :dim] = rng.normal(0.0, 0.01, (frame.n_atoms, dim))  # Å per step; rebuilds after ~10 steps
    worst_e = worst_f = 0.0
    for step in range(25):
        f = moved(frame, frame.positions + step * velocity)
        energy, forces = model.energy_and_forces(f)
        pos = torch.tensor(f.positions, requires_grad=True)
        one = torch.zeros(f.n_atoms, dtype=torch.long)
        e_ref = batch_energies(model.net, model.cfg, model.topology(f), pos, one, 1)
        (grad,) = torch.autograd.grad(e_ref[0], pos)
        worst_e = max(worst_e, abs(energy - float(e_ref[0].detach())))
        worst_f = max(worst_f, float(np.abs(forces + grad.numpy()).max()))
    stats = model.cache.stats
    print(f"{dim}D: {stats}; max |ΔE| {worst_e:.1e} eV, max |ΔF| {worst_f:.1e} eV/Å vs fresh topologies")
    assert worst_e < 1e-9 and worst_f < 1e-9
    assert 2 <= stats["neighbour_builds"] < stats["calls"]  # the skin was used, and outgrown
    assert stats["atoms_retriangulated"] < stats["calls"] * frame.n_atoms  # some triangulations were reused


@pytest.mark.parametrize("dim", [2, 3])
def test_compiled_evaluation_equals_the_reference_path(dim, monkeypatch, caplog):
    """Energies, forces (stress in 3D) and grades along an MD-like path: compiled kernels = numpy/gudhi/torch path;
    two threads give the numbers of one; without numba, one warning line.
    """
    from pdmd.domain import fit_domain
    from pdmd.models.local import compiled

    frame = random_packing(60 if dim == 2 else 48, dim, seed=11)
    rng = np.random.default_rng(2)
    velocity = np.zeros_like(frame.positions)
    velocity[:, :dim] = rng.normal(0.0, 0.02, (frame.n_atoms, dim))
    results = []
    domain = fit_domain(random_model(dim).features(frame))  # one domain (its fit is sensitive to rounding)
    for on in (True, False):
        compiled.use_compiled(on)
        try:
            model = random_model(dim)
            model.domain = domain
            results.append([model.evaluate(moved(frame, frame.positions + k * velocity), stress=dim == 3)
                            for k in range(8)])  # fmt: skip
        finally:
            compiled.use_compiled(True)
    compiled.set_threads(2)  # chunks of atoms on two threads: the same numbers
    try:
        model = random_model(dim)
        model.domain = domain
        two = model.evaluate(moved(frame, frame.positions + 7 * velocity), stress=dim == 3)
    finally:
        compiled.set_threads(1)
    assert two.energy == results[0][7].energy and np.array_equal(two.forces, results[0][7].forces)
    for a, b in zip(*results):
        assert abs(a.energy - b.energy) < 1e-10 and np.abs(a.forces - b.forces).max() < 1e-10
        assert np.abs(a.extrapolation - b.extrapolation).max() < 1e-9
        if dim == 3:
            assert np.abs(a.stress - b.stress).max() < 1e-12
    monkeypatch.setattr(compiled, "numba", None)
    monkeypatch.setitem(compiled._state, "warned", False)
    assert not compiled.compiled_available() and not compiled.compiled_available()
    assert [r.message for r in caplog.records if "numba" in r.message] == [
        "numba is not installed: pd-local runs without its compiled kernels (slower): pip install numba"
    ]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind", ["random", "crystal", "crystal-rattled"])
def test_compiled_lower_hulls_give_qhulls_triangulations(kind, dim):
    """The compiled lower hulls of the lifted local sets (2D: every triple tested; 3D: gift wrapping) are qhull's
    tops; degenerate sets (a perfect lattice's co-spherical points) go to qhull, so they are triangulated as
    before."""
    from ase.build import bulk, graphene

    from pdmd.models.local import compiled
    from pdmd.models.local.triangulation import _lower_hulls_2d, _lower_hulls_3d, regular_tops

    if kind == "random":
        frame = random_packing(200 if dim == 2 else 64, dim, seed=5)
    else:
        lattice = graphene(a=2.46, size=(6, 6, 1), vacuum=None) if dim == 2 else bulk("C", "diamond", 3.567) * 2
        shift = np.random.default_rng(1).normal(size=(len(lattice), 3)) * [1, 1, 1 if dim == 3 else 0]
        pos = lattice.positions + (0.05 if kind == "crystal-rattled" else 0.0) * shift
        cell = np.array(lattice.cell)
        if dim == 2:
            cell = np.diag([*np.diag(cell)[:2], 20.0]) + np.triu(cell, 1)
        frame = Frame(pos, cell, lattice.numbers, (True, True, dim == 3))
    cutoff, inner = (4.0, 3.0) if dim == 2 else (3.9, 2.8)
    nb = neighbourhoods(frame, dim, cutoff)
    rel = nb.relative(frame.positions)
    entry = entry_values(torch.from_numpy((rel**2).sum(1)), inner, cutoff - 0.3 * (dim == 3), 8.0).numpy()
    tops = []
    for on in (True, False):
        compiled.use_compiled(on)
        try:
            t = regular_tops(rel, entry, nb.start, dim)
            tops.append(t[np.lexsort(t.T[::-1])])  # each path lists an atom's tops in its own order
        finally:
            compiled.use_compiled(True)
    assert len(tops[0]) > frame.n_atoms and np.array_equal(tops[0], tops[1])
    atoms = np.arange(frame.n_atoms)
    n_max = int(np.diff(nb.start).max())
    degenerate = np.zeros(len(atoms), np.bool_)
    kernel, room = (_lower_hulls_2d, 2) if dim == 2 else (_lower_hulls_3d, 12)
    hulls = np.empty((len(atoms), room * n_max, dim + 1), np.int64)
    kernel(0, len(atoms), rel, entry, nb.start.astype(np.int64), atoms, hulls, np.zeros_like(atoms), degenerate)
    assert degenerate.all() if kind == "crystal" else not degenerate.any()  # qhull only for the perfect lattice


def test_stress_matches_finite_differences_of_strained_cells(tmp_path):
    """3D periodic: ASE stress (autograd dE/dε / V) vs central differences of strained cells; 2D refuses."""
    from pdmd.api import PDModel
    from pdmd.calculator import PDPotential

    frame = random_packing(40, 3, seed=8)
    skew = np.array([[0, 0.4, 0], [0.3, 0, 0], [0, 0, 0]])  # a triclinic cell
    frame = Frame(frame.positions, frame.cell + skew, frame.numbers, frame.pbc)
    model = random_model(3)
    _, _, stress = model.energy_forces_stress(frame)
    volume = abs(np.linalg.det(frame.cell))
    h = 1e-5
    worst = 0.0
    for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        energies = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += sgn * h / (1 if a == b else 2)
            eps[b, a] += 0 if a == b else sgn * h / 2
            deform = np.eye(3) + eps
            energies.append(model.energy_and_forces(moved(frame, frame.positions @ deform.T, frame.cell @ deform.T))[0])
        worst = max(worst, abs((energies[0] - energies[1]) / (2 * h * volume) - stress[v]))
    print(f"3D stress {np.round(stress, 5)} eV/Å³; max |autograd - finite difference| {worst:.1e} eV/Å³")
    assert np.abs(stress).max() > 1e-4
    assert worst < 3e-8
    atoms = frame.to_ase()
    atoms.calc = PDPotential(PDModel(model, tmp_path))
    np.testing.assert_allclose(atoms.get_stress(), stress, rtol=0, atol=1e-12)
    from pdmd.errors import InputError

    with pytest.raises(InputError, match="3D pd-local model"):
        random_model(2).energy_forces_stress(random_packing(20, 2, seed=9))


# -- data with forces (fixtures local_runs / agr_store / trained_local in conftest.py), training, MD --
def test_snapshots_store_forces_and_recompute_matches(agr_store, tmp_path):
    """Melt-quench snapshots carry LAMMPS forces; the single-point recompute gives the same forces."""
    import shutil

    from pdmd.pipeline import add_forces
    from pdmd.store.datastore import DataStore

    store = DataStore(agr_store)
    docs = list(store.iter_structures())
    assert docs and all("forces" in d["files"] for d in docs)
    copy = tmp_path / "copy"
    shutil.copytree(agr_store / "structures", copy / "structures")
    for path in (copy / "structures").glob("*/*.forces.npz"):
        path.unlink()
    for path in (copy / "structures").glob("*/*.json"):  # as data written before forces were stored
        from pdmd.files import read_json, write_json_atomic

        doc = read_json(path)
        doc["files"].pop("forces")
        write_json_atomic(path, doc)
    counts = add_forces(copy)
    assert counts["added"] == len(docs) and counts["mismatched"] == 0, counts
    again = DataStore(copy)
    worst = 0.0
    for doc in again.iter_structures():
        ref = store.load_forces(next(d for d in docs if d["_id"] == doc["_id"]))
        worst = max(worst, float(np.abs(again.load_forces(doc) - ref).max()))
    match = counts["max_energy_difference_eV_per_atom"]
    print(f"recomputed vs dumped forces: max |Δ| {worst:.1e} eV/Å; energy match {match:.1e} eV/atom")
    assert worst < 1e-4
    assert add_forces(copy)["present"] == len(docs)


def test_a_stored_run_is_reused_only_with_the_same_melt_quench_settings(agr_store, tmp_path):
    """Run ids name system, size, seed and rate; a rerun with another timestep must not reuse the stored run."""
    from dataclasses import replace

    from pdmd.errors import InputError
    from pdmd.pipeline import melt_quench_to_store
    from pdmd.store.datastore import DataStore

    store = DataStore(agr_store)
    again = melt_quench_to_store(LOCAL_RUNS[0], store, tmp_path / "work", omp_threads=1)
    assert again["reused"] and again["run_id"] == LOCAL_RUNS[0].run_id
    with pytest.raises(InputError, match=r"timestep_fs: stored 1\.0, asked 0\.5.*new data folder"):
        melt_quench_to_store(replace(LOCAL_RUNS[0], timestep_fs=0.5), store, tmp_path / "work", omp_threads=1)


def test_trained_model_beats_mean_predictor(trained_local):
    _, card = trained_local
    m = card["metrics"]
    print({k: round(v, 4) for k, v in m.items() if isinstance(v, float)})
    assert m["test_rmse_meV_per_atom"] < 0.7 * m["mean_predictor_test_rmse_meV_per_atom"]
    assert m["test_force_rmse_eV_per_A"] < 0.85 * m["test_mean_predictor_force_rmse_eV_per_A"]
    assert card["model_kind"] == "pd-local"
    from pdmd.errors import InputError
    from pdmd.models.local.model import load_local_model
    from pdmd.models.local.train import LocalTrainConfig

    assert card["train_config"]["precision"] == "fp32"  # trained in fp32 (the default) ...
    net = load_local_model(trained_local[0]).net
    assert all(t.dtype == torch.float64 for t in [*net.parameters(), *net.buffers()])  # ... saved and used in fp64
    with pytest.raises(InputError, match="precision"):
        LocalTrainConfig(precision="fp16")


def test_nve_conserves_energy_and_md_writes_trajectory(trained_local, agr_store, tmp_path):
    from ase.io import read, write

    from pdmd.dynamics.ase_engine import run_md_file
    from pdmd.store.datastore import DataStore

    folder, _ = trained_local
    store = DataStore(agr_store)
    final = next(d for d in store.run_structures(LOCAL_RUNS[0].run_id) if d["kind"] == "final")
    structure = tmp_path / "final.extxyz"
    write(structure, store.load_frame(final).to_ase())
    out = tmp_path / "nve.extxyz"
    # the small test model's minimum is far from Tersoff's: the cell heats to ~900 K, a demanding NVE test
    result = run_md_file(folder, structure, out, temperature_K=300.0, steps=200, timestep_fs=0.25, ensemble="nve",
                         every=10)  # fmt: skip
    drift = result.drift_meV_per_atom_per_ps()
    dev = result.max_deviation_meV_per_atom()
    swing = float(np.ptp(result.potential_eV_per_atom) * 1000)
    print(f"NVE 60 atoms, 200 × 0.25 fs: drift {drift:.3f} meV/atom/ps, max |ΔE_tot| {dev:.3f} meV/atom "
          f"(potential energy swings {swing:.1f}), T {result.temperature_K.mean():.0f} K, "
          f"{result.ms_per_step:.1f} ms/step")  # fmt: skip
    assert dev < 2.0
    assert dev < 0.05 * swing
    traj = read(out, index=":")
    assert len(traj) == 21
    assert all("energy" in a.calc.results and a.calc.results["forces"].shape == (60, 3) for a in traj)
    assert np.allclose([a.positions[:, 2] for a in traj], 0.0)


def test_md_with_the_reference_potential_and_a_blow_up_keeps_what_ran(agr_store, tmp_path):
    """`pdmd md tersoff1989 ...` runs the same MD with LAMMPS; a failing step is one line, frames kept."""
    from ase.calculators.calculator import Calculator, all_changes
    from ase.io import read, write

    from pdmd.calculator import ReferencePotential
    from pdmd.dynamics.ase_engine import MDResult, run_md, run_md_file
    from pdmd.errors import SimulationError
    from pdmd.store.datastore import DataStore

    store = DataStore(agr_store)
    final = next(d for d in store.run_structures(LOCAL_RUNS[0].run_id) if d["kind"] == "final")
    structure = tmp_path / "final.extxyz"
    write(structure, store.load_frame(final).to_ase())
    result = run_md_file("tersoff1989", structure, tmp_path / "ref.extxyz", temperature_K=300.0, steps=100,
                         timestep_fs=0.25, ensemble="nve", every=10)  # fmt: skip
    dev = result.max_deviation_meV_per_atom()
    swing = float(np.ptp(result.potential_eV_per_atom) * 1000)
    print(f"Tersoff NVE 60 atoms, 100 × 0.25 fs: max |ΔE_tot| {dev:.3f} meV/atom, potential swings {swing:.1f}")
    assert len(read(tmp_path / "ref.extxyz", index=":")) == 11 and dev < 0.05 * swing
    logged = MDResult.from_csv(result.log_csv)  # the CSV log holds the same series (benchmarks/md_energy_compare.py)
    assert logged.drift_meV_per_atom_per_ps() == pytest.approx(result.drift_meV_per_atom_per_ps(), rel=1e-6, abs=1e-9)
    assert (tmp_path / "ref.png").stat().st_size > 0  # the energy/temperature plot beside the CSV

    far = read(structure)  # ASE MD never wraps: an atom three cells away is the same structure for LAMMPS
    far.calc = ReferencePotential("tersoff1989", 2)
    e_in = far.get_potential_energy()
    far.positions[0, :2] += 3 * far.cell[0, :2]
    assert far.get_potential_energy() == pytest.approx(e_in, abs=1e-8)

    class FailsOnFourthCall(ReferencePotential):
        calls = 0

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
            type(self).calls += 1
            if self.calls == 4:
                raise RuntimeError("ERROR: Lost atoms: original 60 current 59\nmore LAMMPS text")
            super().calculate(atoms, properties, system_changes)

    assert issubclass(FailsOnFourthCall, Calculator)
    atoms = read(structure)
    out = tmp_path / "blown.extxyz"
    with pytest.raises(SimulationError) as err:
        run_md(FailsOnFourthCall("tersoff1989", 2), atoms, dim=2, temperature_K=300.0, steps=50, timestep_fs=0.5,
               ensemble="nve", every=1, trajectory=out)  # fmt: skip
    message = str(err.value)
    assert "\n" not in message and "Lost atoms" in message and "--timestep-fs" in message, message
    assert len(read(out, index=":")) == 3 and len(np.loadtxt(out.with_suffix(".csv"), delimiter=",", skiprows=1)) == 3


def test_forces_are_read_from_a_labelled_file_whatever_the_wrapping(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from pdmd.models.local.train import forces_from_file

    frames = [random_packing(30, 2, seed=s) for s in (7, 8)]
    images = []
    for k, f in enumerate(frames):
        atoms = f.to_ase()
        forces = np.full((f.n_atoms, 3), float(k + 1))
        atoms.calc = SinglePointCalculator(atoms, energy=-7.0 * f.n_atoms, forces=forces)
        images.append(atoms)
    write(tmp_path / "labelled.extxyz", images)
    shifted = frames[1].positions.copy()
    shifted[:, 0] += frames[1].cell[0, 0]  # the same structure, one lattice vector away
    other = random_packing(30, 2, seed=9)
    got = forces_from_file(tmp_path / "labelled.extxyz", [moved(frames[1], shifted), frames[0], other], 2)
    assert np.all(got[0] == 2.0) and np.all(got[1] == 1.0) and got[2] is None


@pytest.mark.parametrize("descriptor", [None, SYMMETRY_ONLY, PD_ONLY], ids=["default", "symmetry-only", "pd-only"])
def test_sparse_neighbourhoods_give_finite_results(descriptor):
    """A lone atom, a dimer (no angle, no ring) and a right-angle trimer: finite energies and forces, no crash."""
    model = random_model(3, descriptor=descriptor)
    box = np.diag([30.0, 30.0, 30.0])
    for positions in ([[5.0, 5, 5]], [[5.0, 5, 5], [6.4, 5, 5]], [[5.0, 5, 5], [6.4, 5, 5], [5.0, 6.4, 5]]):
        pos = np.asarray(positions)
        energy, forces = model.energy_and_forces(Frame(pos, box, np.full(len(pos), 6), (False, False, False)))
        assert np.isfinite(energy) and np.isfinite(forces).all()
        assert np.abs(forces.sum(0)).max() < 1e-10  # no net force on an isolated cluster


def test_descriptor_settings_follow_the_cutoff_and_refuse_bad_zetas():
    from pdmd.errors import InputError

    short = LocalDescriptorConfig.default(2, {"cutoff_A": 2.9, "inner_A": 2.0})
    assert short.radial_A == pytest.approx((0.9, 2.5, RADIAL_N))  # 0.4 Å inside the changed cutoff
    assert short.n_features == LocalDescriptorConfig.default(2).n_features
    assert LocalDescriptorConfig.default(2, {"radial_A": [1.0, 3.0, 8]}).radial_A == (1.0, 3.0, 8)
    for zetas in ([], [0.5], [0]):
        with pytest.raises(InputError, match="angular_zetas must be integers"):
            LocalDescriptorConfig.default(2, {"angular_zetas": zetas})
    with pytest.raises(InputError, match="radial_width"):
        LocalDescriptorConfig.default(2, {"radial_width": 0})
    with pytest.raises(InputError, match="persistence_ramp_A2"):
        LocalDescriptorConfig.default(2, {"persistence_ramp_A2": 0.0})
    for grid in ({"h0_grid": [1.0, 1.0, 1]}, {"angular_shells_A": [2.4, 1.2, 7]}, {"radial_A": [0.9, 3.6, 0]}):
        with pytest.raises(InputError, match="Gaussian grid"):
            LocalDescriptorConfig.default(2, grid)


def test_standardization_moments_streamed_over_chunks_equal_the_whole_batch():
    """Training standardizes from a few structures at a time (paper-scale sets do not fit in memory at once)."""
    from pdmd.models.local.train import feature_moments, prepare

    cfg = LocalDescriptorConfig.default(2)
    data = prepare([random_packing(40, 2, seed=s) for s in range(5)], np.zeros(5), None, cfg)
    mean, std = feature_moments(data, np.arange(5), cfg, chunk=2)
    topo, pos, _, _ = data.batch(np.arange(5))
    x = atom_features(pos.detach(), topo, cfg)
    assert torch.allclose(mean, x.mean(0), atol=1e-12) and torch.allclose(std, x.std(0), atol=1e-12)
