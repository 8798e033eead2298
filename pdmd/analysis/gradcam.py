"""Grad-CAM activation maps of the PD-CNN (paper Fig. 4e-f) and their way back to pairs and atoms.

Grad-CAM (Selvaraju et al., ICCV 2017) adapted to a regression output: the gradients of the
predicted energy with respect to the last conv layer's feature maps, averaged over each map,
weight the maps. Because an empty pixel is informative too (the biases make the feature maps
non-zero where the diagram has no pairs), the maps of an empty diagram are subtracted first, so the
activation measures what the structure's pairs change: map = |sum_k w_k (A_k(x) - A_k(empty))|
(`sign=0`, the default), or its positive part with `sign=+1` (pairs that raise the predicted
energy) or `sign=-1` (pairs that lower it). Upsampled bilinearly to the image size and scaled to
a peak of 1. Image index is [birth_bin, death_bin] as in `pd_histogram`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pdmd.descriptor.histogram import HistogramSpec
from pdmd.errors import InputError
from pdmd.models.cnn.potential import Potential


def grad_cam(potential: Potential, image: np.ndarray, sign: int = 0) -> np.ndarray:
    """Activation map (bins, bins) in [0, 1] of one raw probability image (bins, bins), or of the C channels
    (C, bins, bins) of a network with extra homology degrees (one map over their shared grid).
    """
    if sign not in (0, 1, -1):
        raise InputError(f"sign must be 0 (magnitude), +1 or -1, got {sign}")
    model = potential.model
    convs = [i for i, m in enumerate(model.features) if isinstance(m, torch.nn.Conv2d)]
    last_relu = convs[-1] + 1  # Conv2d -> ReLU: the rectified feature maps of the last conv layer
    raw = np.stack([image, np.zeros_like(image)])
    x = potential.network_input(raw)
    with torch.enable_grad():
        maps = model.features[: last_relu + 1](x)
        maps.retain_grad()
        out = model.head(model.features[last_relu + 1 :](maps))
        out[0].backward()
    weights = maps.grad[:1].mean(dim=(2, 3), keepdim=True)
    contribution = (weights * (maps[:1] - maps[1:])).sum(dim=1, keepdim=True).detach()
    cam = contribution.abs() if sign == 0 else F.relu(sign * contribution)
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0].numpy()
    peak = float(cam.max())
    return cam / peak if peak > 0 else cam


@dataclass(frozen=True)
class HotPairs:
    """Pairs (birth, death Å²) whose pixel lies in the map's hottest region (map >= threshold)."""

    indices: np.ndarray
    births_A2: np.ndarray
    deaths_A2: np.ndarray
    activation: np.ndarray
    threshold: float


def hot_pairs(
    cam: np.ndarray, births_A2: np.ndarray, deaths_A2: np.ndarray, spec: HistogramSpec, threshold: float = 0.5
) -> HotPairs:
    """Pairs of a diagram that fall on pixels with activation >= `threshold` (of the map's peak)."""
    edges = spec.edges_A2
    bi = np.clip(np.searchsorted(edges, births_A2, side="right") - 1, 0, spec.bins - 1)
    di = np.clip(np.searchsorted(edges, deaths_A2, side="right") - 1, 0, spec.bins - 1)
    inside = (births_A2 >= spec.lo_A2) & (deaths_A2 < spec.hi_A2) & (births_A2 < spec.hi_A2)
    act = np.where(inside, cam[bi, di], 0.0)
    idx = np.flatnonzero(act >= threshold)
    idx = idx[np.argsort(-act[idx])]
    return HotPairs(idx, births_A2[idx], deaths_A2[idx], act[idx], threshold)
