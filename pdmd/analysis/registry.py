# SPDX-License-Identifier: GPL-3.0-or-later
"""The analyses by name: one function each, shared by the `pdmd` commands and `AnalysisTask`.

Every analysis takes an `AnalysisJob` and returns `(result, summary)`: the full result (also written
as JSON + PNGs under `job.out`, and recorded in the model's card when there is a model) and a few
headline numbers for a firework's stored_data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdmd.errors import InputError
from pdmd.structure import Frame


@dataclass
class AnalysisJob:
    """What an analysis runs on.

    data: a pdmd data folder (with `plan`) or a labelled structure file (with `system`);
    out: output folder; model_dir: the model analysed or compared with (None if there is none);
    frames/labels: structures given by the user (explain); options: the analysis' own keyword
    arguments; db: where the model card is recorded besides model.json (None: file only).
    """

    data: Path | None
    out: Path
    model_dir: Path | None = None
    plan: str | None = None
    system: str | None = None
    frames: list[Frame] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    db: Any = None
    read_options: Any = None  # pdmd.structure.ReadOptions of a structure file (None: guessed)
    label_keys: Any = None  # pdmd.models.labelled.LabelKeys of a structure file (None: the defaults)


def _baseline(job: AnalysisJob) -> tuple[dict, dict]:
    from pdmd.analysis.baseline_run import KIND_ROWS, run_baselines

    o = job.options
    every = o.get("every", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise InputError(f"baseline option 'every' must be an integer >= 1, got {every!r}")
    result = run_baselines(
        Path(job.data), o.get("descriptors", ["soap", "acsf"]), o.get("models", ["krr", "mlp"]), job.out, job.plan,
        job.system, model_dir=job.model_dir, db=job.db, kinds=o.get("kinds", KIND_ROWS),
        kind_options=o.get("kind_options"), read_options=job.read_options, label_keys=job.label_keys,
        every=every,
    )  # fmt: skip
    return result, {r["descriptor"] + "+" + r["model"]: r["test_rmse"] for r in result["rows"]}


def _interpolation_test(job: AnalysisJob) -> tuple[dict, dict]:
    from pdmd.analysis.interpolation import interpolation_test
    from pdmd.analysis.record import record_analysis
    from pdmd.models.cnn.config import CNNConfig
    from pdmd.models.cnn.options import config_from_options
    from pdmd.models.data import load_images
    from pdmd.store.documents import ModelCard, read_card

    o = job.options
    card = read_card(job.model_dir) if job.model_dir else None
    spec = ModelCard.from_dict(card).spec if card else None  # the model's descriptor setting, else the defaults
    if o.get("backend"):
        from pdmd.campaign import plan_descriptor
        from pdmd.descriptor.spec import DescriptorSpec

        default = plan_descriptor(job.plan) if job.plan else DescriptorSpec.for_system(job.system or "2d")
        spec = (spec or default).with_backend(o["backend"])
    cnn = CNNConfig.from_dict(card["architecture"]) if card else CNNConfig()
    data = load_images(Path(job.data), job.plan, job.system, spec, job.read_options, job.label_keys,
                       cnn.extra_degrees)  # fmt: skip
    base = dict(card["training"]) if card else {"standardization": data.descriptor.default_standardization}
    train = config_from_options("train", o.get("train", {}), "interpolation_test options: train", base)
    result = interpolation_test(data, job.out, tuple(o.get("band", (0.4, 0.6))), train, cnn)
    if job.model_dir is not None:
        record_analysis(job.model_dir, "interpolation_test", result, job.db)
    return result, {k: v for k, v in result.items() if k.startswith("rmse_")}


def _explain(job: AnalysisJob) -> tuple[dict, dict]:
    from pdmd.analysis.explain import explain
    from pdmd.analysis.record import record_analysis

    if job.model_dir is None:
        raise InputError("explain needs a model")
    frames, labels = job.frames, job.labels
    if not frames:  # a workflow's own final structures: the validation runs' if there are any
        from pdmd.campaign import plan_runs
        from pdmd.store.datastore import DataStore

        store = DataStore(Path(job.data))
        train_runs, valid_runs = plan_runs(job.plan)
        docs = [d for p in valid_runs or train_runs for d in store.run_structures(p.run_id) if d["kind"] == "final"]
        docs = docs[: int(job.options.get("n_structures", 2))]
        frames, labels = [store.load_frame(d) for d in docs], [d["run_id"] for d in docs]
    o = job.options
    result = explain(
        job.model_dir, frames, labels, job.out, float(o.get("threshold", 0.5)), int(o.get("max_pairs", 10)),
        int(o.get("sign", 0)),
    )  # fmt: skip
    record_analysis(job.model_dir, "explain", result, job.db)
    return result, {e["structure"]: e["n_hot_pairs"] for e in result["structures"]}


def _compare_descriptors(job: AnalysisJob) -> tuple[dict, dict]:
    from pdmd.analysis.cyclooctane import compare_descriptors
    from pdmd.analysis.record import record_analysis

    o = job.options
    result = compare_descriptors(job.out, int(o.get("highlight", 20)), int(o.get("seed", 0)), o.get("subset"))
    if job.model_dir is not None:
        record_analysis(job.model_dir, "compare_descriptors", result, job.db)
    return result, {k: v["trustworthiness_k10"] for k, v in result["descriptors"].items()}


ANALYSES: dict[str, Callable[[AnalysisJob], tuple[dict, dict]]] = {
    "baseline": _baseline,
    "interpolation-test": _interpolation_test,
    "explain": _explain,
    "compare-descriptors": _compare_descriptors,
}


def run_analysis(name: str, job: AnalysisJob) -> tuple[dict, dict]:
    """Run the analysis called `name` (a key of ANALYSES) on `job`: (result, summary)."""
    if name not in ANALYSES:
        raise InputError(f"unknown analysis {name!r}; choose one of {sorted(ANALYSES)}")
    return ANALYSES[name](job)
