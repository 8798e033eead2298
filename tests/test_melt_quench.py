import numpy as np
import pytest

from pdmd.errors import InputError, MeltQuenchError
from pdmd.md.lammps_melt_quench import run_melt_quench
from pdmd.md.network import network_stats
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.structure import Frame

GRAPHENE_TERSOFF_RELAXED_eV = -7.39  # Tersoff 1989 graphene at its own lattice constant (2.53 Å)


def run(tmp_path, **kw):
    snaps = []
    proto = MeltQuenchProtocol(
        **{"n_atoms": 120, "melt_ps": 1.0, "hold_ps": 0.2, "cooling_rate_K_per_ps": 1500.0, "seed": 5, **kw}
    )
    result = run_melt_quench(proto, tmp_path / proto.run_id, snaps.append, omp_threads=1)
    return proto, result, snaps


def test_quench_gives_disordered_sheet_between_crystal_and_liquid(tmp_path):
    _, result, snaps = run(tmp_path, snapshot_temperatures_K=(6000.0, 1000.0))
    liquid, cool, final = snaps
    assert [s.kind for s in snaps] == ["intermediate", "intermediate", "final"]
    assert liquid.setpoint_K == 6000.0 and liquid.temperature_K > 3000
    assert GRAPHENE_TERSOFF_RELAXED_eV < final.energy_eV_per_atom < liquid.energy_eV_per_atom
    assert np.all(final.frame.positions[:, 2] == 0)
    stats = network_stats(final.frame)
    assert stats.ring_fractions.get("6", 0) < 0.9  # not crystalline
    assert stats.threefold_fraction > 0.8  # a network, not a liquid or chains
    assert result.n_snapshots == 3


def test_seeds_differ_and_same_seed_reproduces(tmp_path):
    _, _, a = run(tmp_path / "a", seed=7)
    _, _, b = run(tmp_path / "b", seed=7)
    _, _, c = run(tmp_path / "c", seed=8)
    np.testing.assert_allclose(a[-1].frame.positions, b[-1].frame.positions)
    assert not np.allclose(a[-1].frame.positions, c[-1].frame.positions)


def test_default_protocol_makes_amorphous_graphene(tmp_path):
    """680 atoms, default melt/quench/relax at the paper plan's middle cooling rate."""
    snaps = []
    proto = MeltQuenchProtocol(seed=3, cooling_rate_K_per_ps=500.0)
    run_melt_quench(proto, tmp_path, snaps.append)
    stats = network_stats(snaps[-1].frame)
    assert stats.threefold_fraction >= 0.95
    assert sum(stats.ring_fractions.get(k, 0) for k in ("5", "6", "7")) >= 0.9
    assert 1.38 < stats.mean_bond_A < 1.48


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("cooling_rate_K_per_ps", -10.0, "cooling_rate_K_per_ps must be a positive"),
        ("n_atoms", 0, "n_atoms must be an integer >= 3"),
        ("T_final_K", 7000.0, "must be below T_melt_K"),
        ("snapshot_temperatures_K", (9000.0,), "outside the quench range"),
    ],
)
def test_bad_protocol_parameters(field, value, match):
    params = {"seed": 1, "cooling_rate_K_per_ps": 100.0, field: value}
    with pytest.raises(InputError, match=match):
        MeltQuenchProtocol.from_dict(params)
    with pytest.raises(InputError, match="unknown melt-quench parameter"):
        MeltQuenchProtocol.from_dict({"seed": 1, "cooling_rate_K_per_ps": 1.0, "cooling_rate": 5})


def test_blown_up_run_reports_lammps_reason(tmp_path):
    with pytest.raises(MeltQuenchError, match="LAMMPS failed .*(Lost atoms|lost|Out of range)"):
        run(tmp_path, T_melt_K=5.0e6, timestep_fs=2.0)


def test_graphene_network_stats():
    a, c = 1.42, np.sqrt(3) * 1.42
    base = np.array([[0, 0, 0], [a, 0, 0], [1.5 * a, c / 2, 0], [2.5 * a, c / 2, 0]])
    pos = np.concatenate([base + [3 * a * i, c * j, 0] for i in range(4) for j in range(6)])
    stats = network_stats(Frame(pos, np.diag([12 * a, 6 * c, 10]), np.full(len(pos), 6), (True, True, False)))
    assert stats.coordination_fractions == {"3": 1.0} and stats.ring_fractions == {"6": 1.0}
    assert stats.mean_bond_A == pytest.approx(1.42)
