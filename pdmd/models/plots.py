"""PNG figures: parity plot (paper Fig. 4 style), learning curve, PD histogram image."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def rmse_meV(pred_eV: np.ndarray, ref_eV: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred_eV) - np.asarray(ref_eV)) ** 2)) * 1000.0)


def parity_plot(
    path: Path,
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    quantity: str = "energy (eV/atom)",
    rmse_unit: tuple[str, float] = ("meV/atom", 1000.0),
) -> Path:
    """sets: label -> (reference, predicted) in the unit of `quantity` (default eV/atom); RMSE in `rmse_unit`
    (name, factor from the quantity's unit; default meV/atom) in the legend.
    """
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo = min(float(np.min(r)) for r, _ in sets.values())
    hi = max(float(np.max(r)) for r, _ in sets.values())
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
    for (label, (ref, pred)), colour in zip(sets.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        ax.scatter(
            ref,
            pred,
            s=8,
            alpha=0.6,
            c=colour,
            label=f"{label} (n={len(ref)}): RMSE {rmse_meV(pred, ref) / 1000.0 * rmse_unit[1]:.1f} {rmse_unit[0]}",
        )
    ax.set_xlabel(f"reference {quantity}")
    ax.set_ylabel(f"predicted {quantity}")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def learning_curve(path: Path, history: list[dict], target_std_eV: float) -> Path:
    """Train/validation loss per epoch, as RMSE in meV/atom (normalized MSE × target std)."""
    epochs = [h["epoch"] + 1 for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax.plot(epochs, [np.sqrt(h[key]) * target_std_eV * 1000 for h in history], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (meV/atom)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pd_image_plot(path: Path, image: np.ndarray, lo_A2: float, hi_A2: float, title: str) -> Path:
    """The PD histogram (probability per pixel) with birth on x and death on y, in Å²."""
    fig, ax = plt.subplots(figsize=(5, 4.4), dpi=120)
    shown = np.ma.masked_equal(image.T, 0)
    im = ax.imshow(shown, origin="lower", extent=[lo_A2, hi_A2, lo_A2, hi_A2], cmap="viridis", aspect="equal")
    ax.plot([lo_A2, hi_A2], [lo_A2, hi_A2], "k-", lw=0.5)
    ax.set_xlabel("birth (Å²)")
    ax.set_ylabel("death (Å²)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="probability")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def gradcam_plot(
    path: Path, image: np.ndarray, cam: np.ndarray, lo_A2: float, hi_A2: float, title: str, hot: np.ndarray
) -> Path:
    """PD histogram (grey, log scale) with the Grad-CAM map over it and the hot pairs (birth, death Å²) circled."""
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(5.4, 4.6), dpi=120)
    extent = [lo_A2, hi_A2, lo_A2, hi_A2]
    shown = np.ma.masked_equal(image.T, 0)
    if shown.count():
        ax.imshow(shown, origin="lower", extent=extent, cmap="Greys", norm=LogNorm(), aspect="equal")
    im = ax.imshow(
        np.ma.masked_less(cam.T, 0.05), origin="lower", extent=extent, cmap="jet", alpha=0.45, vmin=0, vmax=1
    )
    if len(hot):
        ax.scatter(hot[:, 0], hot[:, 1], s=30, facecolors="none", edgecolors="k", lw=0.8, label="hot pairs")
        ax.legend(fontsize=7, loc="lower right")
    ax.plot([lo_A2, hi_A2], [lo_A2, hi_A2], "k-", lw=0.5)
    ax.set_xlabel("birth (Å²)")
    ax.set_ylabel("death (Å²)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="Grad-CAM activation")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pca_panels_plot(path: Path, projections: dict[str, np.ndarray], highlight: np.ndarray, numbers: dict) -> Path:
    """One 3D scatter per descriptor (first 3 PCs), the same configurations highlighted in each."""
    fig = plt.figure(figsize=(4.2 * len(projections), 4.6), dpi=110)
    colours = plt.cm.tab20(np.linspace(0, 1, len(highlight)))
    for k, (name, proj) in enumerate(projections.items()):
        ax = fig.add_subplot(1, len(projections), k + 1, projection="3d")
        ax.scatter(proj[:, 0], proj[:, 1], proj[:, 2], s=1, c="0.6", alpha=0.3, depthshade=False)
        ax.scatter(*proj[highlight].T, s=28, c=colours, edgecolors="k", linewidths=0.4, depthshade=False)
        n = numbers[name]
        ax.set_title(f"{name.upper()}\ntrustworthiness {n['trustworthiness_k10']:.3f}, "
                     f"TwoNN dim {n['twonn_dimension']:.1f}", fontsize=8)  # fmt: skip
        ax.set_xlabel("PC1", fontsize=7)
        ax.set_ylabel("PC2", fontsize=7)
        ax.set_zlabel("PC3", fontsize=7)
        ax.tick_params(labelsize=5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def md_energy_plot(path: Path, runs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    """Total-energy change (meV/atom) and temperature (K) against time (ps), one line per labelled run.

    `runs`: label -> (time ps, total energy eV/atom, temperature K), e.g. from `pdmd md` CSV logs.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 5.5), dpi=120, sharex=True)
    for label, (t, e_tot, temp) in runs.items():
        top.plot(t, 1000.0 * (e_tot - e_tot[0]), label=label, lw=1)
        bottom.plot(t, temp, lw=1)
    top.set_ylabel("E_tot − E_tot(0) (meV/atom)")
    top.set_yscale("symlog", linthresh=1.0)
    top.legend(fontsize=7)
    bottom.set_ylabel("T (K)")
    bottom.set_yscale("log")
    bottom.set_xlabel("time (ps)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
