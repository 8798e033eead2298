"""`pdmd interpolation-test` (paper SI 4.2): hold out the middle-energy band, train, test on it.

The structures whose energy lies between the `band` quantiles (default 0.4-0.6) never enter
training. The rest is split by run (seeded) into training and an ordinary test part. Reported:
RMSE on the held-out band (interpolation) and on the ordinary test part, with the energy spread
of each, and a parity plot with the three sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdmd.errors import InputError
from pdmd.files import write_json_atomic
from pdmd.models.cnn.config import CNNConfig, TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.cnn.potential import load_cnn
from pdmd.models.data import ModelData
from pdmd.models.plots import parity_plot, rmse_meV
from pdmd.models.split import train_test_split


def band_split(
    energies_eV: np.ndarray, groups: list[str], band: tuple[float, float], seed: int, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, ordinary test, held-out band) for energy quantiles `band`."""
    lo_q, hi_q = band
    if not 0.0 < lo_q < hi_q < 1.0:
        raise InputError(f"band quantiles must satisfy 0 < low < high < 1, got {band}")
    lo, hi = np.quantile(energies_eV, [lo_q, hi_q])
    in_band = (energies_eV >= lo) & (energies_eV <= hi)
    rest = np.flatnonzero(~in_band)
    tr, te = train_test_split([groups[i] for i in rest], test_fraction, seed, "run")
    return rest[tr], rest[te], np.flatnonzero(in_band)


def interpolation_test(
    data: ModelData,
    out_dir: Path,
    band: tuple[float, float] = (0.4, 0.6),
    train: TrainConfig = TrainConfig(),
    cnn: CNNConfig = CNNConfig(),
) -> dict:
    """Train without the band; RMSE (meV/atom) on the band and on the ordinary test part; PNG + JSON."""
    tr, te, held = band_split(data.energies_eV, data.groups, band, train.seed)
    name = f"interpolation-{band[0]:g}-{band[1]:g}"
    fit_potential(
        data, out_dir, name, train, cnn, split="interpolation", split_indices=(tr, np.concatenate([te, held]))
    )
    pred = load_cnn(out_dir).predict_images(data.images)
    ref = data.energies_eV
    sets = {"train": tr, "ordinary test": te, "held-out band": held}
    title = f"interpolation test: energies in quantiles {band[0]:g}-{band[1]:g} never trained on"
    png = parity_plot(out_dir / "interpolation_parity.png", {k: (ref[i], pred[i]) for k, i in sets.items()}, title)
    result = {
        "band_quantiles": list(band),
        "band_eV_per_atom": [float(ref[held].min()), float(ref[held].max())],
        **{f"n_{k.replace(' ', '_')}": int(len(i)) for k, i in sets.items()},
        **{f"rmse_{k.replace(' ', '_')}_meV_per_atom": rmse_meV(pred[i], ref[i]) for k, i in sets.items()},
        **{f"std_{k.replace(' ', '_')}_meV_per_atom": float(ref[i].std() * 1000) for k, i in sets.items()},
        "parity_png": str(png),
        "model_dir": str(out_dir),
    }
    write_json_atomic(out_dir / "interpolation.json", result)
    return result
