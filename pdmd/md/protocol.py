"""Melt-quench protocols: validated parameters with units in their names."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from pdmd.errors import InputError
from pdmd.systems import MD_SYSTEMS, SYSTEM_DIM

GRAPHENE_DENSITY_PER_A2 = 2.0 / (3.0 * math.sqrt(3.0) / 2.0 * 1.42**2)
"""Areal number density of graphene with a 1.42 Å bond (atoms/Å²)."""

AC_DENSITY_RANGE_G_CM3 = (1.0, 3.6)
"""Densities (g/cm³) accepted for amorphous carbon: below is a foam, above is denser than diamond (3.52)."""


@dataclass(frozen=True)
class PotentialSpec:
    """What labels the energies: a LAMMPS potential (pair style, parameter files, the first is `file`)
    or DFT with VASP (`engine` "vasp", no files: the settings are the VASP templates).
    """

    name: str
    pair_style: str
    file: str
    reference: str
    element: str = "C"
    extra_files: tuple[str, ...] = ()
    engine: str = "lammps"

    @property
    def files(self) -> tuple[str, ...]:
        return (self.file, *self.extra_files) if self.file else ()


_TERSOFF = "J. Tersoff, Phys. Rev. B 39, 5566 (1989): C entry of LAMMPS' SiC.tersoff"
_EDIP = "EDIP, C-C-C entry of LAMMPS' SiC.edip (C. Jiang, D. Morgan, I. Szlufarska, Phys. Rev. B 86, 144118 (2012))"
_SNAP = "quadratic SNAP carbon fitted to DFT (J. T. Willman et al., Phys. Rev. B 106, L180101 (2022))"
_SNAP_FILE = "C_SNAP_2021.10.15.quadratic.snap"
_AIREBO = "AIREBO, C of LAMMPS' CH.airebo (S. J. Stuart, A. B. Tutein, J. A. Harrison, J. Chem. Phys. 112, 6472 (2000))"
_VASP = "DFT (PBE, PAW) ab-initio MD with VASP, as in the paper; settings in vasp_templates/"

POTENTIALS: dict[str, PotentialSpec] = {
    spec.name: spec
    for spec in (
        PotentialSpec("tersoff1989", "tersoff", "SiC.tersoff", _TERSOFF),
        PotentialSpec("edip", "edip/multi", "SiC.edip", _EDIP),
        PotentialSpec("snap2021", "snap", f"{_SNAP_FILE}coeff", _SNAP, extra_files=(f"{_SNAP_FILE}param",)),
        PotentialSpec("airebo", "airebo 3.0 1 1", "CH.airebo", _AIREBO),
        PotentialSpec("vasp-pbe", "", "", _VASP, engine="vasp"),
    )
}


@dataclass(frozen=True)
class MeltQuenchProtocol:
    """One melt-quench run: random gas -> liquid at T_melt_K -> linear quench -> hold -> relaxation.

    system "agr": 2D sheet at `density_per_A2` (atoms/Å²); "ac": cubic 3D cell at
    `density_g_cm3`. Intermediate snapshots are kept at the set-point temperatures in
    `snapshot_temperatures_K` (K, between T_final_K and T_melt_K) and at
    `n_quench_snapshots` evenly spaced quench steps; the relaxed final state is always kept.
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
    density_g_cm3: float = 0.0
    n_quench_snapshots: int = 0

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
        if self.system not in MD_SYSTEMS:
            raise InputError(f"unknown system {self.system!r}; choose one of {sorted(MD_SYSTEMS)}")
        if self.system == "ac":
            lo, hi = AC_DENSITY_RANGE_G_CM3
            if not (isinstance(self.density_g_cm3, (int, float)) and lo <= self.density_g_cm3 <= hi):
                raise InputError(
                    f"density_g_cm3={self.density_g_cm3!r} is outside the sane range {lo}-{hi} g/cm³ for amorphous "
                    "carbon (diamond is 3.52)"
                )
        if not isinstance(self.n_quench_snapshots, int) or self.n_quench_snapshots < 0:
            raise InputError(f"n_quench_snapshots must be an integer >= 0, got {self.n_quench_snapshots!r}")

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
    def dim(self) -> int:
        return SYSTEM_DIM[self.system]

    @property
    def run_id(self) -> str:
        """Stable name of the run: system, size, (density,) seed, cooling rate (and a non-default potential)."""
        density = f"-d{self.density_g_cm3:g}" if self.system == "ac" else ""
        potential = "" if self.potential == "tersoff1989" else f"-{self.potential}"
        return f"{self.system}-n{self.n_atoms}{density}-s{self.seed}-r{self.cooling_rate_K_per_ps:g}{potential}"

    @property
    def box_length_A(self) -> float:
        """Side of the square (agr) or cubic (ac) periodic cell (Å)."""
        if self.system == "ac":
            from pdmd.md.random_cell import cubic_cell_length_A

            return cubic_cell_length_A(self.n_atoms, self.density_g_cm3)
        return math.sqrt(self.n_atoms / self.density_per_A2)

    @property
    def quench_steps(self) -> int:
        return round((self.T_melt_K - self.T_final_K) / self.cooling_rate_K_per_ps / (self.timestep_fs / 1000.0))

    def setpoint_K(self, quench_step: int) -> float:
        """Thermostat set-point (K) at a step counted from the start of the quench."""
        frac = min(max(quench_step / max(self.quench_steps, 1), 0.0), 1.0)
        return self.T_melt_K + frac * (self.T_final_K - self.T_melt_K)

    def snapshot_quench_steps(self, every: int) -> dict[int, float]:
        """Quench steps (multiples of `every`) to keep -> set-point K: the listed temperatures and
        `n_quench_snapshots` evenly spaced steps (the last at the end of the quench).
        """
        out: dict[int, float] = {}
        for T in self.snapshot_temperatures_K:
            exact = (self.T_melt_K - T) / (self.T_melt_K - self.T_final_K) * self.quench_steps
            out[int(round(exact / every)) * every] = T
        for i in range(1, self.n_quench_snapshots + 1):
            step = int(round(i * self.quench_steps / self.n_quench_snapshots / every)) * every
            out.setdefault(step, self.setpoint_K(step))
        return out
