# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed schemas of pdmd's documents, and the one place they are written and read.

Four documents, stored as JSON files (the truth) and mirrored into the database:

- `StructureDoc`: one stored structure (`structures/<run>/<kind>-<step>-<hash>.json`);
- `DescriptorDoc`: its persistence diagram and image (`descriptors/<descriptor id>/<hash>.json`);
- `ModelCard`: a trained model (`models/<name>/model.json`), with `ModelMetrics`;
- `AnalysisRecord`: one analysis recorded in a model card (`analyses[<name>]`).

Each schema lists the fields every document has, with units in their names; documents may carry
more (a model kind's own sections, provenance). Writers build a plain dict and hand it to
`write_document` / `write_card`, which check it against the schema before anything is written;
readers get it back through `read_document` / `read_card`, which check it again, so a document
of the wrong shape (a damaged file, a file of another program, a card of a future version) is
refused with one line naming the file, the field and the fix. In memory documents stay plain dicts
(what MongoDB stores and returns); `Schema.from_dict` gives the typed view where one is wanted.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pdmd.errors import InputError
from pdmd.files import read_json, to_jsonable, write_json_atomic

CARD_FILE = "model.json"

T = TypeVar("T", bound="Schema")


class DocumentError(InputError):
    """A stored document does not have the shape its schema names."""


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether `value` (from JSON) fits a field annotation: str/int/float/bool/list/dict, unions, Optional."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is Any:
        return True
    base = origin or annotation
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    if base is dict:
        return isinstance(value, Mapping)
    return isinstance(value, base)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A schema's field annotations, resolved once per class (documents are read by the thousand)."""
    return typing.get_type_hints(cls)


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


@dataclass(frozen=True)
class Schema:
    """Base of the document schemas: `from_dict` checks fields and types; `extra` holds further fields."""

    KIND: ClassVar[str] = "document"
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls: type[T], doc: Any, source: str = "") -> T:
        """The typed document; DocumentError naming `source` and the field if `doc` does not fit."""
        where = f"{source}: " if source else ""
        if not isinstance(doc, Mapping):
            raise DocumentError(f"{where}{cls.KIND} is a {type(doc).__name__}, not a JSON object")
        hints = _hints(cls)
        values, problems = {}, []
        for f in fields(cls):
            if f.name == "extra":
                continue
            if f.name not in doc:
                if f.default is MISSING and f.default_factory is MISSING:
                    problems.append(f"missing field {f.name!r}")
                continue
            value = doc[f.name]
            if not _accepts(hints[f.name], value):
                problems.append(f"field {f.name!r} is {json.dumps(value, default=str)[:40]} ({type(value).__name__}), "
                                f"expected {_type_name(hints[f.name])}")  # fmt: skip
            values[f.name] = value
        if problems:
            raise DocumentError(f"{where}not a valid pdmd {cls.KIND}: {'; '.join(problems)} (rebuild it: "
                                f"{cls.rebuild_hint()})")  # fmt: skip
        known = {f.name for f in fields(cls)}
        obj = cls(**values, extra={k: v for k, v in doc.items() if k not in known})
        obj.check(source)
        return obj

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    """Fields that must be non-empty (a name `files.X` means a key X of the `files` field)."""
    REBUILD: ClassVar[str] = "restore the file from its backup or recompute it"

    def check(self, source: str) -> None:
        """Checks across fields: every REQUIRED one is non-empty (subclasses add more); DocumentError."""
        missing = [name for name in self.REQUIRED if not self._value(name)]
        if missing:
            raise DocumentError(f"{source}: not a valid pdmd {self.KIND}: needs {', '.join(missing)} "
                                f"({self.rebuild_hint()})")  # fmt: skip

    def _value(self, name: str) -> Any:
        head, _, key = name.partition(".")
        value = getattr(self, head)
        return value.get(key) if key else value

    @classmethod
    def rebuild_hint(cls) -> str:
        return cls.REBUILD

    def to_dict(self) -> dict:
        """The plain dict that is stored (fields, then the extra ones)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}, **self.extra}


@dataclass(frozen=True)
class StructureDoc(Schema):
    """A stored structure: identity (content hash), origin (run, step, protocol), size, cell (Å), energy."""

    KIND: ClassVar[str] = "structure document"
    _id: str = ""
    content_hash: str = ""
    run_id: str = ""
    kind: str = ""
    step: int = 0
    n_atoms: int = 0
    cell_A: list = field(default_factory=list)
    pbc: list = field(default_factory=list)
    energy_eV_per_atom: float | None = None
    files: dict = field(default_factory=dict)
    system: str | None = None
    time_ps: float | None = None
    temperature_K: float | None = None
    setpoint_K: float | None = None
    cooling_rate_K_per_ps: float | None = None
    units: dict = field(default_factory=dict)
    forces_source: str | None = None
    pdmd_version: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("_id", "files.arrays")
    REBUILD: ClassVar[str] = "rerun the melt-quench run (stored runs are skipped), then `pdmd reindex`"

    def check(self, source: str) -> None:
        super().check(source)
        if self.n_atoms < 1:
            raise DocumentError(f"{source}: not a valid pdmd {self.KIND}: needs n_atoms >= 1, got {self.n_atoms} "
                                f"({self.rebuild_hint()})")  # fmt: skip


@dataclass(frozen=True)
class DescriptorDoc(Schema):
    """A stored persistence diagram + image: its setting's id, structure, pair counts, histogram (Å²)."""

    KIND: ClassVar[str] = "descriptor document"
    _id: str = ""
    descriptor_id: str = ""
    structure_id: str = ""
    backend: str = ""
    degree: int = 1
    histogram: dict = field(default_factory=dict)
    n_pairs: int = 0
    files: dict = field(default_factory=dict)
    energy_eV_per_atom: float | None = None
    n_atoms: int | None = None
    run_id: str | None = None
    system: str | None = None
    n_outside: int | None = None
    fraction_outside: float | None = None
    timing_ms: float | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("_id", "descriptor_id", "structure_id", "files.arrays")
    REBUILD: ClassVar[str] = "delete it and rerun the PD firework (`lpad rerun_fws`) or `pdmd campaign`"


@dataclass(frozen=True)
class ModelMetrics(Schema):
    """Errors of a model on its own split (meV/atom) beside the mean predictor's, and the split sizes."""

    KIND: ClassVar[str] = "model metrics section"
    train_rmse_meV_per_atom: float = 0.0
    test_rmse_meV_per_atom: float = 0.0
    mean_predictor_test_rmse_meV_per_atom: float | None = None
    test_energy_std_meV_per_atom: float | None = None
    n_train: int = 0
    n_test: int = 0
    train_energy_mean_eV_per_atom: float | None = None
    train_energy_std_meV_per_atom: float | None = None
    test_prediction_std_meV_per_atom: float | None = None

    REBUILD: ClassVar[str] = "retrain the model (`pdmd train`, or `lpad rerun_fws` on its train firework)"


_METRICS_REQUIRED = ("train_rmse_meV_per_atom", "test_rmse_meV_per_atom", "n_train", "n_test")
"""What every card's metrics have had since the first pdmd version (newer cards add the mean predictor's RMSE)."""


@dataclass(frozen=True)
class ModelCard(Schema):
    """A trained model: name, folder, kind, descriptor setting, split, metrics, quality, units, provenance."""

    KIND: ClassVar[str] = "model card"
    _id: str = ""
    name: str = ""
    path: str = ""
    descriptor: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    model_kind: str = "pd-cnn"  # cards written before model kinds existed hold the paper's CNN
    quality: dict | None = None
    validation: dict | None = None
    analyses: dict | None = None
    plots: dict | None = None
    units: dict | None = None
    provenance: dict | None = None
    pdmd_version: str | None = None
    created: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("_id", "name")
    REBUILD: ClassVar[str] = ModelMetrics.REBUILD

    def check(self, source: str) -> None:
        from pdmd.descriptor.spec import DescriptorSpec

        super().check(source)
        missing = [k for k in _METRICS_REQUIRED if k not in self.metrics]
        if missing:
            raise DocumentError(f"{source}: not a valid pdmd {self.KIND}: metrics lack {missing} "
                                f"({self.rebuild_hint()})")  # fmt: skip
        ModelMetrics.from_dict(self.metrics, f"{source} metrics")
        DescriptorSpec.from_dict(self.descriptor, f"{source} descriptor")
        for key, entry in (self.analyses or {}).items():
            AnalysisRecord.from_dict(entry, f"{source} analyses.{key}")

    @property
    def spec(self):
        """The descriptor setting (`pdmd.descriptor.spec.DescriptorSpec`) the model was trained with."""
        from pdmd.descriptor.spec import DescriptorSpec

        return DescriptorSpec.from_dict(self.descriptor, f"model {self.name}")


@dataclass(frozen=True)
class AnalysisRecord(Schema):
    """One analysis in a model card: its numbers (free-form per analysis) and when it ran."""

    KIND: ClassVar[str] = "analysis record"
    created: str = ""

    REQUIRED: ClassVar[tuple[str, ...]] = ("created",)
    REBUILD: ClassVar[str] = "rerun the analysis"


def read_document(path: str | Path, schema: type[Schema]) -> dict:
    """A stored document, checked against `schema` (DocumentError naming the file otherwise)."""
    path = Path(path)
    try:
        doc = read_json(path)
    except (OSError, ValueError) as err:
        raise DocumentError(f"{path}: unreadable {schema.KIND} ({err}); {schema.rebuild_hint()}") from None
    schema.from_dict(doc, str(path))
    return doc


def write_document(path: str | Path, doc: Mapping, schema: type[Schema]) -> dict:
    """Check `doc` against `schema`, then write it atomically as JSON; the JSON-ready dict written."""
    data = to_jsonable(dict(doc))
    schema.from_dict(data, f"{path} (not written)")
    write_json_atomic(Path(path), data)
    return data


def card_path(folder: str | Path) -> Path:
    return Path(folder) / CARD_FILE


def find_model(name_or_path: str | Path) -> Path:
    """A model folder given as a path, or as a name under the data folder's models/ (`pdmd.settings.data_dir`)."""
    path = Path(name_or_path)
    if card_path(path).is_file():
        return path
    from pdmd.settings import data_dir

    candidate = data_dir() / "models" / str(name_or_path)
    if card_path(candidate).is_file():
        return candidate
    raise InputError(f"no model {str(name_or_path)!r}: not a model folder and not under {data_dir() / 'models'}")


def read_card(folder: str | Path) -> dict:
    """The model card of a model folder, checked (InputError if the folder holds no model)."""
    path = card_path(folder)
    if not path.is_file():
        raise InputError(f"{folder} is not a pdmd model folder (no {CARD_FILE})")
    return read_document(path, ModelCard)


def write_card(folder: str | Path, card: Mapping) -> dict:
    """Check and write a model card into its folder (atomically); the dict written."""
    return write_document(card_path(folder), card, ModelCard)


DEFAULT_KIND = "pd-cnn"


def model_kind_of(card: dict) -> str:
    """The card's model kind; cards written before kinds existed hold the paper's CNN."""
    return card.get("model_kind", DEFAULT_KIND)
