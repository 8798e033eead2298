"""`pdmd explain`: Grad-CAM map of each structure, its hottest pairs, and the atoms on their rings.

Per structure: `<name>_gradcam.png` (map over the PD histogram, Å² axes), `<name>_attention.extxyz`
(per-atom `attention` column: sum of the activations of the hot pairs whose optimal-volume ring
passes through the atom; open in OVITO/ASE and colour by it), and an entry in `explain.json`
(hot pairs, their rings' atoms, ring bond lengths).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from pdmd.analysis.gradcam import grad_cam, hot_pairs
from pdmd.analysis.rings import min_image_distances, pair_rings
from pdmd.descriptor.spec import channel_images
from pdmd.errors import DescriptorError
from pdmd.files import write_json_atomic
from pdmd.models.cnn.potential import load_cnn
from pdmd.models.plots import gradcam_plot
from pdmd.progress import ProgressLog
from pdmd.structure import Frame

log = logging.getLogger(__name__)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def explain_structure(
    potential, frame: Frame, label: str, out_dir: Path, threshold: float = 0.5, max_pairs: int = 10, sign: int = 0
) -> dict:
    """Grad-CAM, hot pairs and their rings for one structure; writes the PNG and the extxyz."""
    potential.check_fits(frame, label)
    setting = potential.spec
    spec = setting.histogram
    diagram = setting.diagram(frame, label)
    image = setting.image(diagram).image
    inputs = channel_images(frame, setting, potential.extra_degrees, label, first=image)  # the network's input
    energy = float(potential.predict_images(inputs[None])[0])
    cam = grad_cam(potential, inputs, sign)
    hot = hot_pairs(cam, diagram.births_A2, diagram.deaths_A2, spec, threshold)
    chosen = np.column_stack([hot.births_A2, hot.deaths_A2])[:max_pairs]
    name = _safe(label)
    png = gradcam_plot(
        out_dir / f"{name}_gradcam.png",
        image,
        cam,
        spec.lo_A2,
        spec.hi_A2,
        f"{label}: E_pred {energy:.4f} eV/atom, {len(hot.indices)} pairs >= {threshold:g}",
        chosen,
    )
    entry = {
        "structure": label,
        "n_atoms": frame.n_atoms,
        "predicted_eV_per_atom": energy,
        "n_pairs": diagram.n_pairs,
        "n_hot_pairs": int(len(hot.indices)),
        "threshold": threshold,
        "peak_pixel_A2": [float(spec.edges_A2[i]) for i in np.unravel_index(np.argmax(cam), cam.shape)],
        "gradcam_png": str(png),
        "hot_pairs": [],
    }
    attention = np.zeros(frame.n_atoms)
    try:
        rings = pair_rings(frame, potential.dim, chosen, label) if len(chosen) else []
    except DescriptorError as exc:
        log.warning("%s: no ring atoms: %s", label, exc)
        entry["rings_skipped"] = str(exc)
        rings = []
    for (birth, death), act, ring in zip(chosen, hot.activation, rings or [None] * len(chosen)):
        item = {"birth_A2": float(birth), "death_A2": float(death), "activation": float(act)}
        if ring is not None:
            bonds = min_image_distances(frame, potential.dim, list(ring.edges))
            attention[list(ring.atoms)] += act
            item.update(atoms=list(ring.atoms), ring_size=len(ring.atoms), method=ring.method,
                        ring_bond_lengths_A=[round(float(b), 4) for b in bonds])  # fmt: skip
        entry["hot_pairs"].append(item)
    atoms = frame.to_ase()
    atoms.new_array("attention", attention)
    atoms.info["predicted_eV_per_atom"] = energy
    xyz = out_dir / f"{name}_attention.extxyz"
    atoms.write(xyz, format="extxyz")
    entry["attention_extxyz"] = str(xyz)
    return entry


def explain(
    model_dir: Path,
    frames: list[Frame],
    labels: list[str],
    out_dir: Path,
    threshold: float = 0.5,
    max_pairs: int = 10,
    sign: int = 0,
) -> dict:
    """Explain each structure with the model in `model_dir`; writes PNGs, extxyz files and explain.json."""
    potential = load_cnn(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = ProgressLog(len(frames), "explain", log)
    entries = []
    for frame, label in zip(frames, labels):
        entries.append(explain_structure(potential, frame, label, out_dir, threshold, max_pairs, sign))
        progress.step()
    result = {"model": potential.card["name"], "sign": sign, "structures": entries, "out_dir": str(out_dir)}
    write_json_atomic(out_dir / "explain.json", result)
    return result
