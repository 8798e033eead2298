"""Fill the store for a whole plan outside FireWorks, in parallel and resumable.

Each run is melt-quenched (LAMMPS, one OpenMP thread per worker) and its descriptors computed
right after, by `workers` processes. Finished runs are found on disk and skipped, so the command
can be stopped and restarted at any time; a FireWorks workflow of the same plan later reuses
everything stored here.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from pathlib import Path

from pdmd.campaign import plan_descriptor, plan_runs
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.pipeline import descriptors_for_structures, melt_quench_to_store
from pdmd.progress import ProgressLog
from pdmd.store.datastore import DataStore
from pdmd.workers import process_pool

log = logging.getLogger(__name__)


def _one_run(protocol: MeltQuenchProtocol, data_dir: str, specs: tuple[DescriptorSpec, ...], omp_threads: int
             ) -> dict:  # fmt: skip
    logging.basicConfig(level=logging.WARNING)
    store = DataStore(data_dir)
    summary = melt_quench_to_store(protocol, store, Path(data_dir) / "md_work" / protocol.run_id, omp_threads)
    # this worker is itself a disposable process: a backend crash ends it, the campaign goes on
    docs = store.run_structures(protocol.run_id)
    desc, *extra = (descriptors_for_structures(store, docs, s, isolate=False) for s in specs)
    return {**summary, "descriptors": desc, "extra_descriptors": extra}


def run_plan(
    name: str,
    data_dir: str | Path,
    workers: int = 2,
    include_validation: bool = True,
    spec: DescriptorSpec | None = None,
    extra_specs: tuple[DescriptorSpec, ...] = (),
) -> list[dict]:
    """Run every melt-quench + descriptor job of plan `name` into `data_dir` (descriptor: the plan's setting; the
    descriptors of `extra_specs` too, e.g. the H0 channel of `cnn.extra_degrees`).
    """
    train, valid = plan_runs(name)
    spec = spec or plan_descriptor(name)
    runs = train + (valid if include_validation else [])
    return run_protocols(runs, data_dir, spec, workers, f"plan {name}", extra_specs)


def run_protocols(
    runs: list[MeltQuenchProtocol],
    data_dir: str | Path,
    spec: DescriptorSpec,
    workers: int = 2,
    label: str = "campaign",
    extra_specs: tuple[DescriptorSpec, ...] = (),
) -> list[dict]:
    """Melt-quench + descriptors (`spec`, then each of `extra_specs`) for each protocol, `workers` at a time;
    finished runs and stored descriptors are reused.
    """
    progress = ProgressLog(len(runs), label, log, every_s=30.0)
    results = []
    threads = 1 if workers > 1 else 0
    with process_pool(workers) as pool:
        specs = (spec, *extra_specs)
        futures = {pool.submit(_one_run, p, str(data_dir), specs, threads or None): p for p in runs}
        for fut in cf.as_completed(futures):
            try:
                results.append(fut.result())
                # found on disk: the run and its descriptors (a new descriptor setting is new work)
                done = [results[-1]["descriptors"], *results[-1]["extra_descriptors"]]
                reused = bool(results[-1].get("reused")) and not any(d["computed"] for d in done)
            except cf.process.BrokenProcessPool:
                log.error("%s: worker process died; rerun the campaign to resume", futures[fut].run_id)
                raise
            except Exception as err:  # keep going: one bad run must not stop the campaign
                log.error("%s failed: %s", futures[fut].run_id, err)
                results.append({"run_id": futures[fut].run_id, "error": str(err)})
                reused = False
            progress.step(reused=reused)
    return results
