# SPDX-License-Identifier: GPL-3.0-or-later
r"""Predict a plan's larger validation cells with saved models of any kind (no retraining); RMSE and bias.

    python benchmarks/validate_models.py DATA --plan PLAN MODEL_DIR [MODEL_DIR ...] [--label TEXT]

For models trained before all validation runs were stored (a resumed campaign): each card gets the result
under `--label` (its parity PNG beside it), and a markdown table is printed (RMSE, bias, structures, the
mean predictor of each model's training energies). The 512-atom rows of docs/models.md (aC, all 172 cells):

    OMP_NUM_THREADS=1 nice -n 2 .venv/bin/python benchmarks/validate_models.py paper_runs/ac_paper --plan ac-paper \
        ANALYSES/pd-local ANALYSES/pd-kernel ANALYSES/pd-hybrid    # ANALYSES: the `pdmd baseline` output folder
    .venv/bin/python benchmarks/validate_models.py --quick     # seconds: a pd-kernel and an untrained pd-local
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _quick import add_quick_arguments, output_folder, resolve_data, untrained_local_model

from pdmd.descriptor.atomic import structure_features
from pdmd.descriptor.spec import DescriptorSpec
from pdmd.models.data import data_from_structures
from pdmd.models.labelled import load_structures
from pdmd.models.registry import MODEL_KINDS, extra_image_degrees
from pdmd.models.training import validate_model
from pdmd.store.datastore import DataStore
from pdmd.store.documents import model_kind_of, read_card


def kernel_model(data: Path, plan: str, out: Path) -> Path:
    """A pd-kernel model (histogram vectorization, RBF kernel) trained on a plan's run split, saved in `out`."""
    from pdmd.campaign import plan_descriptor
    from pdmd.models.split import train_test_split
    from pdmd.models.training import train_model

    d = data_from_structures(load_structures(data, plan), plan_descriptor(plan), {"diagrams"}, DataStore(data))
    options = {"vectorizations": [{"method": "hist", "bins": 32, "norm": "pairs"}], "kernels": ["rbf"]}
    train_model("pd-kernel", d, out, out.name, split_indices=train_test_split(d.groups, 0.2, 0, "run"),
                options=options)  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", help="the plan of DATA (required unless --quick)")
    p.add_argument("models", nargs="*", type=Path, help="model folders (any kind) trained on the plan's data")
    p.add_argument("--label", help="validation label on the cards (default: N-atom validation, all)")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    if args.quick:  # a pd-kernel trained on the tiny data (one vectorization) and an untrained pd-local
        folder = output_folder(None, "validate-models")
        args.models = [kernel_model(args.data, args.plan, folder / "pd-kernel"),
                       untrained_local_model(folder / "pd-local")]  # fmt: skip
    elif args.plan is None or not args.models:
        p.error("--plan and at least one MODEL_DIR are required")
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
