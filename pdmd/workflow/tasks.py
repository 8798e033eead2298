"""Firetasks: each reads its parameters, calls one `pdmd.pipeline` function, returns an FWAction.

Tasks get the LaunchPad through `_add_launchpad_and_fw_id` so the documents they write go to the
same database as the workflow (the embedded store or MongoDB). Every task is idempotent: a rerun
(`lpad rerun_fws`, `lpad detect_lostruns --rerun`) reuses the stored results.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from fireworks.user_objects.dupefinders.dupefinder_exact import DupeFinderExact

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.pipeline import descriptors_for_structures, melt_quench_to_store
from pdmd.runtime import default_threads
from pdmd.settings import data_dir
from pdmd.store.datastore import DataStore
from pdmd.workflow import params
from pdmd.workflow.params import check_firetask

log = logging.getLogger(__name__)


def _configure_logging() -> None:
    root = logging.getLogger("pdmd")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def task_store(task: FiretaskBase, fw_spec: dict) -> DataStore:
    """The result store for this launch: files under the data dir, index in the LaunchPad's DB.

    Every task calls it first; it checks the task's parameters (`pdmd check`), so a bad one fails
    now, naming the field, not after hours of work.
    """
    _configure_logging()
    check_firetask(task)
    lp = getattr(task, "launchpad", None)
    return DataStore(task.get("data_dir") or data_dir(fw_spec), db=lp.db if lp is not None else None)


class PdmdTask(FiretaskBase):
    """Base of pdmd's firetasks: their parameters are those `pdmd.workflow.params` declares for the class name."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.required_params = params.required_params(cls.__name__)
        cls.optional_params = params.optional_params(cls.__name__)


@explicit_serialize
class MeltQuenchTask(PdmdTask):
    """Melt-quench one aGr (2D) or aC (3D) cell with LAMMPS; stream its snapshots into the store.

    Params: protocol (dict of MeltQuenchProtocol fields: seed, cooling_rate_K_per_ps, ...),
    omp_threads (int, default: all cores), data_dir (optional override).
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        protocol = MeltQuenchProtocol.from_dict(self["protocol"])
        store = task_store(self, fw_spec)
        summary = melt_quench_to_store(
            protocol, store, Path.cwd() / "lammps", omp_threads=self.get("omp_threads") or default_threads()
        )
        stored = {k: v for k, v in summary.items() if k != "structure_ids"}
        return FWAction(stored_data={**stored, "data_dir": str(store.root)})


def env_chk(value, fw_spec: dict, name: str):
    """Resolve a `>>key<<` value from the FWorker's env (FireWorks' `_fw_env`), as atomate does.

    Any other value is returned as is; an unset key is an error that says where to set it.
    """
    if isinstance(value, str) and value.startswith(">>") and value.endswith("<<"):
        key = value[2:-2]
        env = fw_spec.get("_fw_env", {})
        if key not in env:
            raise InputError(
                f"{name} is {value!r} but this FWorker's env has no {key!r}: add it to my_fworker.yaml "
                f"(env: {{{key}: ...}}) and restart the launcher"
            )
        return env[key]
    return value


@explicit_serialize
class VaspMeltQuenchTask(PdmdTask):
    """AIMD melt-quench of one aC cell with VASP (the paper's labels); streams snapshots into the store.

    Params: protocol (MeltQuenchProtocol fields; potential "vasp-pbe"); optional vasp_cmd (default
    ">>vasp_cmd<<": from the FWorker's env), templates_dir (default: the packaged vasp_templates/),
    write_potcar (default True: pymatgen assembles POTCAR from PMG_VASP_PSP_DIR), relax_steps,
    workdir (default: DATA_DIR/vasp_runs/RUN_ID, so that a rerun of the firework (`lpad rerun_fws`)
    finds the finished VASP stages and does not repeat them), data_dir.
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        protocol = MeltQuenchProtocol.from_dict({"potential": "vasp-pbe", **self["protocol"]})
        vasp = {
            "vasp_cmd": env_chk(self.get("vasp_cmd", ">>vasp_cmd<<"), fw_spec, "vasp_cmd"),
            "templates_dir": self.get("templates_dir"),
            "write_potcar": bool(self.get("write_potcar", True)),
        }
        if self.get("relax_steps") is not None:
            vasp["relax_steps"] = int(self["relax_steps"])
        store = task_store(self, fw_spec)
        workdir = Path(self.get("workdir") or store.root / "vasp_runs" / protocol.run_id)
        summary = melt_quench_to_store(protocol, store, workdir, vasp=vasp)
        stored = {k: v for k, v in summary.items() if k != "structure_ids"}
        return FWAction(stored_data={**stored, "data_dir": str(store.root)})


@explicit_serialize
class PersistenceDescriptorTask(PdmdTask):
    """Compute the degree-1 alpha PD and its histogram image for every structure of a run.

    Params: run_id; optional system (default: the run's), range_A2 ([lo, hi] Å²), bins, degree,
    backend ("homcloud" | "delaunay"), workers (processes; default: all cores), data_dir. Unset
    descriptor parameters take the system's defaults (`pdmd.descriptor.spec.DescriptorSpec`).
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        store = task_store(self, fw_spec)
        docs = store.run_structures(self["run_id"])
        if not docs:
            raise RuntimeError(
                f"no stored structures for run {self['run_id']} under {store.root}: "
                "did its melt-quench firework complete?"
            )
        summary = descriptors_for_structures(
            store,
            docs,
            task_descriptor_spec(self, docs[0].get("system", "agr")),
            label=f"PD {self['run_id']}",
            workers=int(self.get("workers") or default_threads()),
        )
        if summary["failed"] and len(summary["failed"]) == len(docs):
            raise RuntimeError(f"every descriptor of run {self['run_id']} failed: {summary['failed']}")
        return FWAction(stored_data={"run_id": self["run_id"], **summary})


def task_descriptor_spec(task: FiretaskBase, system: str = "agr") -> DescriptorSpec:
    """The descriptor setting a firetask names (system, range_A2, bins, degree, backend); unset: the defaults."""
    return DescriptorSpec.for_system(task.get("system", system), range_A2=task.get("range_A2"), bins=task.get("bins"),
                                     degree=int(task.get("degree", 1)), backend=task.get("backend"))  # fmt: skip


@explicit_serialize
class TrainPotentialTask(PdmdTask):
    """Train a PD model (default the PD-CNN) on the stored descriptors of `run_ids`; store it, its card, plots.

    Params: run_ids, name; optional model ("pd-cnn" | "pd-kernel" | "pd-hybrid": `pdmd.models.registry`),
    model_options (the kind's options), train (TrainConfig fields; its seed also seeds the split),
    cnn (CNNConfig fields), split ("run" | "snapshot"), test_fraction, system ("agr" | "ac"),
    range_A2, bins, backend, data_dir.
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        from pdmd.models.training import train_on_store

        store = task_store(self, fw_spec)
        spec = task_descriptor_spec(self)
        provenance = {"fw_id": getattr(self, "fw_id", None), "data_dir": str(store.root), "descriptor_id": spec.id,
                      "n_runs": len(self["run_ids"])}  # fmt: skip
        card = train_on_store(store, list(self["run_ids"]), spec, self["name"], self.get("model"),
                              dict(self.get("model_options") or {}), train=self.get("train"), cnn=self.get("cnn"),
                              split=self.get("split", "run"), test_fraction=float(self.get("test_fraction", 0.2)),
                              provenance=provenance)  # fmt: skip
        return FWAction(stored_data={"model": card["name"], "model_kind": card["model_kind"], "path": card["path"],
                                     **card["metrics"], "quality": card.get("quality"), "plots": card["plots"]},
                        update_spec={"model_path": card["path"]})  # fmt: skip


@explicit_serialize
class ValidatePotentialTask(PdmdTask):
    """Predict the structures of `run_ids` (larger cells) with the trained model; store RMSE + plot.

    Params: run_ids, name (the model); optional label, system, range_A2, bins, backend, data_dir.
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        from pdmd.models.training import validate_on_store

        store = task_store(self, fw_spec)
        label = self.get("label", "large-cell validation")
        result = validate_on_store(store, list(self["run_ids"]), self["name"], label)
        return FWAction(stored_data={"model": self["name"], label: result})


@explicit_serialize
class AnalysisTask(PdmdTask):
    """One analysis of a trained model or data set at the end of a workflow; numbers go into the model's card.

    Params: analysis (a name in pdmd.analysis.registry.ANALYSES), name (the model), plan; optional
    options (keyword arguments of the analysis: e.g. descriptors/models for baseline, band for
    interpolation-test, n_structures for explain), data_dir.
    """

    def run_task(self, fw_spec: dict) -> FWAction:
        from pdmd.analysis.registry import AnalysisJob, run_analysis

        store = task_store(self, fw_spec)
        kind = self["analysis"]
        out = store.root / "analyses" / f"{kind}-{self['name']}"
        job = AnalysisJob(
            store.root, out, store.root / "models" / self["name"], self["plan"], options=dict(self.get("options", {})),
            db=store.db,
        )  # fmt: skip
        _, summary = run_analysis(kind, job)
        return FWAction(stored_data={"analysis": kind, "model": self["name"], "out": str(out), "summary": summary})


def firework_spec(category: str, priority: int | None = None, dupefinder: bool = False) -> dict:
    """A pdmd firework's spec: its FWorker category, optional priority and exact-duplicate finder."""
    spec: dict = {"_category": category, "_add_launchpad_and_fw_id": True}
    if priority is not None:
        spec["_priority"] = priority
    if dupefinder:
        spec["_dupefinder"] = DupeFinderExact()
    return spec


def melt_quench_firework(protocol: MeltQuenchProtocol, **spec: Any) -> Firework:
    """The melt-quench firework of a protocol: LAMMPS (category "md") or, for the potential "vasp-pbe", VASP
    (category "vasp", `>>vasp_cmd<<` from the FWorker's env); `spec`: `firework_spec`'s priority, dupefinder.
    """
    if protocol.potential_spec.engine == "vasp":
        task = VaspMeltQuenchTask(protocol=protocol.as_dict(), vasp_cmd=">>vasp_cmd<<")
        return Firework([task], name=f"VASP melt-quench {protocol.run_id}", spec=firework_spec("vasp", **spec))
    task = MeltQuenchTask(protocol=protocol.as_dict())
    return Firework([task], name=f"melt-quench {protocol.run_id}", spec=firework_spec("md", **spec))
