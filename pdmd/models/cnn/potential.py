"""A trained PD-CNN potential on disk: weights + card, loading, and prediction from structures.

Model folder: `weights.pt` (state dict; an ensemble of K seeds adds `weights-1.pt` …), `model.json`
(the card: architecture, descriptor settings, standardization, split, training history, errors,
plot paths).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pdmd.descriptor.histogram import as_channels
from pdmd.descriptor.spec import channel_images
from pdmd.errors import InputError
from pdmd.models.cnn.config import CNNConfig
from pdmd.models.cnn.network import PDCNN
from pdmd.models.cnn.standardize import ImageScaler, TargetScaler
from pdmd.models.cnn.train import pick_device, predict_normalized
from pdmd.models.data import ModelData
from pdmd.models.support import CardModel
from pdmd.store.documents import read_card, write_card
from pdmd.structure import Frame


@dataclass
class Potential(CardModel):
    """Trained model + everything needed to turn a structure into a prediction (eV/atom)."""

    model: PDCNN
    card: dict
    image_scaler: ImageScaler
    target_scaler: TargetScaler
    members: list[PDCNN] = field(default_factory=list)  # further ensemble members (other seeds) besides `model`

    @property
    def networks(self) -> list[PDCNN]:
        """Every network of the model: one, or the K members of an ensemble."""
        return [self.model, *self.members]

    def network_input(self, images: np.ndarray) -> torch.Tensor:
        """Raw probability images (N, [C,] bins, bins) as the networks take them: standardized, (N, C, bins, bins)."""
        return torch.from_numpy(as_channels(self.image_scaler.transform(images)))

    def takes(self, images: np.ndarray | None) -> bool:
        """Whether `images` (N, [C,] bins, bins) have the channels of this network's input."""
        return images is not None and as_channels(images).shape[1] == self.model.config.in_channels

    def predict_images_members(self, images: np.ndarray) -> np.ndarray:
        """Energies (eV/atom), shape (K, N), of each network for raw probability images (N, [C,] bins, bins)."""
        x = self.network_input(images)
        return np.stack([self.target_scaler.inverse(predict_normalized(m, x).numpy()) for m in self.networks])

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """Energies (eV/atom) for raw probability images (N, bins, bins): the ensemble mean."""
        return self.predict_images_members(images).mean(axis=0)

    def predict_images_spread(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std over the ensemble members) in eV/atom; the std is 0 for a single network."""
        members = self.predict_images_members(images)
        return members.mean(axis=0), members.std(axis=0)

    @property
    def extra_degrees(self) -> tuple[int, ...]:
        """Homology degrees of the input channels after the descriptor's own (see `CNNConfig`)."""
        return self.model.config.extra_degrees

    def image_of(self, frame: Frame, label: str = "structure") -> np.ndarray:
        """The network's raw input for one structure: (bins, bins), or (C, bins, bins) with extra channels."""
        return self.input_of(frame, label)[0]

    def input_of(self, frame: Frame, label: str = "structure") -> tuple[np.ndarray, int]:
        """`image_of` and the number of finite pairs of the descriptor's diagram (the first image's normaliser)."""
        self.check_fits(frame, label)
        diagram = self.spec.nonempty_diagram(frame, label)
        first = self.spec.image(diagram).image
        return channel_images(frame, self.spec, self.extra_degrees, label, first=first), int(diagram.n_pairs)

    def predict_data(self, data) -> np.ndarray:
        """Energies (eV/atom) of `ModelData`: from its images when they are this network's input, else its frames."""
        if self.takes(data.images):
            return self.predict_images(data.images)
        if data.frames is None:
            raise InputError(f"model {self.card.get('name')}: the data has neither its {self.model.config.in_channels}"
                             "-channel images nor the structures")  # fmt: skip
        return self.predict_frames(data.frames, list(data.ids))[0]

    def predict_frames(self, frames: list[Frame], labels: list[str]) -> tuple[np.ndarray, float]:
        """Energies (eV/atom) of structures and the mean seconds per structure (PD + CNN)."""
        t0 = time.perf_counter()
        images = np.stack([self.image_of(f, lab) for f, lab in zip(frames, labels)])
        energies = self.predict_images(images)
        return energies, (time.perf_counter() - t0) / max(len(frames), 1)

    def predict_frames_spread(self, frames: list[Frame], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, ensemble std) energies in eV/atom of structures; the std is 0 for a single network."""
        return self.predict_images_spread(np.stack([self.image_of(f, lab) for f, lab in zip(frames, labels)]))


def weights_file(member: int) -> str:
    """File name of ensemble member `member`'s weights (member 0: weights.pt, as for a single network)."""
    return "weights.pt" if member == 0 else f"weights-{member}.pt"


def save_potential(folder: Path, model: PDCNN, card: dict, members: list[PDCNN] | tuple = ()) -> None:
    """Weights of the network (and of further ensemble members) and the card, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, net in enumerate([model, *members]):
        tmp = folder / f".{weights_file(k)}.tmp"
        torch.save(net.state_dict(), tmp)
        tmp.replace(folder / weights_file(k))
    write_card(folder, card)


def load_cnn(folder: str | Path, device: str = "cpu") -> Potential:
    """The model in `folder` on `device` ("cpu" default, "auto", "cuda"); inputs are moved to it when predicting."""
    folder = Path(folder)
    card = read_card(folder)
    where = pick_device(device)
    networks = []
    for k in range(int((card.get("ensemble") or {}).get("size", 1))):
        net = PDCNN(CNNConfig.from_dict(card["architecture"]))
        net.load_state_dict(torch.load(folder / weights_file(k), map_location=where, weights_only=True))
        networks.append(net.to(where).eval())
    return Potential(
        networks[0],
        card,
        ImageScaler.from_dict(card["standardization"]["image"], folder),
        TargetScaler(**card["standardization"]["target"]),
        networks[1:],
    )


def cnn_features(model_dir: Path, data: ModelData) -> np.ndarray:
    """(N, C) global-average-pooled activations of the last conv layer of a PD-CNN for `data`'s diagrams."""
    potential = load_cnn(model_dir)
    images = data.images
    if not potential.takes(images):
        if data.frames is None:  # the CNN's own images of the structures (its descriptor setting, from its card)
            raise InputError("CNN features need the PD images or the structures; the data has neither")
        images = np.stack([potential.image_of(f, label) for f, label in zip(data.frames, data.ids)])
    x = potential.network_input(images)
    with torch.no_grad():
        feats = [potential.model.features(x[i : i + 256]).mean(dim=(2, 3)) for i in range(0, len(x), 256)]
    return torch.cat(feats).numpy().astype(float)
