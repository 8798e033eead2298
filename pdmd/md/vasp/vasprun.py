"""Read ionic steps from a vasprun.xml while VASP is still writing it.

VASP appends one `<calculation>` element per ionic (MD) step. `VasprunReader.poll()` reads the
bytes added since the last call and returns every step whose `</calculation>` has arrived, so
each step is parsed once (no quadratic re-reading of a file that reaches hundreds of MB) and a
half-written step is never returned. A file that ends without `</modeling>` is truncated: the
complete steps before the cut are still returned, and `complete` says whether the run finished.

Energy: `e_fr_energy` of the step, VASP's TOTEN (free energy, the quantity whose forces the MD
integrates), in eV per cell; `e_0_energy` (sigma -> 0) is kept alongside. Kinetic energy (eV,
MD only) gives the instantaneous temperature.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import InputError

CALC_OPEN, CALC_CLOSE = b"<calculation>", b"</calculation>"
ATOMINFO_OPEN, ATOMINFO_CLOSE = b"<atominfo>", b"</atominfo>"
END = b"</modeling>"


@dataclass(frozen=True)
class IonicStep:
    """One ionic step: 1-based index in its run, cell rows and Cartesian positions (Å), energies (eV per cell)."""

    index: int
    cell_A: np.ndarray
    positions_A: np.ndarray
    free_energy_eV: float
    energy_sigma0_eV: float
    kinetic_eV: float | None
    forces_eV_per_A: np.ndarray | None = None


def _floats(text: str | None, where: str) -> list[float]:
    try:
        return [float(x) for x in (text or "").split()]
    except ValueError as exc:
        raise InputError(f"vasprun.xml: non-numeric value in {where}: {text!r}") from exc


def _varray(parent: ET.Element, name: str, where: str) -> np.ndarray:
    node = parent.find(f"varray[@name='{name}']")
    if node is None:
        raise InputError(f"vasprun.xml: {where} has no <varray name='{name}'>")
    return np.array([_floats(v.text, f"{where}/{name}") for v in node.findall("v")], dtype=float)


def _energy(node: ET.Element, name: str, where: str) -> float | None:
    item = node.find(f"i[@name='{name}']")
    if item is None:
        return None
    values = _floats(item.text, f"{where}/{name}")
    return values[0] if values else None


def parse_calculation(xml: bytes, index: int) -> IonicStep:
    """One `<calculation>` element (bytes) -> IonicStep."""
    where = f"ionic step {index}"
    try:
        calc = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"vasprun.xml: {where} is not well-formed XML: {exc}") from exc
    structure, energy = calc.find("structure"), calc.find("energy")
    if structure is None or energy is None or structure.find("crystal") is None:
        raise InputError(f"vasprun.xml: {where} lacks its <structure> or <energy>")
    cell = _varray(structure.find("crystal"), "basis", where)
    frac = _varray(structure, "positions", where)
    free = _energy(energy, "e_fr_energy", where)
    if cell.shape != (3, 3) or frac.ndim != 2 or frac.shape[1] != 3 or free is None:
        raise InputError(f"vasprun.xml: {where} has a malformed cell, positions or e_fr_energy")
    sigma0 = _energy(energy, "e_0_energy", where)
    forces = _varray(calc, "forces", where) if calc.find("varray[@name='forces']") is not None else None
    if forces is not None and forces.shape != frac.shape:
        raise InputError(f"vasprun.xml: {where} has forces of shape {forces.shape} for {len(frac)} atoms")
    return IonicStep(
        index=index,
        cell_A=cell,
        positions_A=frac @ cell,
        free_energy_eV=free,
        energy_sigma0_eV=free if sigma0 is None else sigma0,
        kinetic_eV=_energy(energy, "kinetic", where),
        forces_eV_per_A=forces,
    )


def parse_atominfo(xml: bytes) -> list[str]:
    """Element symbol of each atom, from the `<atominfo>` element."""
    try:
        info = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"vasprun.xml: <atominfo> is not well-formed XML: {exc}") from exc
    rows = info.findall("array[@name='atoms']/set/rc")
    symbols = [rc.find("c").text.strip() for rc in rows if rc.find("c") is not None and rc.find("c").text]
    if not symbols:
        raise InputError("vasprun.xml: <atominfo> lists no atoms")
    return symbols


class VasprunReader:
    """Incremental reader of one vasprun.xml (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._buffer = b""
        self.symbols: list[str] | None = None
        self.n_steps = 0
        self.complete = False

    def poll(self) -> list[IonicStep]:
        """Steps completed since the last call (none if the file does not exist yet)."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                new = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(new)
        self._buffer += new
        if self.symbols is None:
            start, end = self._buffer.find(ATOMINFO_OPEN), self._buffer.find(ATOMINFO_CLOSE)
            if start < 0 or end < 0:
                return []
            self.symbols = parse_atominfo(self._buffer[start : end + len(ATOMINFO_CLOSE)])
            self._buffer = self._buffer[end + len(ATOMINFO_CLOSE) :]
        steps = []
        while True:
            start = self._buffer.find(CALC_OPEN)
            end = self._buffer.find(CALC_CLOSE, start + 1) if start >= 0 else -1
            if end < 0:
                break
            self.n_steps += 1
            step = parse_calculation(self._buffer[start : end + len(CALC_CLOSE)], self.n_steps)
            if len(step.positions_A) != len(self.symbols):
                raise InputError(
                    f"{self.path}: ionic step {self.n_steps} has {len(step.positions_A)} atoms, "
                    f"<atominfo> lists {len(self.symbols)}"
                )
            steps.append(step)
            self._buffer = self._buffer[end + len(CALC_CLOSE) :]
        if END in self._buffer:
            self.complete = True
        elif self._buffer.count(CALC_OPEN) == 0 and len(self._buffer) > 1 << 20:
            self._buffer = self._buffer[-(1 << 16) :]  # only trailing tags remain: keep the tail
        return steps


def read_vasprun(path: str | Path, require_complete: bool = True) -> tuple[list[str], list[IonicStep]]:
    """Every ionic step of a finished run; a truncated file is an error naming the last complete step."""
    reader = VasprunReader(path)
    if not reader.path.is_file():
        raise InputError(f"{path}: no vasprun.xml (VASP did not start, or wrote elsewhere)")
    steps = reader.poll()
    if reader.symbols is None:
        raise InputError(f"{path}: truncated vasprun.xml, it ends before <atominfo> (VASP stopped at start-up)")
    if require_complete and not reader.complete:
        raise InputError(
            f"{path}: truncated vasprun.xml, it ends after {len(steps)} complete ionic steps without </modeling> "
            "(VASP was killed or crashed; the complete steps are usable with require_complete=False)"
        )
    return reader.symbols, steps
