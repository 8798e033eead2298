"""Melt-quench protocols: validated parameters with units in their names."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from pdmd.errors import InputError

GRAPHENE_DENSITY_PER_A2 = 2.0 / (3.0 * math.sqrt(3.0) / 2.0 * 1.42**2)
"""Areal number density of graphene with a 1.42 Å bond (atoms/Å²)."""


@dataclass(frozen=True)
class PotentialSpec:
    """A LAMMPS interatomic potential: pair style, parameter file and the element it maps."""

    name: str
    pair_style: str
    file: str
    element: str
    reference: str


POTENTIALS: dict[str, PotentialSpec] = {
    "tersoff1989": PotentialSpec(
        name="tersoff1989",
        pair_style="tersoff",
        file="SiC.tersoff",
        element="C",
        reference="J. Tersoff, Phys. Rev. B 39, 5566 (1989): C entry of LAMMPS' SiC.tersoff",
    ),
}


@dataclass(frozen=True)
class MeltQuenchProtocol:
    """One 2D melt-quench run: random gas -> liquid at T_melt_K -> linear quench -> relaxation.

    Intermediate snapshots are kept at the set-point temperatures in
    `snapshot_temperatures_K` (K, between T_final_K and T_melt_K); the relaxed final state is
    always kept.
    """

    seed: int
    cooling_rate_K_per_ps: float
    n_atoms: int = 680
    density_per_A2: float = GRAPHENE_DENSITY_PER_A2
    T_melt_K: float = 6000.0
    T_final_K: float = 300.0
    melt_ps: float = 2.0
    hold_ps: float = 1.0
    timestep_fs: float = 1.0
    tdamp_fs: float = 100.0
    snapshot_temperatures_K: tuple[float, ...] = ()
    potential: str = "tersoff1989"
    system: str = "agr"

    def __post_init__(self) -> None:
        positive = ("cooling_rate_K_per_ps", "density_per_A2", "T_melt_K", "T_final_K", "timestep_fs", "tdamp_fs")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"protocol field {name} must be a positive number, got {value!r}")
        for name in ("melt_ps", "hold_ps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"protocol field {name} must be >= 0 ps, got {value!r}")
        if not isinstance(self.n_atoms, int) or self.n_atoms < 3:
            raise InputError(f"protocol field n_atoms must be an integer >= 3, got {self.n_atoms!r}")
        if not isinstance(self.seed, int) or not 0 < self.seed < 900_000_000:
            raise InputError(f"protocol field seed must be an integer in 1..899999999 (LAMMPS), got {self.seed!r}")
        if self.T_final_K >= self.T_melt_K:
            raise InputError(f"T_final_K ({self.T_final_K}) must be below T_melt_K ({self.T_melt_K})")
        if self.timestep_fs > 2.0:
            raise InputError(f"timestep_fs={self.timestep_fs} is too long for carbon (use <= 2 fs)")
        for T in self.snapshot_temperatures_K:
            if not self.T_final_K <= T <= self.T_melt_K:
                raise InputError(
                    f"snapshot temperature {T} K lies outside the quench range [{self.T_final_K}, {self.T_melt_K}] K"
                )
        if self.potential not in POTENTIALS:
            raise InputError(f"unknown potential {self.potential!r}; choose one of {sorted(POTENTIALS)}")
        if self.system != "agr":
            raise InputError(f"system {self.system!r} has no LAMMPS melt-quench template yet (only 'agr')")

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> MeltQuenchProtocol:
        """Build from a plain dict (workflow YAML); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InputError(f"unknown melt-quench parameter(s) {unknown}; known: {sorted(known)}")
        values = dict(params)
        if "snapshot_temperatures_K" in values:
            values["snapshot_temperatures_K"] = tuple(float(t) for t in values["snapshot_temperatures_K"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form stored as provenance (tuples become lists)."""
        d = asdict(self)
        d["snapshot_temperatures_K"] = list(self.snapshot_temperatures_K)
        return d

    @property
    def potential_spec(self) -> PotentialSpec:
        return POTENTIALS[self.potential]

    @property
    def run_id(self) -> str:
        """Stable name of the run: system, size, seed and cooling rate."""
        return f"{self.system}-n{self.n_atoms}-s{self.seed}-r{self.cooling_rate_K_per_ps:g}"

    @property
    def box_length_A(self) -> float:
        """Side of the square periodic cell (Å)."""
        return math.sqrt(self.n_atoms / self.density_per_A2)

    @property
    def quench_steps(self) -> int:
        return round((self.T_melt_K - self.T_final_K) / self.cooling_rate_K_per_ps / (self.timestep_fs / 1000.0))

    def setpoint_K(self, quench_step: int) -> float:
        """Thermostat set-point (K) at a step counted from the start of the quench."""
        frac = min(max(quench_step / max(self.quench_steps, 1), 0.0), 1.0)
        return self.T_melt_K + frac * (self.T_final_K - self.T_melt_K)

    def snapshot_quench_steps(self, every: int) -> dict[int, float]:
        """Quench steps (multiples of `every`) nearest to each snapshot temperature -> target K."""
        out: dict[int, float] = {}
        for T in self.snapshot_temperatures_K:
            exact = (self.T_melt_K - T) / (self.T_melt_K - self.T_final_K) * self.quench_steps
            out[int(round(exact / every)) * every] = T
        return out
