"""Build the aGr and aC FireWorks workflows and write them as the YAML files in `workflows/`.

Shape: per training run a melt-quench firework and a PD-descriptor firework depending on it
(PD fireworks have higher priority, so a launcher computes a run's descriptors as soon as its
trajectory is done, while other melt-quench runs are still waiting); one training firework after
all PD fireworks; melt-quench + PD fireworks for the 4× larger validation cells; a final
validation firework after training and those.

`python -m pdmd.workflow.builders` regenerates every file in `WORKFLOW_FILES`.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import replace
from pathlib import Path

from fireworks import Firework, Workflow
from fireworks.user_objects.dupefinders.dupefinder_exact import DupeFinderExact

from pdmd.analysis.registry import ANALYSES
from pdmd.campaign import PLANS, plan_descriptor, plan_runs
from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.workflow.check import check_workflow
from pdmd.workflow.tasks import (
    AnalysisTask,
    MeltQuenchTask,
    PersistenceDescriptorTask,
    TrainPotentialTask,
    ValidatePotentialTask,
    VaspMeltQuenchTask,
)

WORKFLOWS_DIR = Path(str(importlib.resources.files("pdmd") / "workflows"))
"""The shipped workflow YAML files (package data; in a checkout `pdmd/workflows` links to `workflows/`)."""

TRAIN_SETTINGS = {
    "agr-paper": {"train": {"epochs": 150, "batch_size": 32}, "split": "run"},
    "agr-demo": {
        "train": {"epochs": 80, "batch_size": 16, "early_stopping_patience": 20, "lr_patience": 6, "max_minutes": 4.0},
        "split": "run",
    },
    "ac-paper": {"train": {"epochs": 150, "batch_size": 32, "standardization": "zscore"}, "split": "run"},
    "ac-demo": {
        "train": {
            "epochs": 60,
            "batch_size": 16,
            "early_stopping_patience": 20,
            "lr_patience": 6,
            "max_minutes": 4.0,
            "standardization": "zscore",
        },
        "split": "run",
    },
    "agr-tiny": {
        "train": {"epochs": 4, "batch_size": 4},
        "cnn": {"channels": [8, 8, 4], "fc_hidden": 16},
        "split": "run",
        "test_fraction": 0.34,
    },
}


def _spec(category: str, priority: int, dupefinder: bool) -> dict:
    spec = {"_category": category, "_priority": priority, "_add_launchpad_and_fw_id": True}
    if dupefinder:
        spec["_dupefinder"] = DupeFinderExact()
    return spec


def _descriptor_params(plan: str) -> dict:
    """Descriptor settings shared by the PD, training and validation fireworks of a plan."""
    spec = plan_descriptor(plan)
    return {"system": spec.system, "range_A2": [spec.lo_A2, spec.hi_A2], "bins": spec.bins, "backend": spec.backend}


def _melt_quench_firework(protocol: MeltQuenchProtocol, engine: str) -> Firework:
    """LAMMPS (category "md") or VASP (category "vasp", `>>vasp_cmd<<` from the FWorker) melt-quench."""
    if engine == "vasp":
        task = VaspMeltQuenchTask(protocol=protocol.as_dict(), vasp_cmd=">>vasp_cmd<<")
        return Firework([task], name=f"VASP melt-quench {protocol.run_id}", spec=_spec("vasp", 1, True))
    task = MeltQuenchTask(protocol=protocol.as_dict())
    return Firework([task], name=f"melt-quench {protocol.run_id}", spec=_spec("md", 1, True))


def _data_fireworks(
    protocols: list[MeltQuenchProtocol], plan: str, engine: str = "lammps"
) -> tuple[list[Firework], list[Firework]]:
    md_fws, pd_fws = [], []
    desc = {k: v for k, v in _descriptor_params(plan).items() if k != "system"}
    for p in protocols:
        mq = _melt_quench_firework(p, engine)
        pd = Firework(
            [PersistenceDescriptorTask(run_id=p.run_id, **desc)],
            name=f"PD {p.run_id}",
            parents=[mq],
            spec=_spec("descriptor", 2, True),
        )
        md_fws.append(mq)
        pd_fws.append(pd)
    return md_fws, pd_fws


def plan_workflow(
    plan: str, engine: str = "lammps", analyses: tuple[str, ...] = (), model: str = "pd-cnn",
    model_options: dict | None = None,
) -> Workflow:  # fmt: skip
    """The whole loop (melt-quench -> PD -> CNN -> large-cell validation) for a named plan (`pdmd.campaign.PLANS`).

    engine "lammps": the plan's classical potential; "vasp": AIMD with VASP (aC plans only).
    model: the model kind the train firework trains (`pdmd.ml.kinds`; its `model:` parameter),
    with `model_options` (its `model_options:`).
    analyses: optional fireworks after the validation (`pdmd.analysis.registry.ANALYSES`), each with
    its defaults (`ANALYSIS_OPTIONS`).
    """
    if engine not in ("lammps", "vasp"):
        raise ValueError(f"engine must be 'lammps' or 'vasp', got {engine!r}")
    if engine == "vasp" and PLANS[plan].system != "ac":
        raise ValueError(f"the VASP engine is for the aC plans, not {plan!r}")
    train_runs, valid_runs = plan_runs(plan)
    if engine == "vasp":
        train_runs = [replace(p, potential="vasp-pbe") for p in train_runs]
        valid_runs = [replace(p, potential="vasp-pbe") for p in valid_runs]
    settings = TRAIN_SETTINGS[plan]
    desc = _descriptor_params(plan)
    suffix = "cnn" if model == "pd-cnn" else model.removeprefix("pd-")
    kind = {} if model == "pd-cnn" else {"model": model, "model_options": model_options or {}}
    model = f"{plan}-{suffix}" if engine == "lammps" else f"{plan}-{engine}-{suffix}"
    md_fws, pd_fws = _data_fireworks(train_runs, plan, engine)
    train_fw = Firework(
        [TrainPotentialTask(run_ids=[p.run_id for p in train_runs], name=model, **settings, **desc, **kind)],
        name=f"train {model}",
        parents=pd_fws,
        spec=_spec("train", 3, False),
    )
    vmd_fws, vpd_fws = _data_fireworks(valid_runs, plan, engine)
    fws = md_fws + pd_fws + [train_fw] + vmd_fws + vpd_fws
    if valid_runs:
        n = valid_runs[0].n_atoms
        fws.append(
            Firework(
                [
                    ValidatePotentialTask(
                        run_ids=[p.run_id for p in valid_runs], name=model, label=f"{n}-atom validation", **desc
                    )
                ],
                name=f"validate {model} on {n} atoms",
                parents=[train_fw, *vpd_fws],
                spec=_spec("train", 4, False),
            )
        )
    last = fws[-1]
    for kind in analyses:
        task = AnalysisTask(analysis=kind, name=model, plan=plan, options=ANALYSIS_OPTIONS.get((plan, kind), {}))
        fws.append(Firework([task], name=f"{kind} {model}", parents=[last], spec=_spec("analysis", 5, False)))
    spec = PLANS[plan]
    wf = Workflow(
        fws,
        name=f"pdmd {plan}" if engine == "lammps" else f"pdmd {plan} ({engine})",
        metadata={
            "pdmd_plan": plan,
            "engine": engine,
            "model": model,
            "n_runs": spec.n_runs,
            "n_validation_runs": spec.n_validation_runs,
        },
    )
    check_workflow(wf)  # every firework's parameters, as `pdmd check` checks a file
    return wf


ANALYSIS_OPTIONS = {
    ("agr-tiny", "baseline"): {"descriptors": ["soap"], "models": ["krr"]},
    ("agr-tiny", "interpolation-test"): {"train": {"epochs": 3}},
    ("agr-tiny", "explain"): {"n_structures": 1},
    ("agr-tiny", "compare-descriptors"): {"subset": 300},
}
"""Per (plan, analysis) options of the analysis fireworks; absent: the analysis' defaults."""

WORKFLOW_FILES = {
    "agr.yaml": ("agr-paper", "lammps", ()),
    "agr_demo.yaml": ("agr-demo", "lammps", ()),
    "agr_demo_analyses.yaml": ("agr-demo", "lammps", tuple(ANALYSES)),
    "agr_tiny.yaml": ("agr-tiny", "lammps", ()),
    "ac.yaml": ("ac-paper", "vasp", ()),
    "ac_lammps.yaml": ("ac-paper", "lammps", ()),
    "ac_demo.yaml": ("ac-demo", "lammps", ()),
}
"""File name in `workflows/` -> (plan, MD engine, analysis fireworks at the end)."""


def workflow_file(plan: str, engine: str = "lammps") -> Path:
    """The committed YAML of a plan and engine."""
    for fname, key in WORKFLOW_FILES.items():
        if key == (plan, engine, ()):
            return WORKFLOWS_DIR / fname
    known = sorted({p for p, _, _ in WORKFLOW_FILES.values()})
    raise InputError(f"no workflow file for plan {plan!r} with engine {engine!r}; plans with one: {known}")


def _without_timestamps(obj):
    if isinstance(obj, dict):
        return {k: _without_timestamps(v) for k, v in obj.items() if k not in ("created_on", "updated_on")}
    if isinstance(obj, list):
        return [_without_timestamps(v) for v in obj]
    return obj


def _renumbered(wf: dict) -> dict:
    """fw_ids -1, -2, ... in firework order (FireWorks' counter depends on what ran before)."""
    new = {fw["fw_id"]: -(i + 1) for i, fw in enumerate(wf["fws"])}
    for fw in wf["fws"]:
        fw["fw_id"] = new[fw["fw_id"]]
    wf["links"] = {str(new[int(k)]): [new[c] for c in v] for k, v in wf["links"].items()}
    return wf


def workflow_yaml(plan: str, engine: str = "lammps", analyses: tuple[str, ...] = ()) -> str:
    """The YAML text `lpad add` takes, without timestamps so that regeneration is reproducible."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    header = (
        f"# pdmd workflow for plan {plan!r}, MD with {engine}; generated by `python -m pdmd.workflow.builders`, "
        "do not edit.\n"
    )
    yaml.dump(_renumbered(_without_timestamps(plan_workflow(plan, engine, analyses).to_dict())), buf)
    return header + buf.getvalue()


def write_workflows(folder: Path = WORKFLOWS_DIR) -> list[Path]:
    """Regenerate the committed workflow YAML files."""
    out = []
    for fname, (plan, engine, analyses) in WORKFLOW_FILES.items():
        path = folder / fname
        path.write_text(workflow_yaml(plan, engine, analyses))
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_workflows():
        print(p)
