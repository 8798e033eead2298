"""The science steps that workflows, the CLI and scripts share: structure in, stored results out.

Each step is idempotent: it first looks in the store for what it would produce and reuses it,
so rerunning a firework (or a whole campaign after a crash) repeats no finished work.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import alpha_diagram
from pdmd.errors import DescriptorError
from pdmd.md.lammps_melt_quench import Snapshot, run_melt_quench
from pdmd.md.network import network_stats
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.progress import ProgressLog
from pdmd.store.datastore import DataStore, descriptor_id

log = logging.getLogger(__name__)

SYSTEM_DIM = {"agr": 2, "ac": 3}


def melt_quench_to_store(
    protocol: MeltQuenchProtocol, store: DataStore, workdir: str | Path, omp_threads: int | None = None
) -> dict:
    """Run (or reuse) one melt-quench; every kept snapshot is stored as soon as LAMMPS writes it.

    Returns the run summary with the stored structure ids (content hashes).
    """
    done = store.run_summary(protocol.run_id)
    if done is not None:
        docs = store.run_structures(protocol.run_id)
        store.index_structures(docs)  # the database index may have been lost with the FireWorks state
        log.info("%s: already stored (%d structures), reusing", protocol.run_id, len(docs))
        return {**done, "reused": True}

    pot = protocol.potential_spec
    provenance = {
        "system": protocol.system,
        "run_id": protocol.run_id,
        "seed": protocol.seed,
        "cooling_rate_K_per_ps": protocol.cooling_rate_K_per_ps,
        "protocol": protocol.as_dict(),
        "potential": {"name": pot.name, "pair_style": pot.pair_style, "file": pot.file, "reference": pot.reference},
        "code": "LAMMPS (python module)",
    }
    ids: list[str] = []

    def on_snapshot(snap: Snapshot) -> None:
        meta = {
            **provenance,
            "kind": snap.kind,
            "step": snap.step,
            "time_ps": snap.time_ps,
            "setpoint_K": snap.setpoint_K,
            "temperature_K": snap.temperature_K,
            "energy_eV_per_atom": snap.energy_eV_per_atom,
            "network": network_stats(snap.frame).as_dict(),
        }
        doc = store.save_structure(snap.frame, meta)
        ids.append(doc["_id"])
        log.info(
            "%s: stored %s snapshot step %d, T_set %.0f K, E %.4f eV/atom, %.1f%% 3-fold",
            protocol.run_id,
            snap.kind,
            snap.step,
            snap.setpoint_K,
            snap.energy_eV_per_atom,
            100 * meta["network"]["coordination_fractions"].get("3", 0.0),
        )

    result = run_melt_quench(protocol, workdir, on_snapshot, omp_threads=omp_threads)
    summary = {
        "run_id": protocol.run_id,
        "structure_ids": ids,
        "n_structures": len(ids),
        "wall_s": result.wall_s,
        "md_steps_per_s": result.steps_per_s,
        "final_energy_eV_per_atom": result.final_energy_eV_per_atom,
        "n_atoms": protocol.n_atoms,
        "reused": False,
    }
    store.mark_run_complete(protocol.run_id, summary)
    log.info(
        "%s: done in %.1f s (%.0f MD steps/s), %d structures",
        protocol.run_id,
        result.wall_s,
        result.steps_per_s,
        len(ids),
    )
    return summary


def descriptors_for_structures(
    store: DataStore,
    structure_docs: list[dict],
    spec: HistogramSpec = HistogramSpec(),
    degree: int = 1,
    backend: str = "homcloud",
    label: str = "descriptors",
    isolate: bool = True,
) -> dict:
    """Compute (or reuse) the PD and its histogram image for each structure document.

    A structure whose diagram fails is recorded in `failed` with the reason; the others go on.
    `isolate=False` runs the backend in this process (for callers that are themselves a
    disposable worker process).
    """
    desc_id = descriptor_id(backend, degree, spec)
    progress = ProgressLog(len(structure_docs), label, log)
    computed = reused = 0
    failed: dict[str, str] = {}
    ms: list[float] = []
    for doc in structure_docs:
        if store.find_descriptor(doc["_id"], desc_id) is not None:
            reused += 1
            progress.step()
            continue
        dim = SYSTEM_DIM.get(doc.get("system", "agr"), 2)
        try:
            t0 = time.perf_counter()
            diagram = alpha_diagram(
                store.load_frame(doc), dim, degree, isolate=isolate, label=f"{doc.get('run_id')}/{doc['_id'][:12]}"
            )
            elapsed_ms = 1000 * (time.perf_counter() - t0)
            image = pd_histogram(diagram.births_A2, diagram.deaths_A2, spec)
            if image.n_pairs == 0:
                raise DescriptorError(f"{doc['_id'][:12]}: empty persistence diagram (no finite H{degree} pairs)")
        except DescriptorError as err:
            failed[doc["_id"]] = str(err)
            log.error("descriptor failed: %s", err)
            progress.step()
            continue
        store.save_descriptor(doc, diagram, image, spec, backend, elapsed_ms)
        ms.append(elapsed_ms)
        computed += 1
        progress.step()
    return {
        "descriptor_id": desc_id,
        "computed": computed,
        "reused": reused,
        "failed": failed,
        "mean_ms_per_pd": sum(ms) / len(ms) if ms else None,
    }
