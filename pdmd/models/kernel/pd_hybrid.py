# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-hybrid: the paper's "complementary" proposal — PD features next to averaged ACSF/SOAP, in kernel ridge.

Feature blocks: one PD block (a persistence-image / histogram vectorization of `pdmd.models.kernel.pd_kernel`,
or, with option `cnn: MODEL`, the global-average-pooled last conv layer of a trained PD-CNN) and
the averaged ACSF or SOAP of `pdmd.descriptor.atomic` (default ACSF for 2D sheets, SOAP for 3D
cells, the better baseline of each). ACSF/SOAP are standardized per feature, PD blocks centred
only; each block's distances are divided by their median among the training rows and summed with
weights (w_PD, 1 − w_PD) inside the kernel: exp(−g Σ_b w_b D_b/m_b) (or the weighted sum of
linear kernels). w_PD, the kernel, g and α are chosen by grouped CV on the training part only
(`pdmd.models.kernel.pd_kernel.cross_validate`); the descriptor alone through the same machinery is one more
candidate, so the card's ablation shows what the PD block adds.

Options: descriptors (["acsf"] / ["soap"] / both), vectorizations (PD candidates, default
`HYBRID_VECTORIZATIONS`), pd_weights (default `PD_WEIGHTS`), cnn (a pd-cnn model folder whose
training never saw this model's test structures), kernels, gammas, alphas, folds, ablation_test.
"""

from __future__ import annotations

import time
from pathlib import Path

from pdmd.errors import InputError
from pdmd.models.data import ModelData, TrainSplit
from pdmd.models.kernel.pd_kernel import KernelGrid, describe, fit_vectorization, save_kernel_model, select_and_fit
from pdmd.store.documents import model_kind_of, read_card

HYBRID_VECTORIZATIONS: tuple[dict, ...] = (
    {"method": "pi", "bins": 32, "sigma_A2": 0.1, "norm": "atoms"},
    {"method": "pi", "bins": 32, "sigma_A2": 0.3, "norm": "atoms"},
)
PD_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75)
DEFAULT_DESCRIPTOR = {2: "acsf", 3: "soap"}


def _check_cnn(model_dir: Path, data: ModelData, split: TrainSplit) -> dict:
    card = read_card(model_dir)
    if model_kind_of(card) != "pd-cnn":
        raise InputError(f"option cnn: {model_dir} holds a {model_kind_of(card)} model, not a pd-cnn")
    seen = set(card["split"]["train_ids"]) & {data.ids[i] for i in split.test_idx}
    if seen:
        raise InputError(f"option cnn: {card['name']} was trained on {len(seen)} of this model's test structures; "
                         "use a CNN trained on this split (e.g. `pdmd baseline --cnn` with that CNN)")  # fmt: skip
    return {"type": "cnn", "model": str(Path(model_dir).resolve())}


def train_pd_hybrid(
    data: ModelData, out_dir: Path, name: str, split: TrainSplit, options: dict, provenance: dict
) -> dict:
    """CV every PD block × ACSF/SOAP weighting on the training part; keep the best; save and card it."""
    t0 = time.perf_counter()
    descriptors = list(options.get("descriptors") or [DEFAULT_DESCRIPTOR[data.descriptor.dim]])
    if set(descriptors) - {"acsf", "soap"}:
        raise InputError(f"pd-hybrid descriptors must be 'acsf' and/or 'soap', got {descriptors}")
    other = [{"type": d} for d in descriptors]
    share = len(other)
    weights = tuple((w, *([(1.0 - w) / share] * share)) for w in options.get("pd_weights", PD_WEIGHTS))
    grid = KernelGrid.from_options(options, weights=weights)
    tr = split.train_idx
    pd_blocks: list[tuple[str, dict]] = []
    if options.get("cnn"):
        pd_blocks.append(("cnn features", _check_cnn(Path(options["cnn"]), data, split)))
    train_b = [data.births_A2[i] for i in tr]
    train_d = [data.deaths_A2[i] for i in tr]
    for v in options.get("vectorizations", HYBRID_VECTORIZATIONS if not options.get("cnn") else ()):
        vec = fit_vectorization(v, train_b, train_d, data.descriptor)
        pd_blocks.append((describe(vec), {"type": "pd", "vectorization": vec}))
    if not pd_blocks:
        raise InputError("pd-hybrid needs a PD block: give vectorizations or a cnn model")
    standardize = [False] + [True] * share
    candidates = [(f"{label} + {'+'.join(descriptors)}", [block, *other], standardize, grid)
                  for label, block in pd_blocks]  # fmt: skip
    alone = KernelGrid.from_options(options, weights=((1.0 / share,) * share,))
    candidates.append((f"{'+'.join(descriptors)} alone (no PD)", other, [True] * share, alone))
    chosen, fit, ablation, pred = select_and_fit(candidates, data, split, bool(options.get("ablation_test", True)),
                                                 options.get("ablation_transfer"))  # fmt: skip
    settings = {"grid": {"kernels": list(grid.kernels), "gammas": list(grid.gammas), "alphas": list(grid.alphas),
                         "weights (PD first)": [list(w) for w in grid.weights]},
                "folds": grid.folds, "descriptors": descriptors}  # fmt: skip
    return save_kernel_model(data, out_dir, name, "pd-hybrid", split, chosen, fit, ablation, pred,
                             time.perf_counter() - t0, provenance, settings)  # fmt: skip
