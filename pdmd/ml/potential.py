"""A trained PD-CNN potential on disk: weights + card, loading, and prediction from structures.

Model folder: `weights.pt` (state dict), `model.json` (the card: architecture, descriptor
settings, standardization, split, training history, errors, plot paths).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import alpha_diagram
from pdmd.errors import InputError
from pdmd.ml.model import PDCNN, CNNConfig
from pdmd.ml.standardize import ImageScaler, TargetScaler
from pdmd.ml.train import predict_normalized
from pdmd.store.files import read_json, write_json_atomic
from pdmd.structure import Frame


@dataclass
class Potential:
    """Trained model + everything needed to turn a structure into a prediction (eV/atom)."""

    model: PDCNN
    card: dict
    image_scaler: ImageScaler
    target_scaler: TargetScaler

    @property
    def dim(self) -> int:
        return int(self.card["descriptor"]["dim"])

    @property
    def histogram_spec(self) -> HistogramSpec:
        d = self.card["descriptor"]
        return HistogramSpec(d["lo_A2"], d["hi_A2"], d["bins"])

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """Energies (eV/atom) for raw probability images (N, bins, bins)."""
        x = torch.from_numpy(self.image_scaler.transform(images)[:, None])
        z = predict_normalized(self.model, x).numpy()
        return self.target_scaler.inverse(z)

    def check_fits(self, frame: Frame, label: str) -> None:
        """Refuse structures of another element or dimensionality than the training data."""
        elements = set(self.card["descriptor"]["elements"])
        present = {int(z) for z in np.unique(frame.numbers)}
        if not present <= elements:
            raise InputError(
                f"{label}: contains elements Z={sorted(present - elements)}; "
                f"the model was trained on Z={sorted(elements)}"
            )
        periodic = sum(frame.pbc)
        if self.dim == 2 and (periodic == 3 and np.ptp(frame.positions[:, 2]) > 0.5):
            raise InputError(f"{label}: is a 3D structure; this model was trained on 2D sheets")
        if self.dim == 3 and (periodic < 3 or np.ptp(frame.positions[:, 2]) < 0.5):
            raise InputError(f"{label}: is not a 3D periodic structure; this model was trained on 3D cells")

    def image_of(self, frame: Frame, label: str = "structure") -> np.ndarray:
        self.check_fits(frame, label)
        d = self.card["descriptor"]
        diagram = alpha_diagram(frame, self.dim, d["degree"], backend=d.get("backend"), label=label)
        return pd_histogram(diagram.births_A2, diagram.deaths_A2, self.histogram_spec).image

    def predict_frames(self, frames: list[Frame], labels: list[str]) -> tuple[np.ndarray, float]:
        """Energies (eV/atom) of structures and the mean seconds per structure (PD + CNN)."""
        t0 = time.perf_counter()
        images = np.stack([self.image_of(f, lab) for f, lab in zip(frames, labels)])
        energies = self.predict_images(images)
        return energies, (time.perf_counter() - t0) / max(len(frames), 1)


def save_potential(folder: Path, model: PDCNN, card: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".weights.pt.tmp"
    torch.save(model.state_dict(), tmp)
    tmp.replace(folder / "weights.pt")
    write_json_atomic(folder / "model.json", card)


def load_potential(folder: str | Path) -> Potential:
    folder = Path(folder)
    if (folder / "model.json").is_file() is False:
        raise InputError(f"{folder} is not a pdmd model folder (no model.json)")
    card = read_json(folder / "model.json")
    model = PDCNN(CNNConfig.from_dict(card["architecture"]))
    model.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    model.eval()
    return Potential(
        model, card, ImageScaler(**card["standardization"]["image"]), TargetScaler(**card["standardization"]["target"])
    )
