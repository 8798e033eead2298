"""Same-data baselines: SOAP or ACSF (`pdmd.descriptor.atomic`, averaged over atoms) with kernel ridge
regression or an MLP.

What a user would try instead of the PD-CNN, on exactly its split (the model card's train/test
structure ids) and its 4× larger validation cells.
Models (scikit-learn, features standardized on the training part, target too):
- krr: RBF kernel ridge, alpha and gamma by 4-fold grid search on the training part.
- mlp: 2 hidden layers (128, 64), ReLU, Adam, early stopping on 10 % of the training part.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pdmd.errors import InputError
from pdmd.models.plots import rmse_meV

log = logging.getLogger(__name__)

MODELS = ("krr", "mlp")


def make_regressor(kind: str, n_train: int, seed: int = 0):
    """scikit-learn pipeline: standardize features, then KRR (grid-searched) or an MLP."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "krr":
        grid = {"kernelridge__alpha": [1e-6, 1e-4, 1e-2, 1.0], "kernelridge__gamma": [1e-4, 1e-3, 1e-2, 1e-1]}
        folds = KFold(n_splits=min(4, n_train), shuffle=True, random_state=seed)
        pipe = make_pipeline(StandardScaler(), KernelRidge(kernel="rbf"))
        return GridSearchCV(pipe, grid, cv=folds, scoring="neg_mean_squared_error")
    if kind == "mlp":
        mlp = MLPRegressor(
            hidden_layer_sizes=(128, 64), early_stopping=True, max_iter=2000, random_state=seed, learning_rate_init=1e-3
        )
        return make_pipeline(StandardScaler(), mlp)
    raise InputError(f"unknown model {kind!r}; choose one of {MODELS}")


@dataclass
class BaselineResult:
    """Errors (meV/atom), timings and predictions of one descriptor + model baseline."""

    descriptor: str
    model: str
    n_features: int
    train_rmse: float
    test_rmse: float
    test_std: float
    transfer_rmse: float | None
    transfer_bias: float | None
    """Mean (predicted − reference) on the larger cells, meV/atom."""
    train_seconds: float
    predict_ms_per_structure: float
    descriptor_ms_per_structure: float
    predictions: dict

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "predictions"}


def fit_baseline(
    descriptor: str,
    model: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    transfer: tuple[np.ndarray, np.ndarray] | None = None,
    descriptor_ms: float = float("nan"),
    seed: int = 0,
) -> BaselineResult:
    """Fit `model` on (features, energies eV/atom) of `train`; RMSEs on train/test/transfer (meV/atom), timings."""
    x_train, y_train = train
    x_test, y_test = test
    if len(x_train) < 4 or len(x_test) < 1:
        raise InputError(f"baseline needs >= 4 training and >= 1 test structures, got {len(x_train)}/{len(x_test)}")
    y_mean, y_std = float(y_train.mean()), float(y_train.std() or 1.0)
    reg = make_regressor(model, len(x_train), seed)
    t0 = time.perf_counter()
    reg.fit(x_train, (y_train - y_mean) / y_std)
    train_s = time.perf_counter() - t0

    def predict(x: np.ndarray) -> np.ndarray:
        return reg.predict(x) * y_std + y_mean

    t1 = time.perf_counter()
    p_test = predict(x_test)
    predict_ms = 1000 * (time.perf_counter() - t1) / len(x_test)
    p_train = predict(x_train)
    preds = {"train": (y_train, p_train), "test": (y_test, p_test)}
    transfer_rmse = transfer_bias = None
    if transfer is not None and len(transfer[0]):
        p_big = predict(transfer[0])
        preds["transfer"] = (transfer[1], p_big)
        transfer_rmse = rmse_meV(p_big, transfer[1])
        transfer_bias = float(np.mean(p_big - transfer[1]) * 1000)
    return BaselineResult(
        descriptor=descriptor,
        model=model,
        n_features=int(x_train.shape[1]),
        train_rmse=rmse_meV(p_train, y_train),
        test_rmse=rmse_meV(p_test, y_test),
        test_std=float(y_test.std() * 1000),
        transfer_rmse=transfer_rmse,
        transfer_bias=transfer_bias,
        train_seconds=train_s,
        predict_ms_per_structure=predict_ms,
        descriptor_ms_per_structure=descriptor_ms,
        predictions=preds,
    )
