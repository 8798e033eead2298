"""`pdmd baseline`: baselines and the PD model kinds on one split (a given model's), side by side; PNG, JSON, DB."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pdmd.analysis.baselines import fit_baseline
from pdmd.analysis.record import record_analysis
from pdmd.descriptor.atomic import structure_features
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.files import write_json_atomic
from pdmd.models.labelled import LabelledStructures, load_structures
from pdmd.models.plots import parity_plot, rmse_meV
from pdmd.models.split import thin_indices, train_test_split
from pdmd.store.datastore import DataStore
from pdmd.store.documents import read_card

if TYPE_CHECKING:
    from pdmd.models.data import ModelData

log = logging.getLogger(__name__)


def split_like_model(
    data: LabelledStructures, card: dict | None, seed: int = 0, every: int = 1
) -> tuple[np.ndarray, np.ndarray, str]:
    """(train, test) indices: the model card's own structure ids if given, else a seeded split by run
    (of every `every`-th structure per run and its last, as `benchmarks/paper_accuracy.py --every`).
    """
    if card is None:
        keep = thin_indices(list(data.groups), every)
        train, test = train_test_split([data.groups[i] for i in keep], 0.2, seed, "run")
        thinned = f", every {every}-th structure of each run and its last" if every > 1 else ""
        return keep[train], keep[test], f"run split (seed {seed}, 20 % of runs{thinned}), no model given"
    index = {sid: i for i, sid in enumerate(data.ids)}
    split = card["split"]
    train = [index[s] for s in split["train_ids"] if s in index]
    test = [index[s] for s in split["test_ids"] if s in index]
    missing = len(split["train_ids"]) + len(split["test_ids"]) - len(train) - len(test)
    if not train or not test:
        raise InputError(
            f"the data holds none of model {card['name']!r}'s training or test structures: wrong DATA/--plan?"
        )
    if missing:
        log.warning("%d structures of the model's split are not in DATA and are left out", missing)
    return np.asarray(train), np.asarray(test), f"the split of model {card['name']} ({split['kind']})"


KIND_ROWS = ("pd-kernel", "pd-hybrid")
"""PD-based model kinds that `pdmd baseline` trains on the same split by default (`pdmd.models.registry`)."""


def _pd_ms(frames: list, spec: DescriptorSpec) -> float:
    """Milliseconds per structure of the persistence diagram (the PD models' descriptor), on up to 20 frames."""
    sample = frames[:20]
    spec.diagram(sample[0])  # start the backend's worker process outside the timing
    t0 = time.perf_counter()
    for frame in sample:
        spec.diagram(frame)
    return 1000 * (time.perf_counter() - t0) / len(sample)


def _pd_descriptor(
    data_path: Path, plan: str | None, data: LabelledStructures, card: dict | None
) -> tuple[DescriptorSpec, DataStore | None]:
    """(descriptor setting, store or None) of the PD models: the card's, else the plan's, else the default."""
    from pdmd.models.labelled import is_data_dir

    if card is not None:
        spec = DescriptorSpec.from_dict(card["descriptor"], f"model {card['name']}")
    elif plan is not None:
        from pdmd.campaign import plan_descriptor

        spec = plan_descriptor(plan)
    else:
        elements = {int(z) for f in data.frames for z in np.unique(f.numbers)}
        spec = DescriptorSpec.for_system(data.system, elements=elements)
    return spec, (DataStore(data_path) if is_data_dir(Path(data_path)) else None)


def _model_row(card: dict, pd_ms: float | None) -> dict:
    """A table row from a model card of any kind (its own test and larger-cell numbers)."""
    from pdmd.store.documents import model_kind_of

    kind = model_kind_of(card)
    m = card["metrics"]
    labels = {"pd-cnn": ("PD image", "CNN"), "pd-kernel": ("PD diagram", "KRR (pd-kernel)")}
    if kind == "pd-hybrid":
        labels[kind] = ("PD + " + "+".join(card["training"]["descriptors"]).upper(), "KRR (pd-hybrid)")
    descriptor, model = labels.get(kind, (kind, kind))
    big = next(iter((card.get("validation") or {}).values()), None)
    return {
        "descriptor": descriptor, "model": model, "model_kind": kind, "model_dir": card.get("path"),
        "chosen": (card.get("kernel_model") or {}).get("candidate"),
        "train_rmse": m["train_rmse_meV_per_atom"], "test_rmse": m["test_rmse_meV_per_atom"],
        "test_std": m["test_energy_std_meV_per_atom"], "transfer_rmse": big["rmse_meV_per_atom"] if big else None,
        "transfer_bias": big.get("bias_meV_per_atom") if big else None,
        "train_seconds": m.get("train_seconds", m.get("training_s")),
        "force_rmse_over_std": m.get("test_force_rmse_over_std"),
        "predict_ms_per_structure": m.get("predict_ms_per_structure", m.get("cnn_ms_per_structure")),
        "descriptor_ms_per_structure": pd_ms,
    }  # fmt: skip


@dataclass
class _Comparison:
    """What every row of one `pdmd baseline` table shares: the data and its split, the larger-cell (transfer)
    set, the output folder, and the baselines' features by descriptor (reused by the PD model kinds).
    """

    data_path: Path
    plan: str | None
    data: LabelledStructures
    train: np.ndarray
    test: np.ndarray
    how: str
    split_kind: str
    big: LabelledStructures | None
    out_dir: Path
    features: dict = field(default_factory=dict)
    big_features: dict = field(default_factory=dict)


def run_baselines(
    data_path: Path,
    descriptors: list[str],
    models: list[str],
    out_dir: Path,
    plan: str | None = None,
    system: str | None = None,
    model_dir: Path | None = None,
    transfer: bool = True,
    db=None,
    kinds: tuple[str, ...] | list[str] = KIND_ROWS,
    kind_options: dict | None = None,
    read_options=None,
    label_keys=None,
    every: int = 1,
) -> dict:
    """Fit every descriptor × model baseline and every PD model kind in `kinds` on one split; returns (and
    writes to baselines.json) the comparison table, with the mean predictor and the given model as rows.

    The kinds' models are saved under `out_dir/<kind>` (usable by `pdmd predict`); `kind_options`
    maps a kind to its training options. ACSF/SOAP features computed for the baselines are reused.
    `every` > 1 (without a model) keeps every `every`-th structure of each run and its last.
    """
    from pdmd.models.registry import get_kind

    if model_dir is not None and every > 1:  # refused before any data is read
        raise InputError("--every applies to the split made without a model; --cnn MODEL brings its own split")
    data = load_structures(data_path, plan, system, read_options=read_options, label_keys=label_keys)
    card = read_card(model_dir) if model_dir else None
    data, train, test, how = _split(data, card, every)
    for kind in kinds:
        get_kind(kind)
    big = _transfer_set(data_path, plan, system) if transfer and plan is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    c = _Comparison(data_path, plan, data, train, test, how, card["split"]["kind"] if card else "run", big, out_dir)
    rows = [row for descriptor in descriptors for row in _baseline_rows(c, descriptor, models)]
    spec = store = pd_ms = None
    if kinds or card is not None:
        spec, store = _pd_descriptor(data_path, plan, data, card)
        pd_ms = _pd_ms([data.frames[i] for i in test], spec)
    for kind in kinds:
        options = dict((kind_options or {}).get(kind) or {})
        rows.append(_kind_row(c, kind, spec, store, options, descriptors, pd_ms))
    rows.insert(0, _mean_row(c))
    if card is not None:
        rows.insert(1, _model_row(card, pd_ms))
    table = {"data": str(data_path), "plan": plan, "split": how, "n_train": int(len(train)), "n_test": int(len(test)),
             "n_transfer": len(big.frames) if big is not None else 0, "rows": rows,
             "units": {"rmse": "meV/atom", "time": "s", "predict": "ms per structure (model only)"}}  # fmt: skip
    write_json_atomic(out_dir / "baselines.json", table)
    if model_dir is not None:
        record_analysis(model_dir, "baselines", table, db)
    return table


def _split(
    data: LabelledStructures, card: dict | None, every: int
) -> tuple[LabelledStructures, np.ndarray, np.ndarray, str]:
    """(data, train, test, how) of `split_like_model`; with `every` > 1 the data are the kept structures only."""
    train, test, how = split_like_model(data, card, every=every)
    if every > 1:  # only the kept structures: every kind featurizes, trains on and predicts these alone
        data = data.subset(np.concatenate([train, test]))
        train, test = np.arange(len(train)), np.arange(len(train), len(train) + len(test))
    return data, train, test, how


def _transfer_set(data_path: Path, plan: str, system: str | None) -> LabelledStructures | None:
    """The plan's larger-cell validation structures; None (with a warning) where it has none."""
    try:
        return load_structures(data_path, plan, system, validation=True)
    except InputError as exc:
        log.warning("no transfer set: %s", exc)
        return None


def _baseline_rows(c: _Comparison, descriptor: str, models: list[str]) -> list[dict]:
    """Featurize the split (and the transfer set) with `descriptor`, keep the features in `c`, and fit each model
    on them; their rows (RMSEs in meV/atom) with the parity PNGs.
    """
    used = np.concatenate([c.train, c.test])  # only the structures of the split are featurized
    x_used, seconds = structure_features(descriptor, [c.data.frames[i] for i in used], "features")
    x_all = np.zeros((len(c.data.frames), x_used.shape[1]))
    x_all[used] = x_used
    c.features[descriptor] = x_all
    x_big = structure_features(descriptor, c.big.frames, "larger-cell features")[0] if c.big is not None else None
    c.big_features[descriptor] = x_big
    rows = []
    for model in models:
        log.info("baseline %s + %s on %d train / %d test structures (%s)", descriptor, model, len(c.train),
                 len(c.test), c.how)  # fmt: skip
        result = fit_baseline(
            descriptor,
            model,
            (x_all[c.train], c.data.energies_eV[c.train]),
            (x_all[c.test], c.data.energies_eV[c.test]),
            (x_big, c.big.energies_eV) if c.big is not None else None,
            descriptor_ms=1000 * seconds,
        )
        png = parity_plot(
            c.out_dir / f"baseline_{descriptor}_{model}_parity.png",
            result.predictions,
            f"{descriptor.upper()} + {model.upper()} ({c.how})",
        )
        rows.append({**result.summary(), "parity_png": str(png)})
    return rows


def _kind_data(
    c: _Comparison, kind: str, spec: DescriptorSpec, store: DataStore | None, cnn_options: dict | None
) -> tuple[ModelData, ModelData | None]:
    """A PD model kind's data of the structures and of the transfer set (None without one), with the baselines'
    features attached.
    """
    from pdmd.models.data import data_from_structures
    from pdmd.models.registry import extra_image_degrees, training_needs

    needs = training_needs(kind)
    extra = extra_image_degrees(kind, cnn_options)
    mdata = data_from_structures(c.data, spec, needs, store, extra)
    mdata.features = c.features
    bdata = None
    if c.big is not None:
        bdata = data_from_structures(c.big, spec, needs, store, extra)
        bdata.features = c.big_features
    return mdata, bdata


def _complete_options(
    c: _Comparison,
    kind: str,
    options: dict,
    spec: DescriptorSpec,
    store: DataStore | None,
    bdata: ModelData | None,
    descriptors: list[str],
) -> None:
    """Add to a kind's training options what this comparison gives: the stored forces (pd-local), the transfer
    set, the baseline descriptor a pd-hybrid combines with (its preferred one if among `descriptors`).
    """
    if kind == "pd-local" and store is not None:
        options.setdefault("store_root", str(c.data_path))  # train on the stored forces too
    if bdata is not None:
        options["ablation_transfer"] = bdata
    if kind == "pd-hybrid" and "descriptors" not in options and descriptors:
        from pdmd.models.kernel.pd_hybrid import DEFAULT_DESCRIPTOR

        preferred = DEFAULT_DESCRIPTOR[spec.dim]
        options["descriptors"] = [preferred if preferred in descriptors else descriptors[0]]


def _kind_row(
    c: _Comparison,
    kind: str,
    spec: DescriptorSpec,
    store: DataStore | None,
    options: dict,
    descriptors: list[str],
    pd_ms: float | None,
) -> dict:
    """Train PD model kind `kind` on the comparison's split (saved under `out_dir/<kind>`) and validate it on the
    transfer set; its table row (`pd_ms`: the diagram's ms per structure, for kinds that use the global diagram).
    """
    from pdmd.models.registry import MODEL_KINDS
    from pdmd.models.training import train_model, validate_model

    mdata, bdata = _kind_data(c, kind, spec, store, options.get("cnn"))
    _complete_options(c, kind, options, spec, store, bdata, descriptors)
    folder = c.out_dir / kind
    log.info("%s on %d train / %d test structures (%s)", kind, len(c.train), len(c.test), c.how)
    provenance = {"baseline_table": str(c.out_dir), "data": str(c.data_path), "plan": c.plan}
    kcard = train_model(kind, mdata, folder, f"{c.out_dir.name}-{kind}", split_indices=(c.train, c.test),
                        split=c.split_kind, options=options, provenance=provenance)  # fmt: skip
    if bdata is not None:
        kcard = validate_model(folder, bdata, f"{c.big.frames[0].n_atoms}-atom validation")
    own_ms = pd_ms if "diagrams" in MODEL_KINDS[kind].needs else None  # pd-local computes its own local diagrams
    return {**_model_row(kcard, own_ms), "parity_png": kcard["plots"]["parity"]}


def _mean_row(c: _Comparison) -> dict:
    """The row of the mean predictor (the mean training energy for every structure; meV/atom)."""
    y = c.data.energies_eV
    mean = float(y[c.train].mean())
    big_y = c.big.energies_eV if c.big is not None else None
    return {"descriptor": "–", "model": "mean of training energies", "train_rmse": float(y[c.train].std() * 1000),
            "test_rmse": rmse_meV(np.full(len(c.test), mean), y[c.test]), "test_std": float(y[c.test].std() * 1000),
            "transfer_rmse": rmse_meV(np.full(len(big_y), mean), big_y) if c.big is not None else None,
            "transfer_bias": float((mean - big_y.mean()) * 1000) if c.big is not None else None}  # fmt: skip


def format_table(table: dict) -> str:
    """The comparison as a Markdown table (meV/atom, seconds, ms)."""

    def f(v, fmt=".1f"):
        return "–" if v is None else format(v, fmt)

    lines = [
        f"{table['split']}: {table['n_train']} train / {table['n_test']} test structures, "
        f"{table['n_transfer']} larger-cell structures",
        "",
        "| descriptor | model | train RMSE | test RMSE | test std | larger-cell RMSE | larger-cell bias "
        "| test force RMSE / std | train time (s) | descriptor (ms) | model predict (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table["rows"]:
        lines.append(
            f"| {r['descriptor']} | {r['model']} | {f(r['train_rmse'])} | {f(r['test_rmse'])} | {f(r['test_std'])} | "
            f"{f(r['transfer_rmse'])} | {f(r.get('transfer_bias'))} | {f(r.get('force_rmse_over_std'), '.3f')} "
            f"| {f(r.get('train_seconds'))} | {f(r.get('descriptor_ms_per_structure'))} "
            f"| {f(r.get('predict_ms_per_structure'), '.2f')} |"
        )
    return "\n".join(lines)
