# SPDX-License-Identifier: GPL-3.0-or-later
"""Predict a plan's larger validation cells with saved models of any kind (no retraining); RMSE and bias.

    python benchmarks/validate_models.py DATA --plan PLAN MODEL_DIR [MODEL_DIR ...] [--label TEXT]

For models trained before all validation runs were stored (a resumed campaign): each card gets the result
under `--label` (its parity PNG beside it), and a markdown table is printed (RMSE, bias, structures, the
mean predictor of each model's training energies).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdmd.descriptor.atomic import structure_features
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.models.data import data_from_structures
from pdmd.models.labelled import load_structures
from pdmd.models.registry import MODEL_KINDS, extra_image_degrees
from pdmd.models.training import validate_model
from pdmd.store.datastore import DataStore
from pdmd.store.documents import model_kind_of, read_card


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--plan", required=True)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--label", help="validation label on the cards (default: N-atom validation, all)")
    args = p.parse_args()
    big = load_structures(args.data, args.plan, None, validation=True)
    if not big.frames:
        raise SystemExit(f"{args.data}: no stored validation structures of plan {args.plan} (run its campaign)")
    label = args.label or f"{big.frames[0].n_atoms}-atom validation, all {len(big.frames)}"
    features: dict = {}
    print(f"| model | kind | {label}: RMSE (meV/atom) | bias | mean predictor |")
    print("|---|---|---|---|---|")
    for folder in args.models:
        card = read_card(folder)
        kind = model_kind_of(card)
        spec = DescriptorSpec.from_dict(card["descriptor"], f"model {card['name']}")
        extra = extra_image_degrees(kind, card.get("architecture"))
        data = data_from_structures(big, spec, MODEL_KINDS[kind].needs, DataStore(args.data), extra)
        for name in card.get("training", {}).get("descriptors", []):  # pd-hybrid's ACSF / SOAP block
            if name not in features:
                features[name] = structure_features(name, big.frames, "validation features")[0]
        data.features = features
        v = validate_model(folder, data, label)["validation"][label]
        print(f"| {folder} | {kind} | {v['rmse_meV_per_atom']:.1f} | {v['bias_meV_per_atom']:+.1f} | "
              f"{v['mean_predictor_rmse_meV_per_atom']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
