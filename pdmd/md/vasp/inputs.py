"""VASP inputs of the AIMD melt-quench, built with pymatgen from the templates in `vasp_templates/`.

The templates are data: `INCAR` (MD settings shared by every MD stage), `INCAR.relax` (the final
fixed-cell relaxation), `INCAR.static` (single points, `pdmd.md.vasp.single_point`; read only there),
`KPOINTS` and `POTCAR.spec.yaml` (element -> POTCAR symbol, functional).
The protocol (`MeltQuenchProtocol`) decides the stages; pdmd sets the tags that belong to it
(TEBEG, TEEND, NSW, POTIM), so the templates must not set them.

Stages: melt (T_melt_K for melt_ps), quench (linear ramp T_melt_K -> T_final_K at the cooling
rate; VASP ramps the Nosé-Hoover set-point linearly from TEBEG to TEEND over NSW steps), hold
(T_final_K for hold_ps) and relax (conjugate gradient at fixed cell, `relax_steps` ionic steps at most).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "vasp_templates"
PROTOCOL_TAGS = ("TEBEG", "TEEND", "NSW", "POTIM")
"""Tags pdmd sets from the protocol; a template that sets them is refused."""
REQUIRED_MD_TAGS = {"IBRION": 0, "ISYM": 0}
RELAX_STEPS = 200
"""Ionic steps of the final relaxation at most (VASP stops earlier at EDIFFG)."""


@dataclass(frozen=True)
class VaspTemplates:
    """The validated templates: INCARs as dicts of tags, the KPOINTS text and the POTCAR spec."""

    md_incar: dict
    relax_incar: dict
    kpoints_text: str
    functional: str
    potcar_symbols: dict[str, str]
    source: str


@dataclass(frozen=True)
class VaspStage:
    """One VASP run of the melt-quench: its name, INCAR tags, and the set-point ramp (K)."""

    name: str
    incar: dict
    nsw: int
    T_start_K: float
    T_end_K: float


def _read_incar(path: Path, managed: tuple[str, ...] = PROTOCOL_TAGS) -> dict:
    from pymatgen.io.vasp import Incar
    from pymatgen.io.vasp.inputs import BadIncarWarning

    if not path.is_file():
        raise InputError(f"VASP template {path} is missing")
    try:
        incar = Incar.from_file(path)
    except Exception as exc:
        raise InputError(f"VASP template {path} is not a valid INCAR: {exc}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BadIncarWarning)
        incar.check_params()
    bad = [str(w.message) for w in caught if issubclass(w.category, BadIncarWarning)]
    if bad:
        raise InputError(f"VASP template {path}: {'; '.join(bad)}")
    refused = sorted(set(incar) & set(managed))
    if refused:
        raise InputError(f"VASP template {path} sets {refused}: pdmd sets these")
    return dict(incar)


def load_templates(folder: str | Path | None = None) -> VaspTemplates:
    """Read and validate the VASP templates in `folder` (default: the packaged `vasp_templates/`)."""
    from pymatgen.io.vasp import Kpoints

    root = Path(folder) if folder else TEMPLATES_DIR
    md = _read_incar(root / "INCAR")
    for tag, value in REQUIRED_MD_TAGS.items():
        if md.get(tag) != value:
            raise InputError(f"VASP template {root / 'INCAR'}: {tag} must be {value} for AIMD (got {md.get(tag)!r})")
    if md.get("MDALGO", 0) in (0, 2) and "SMASS" in md and md["SMASS"] < 0:
        raise InputError(
            f"VASP template {root / 'INCAR'}: SMASS={md['SMASS']} is not a Nosé thermostat (NVT needs >= 0)"
        )
    relax = _read_incar(root / "INCAR.relax")
    if relax.get("IBRION") not in (1, 2, 3):
        raise InputError(f"VASP template {root / 'INCAR.relax'}: IBRION must be 1, 2 or 3 (a relaxation)")
    kpath = root / "KPOINTS"
    try:
        kpoints = Kpoints.from_file(kpath)
    except Exception as exc:
        raise InputError(f"VASP template {kpath} is not a valid KPOINTS file: {exc}") from exc
    spec_path = root / "POTCAR.spec.yaml"
    try:
        spec = yaml.safe_load(spec_path.read_text())
        functional, symbols = str(spec["functional"]), {str(k): str(v) for k, v in spec["symbols"].items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{spec_path}: needs 'functional' and 'symbols' (element: POTCAR symbol): {exc}") from exc
    return VaspTemplates(md, relax, str(kpoints), functional, symbols, str(root))


STATIC_TAGS = {"NSW": 0, "IBRION": -1}
"""What makes an INCAR a single point; pdmd sets them, a template may too."""


def load_static_incar(templates: VaspTemplates) -> dict:
    """The single-point settings of a template folder (`INCAR.static`), checked; InputError naming the fix."""
    path = Path(templates.source) / "INCAR.static"
    if not path.is_file():
        raise InputError(f"VASP single points need the template {path} (settings for NSW = 0): copy the packaged "
                         "vasp_templates/INCAR.static")  # fmt: skip
    incar = _read_incar(path, managed=tuple(t for t in PROTOCOL_TAGS if t not in STATIC_TAGS))
    wrong = {k: incar[k] for k, v in STATIC_TAGS.items() if k in incar and incar[k] != v}
    if wrong:
        raise InputError(f"VASP template {path}: {wrong} is not a single point (NSW must be 0 and IBRION -1, or unset)")
    return {**incar, **STATIC_TAGS}


def melt_quench_stages(
    protocol: MeltQuenchProtocol, templates: VaspTemplates, relax_steps: int = RELAX_STEPS
) -> list[VaspStage]:
    """The VASP runs of one melt-quench (stages with no steps are left out)."""
    dt = protocol.timestep_fs
    T_melt, T_final = protocol.T_melt_K, protocol.T_final_K
    md_stages = [
        ("melt", round(protocol.melt_ps * 1000.0 / dt), T_melt, T_melt),
        ("quench", protocol.quench_steps, T_melt, T_final),
        ("hold", round(protocol.hold_ps * 1000.0 / dt), T_final, T_final),
    ]
    stages = [
        VaspStage(name, {**templates.md_incar, "TEBEG": t0, "TEEND": t1, "NSW": n, "POTIM": dt}, n, t0, t1)
        for name, n, t0, t1 in md_stages
        if n > 0
    ]
    if relax_steps > 0:
        stages.append(VaspStage("relax", {**templates.relax_incar, "NSW": relax_steps}, relax_steps, T_final, T_final))
    return stages


def initial_poscar(positions_A: np.ndarray, cell_A: np.ndarray, symbols: list[str]) -> str:
    """POSCAR text of the starting structure (Cartesian positions and cell rows in Å)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp import Poscar

    structure = Structure(Lattice(cell_A), symbols, positions_A, coords_are_cartesian=True)
    return Poscar(structure, comment="pdmd initial random cell", sort_structure=False).get_str()


def write_stage_inputs(
    folder: Path, stage: VaspStage, poscar_text: str, templates: VaspTemplates, write_potcar: bool = True
) -> None:
    """INCAR, KPOINTS, POSCAR, POTCAR.spec (and POTCAR, from the site's library) for one stage.

    `poscar_text` is the initial POSCAR or the previous stage's CONTCAR (whose velocities carry over).
    """
    from pymatgen.io.vasp import Incar, Poscar

    folder.mkdir(parents=True, exist_ok=True)
    try:
        elements = [str(e) for e in Poscar.from_str(poscar_text).site_symbols]
    except Exception as exc:
        raise InputError(
            f"{folder}: the starting structure of stage {stage.name} is not a valid POSCAR: {exc}"
        ) from exc
    missing = [e for e in elements if e not in templates.potcar_symbols]
    if missing:
        raise InputError(f"no POTCAR symbol for {missing} in {templates.source}/POTCAR.spec.yaml")
    Incar(stage.incar).write_file(folder / "INCAR")
    (folder / "KPOINTS").write_text(templates.kpoints_text.rstrip("\n") + "\n")
    (folder / "POSCAR").write_text(poscar_text)
    potcar_symbols = [templates.potcar_symbols[e] for e in elements]
    (folder / "POTCAR.spec").write_text("\n".join(potcar_symbols) + "\n")
    if write_potcar:
        from pymatgen.io.vasp import Potcar

        try:
            Potcar(potcar_symbols, functional=templates.functional).write_file(folder / "POTCAR")
        except Exception as exc:
            raise InputError(
                f"cannot assemble POTCAR {potcar_symbols} ({templates.functional}): {exc}. Point pymatgen at your "
                "licensed POTCAR library (`pmg config --add PMG_VASP_PSP_DIR /path`), or set write_potcar: false "
                "if your vasp_cmd provides the POTCAR"
            ) from exc
