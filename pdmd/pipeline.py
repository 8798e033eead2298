"""The science steps that workflows, the CLI and scripts share: structure in, stored results out.

Each step is idempotent: it first looks in the store for what it would produce and reuses it,
so rerunning a firework (or a whole campaign after a crash) repeats no finished work.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from pathlib import Path

from pdmd.descriptor.histogram import PDImage
from pdmd.descriptor.persistence import PersistenceDiagram
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import DescriptorError, InputError
from pdmd.md.lammps_melt_quench import run_melt_quench
from pdmd.md.network import network_stats
from pdmd.md.protocol import POTENTIALS, MeltQuenchProtocol
from pdmd.md.results import Snapshot
from pdmd.md.single_point import ENERGY_MATCH_eV_PER_ATOM, LammpsSinglePoint
from pdmd.progress import ProgressLog
from pdmd.store.datastore import DataStore
from pdmd.structure import Frame
from pdmd.systems import SYSTEM_DIM
from pdmd.workers import process_pool

log = logging.getLogger(__name__)

MIN_PARALLEL_STRUCTURES = 48
"""Fewer structures than this are computed serially: starting worker processes would cost more."""


def melt_quench_to_store(
    protocol: MeltQuenchProtocol,
    store: DataStore,
    workdir: str | Path,
    omp_threads: int | None = None,
    vasp: dict | None = None,
) -> dict:
    """Run (or reuse) one melt-quench; every kept snapshot is stored as soon as the MD code writes it.

    A run stored completely is reused, and an unfinished attempt extended, only with the same settings
    (else InputError).

    The protocol's potential decides the code: LAMMPS, or VASP (`engine` "vasp"), which needs
    `vasp` = keyword arguments of `run_vasp_melt_quench` (vasp_cmd, templates_dir, write_potcar, ...).
    Returns the run summary with the stored structure ids (content hashes).
    """
    done = _reuse_stored_run(protocol, store)
    if done is not None:
        return done
    provenance = run_provenance(protocol, vasp)
    ids: list[str] = []

    def on_snapshot(snap: Snapshot) -> None:
        ids.append(store_snapshot(store, protocol, provenance, snap))

    if protocol.potential_spec.engine == "vasp":
        from pdmd.md.vasp.melt_quench import run_vasp_melt_quench

        result = run_vasp_melt_quench(protocol, workdir, on_snapshot=on_snapshot, **vasp)
    else:
        result = run_melt_quench(protocol, workdir, on_snapshot, omp_threads=omp_threads)
    summary = {
        "run_id": protocol.run_id,
        "structure_ids": ids,
        "n_structures": len(store.run_structures(protocol.run_id)),  # with those of earlier attempts (VASP stages)
        "wall_s": result.wall_s,
        "md_steps_per_s": result.steps_per_s,
        "final_energy_eV_per_atom": result.final_energy_eV_per_atom,
        "n_atoms": protocol.n_atoms,
        "reused": False,
    }
    store.mark_run_complete(protocol.run_id, summary)
    log.info("%s: done in %.1f s (%.0f MD steps/s), %d structures", protocol.run_id, result.wall_s,
             result.steps_per_s, len(ids))  # fmt: skip
    return summary


def protocol_differences(stored: dict, protocol: MeltQuenchProtocol) -> list[str]:
    """'field: stored X, asked Y' for every setting of `protocol` that a stored run's protocol dict differs in.

    Fields the stored dict lacks (data written before they existed) and the density field the system
    does not use are skipped; snapshot temperatures compare as sets.
    """
    unused = "density_per_A2" if protocol.system == "ac" else "density_g_cm3"
    out = []
    for key, asked in protocol.as_dict().items():
        if key == unused or key not in stored:
            continue
        have = stored[key]
        same = sorted(have) == sorted(asked) if key == "snapshot_temperatures_K" else have == asked
        if not same:
            out.append(f"{key}: stored {have!r}, asked {asked!r}")
    return out


def _reuse_stored_run(protocol: MeltQuenchProtocol, store: DataStore) -> dict | None:
    """The summary of a run already stored completely (its structures re-indexed), else None.

    A run stored (completely or in part) under the same run id with other settings (timestep,
    temperatures, snapshots, ...) is refused (InputError naming the fields), never reused or extended.
    """
    docs = store.run_structures(protocol.run_id)  # also those of an unfinished attempt, which a rerun extends
    done = store.run_summary(protocol.run_id)
    for stored in {repr(d["protocol"]): d["protocol"] for d in docs if isinstance(d.get("protocol"), dict)}.values():
        differ = protocol_differences(stored, protocol)
        if differ:  # run ids name system, size, seed and rate only: the rest must match too
            finished = done is not None
            attempt = store.root / "structures" / protocol.run_id
            unfinished = "" if finished else f", or remove the unfinished attempt ({attempt}/) and run `pdmd reindex`"
            raise InputError(
                f"run {protocol.run_id} is already {'stored' if finished else 'partly stored'} in {store.root} with "
                f"other melt-quench settings ({'; '.join(differ)}): use a new data folder for these settings, or the "
                f"stored ones{unfinished}"
            )
    if done is None:
        return None
    store.index_structures(docs)  # the database index may have been lost with the FireWorks state
    log.info("%s: already stored (%d structures), reusing", protocol.run_id, len(docs))
    return {**done, "reused": True}


def run_provenance(protocol: MeltQuenchProtocol, vasp: dict | None = None) -> dict:
    """What every structure of a run records about its origin: protocol, potential, code (and VASP inputs)."""
    pot = protocol.potential_spec
    provenance = {
        "system": protocol.system,
        "run_id": protocol.run_id,
        "seed": protocol.seed,
        "cooling_rate_K_per_ps": protocol.cooling_rate_K_per_ps,
        "density_g_cm3": protocol.density_g_cm3 if protocol.system == "ac" else None,
        "protocol": protocol.as_dict(),
        "potential": {
            "name": pot.name,
            "pair_style": pot.pair_style,
            "file": pot.file,
            "files": list(pot.files),
            "reference": pot.reference,
        },  # fmt: skip
        "code": "LAMMPS (python module)" if pot.engine == "lammps" else "VASP",
    }
    if pot.engine == "vasp":
        if not vasp or not vasp.get("vasp_cmd"):
            raise InputError(f"{protocol.run_id}: potential {pot.name!r} runs VASP; give vasp_cmd")
        from pdmd.md.vasp.inputs import load_templates

        templates = load_templates(vasp.get("templates_dir"))
        provenance["vasp"] = {
            "incar_md": templates.md_incar,
            "incar_relax": templates.relax_incar,
            "kpoints": templates.kpoints_text,
            "potcar": {"functional": templates.functional, "symbols": templates.potcar_symbols},
            "energy": "e_fr_energy (TOTEN, free energy) per atom",
        }
    return provenance


def store_snapshot(store: DataStore, protocol: MeltQuenchProtocol, provenance: dict, snap: Snapshot) -> str:
    """Store one MD snapshot (structure, energy, network statistics, forces if the code gave them); its id."""
    meta = {
        **provenance,
        "kind": snap.kind,
        "step": snap.step,
        "time_ps": snap.time_ps,
        "setpoint_K": snap.setpoint_K,
        "temperature_K": snap.temperature_K,
        "energy_eV_per_atom": snap.energy_eV_per_atom,
        "network": network_stats(snap.frame, protocol.dim).as_dict(),
    }
    doc = store.save_structure(snap.frame, meta)
    if snap.forces_eV_per_A is not None and "forces" not in doc["files"]:
        source = f"{provenance['potential']['name']} forces of the same MD step"
        doc = store.save_forces(doc, snap.forces_eV_per_A, source)
    fold = "3" if protocol.dim == 2 else "4"
    log.info("%s: stored %s snapshot step %d, T_set %.0f K, E %.4f eV/atom, %.1f%% %s-fold", protocol.run_id, snap.kind,
             snap.step, snap.setpoint_K, snap.energy_eV_per_atom,
             100 * meta["network"]["coordination_fractions"].get(fold, 0.0), fold)  # fmt: skip
    return doc["_id"]


def _diagram_job(
    frame: Frame, spec: DescriptorSpec, isolate: bool, label: str
) -> tuple[PersistenceDiagram, PDImage, float]:
    """Diagram + histogram image of one structure and the diagram's wall time (ms)."""
    t0 = time.perf_counter()
    diagram = spec.nonempty_diagram(frame, label, isolate=isolate)
    elapsed_ms = 1000 * (time.perf_counter() - t0)
    return diagram, spec.image(diagram), elapsed_ms


def descriptors_for_structures(
    store: DataStore,
    structure_docs: list[dict],
    spec: DescriptorSpec,
    label: str = "descriptors",
    isolate: bool = True,
    workers: int = 1,
) -> dict:
    """Compute (or reuse) the PD and its histogram image for each structure document, with `spec`.

    `workers` > 1 computes diagrams in that many processes (results are stored by this process as
    they arrive). A structure whose diagram fails is recorded in `failed` with the reason; the
    others go on. `isolate=False` runs the backend in this process (for callers that are
    themselves a disposable worker process).
    """
    systems = {doc.get("system") or spec.system for doc in structure_docs} - {spec.system}
    if systems:
        raise DescriptorError(f"{label}: structures of system {sorted(systems)} in a {spec.system} descriptor job")
    desc_id = spec.id
    progress = ProgressLog(len(structure_docs), label, log)
    todo, reused = _reuse_stored(store, structure_docs, desc_id, progress)
    failed: dict[str, str] = {}
    ms: list[float] = []

    def record(doc: dict, outcome: tuple | BaseException) -> None:
        if isinstance(outcome, BaseException):
            failed[doc["_id"]] = str(outcome)
            log.error("descriptor failed: %s", outcome)
        else:
            diagram, image, elapsed_ms = outcome
            store.save_descriptor(doc, diagram, image, spec, elapsed_ms)
            ms.append(elapsed_ms)
        progress.step()

    def job_args(doc: dict, isolated: bool) -> tuple:
        return (store.load_frame(doc), spec, isolated, f"{doc.get('run_id')}/{doc['_id'][:12]}")

    if workers > 1 and len(todo) >= MIN_PARALLEL_STRUCTURES:
        todo = _parallel_descriptors(todo, job_args, record, workers)
    for doc in todo:  # serial path, and what a crashed pool left over (isolated, so a crash names its structure)
        try:
            record(doc, _diagram_job(*job_args(doc, isolate)))
        except DescriptorError as err:
            record(doc, err)
    return {
        "descriptor_id": desc_id,
        "backend": spec.backend,
        "computed": len(ms),
        "reused": reused,
        "failed": failed,
        "mean_ms_per_pd": sum(ms) / len(ms) if ms else None,
    }


def _reuse_stored(
    store: DataStore, structure_docs: list[dict], desc_id: str, progress: ProgressLog
) -> tuple[list[dict], int]:
    """(the documents whose descriptor `desc_id` must be computed, how many are stored already); the stored ones
    are counted as reused and indexed again (a rerun after `lpad reset` finds the files but not the index).
    """
    todo, found = [], []
    for doc in structure_docs:
        existing = store.find_descriptor(doc["_id"], desc_id)
        if existing is not None:
            found.append(existing)
            progress.step(reused=True)
        else:
            todo.append(doc)
    store.index_descriptors(found)
    return todo, len(found)


def _parallel_descriptors(todo: list[dict], job_args, record, workers: int) -> list[dict]:
    """Run `_diagram_job` for `todo` in a spawn pool; returns the documents a worker crash left undone."""
    left = {doc["_id"]: doc for doc in todo}
    try:
        with process_pool(workers) as pool:
            futures = {pool.submit(_diagram_job, *job_args(doc, False)): doc for doc in todo}
            for fut in cf.as_completed(futures):
                doc = futures[fut]
                try:
                    outcome = fut.result()
                except DescriptorError as err:
                    outcome = err
                record(doc, outcome)
                left.pop(doc["_id"])
    except cf.process.BrokenProcessPool:
        log.error("a descriptor worker crashed; computing the %d remaining structures one by one", len(left))
    return list(left.values())


def add_forces(root: str | Path, db=None, potential: str | None = None, overwrite: bool = False) -> dict:
    """Give every stored structure under `root` without forces its single-point forces.

    The potential is the one recorded on each structure (or `potential`); structures labelled by
    VASP are skipped (their forces come from vasprun.xml). A recomputed energy that differs from the
    stored one by more than ENERGY_MATCH_eV_PER_ATOM is an error for that structure (reported, not
    stored). Returns counts: added, present, skipped, mismatched.
    """
    if not (Path(root) / "structures").is_dir():
        raise InputError(f"{root} is not a pdmd data folder (no structures/ inside)")
    store = DataStore(root, db)
    docs = list(store.iter_structures())
    if not docs:
        raise InputError(f"{root} holds no stored structures (structures/<run>/*.json)")
    counts = {"added": 0, "present": 0, "skipped": 0, "mismatched": 0}
    calcs: dict[tuple[int, str], LammpsSinglePoint] = {}
    progress = ProgressLog(len(docs), "forces", log)
    worst = 0.0
    try:
        for doc in docs:
            progress.step()
            if "forces" in doc.get("files", {}) and not overwrite:
                counts["present"] += 1
                continue
            pot = potential or doc.get("potential", {}).get("name", "tersoff1989")
            if pot not in POTENTIALS or POTENTIALS[pot].engine != "lammps":
                counts["skipped"] += 1
                continue
            dim = SYSTEM_DIM.get(doc.get("system", ""), 2 if not doc.get("pbc", [1, 1, 1])[2] else 3)
            key = (dim, pot)
            if key not in calcs:
                calcs[key] = LammpsSinglePoint(dim, pot)
            result = calcs[key](store.load_frame(doc))
            diff = abs(result.energy_eV / doc["n_atoms"] - float(doc["energy_eV_per_atom"]))
            worst = max(worst, diff)
            if diff > ENERGY_MATCH_eV_PER_ATOM:
                counts["mismatched"] += 1
                log.warning(
                    "%s: recomputed %s energy differs from the stored one by %.2e eV/atom; forces not stored",
                    doc["_id"][:12], pot, diff,
                )  # fmt: skip
                continue
            store.save_forces(doc, result.forces_eV_per_A, f"{pot} single point (LAMMPS run 0) on stored positions")
            counts["added"] += 1
    finally:
        for calc in calcs.values():
            calc.close()
    counts["max_energy_difference_eV_per_atom"] = worst
    return counts
