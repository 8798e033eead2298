"""The result store: array files + JSON sidecars on disk, indexed in the database.

Layout under the data root (every file written atomically):

    structures/<run_id>/<kind>-<step>-<hash12>.npz    positions (Å), cell (Å), numbers, pbc
    structures/<run_id>/<kind>-<step>-<hash12>.json   the structure document
    runs/<run_id>/complete.json                       written last: the run finished and is stored
    descriptors/<descriptor_id>/<hash12>.npz          births/deaths/essential (Å²), image
    descriptors/<descriptor_id>/<hash12>.json         the descriptor document

The files are the truth; database documents (collections `pdmd_structures`,
`pdmd_descriptors`) are an index with the same content, upserted by content hash, so a rerun
never duplicates a document and `reindex()` rebuilds the index from disk after a lost database.

Documents are written and read through `pdmd.store.documents` (schemas `StructureDoc`,
`DescriptorDoc`), which checks their shape both ways. Structure document fields:
`_id`/`content_hash` (SHA-256 of rounded positions, numbers and cell),
`system`, `run_id`, `kind` (intermediate|final), `step`, `time_ps` (from quench start),
`setpoint_K`, `temperature_K` (instantaneous, from kinetic energy), `cooling_rate_K_per_ps`,
`seed`, `n_atoms`, `cell_A`, `pbc`, `energy_eV_per_atom`, `units`, `potential`, `protocol`,
`network` (coordination/ring fractions, mean bond Å), `files` (paths relative to the data root),
`pdmd_version`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdmd.files import content_hash, read_json, read_npz, write_json_atomic, write_npz_atomic
from pdmd.store.documents import DescriptorDoc, StructureDoc, read_document, write_document
from pdmd.structure import Frame
from pdmd.version import __version__

if TYPE_CHECKING:  # the store files what it is given; it computes no descriptor
    from pdmd.descriptor.histogram import PDImage
    from pdmd.descriptor.persistence import PersistenceDiagram
    from pdmd.descriptor.spec import DescriptorSpec

log = logging.getLogger(__name__)

STRUCTURES = "pdmd_structures"
DESCRIPTORS = "pdmd_descriptors"
MODELS = "pdmd_models"

UNITS = {
    "length": "Å",
    "energy": "eV/atom",
    "temperature": "K",
    "time": "ps",
    "persistence": "Å² (squared alpha radius)",
}


def frame_hash(frame: Frame) -> str:
    return content_hash(frame.positions, frame.numbers, frame.cell)


class DataStore:
    """Files under `root`, mirrored into `db` (a pymongo/mongomock Database) when one is given."""

    def __init__(self, root: str | Path, db: Any = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = db

    # -- index -------------------------------------------------------------------------------
    def _upsert(self, collection: str, doc: dict) -> None:
        if self.db is not None:
            self.db[collection].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    def index_structures(self, docs: Iterable[dict]) -> None:
        """Upsert structure documents (read from disk) into the database index."""
        for doc in docs:
            self._upsert(STRUCTURES, doc)

    def reindex(self) -> dict[str, int]:
        """Upsert every document found on disk into the database; returns counts."""
        counts = {}
        for collection, folder, schema in ((STRUCTURES, "structures", StructureDoc),
                                           (DESCRIPTORS, "descriptors", DescriptorDoc)):  # fmt: skip
            n = 0
            for path in sorted((self.root / folder).glob("*/*.json")):
                self._upsert(collection, read_document(path, schema))
                n += 1
            counts[collection] = n
        return counts

    # -- structures --------------------------------------------------------------------------
    def save_structure(self, frame: Frame, meta: dict[str, Any]) -> dict:
        """Store a frame with its metadata (`run_id`, `kind`, `step`, energy, provenance ...)."""
        h = frame_hash(frame)
        stem = f"{meta['kind']}-{int(meta['step']):09d}-{h[:12]}"
        folder = self.root / "structures" / meta["run_id"]
        json_path = folder / f"{stem}.json"
        if json_path.exists():
            doc = read_document(json_path, StructureDoc)
        else:
            npz_path = folder / f"{stem}.npz"
            write_npz_atomic(
                npz_path, positions=frame.positions, cell=frame.cell, numbers=frame.numbers, pbc=np.asarray(frame.pbc)
            )
            doc = write_document(
                json_path,
                {
                    **meta,
                    "_id": h,
                    "content_hash": h,
                    "n_atoms": frame.n_atoms,
                    "cell_A": frame.cell,
                    "pbc": list(frame.pbc),
                    "units": UNITS,
                    **self._stamp(npz_path),
                },
                StructureDoc,
            )
        self._upsert(STRUCTURES, doc)
        return doc

    def _stamp(self, npz_path: Path) -> dict:
        """The fields every stored document ends with: its arrays file, creation time (UTC), pdmd version."""
        return {
            "files": {"arrays": str(npz_path.relative_to(self.root))},
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "pdmd_version": __version__,
        }

    def load_frame(self, doc: dict) -> Frame:
        arrays = read_npz(self.root / doc["files"]["arrays"])
        return Frame(
            positions=arrays["positions"],
            cell=arrays["cell"],
            numbers=arrays["numbers"],
            pbc=tuple(bool(p) for p in arrays["pbc"]),
        )

    def save_forces(self, doc: dict, forces_eV_per_A: np.ndarray, source: str) -> dict:
        """Store per-atom forces (N, 3) eV/Å of a stored structure beside it; the document records file and source."""
        forces = np.asarray(forces_eV_per_A, float)
        if forces.shape != (doc["n_atoms"], 3) or not np.isfinite(forces).all():
            raise ValueError(f"forces for {doc['_id'][:12]} must be finite with shape ({doc['n_atoms']}, 3)")
        arrays = Path(doc["files"]["arrays"])
        rel = arrays.with_name(arrays.stem + ".forces.npz")
        write_npz_atomic(self.root / rel, forces_eV_per_A=forces)
        doc = {**doc, "files": {**doc["files"], "forces": str(rel)}, "forces_source": source}
        doc = write_document((self.root / arrays).with_suffix(".json"), doc, StructureDoc)
        self._upsert(STRUCTURES, doc)
        return doc

    def load_forces(self, doc: dict) -> np.ndarray | None:
        """Per-atom forces (N, 3) eV/Å of a stored structure, or None if it has none."""
        rel = doc.get("files", {}).get("forces")
        return None if rel is None else read_npz(self.root / rel)["forces_eV_per_A"]

    def run_structures(self, run_id: str) -> list[dict]:
        """Structure documents of one run, read from disk, ordered by step."""
        docs = [read_document(p, StructureDoc) for p in sorted((self.root / "structures" / run_id).glob("*.json"))]
        return sorted(docs, key=lambda d: (d["kind"] == "final", d["step"]))

    def mark_run_complete(self, run_id: str, summary: dict) -> None:
        write_json_atomic(self.root / "runs" / run_id / "complete.json", summary)

    def run_summary(self, run_id: str) -> dict | None:
        """The completion record of a stored run, or None if it never finished."""
        path = self.root / "runs" / run_id / "complete.json"
        return read_json(path) if path.exists() else None

    def iter_structures(self, query: dict | None = None) -> Iterable[dict]:
        """Structure documents matching a MongoDB query (from the database, else from disk)."""
        if self.db is not None:
            yield from self.db[STRUCTURES].find(query or {})
            return
        from mongomock.filtering import filter_applies

        for path in sorted((self.root / "structures").glob("*/*.json")):
            doc = read_document(path, StructureDoc)
            if not query or filter_applies(query, doc):
                yield doc

    # -- descriptors -------------------------------------------------------------------------
    def descriptor_paths(self, structure_hash: str, desc_id: str) -> tuple[Path, Path]:
        folder = self.root / "descriptors" / desc_id
        return folder / f"{structure_hash[:12]}.json", folder / f"{structure_hash[:12]}.npz"

    def find_descriptor(self, structure_hash: str, desc_id: str) -> dict | None:
        """The stored descriptor document (from its file), or None; never writes."""
        json_path, _ = self.descriptor_paths(structure_hash, desc_id)
        return read_document(json_path, DescriptorDoc) if json_path.exists() else None

    def index_descriptors(self, docs: Iterable[dict]) -> int:
        """Put descriptor documents found on disk into the database index where they are missing; returns how many."""
        if self.db is None:
            return 0
        n = 0
        for doc in docs:
            if self.db[DESCRIPTORS].find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
                self._upsert(DESCRIPTORS, doc)
                n += 1
        return n

    def save_descriptor(
        self,
        structure_doc: dict,
        diagram: PersistenceDiagram,
        image: PDImage,
        spec: DescriptorSpec,
        timing_ms: float,
    ) -> dict:
        """Store a structure's diagram and image under `spec.id`; the descriptor document."""
        desc_id = spec.id
        json_path, npz_path = self.descriptor_paths(structure_doc["_id"], desc_id)
        write_npz_atomic(
            npz_path,
            births_A2=diagram.births_A2,
            deaths_A2=diagram.deaths_A2,
            essential_births_A2=diagram.essential_births_A2,
            image=image.image,
        )
        doc = write_document(
            json_path,
            {
                "_id": f"{desc_id}:{structure_doc['_id']}",
                "descriptor_id": desc_id,
                "structure_id": structure_doc["_id"],
                "run_id": structure_doc.get("run_id"),
                "system": structure_doc.get("system"),
                "energy_eV_per_atom": structure_doc.get("energy_eV_per_atom"),
                "n_atoms": structure_doc.get("n_atoms"),
                "backend": spec.backend,
                "degree": diagram.degree,
                "histogram": {
                    **spec.histogram.as_dict(),
                    "normalisation": "probability: counts / number of finite pairs",
                },
                "n_pairs": image.n_pairs,
                "n_outside": image.n_outside,
                "fraction_outside": image.fraction_outside,
                "n_essential": len(diagram.essential_births_A2),
                "timing_ms": timing_ms,
                **self._stamp(npz_path),
            },
            DescriptorDoc,
        )
        self._upsert(DESCRIPTORS, doc)
        return doc

    def load_descriptor_arrays(self, doc: dict) -> dict[str, np.ndarray]:
        return read_npz(self.root / doc["files"]["arrays"])
