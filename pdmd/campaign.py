"""Data-set plans: which melt-quench runs make up the paper-scale and demo aGr and aC data.

A plan is a deterministic list of `MeltQuenchProtocol`s (seeded), used both to generate the
FireWorks YAML in `workflows/` and by `pdmd campaign` to fill the store directly.

Paper scale (arXiv:2206.13727: 1,050 final states + 780 intermediate snapshots, 680 atoms):
1,050 runs with cooling rates log-uniform in [100, 2000] K/ps; 260 of them also keep 3
intermediate snapshots at set-points drawn uniformly in [300, 3000] K (780 in all).
Validation: 20 runs of 2,720 atoms (4× the cell area), same rates and protocol, final states
plus 2 intermediates each.
Demo: 40 runs with rates in [300, 2000] K/ps, each keeping the final state and 9 intermediates,
so 400 structures in about two minutes of MD; validation 4 runs of 2,720 atoms.
Small sets (what users often bring: relaxed sheets only, energies spread by cooling rate): agr-small200 /
agr-small400, 175 runs of 200 / 400 atoms with rates log-uniform in [150, 3000] K/ps, final states only.

aC (arXiv:2206.13727: 48 AIMD runs of 216 atoms at 2.0-3.4 g/cm³, 12,960 snapshots): 48 runs,
6 at each of the 8 densities 2.0, 2.2, ..., 3.4 g/cm³, rates log-uniform in [250, 2000] K/ps,
each keeping 269 evenly spaced quench snapshots + the relaxed final state (12,960 in all);
validation: one 512-atom run per density, 20 snapshots each. Protocol: 3 ps at 5000 K, quench to
300 K, 1 ps hold, 0.5 fs steps (`AC_PROTOCOL`). Demo: 16 runs (2 per density), 30 structures each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol

if TYPE_CHECKING:
    from pdmd.descriptor.spec import DescriptorSpec


@dataclass(frozen=True)
class PlanSpec:
    """Parameters of a plan (counts, rate range K/ps, snapshot temperature range K, sizes)."""

    name: str
    n_runs: int
    rate_range_K_per_ps: tuple[float, float]
    n_runs_with_snapshots: int
    snapshots_per_run: int
    snapshot_range_K: tuple[float, float] = (300.0, 3000.0)
    n_atoms: int = 680
    n_validation_runs: int = 0
    validation_snapshots_per_run: int = 2
    validation_n_atoms: int = 2720
    seed: int = 2022
    protocol_overrides: dict = field(default_factory=dict)
    system: str = "agr"
    densities_g_cm3: tuple[float, ...] = ()
    n_quench_snapshots: int = 0
    validation_n_quench_snapshots: int = 0
    range_A2: tuple[float, float] = (0.0, 4.0)


AC_PROTOCOL = {"T_melt_K": 5000.0, "melt_ps": 3.0, "hold_ps": 1.0, "timestep_fs": 0.5, "tdamp_fs": 50.0}
"""Melt-quench settings of the aC plans (the paper gives none; these follow common AIMD practice)."""
AC_DENSITIES_G_CM3 = tuple(round(2.0 + 0.2 * i, 1) for i in range(8))


def _ac_plan(name: str, n_runs: int, **counts: int) -> PlanSpec:
    """An aC plan: 216-atom cells at `AC_DENSITIES_G_CM3`, 512-atom validation cells, `AC_PROTOCOL`."""
    return PlanSpec(
        name,
        n_runs,
        (250.0, 2000.0),
        0,
        0,
        n_atoms=216,
        validation_n_atoms=512,
        protocol_overrides=AC_PROTOCOL,
        system="ac",
        densities_g_cm3=AC_DENSITIES_G_CM3,
        range_A2=(0.0, 8.0),
        **counts,
    )


PLANS: dict[str, PlanSpec] = {
    "agr-paper": PlanSpec("agr-paper", 1050, (100.0, 2000.0), 260, 3, n_validation_runs=20),
    "agr-demo": PlanSpec("agr-demo", 40, (300.0, 2000.0), 40, 9, n_validation_runs=4),
    "ac-paper": _ac_plan("ac-paper", 48, n_validation_runs=8, n_quench_snapshots=269, validation_n_quench_snapshots=19),
    # ac-demo's seed is not ac-paper's: with the same seed and rates their first runs shared run ids
    "ac-demo": _ac_plan(
        "ac-demo", 16, n_validation_runs=4, n_quench_snapshots=29, validation_n_quench_snapshots=9, seed=2023
    ),
    "agr-small200": PlanSpec("agr-small200", 175, (150.0, 3000.0), 0, 0, n_atoms=200, seed=2200),
    "agr-small400": PlanSpec("agr-small400", 175, (150.0, 3000.0), 0, 0, n_atoms=400, seed=2400),
    "agr-tiny": PlanSpec(
        "agr-tiny",
        3,
        (1500.0, 2000.0),
        3,
        2,
        n_atoms=120,
        n_validation_runs=1,
        validation_n_atoms=240,
        protocol_overrides={"melt_ps": 1.0, "hold_ps": 0.2},
    ),
}


def _runs(
    spec: PlanSpec,
    n_runs: int,
    n_with: int,
    per_run: int,
    n_atoms: int,
    seed_offset: int,
    rng: np.random.Generator,
    n_quench_snapshots: int,
) -> list[MeltQuenchProtocol]:
    lo, hi = spec.rate_range_K_per_ps
    rates = np.exp(rng.uniform(np.log(lo), np.log(hi), n_runs))
    with_snaps = set(rng.choice(n_runs, size=min(n_with, n_runs), replace=False).tolist())
    out = []
    for i, rate in enumerate(rates):
        temps = ()
        if i in with_snaps:
            temps = tuple(sorted(float(round(t, 1)) for t in rng.uniform(*spec.snapshot_range_K, per_run)))
        density = {}
        if spec.densities_g_cm3:  # spread evenly over the densities (validation: one run per density)
            density = {"density_g_cm3": spec.densities_g_cm3[(i * len(spec.densities_g_cm3)) // n_runs]}
        out.append(
            MeltQuenchProtocol(
                seed=seed_offset + i + 1,
                cooling_rate_K_per_ps=float(round(rate, 2)),
                n_atoms=n_atoms,
                snapshot_temperatures_K=temps,
                system=spec.system,
                n_quench_snapshots=n_quench_snapshots,
                **density,
                **spec.protocol_overrides,
            )
        )
    return out


def plan_descriptor(name: str, backend: str | None = None) -> DescriptorSpec:
    """The descriptor setting of a plan's PD images: its system's defaults and window (backend: by dimension)."""
    from pdmd.descriptor.spec import DescriptorSpec

    if name not in PLANS:
        raise InputError(f"unknown plan {name!r}; choose one of {sorted(PLANS)}")
    return DescriptorSpec.for_system(PLANS[name].system, range_A2=PLANS[name].range_A2, backend=backend)


def plan_runs(name: str) -> tuple[list[MeltQuenchProtocol], list[MeltQuenchProtocol]]:
    """(training runs, large-cell validation runs) of a named plan."""
    if name not in PLANS:
        raise InputError(f"unknown plan {name!r}; choose one of {sorted(PLANS)}")
    spec = PLANS[name]
    rng = np.random.default_rng(spec.seed)
    train = _runs(
        spec,
        spec.n_runs,
        spec.n_runs_with_snapshots,
        spec.snapshots_per_run,
        spec.n_atoms,
        0,
        rng,
        spec.n_quench_snapshots,
    )
    valid = _runs(
        spec,
        spec.n_validation_runs,
        spec.n_validation_runs,
        spec.validation_snapshots_per_run,
        spec.validation_n_atoms,
        100_000,
        rng,
        spec.validation_n_quench_snapshots,
    )
    return train, valid
