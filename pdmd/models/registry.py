# SPDX-License-Identifier: GPL-3.0-or-later
"""Model kinds: the one list of kinds, how to train each and how to load a model folder by its card.

A kind is a name on the model card (`model_kind`; cards written before kinds existed are
"pd-cnn") with a train function and a loader. Every loaded model has `card`, `dim` and
`predict_frames(frames, labels) -> (energies eV/atom, mean seconds per structure)`.

- pd-cnn: the paper's CNN on the 128×128 PD histogram (`pdmd.models.cnn`).
- pd-kernel: kernel ridge regression on vectorized persistence diagrams (`pdmd.models.kernel.pd_kernel`).
- pd-hybrid: kernel ridge on PD features together with averaged ACSF/SOAP (`pdmd.models.kernel.pd_hybrid`).
- pd-local: per-atom networks on local neighbourhood PDs, energies summed, forces (`pdmd.models.local`).

A kind's module is imported when the kind is used (torch and scikit-learn only when needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdmd.errors import InputError
from pdmd.store.documents import model_kind_of, read_card

if TYPE_CHECKING:
    from pdmd.models.data import ModelData, TrainSplit

NEEDS = ("images", "diagrams", "frames")
"""The inputs a kind may need: PD histogram images, persistence diagrams, structures (`pdmd.models.data.ModelData`)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelKind:
    """A model kind: `train(data, out_dir, name, split, options, provenance) -> card`, `load(folder) -> model`."""

    name: str
    summary: str
    needs: frozenset[str]
    train: Callable[[ModelData, Path, str, TrainSplit, dict, dict], dict]
    load: Callable[[Path], Any]


def _train(kind: str, *args) -> dict:
    """Train with kind `kind`'s function, imported here on first use (torch, scikit-learn only when needed)."""
    if kind == "pd-cnn":
        from pdmd.models.cnn.fit import train_cnn as train
    elif kind == "pd-kernel":
        from pdmd.models.kernel.pd_kernel import train_pd_kernel as train
    elif kind == "pd-hybrid":
        from pdmd.models.kernel.pd_hybrid import train_pd_hybrid as train
    else:
        from pdmd.models.local.train import train_pd_local as train
    return train(*args)


def _load(kind: str, folder: Path):
    """Load a model folder with kind `kind`'s loader, imported here on first use."""
    if kind == "pd-cnn":
        from pdmd.models.cnn.potential import load_cnn as load
    elif kind in ("pd-kernel", "pd-hybrid"):
        from pdmd.models.kernel.pd_kernel import load_kernel_model as load
    else:
        from pdmd.models.local.train import load_pd_local as load
    return load(folder)


MODEL_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> None:
    """Add (or replace) a model kind in the registry."""
    unknown = set(kind.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"kind {kind.name}: unknown inputs {sorted(unknown)}; use {NEEDS}")
    MODEL_KINDS[kind.name] = kind


for _name, _summary, _needs in (
    ("pd-cnn", "the paper's CNN on the PD histogram image", {"images"}),
    ("pd-kernel", "kernel ridge on vectorized persistence diagrams (CV-chosen)", {"diagrams"}),
    ("pd-hybrid", "kernel ridge on PD features + averaged ACSF/SOAP", {"diagrams", "frames"}),
    ("pd-local", "per-atom local PD energies summed; forces by autograd (MD-ready)", {"frames"}),
):
    register_kind(ModelKind(_name, _summary, frozenset(_needs), partial(_train, _name), partial(_load, _name)))
KINDS: tuple[str, ...] = tuple(MODEL_KINDS)
"""The model kinds, in the order the CLI and the docs list them."""


def extra_image_degrees(kind: str, cnn: Any) -> tuple[int, ...]:
    """Homology degrees a pd-cnn stacks after its descriptor's image (`CNNConfig.extra_degrees`), from its `cnn`
    options or a card's `architecture` (checked: a bad value is one InputError line); () for other kinds and for
    the paper's single H1 image.
    """
    if kind != "pd-cnn":
        return ()
    from pdmd.models.cnn.options import config_from_options

    return config_from_options("cnn", {} if cnn is None else cnn, "pd-cnn options: cnn").extra_degrees


def training_needs(kind: str) -> frozenset[str]:
    """What training `kind` loads: its inputs, and for the kinds with one energy per structure (inputs images or
    diagrams) each structure's geometry as well, for their geometry domain (`pdmd.models.global_domain`).
    """
    needs = get_kind(kind).needs
    return needs | {"geometry"} if needs & {"images", "diagrams"} else needs


def get_kind(name: str) -> ModelKind:
    if name not in MODEL_KINDS:
        raise InputError(f"unknown model kind {name!r}; choose one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[name]


def load_model(folder: str | Path):
    """The model in `folder`, loaded by its card's kind."""
    return get_kind(model_kind_of(read_card(folder))).load(Path(folder))
