"""`pdmd baseline`: baselines on the PD-CNN's own split, side by side with it; PNG, JSON, database."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from pdmd.analysis.baselines import fit_baseline, structure_features
from pdmd.analysis.data import LabelledStructures, load_structures
from pdmd.analysis.record import record_analysis
from pdmd.errors import InputError
from pdmd.ml.plots import parity_plot
from pdmd.ml.potential import load_potential
from pdmd.ml.split import train_test_split
from pdmd.store.files import read_json, write_json_atomic

log = logging.getLogger(__name__)


def split_like_model(data: LabelledStructures, card: dict | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(train, test) indices: the model card's own structure ids if given, else a seeded split by run."""
    if card is None:
        train, test = train_test_split(data.groups, 0.2, seed, "run")
        return train, test, "run split (seed 0, 20 % of runs), no model given"
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
) -> dict:
    """Fit every descriptor × model baseline; returns (and writes to baselines.json) the comparison table."""
    data = load_structures(data_path, plan, system)
    card = read_json(model_dir / "model.json") if model_dir else None
    train, test, how = split_like_model(data, card)
    big = None
    if transfer and plan is not None:
        try:
            big = load_structures(data_path, plan, system, validation=True)
        except InputError as exc:
            log.warning("no transfer set: %s", exc)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for descriptor in descriptors:
        used = np.concatenate([train, test])  # only the structures of the split are featurized
        x_used, seconds = structure_features(descriptor, [data.frames[i] for i in used], "features")
        x_all = np.zeros((len(data.frames), x_used.shape[1]))
        x_all[used] = x_used
        x_big = structure_features(descriptor, big.frames, "larger-cell features")[0] if big is not None else None
        for model in models:
            log.info("baseline %s + %s on %d train / %d test structures (%s)", descriptor, model, len(train),
                     len(test), how)  # fmt: skip
            result = fit_baseline(
                descriptor,
                model,
                (x_all[train], data.energies_eV[train]),
                (x_all[test], data.energies_eV[test]),
                (x_big, big.energies_eV) if big is not None else None,
                descriptor_ms=1000 * seconds,
            )
            png = parity_plot(
                out_dir / f"baseline_{descriptor}_{model}_parity.png",
                result.predictions,
                f"{descriptor.upper()} + {model.upper()} ({how})",
            )
            rows.append({**result.summary(), "parity_png": str(png)})
    if card is not None:
        m = card["metrics"]
        potential = load_potential(model_dir)
        sample = [data.frames[i] for i in test[:20]]
        potential.image_of(sample[0])  # start the descriptor's worker process outside the timing
        t0 = time.perf_counter()
        for frame in sample:
            potential.image_of(frame)
        pd_ms = 1000 * (time.perf_counter() - t0) / len(sample)
        big_rmse = next((v["rmse_meV_per_atom"] for v in (card.get("validation") or {}).values()), None)
        rows.insert(0, {
            "descriptor": "PD image", "model": "CNN", "train_rmse": m["train_rmse_meV_per_atom"],
            "test_rmse": m["test_rmse_meV_per_atom"], "test_std": m["test_energy_std_meV_per_atom"],
            "transfer_rmse": big_rmse, "train_seconds": m.get("train_seconds"),
            "predict_ms_per_structure": m.get("cnn_ms_per_structure"), "descriptor_ms_per_structure": pd_ms,
        })  # fmt: skip
    table = {"data": str(data_path), "plan": plan, "split": how, "n_train": int(len(train)), "n_test": int(len(test)),
             "n_transfer": len(big.frames) if big is not None else 0, "rows": rows,
             "units": {"rmse": "meV/atom", "time": "s", "predict": "ms per structure (model only)"}}  # fmt: skip
    write_json_atomic(out_dir / "baselines.json", table)
    if model_dir is not None:
        record_analysis(model_dir, "baselines", table, db)
    return table


def format_table(table: dict) -> str:
    """The comparison as a Markdown table (meV/atom, seconds, ms)."""

    def f(v, fmt=".1f"):
        return "–" if v is None else format(v, fmt)

    lines = [
        f"{table['split']}: {table['n_train']} train / {table['n_test']} test structures, "
        f"{table['n_transfer']} larger-cell structures",
        "",
        "| descriptor | model | train RMSE | test RMSE | test std | larger-cell RMSE | train time (s) "
        "| descriptor (ms) | model predict (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table["rows"]:
        lines.append(
            f"| {r['descriptor']} | {r['model']} | {f(r['train_rmse'])} | {f(r['test_rmse'])} | {f(r['test_std'])} | "
            f"{f(r['transfer_rmse'])} | {f(r.get('train_seconds'))} | {f(r.get('descriptor_ms_per_structure'))} "
            f"| {f(r.get('predict_ms_per_structure'), '.2f')} |"
        )
    return "\n".join(lines)
