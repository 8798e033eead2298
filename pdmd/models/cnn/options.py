# SPDX-License-Identifier: GPL-3.0-or-later
"""The pd-cnn's settings from user options (`pdmd train --model-options`, a train firework's `train:` / `cnn:`):
value checks per `TrainConfig` / `CNNConfig` field, and the settings themselves with every problem in one line.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pdmd.checks import (
    Check,
    Problems,
    boolean,
    channels,
    degrees,
    fraction,
    int_at_least,
    non_empty_str,
    non_negative,
    one_of,
    optional_positive,
    positive,
)
from pdmd.errors import InputError
from pdmd.models.cnn.config import POOLS, PRECISIONS, SCHEDULES, CNNConfig, TrainConfig
from pdmd.models.cnn.standardize import REPRESENTATIONS, SCOPES, STANDARDIZATIONS

TRAIN_RULES = {
    "epochs": int_at_least(1),
    "batch_size": int_at_least(1),
    "learning_rate": positive,
    "weight_decay": non_negative,
    "lr_factor": fraction,
    "lr_patience": int_at_least(0),
    "schedule": one_of(set(SCHEDULES)),
    "early_stopping_patience": int_at_least(0),
    "val_fraction": fraction,
    "seed": int_at_least(0),
    "standardization": one_of(set(STANDARDIZATIONS)),
    "representation": one_of({*REPRESENTATIONS, "auto"}),
    "smooth_sigma_px": positive,
    "image_scope": one_of(set(SCOPES)),
    "precision": one_of(set(PRECISIONS)),
    "channels_last": boolean,
    "max_minutes": optional_positive,
    "device": non_empty_str,
}
"""Value checks of `pdmd.models.cnn.train.TrainConfig` fields (names are taken from the dataclass itself)."""
CNN_RULES = {
    "image_size": int_at_least(4),
    "channels": channels,
    "fc_hidden": int_at_least(1),
    "pool": one_of(set(POOLS)),
    "extra_degrees": degrees,
}
"""Value checks of `pdmd.models.cnn.network.CNNConfig` fields."""


def _config_class(kind: str) -> type[TrainConfig] | type[CNNConfig]:
    """The settings class of `kind`."""
    return TrainConfig if kind == "train" else CNNConfig


def config_rule(kind: str) -> Check:
    """Fields of TrainConfig ("train") or CNNConfig ("cnn"): known names, sane values."""

    def check(where: str, v: Any, out: Problems) -> None:
        if not isinstance(v, dict):
            out.append(f"{where}: must be a mapping, got {v!r}")
            return
        known = {f.name for f in dataclasses.fields(_config_class(kind))}
        rules = TRAIN_RULES if kind == "train" else CNN_RULES
        for key, value in v.items():
            if key not in known:
                out.append(f"{where}.{key}: unknown {kind} setting; known: {sorted(known)}")
            elif key in rules:
                rules[key](f"{where}.{key}", value, out)

    return check


def config_from_options(kind: str, values: Any, where: str, defaults: dict | None = None) -> TrainConfig | CNNConfig:
    """TrainConfig ("train") or CNNConfig ("cnn") from user options, checked by the rules above (those of `pdmd
    check`): every problem in one InputError line, no traceback for a typo in `--model-options` or a firework.
    `defaults`: pdmd's own settings (e.g. a model card's) that the user's `values` override.
    """
    problems: Problems = []
    config_rule(kind)(where, values, problems)
    if problems:
        raise InputError("; ".join(problems))
    try:
        return _config_class(kind)(**{**(defaults or {}), **values})
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: {err}") from None
