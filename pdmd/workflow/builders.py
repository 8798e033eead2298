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

from pdmd.analysis.registry import ANALYSES
from pdmd.campaign import PLANS, plan_descriptor, plan_runs
from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.workflow.check import check_workflow
from pdmd.workflow.tasks import (
    AnalysisTask,
    PersistenceDescriptorTask,
    TrainPotentialTask,
    ValidatePotentialTask,
    firework_spec,
    melt_quench_firework,
)

WORKFLOWS_DIR = Path(str(importlib.resources.files("pdmd") / "workflows"))
"""The shipped workflow YAML files (package data; in a checkout `pdmd/workflows` links to `workflows/`)."""

TRAIN_SETTINGS = {
    "agr-paper": {"train": {"epochs": 150, "batch_size": 32}, "split": "run"},
    "agr-demo": {  # schedule and representation: docs/models.md, "PD-CNN training schedule (demo data)"
        "train": {
            "epochs": 120,
            "batch_size": 16,
            "schedule": "cosine",
            "representation": "smooth",
            "early_stopping_patience": 30,
            "max_minutes": 4.0,
        },
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


def _descriptor_params(plan: str) -> dict:
    """Descriptor settings shared by the PD, training and validation fireworks of a plan."""
    spec = plan_descriptor(plan)
    return {"system": spec.system, "range_A2": [spec.lo_A2, spec.hi_A2], "bins": spec.bins, "backend": spec.backend}


def _data_fireworks(protocols: list[MeltQuenchProtocol], plan: str) -> tuple[list[Firework], list[Firework]]:
    md_fws, pd_fws = [], []
    desc = {k: v for k, v in _descriptor_params(plan).items() if k != "system"}
    for p in protocols:
        mq = melt_quench_firework(p, priority=1, dupefinder=True)
        pd = Firework(
            [PersistenceDescriptorTask(run_id=p.run_id, **desc)],
            name=f"PD {p.run_id}",
            parents=[mq],
            spec=firework_spec("descriptor", 2, True),
        )
        md_fws.append(mq)
        pd_fws.append(pd)
    return md_fws, pd_fws


PLAN_MODELS: dict[str, tuple[tuple[str, dict], ...]] = {
    "agr-demo": (
        ("pd-cnn", {}),
        ("pd-hybrid", {"vectorizations": [{"method": "pi", "bins": 32, "sigma_A2": 0.3, "norm": "atoms"}]}),
    ),
}
"""Model kinds (and their `model_options`) each plan's workflow trains and validates; absent: the paper's CNN.
The demo trains the paper's CNN and the best PD-based model (docs/models.md), with one PD block to keep it short."""


def plan_workflow(
    plan: str,
    engine: str = "lammps",
    analyses: tuple[str, ...] = (),
    models: tuple[tuple[str, dict], ...] | None = None,
) -> Workflow:
    """The whole loop (melt-quench -> PD -> models -> large-cell validation) for a named plan (`pdmd.campaign.PLANS`).

    engine "lammps": the plan's classical potential; "vasp": AIMD with VASP (aC plans only).
    models: (model kind, its `model_options`) pairs (`pdmd.models.registry`), each a train firework and a
    validation firework; default `PLAN_MODELS[plan]`, else the paper's CNN.
    analyses: optional fireworks after the first model's validation (`pdmd.analysis.registry.ANALYSES`),
    each with its defaults (`ANALYSIS_OPTIONS`).
    """
    if engine not in ("lammps", "vasp"):
        raise ValueError(f"engine must be 'lammps' or 'vasp', got {engine!r}")
    if engine == "vasp" and PLANS[plan].system != "ac":
        raise ValueError(f"the VASP engine is for the aC plans, not {plan!r}")
    train_runs, valid_runs = plan_runs(plan)
    if engine == "vasp":
        train_runs = [replace(p, potential="vasp-pbe") for p in train_runs]
        valid_runs = [replace(p, potential="vasp-pbe") for p in valid_runs]
    md_fws, pd_fws = _data_fireworks(train_runs, plan)
    vmd_fws, vpd_fws = _data_fireworks(valid_runs, plan)
    chosen = models or PLAN_MODELS.get(plan, (("pd-cnn", {}),))
    built = [_model_fireworks(plan, engine, k, o, train_runs, valid_runs, pd_fws, vpd_fws) for k, o in chosen]
    names = [name for name, _, _ in built]
    ends = [validate or train for _, train, validate in built]
    fws = md_fws + pd_fws + [train for _, train, _ in built] + vmd_fws + vpd_fws
    fws += [validate for _, _, validate in built if validate is not None]
    for kind in analyses:
        task = AnalysisTask(analysis=kind, name=names[0], plan=plan, options=ANALYSIS_OPTIONS.get((plan, kind), {}))
        fws.append(Firework([task], name=f"{kind} {names[0]}", parents=[ends[0]], spec=firework_spec("analysis", 5)))
    spec = PLANS[plan]
    wf = Workflow(
        fws,
        name=f"pdmd {plan}" if engine == "lammps" else f"pdmd {plan} ({engine})",
        metadata={
            "pdmd_plan": plan,
            "engine": engine,
            "model": names[0],
            "models": names,
            "n_runs": spec.n_runs,
            "n_validation_runs": spec.n_validation_runs,
        },
    )
    check_workflow(wf)  # every firework's parameters, as `pdmd check` checks a file
    return wf


def _model_fireworks(
    plan: str, engine: str, kind: str, options: dict, train_runs: list, valid_runs: list, pd_fws: list, vpd_fws: list
) -> tuple[str, Firework, Firework | None]:
    """(model name, train firework, large-cell validation firework or None) of one model kind of a plan."""
    desc = _descriptor_params(plan)
    suffix = "cnn" if kind == "pd-cnn" else kind.removeprefix("pd-")
    name = f"{plan}-{suffix}" if engine == "lammps" else f"{plan}-{engine}-{suffix}"
    settings = TRAIN_SETTINGS[plan]
    if kind != "pd-cnn":  # the CNN's training settings are not this kind's; the split is the same
        settings = {k: v for k, v in settings.items() if k in ("split", "test_fraction")}
        settings |= {"model": kind, "model_options": dict(options)}
    train_fw = Firework(
        [TrainPotentialTask(run_ids=[p.run_id for p in train_runs], name=name, **settings, **desc)],
        name=f"train {name}",
        parents=pd_fws,
        spec=firework_spec("train", 3),
    )
    if not valid_runs:
        return name, train_fw, None
    n = valid_runs[0].n_atoms
    validate = ValidatePotentialTask(run_ids=[p.run_id for p in valid_runs], name=name, label=f"{n}-atom validation",
                                     **desc)  # fmt: skip
    return name, train_fw, Firework([validate], name=f"validate {name} on {n} atoms", parents=[train_fw, *vpd_fws],
                                    spec=firework_spec("train", 4))  # fmt: skip


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
    what = f"plan {plan!r}, MD with {engine}"
    return _yaml_text(plan_workflow(plan, engine, analyses), what)


def _yaml_text(wf, what: str) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    header = f"# pdmd workflow for {what}; generated by `python -m pdmd.workflow.builders`, do not edit.\n"
    yaml.dump(_renumbered(_without_timestamps(wf.to_dict())), buf)
    return header + buf.getvalue()


def write_workflows(folder: Path = WORKFLOWS_DIR) -> list[Path]:
    """Regenerate the committed workflow YAML files."""
    out = []
    for fname, (plan, engine, analyses) in WORKFLOW_FILES.items():
        path = folder / fname
        path.write_text(workflow_yaml(plan, engine, analyses))
        out.append(path)
    from pdmd.workflow.active import ACTIVE_FILES, active_plan_workflow

    for fname, name in ACTIVE_FILES.items():
        path = folder / fname
        path.write_text(_yaml_text(active_plan_workflow(name), f"active-learning campaign {name!r}"))
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_workflows():
        print(p)
