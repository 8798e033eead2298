# SPDX-License-Identifier: GPL-3.0-or-later
r"""Buckled aGr sheets: in-plane projection vs 3D slab persistence diagrams, on held-out data.

generate: flat aGr sheets (LAMMPS 2D Tersoff melt-quench, `n_atoms` atoms, fast quench) ->
each one buckled out of plane (random periodic height field, amplitude 0..`max_amp` Å; one variant: `max_amp`), a
short 3D NVT run at 300 K and a 3D CG relaxation with the same Tersoff potential (open along z)
-> extxyz with the relaxed energy (eV). The sheets really buckle in 3D (their z spans are
printed), as the DFT-relaxed sheets of a user do.

evaluate: PD images of every sheet both ways (`sheet="projection"`: 2D points, the paper's
setting; `sheet="3d"`: real coordinates, periodic in-plane, open across the vacuum), then kernel
ridge regression (RBF on the raw images, hyper-parameters by inner CV) with a split by parent
flat sheet (GroupKFold), RMSE in meV/atom against the energy std.

    python benchmarks/sheet_projection_vs_3d.py generate paper_runs/sheets/buckled.extxyz --runs 24
    python benchmarks/sheet_projection_vs_3d.py evaluate paper_runs/sheets/buckled.extxyz
    # the table of docs/inputs.md (README: 3D diagram vs projection)
    nice .venv/bin/python benchmarks/sheet_projection_vs_3d.py generate paper_runs/sheets/buckled.extxyz --runs 40 \
        --variants 5
    nice .venv/bin/python benchmarks/sheet_projection_vs_3d.py evaluate paper_runs/sheets/buckled.extxyz [--amp-max 0]
    # seconds: 3 sheets of 80 atoms (fast quench), each buckled once (2 Å), 3 folds, 16-bin images
    python benchmarks/sheet_projection_vs_3d.py --quick [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

TERSOFF = ("tersoff", "SiC.tersoff", "C")


def _relax_3d(atoms, seed: int, md_ps: float = 0.3):
    """3D NVT at 300 K for `md_ps` then CG relaxation; returns (relaxed atoms, total energy eV)."""
    from pdmd._lammps import load_lammps, potential_path

    lammps = load_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    cell = atoms.cell[:]
    z = atoms.positions[:, 2]
    try:
        lmp.commands_string(
            f"""
units metal
dimension 3
boundary p p f
atom_style atomic
atom_modify map array
region box block 0 {cell[0, 0]} 0 {cell[1, 1]} {z.min() - 20} {z.max() + 20}
create_box 1 box
mass 1 12.011
"""
        )
        lmp.create_atoms(len(atoms), None, [1] * len(atoms), atoms.positions.ravel().tolist())
        lmp.commands_string(
            f"""
pair_style {TERSOFF[0]}
pair_coeff * * {potential_path(TERSOFF[1])} {TERSOFF[2]}
velocity all create 300 {seed} mom yes rot no
fix t all nvt temp 300 300 0.1
timestep 0.001
run {round(md_ps * 1000)}
unfix t
minimize 1e-8 1e-10 5000 50000
"""
        )
        pos = np.array(lmp.numpy.extract_atom("x")[: len(atoms)], float)
        energy = float(lmp.get_thermo("pe"))
    finally:
        lmp.close()
    out = atoms.copy()
    out.positions = pos
    return out, energy


def generate(out: Path, runs: int, n_atoms: int, variants: int, max_amp: float, seed: int, fast: bool = False
             ) -> None:  # fmt: skip
    """Write `runs` × `variants` relaxed buckled sheets to `out` (fast: 0.2 ps melt, quench at 1500-2000 K/ps)."""
    from ase.io import write

    from pdmd.md.lammps_melt_quench import run_melt_quench
    from pdmd.md.protocol import MeltQuenchProtocol

    rng = np.random.default_rng(seed)
    images = []
    t0 = time.perf_counter()
    for r in range(runs):
        finals = []
        protocol = MeltQuenchProtocol(
            seed=1000 + r,
            cooling_rate_K_per_ps=float(rng.uniform(1500, 2000) if fast else rng.uniform(500, 2000)),
            n_atoms=n_atoms,
            melt_ps=0.2 if fast else 1.0,
            hold_ps=0.1 if fast else 0.2,
        )
        with tempfile.TemporaryDirectory() as tmp:
            run_melt_quench(protocol, tmp, finals.append, omp_threads=1)
        flat = [f for f in finals if f.kind == "final"][-1].frame.to_ase()
        flat.pbc = (True, True, False)
        L = flat.cell.lengths()[:2]
        for v in range(variants):
            amp = max_amp * v / (variants - 1) if variants > 1 else max_amp  # one variant: buckled
            x, y = flat.positions[:, 0] / L[0], flat.positions[:, 1] / L[1]
            h = np.zeros(len(flat))
            for kx, ky in ((1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2)):
                phase = rng.uniform(0, 2 * np.pi)
                h += rng.normal() * np.cos(2 * np.pi * (kx * x + ky * y) + phase)
            h = amp * h / max(np.abs(h).max(), 1e-9)
            buckled = flat.copy()
            buckled.positions[:, 2] = h + rng.normal(0, 0.05, len(h))
            relaxed, energy = _relax_3d(buckled, seed=1 + r * variants + v, md_ps=0.05 if fast else 0.3)
            relaxed.cell[2] = [0, 0, np.ptp(relaxed.positions[:, 2]) + 20.0]
            relaxed.pbc = (True, True, True)
            relaxed.info.update({"energy": energy, "run_id": f"sheet{r}", "id": f"sheet{r}-v{v}", "amp_A": amp})
            images.append(relaxed)
        zs = [np.ptp(a.positions[:, 2]) for a in images[-variants:]]
        flat_e = [f for f in finals if f.kind == "final"][-1].energy_eV_per_atom
        print(
            f"run {r + 1}/{runs}: flat E {flat_e:.4f} eV/atom; buckled z spans "
            f"{', '.join(f'{z:.2f}' for z in zs)} Å; {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    write(out, images, format="extxyz")
    print(f"wrote {len(images)} sheets to {out}")


def evaluate(path: Path, bins: int, folds: int, modes: list[str], amp_max: float | None = None) -> None:
    """Held-out RMSE (meV/atom) of kernel ridge on the PD images of each SHEET:BACKEND mode."""
    from ase.io import read

    from pdmd.descriptor.histogram import DEFAULT_RANGE_A2, HistogramSpec, pd_histogram
    from pdmd.descriptor.persistence import alpha_diagram
    from pdmd.structure import Frame

    atoms = read(path, index=":")
    y = np.array([a.get_potential_energy() / len(a) for a in atoms])
    groups = np.array([a.info["run_id"] for a in atoms])
    use = np.array([amp_max is None or a.info["amp_A"] <= amp_max for a in atoms])
    spec = HistogramSpec(*DEFAULT_RANGE_A2[2], bins)
    print(
        f"{len(atoms)} sheets, z span {np.mean([np.ptp(a.positions[:, 2]) for a in atoms]):.2f} Å mean; "
        f"energy std {1000 * y.std():.1f} meV/atom"
    )
    for mode_backend in modes:
        mode, backend = mode_backend.split(":")
        cache = path.with_name(f"{path.stem}.{mode}.{backend}.{bins}.npz")
        if cache.is_file():
            x, pd_s = np.load(cache)["x"], float(np.load(cache)["pd_s"])
        else:
            t0 = time.perf_counter()
            x = np.stack(
                [
                    pd_histogram(
                        *_pairs(alpha_diagram(Frame.from_ase(a), 2, backend=backend, sheet=mode)), spec
                    ).image.ravel()
                    for a in atoms
                ]
            )
            pd_s = (time.perf_counter() - t0) / len(atoms)
            np.savez_compressed(cache, x=x, pd_s=pd_s)
        rmse = _held_out_rmse(x[use], y[use], groups[use], folds)
        print(f"sheet={mode:10} backend={backend:8}: held-out RMSE {rmse:.2f} meV/atom ({folds}-fold by sheet, "
              f"{use.sum()} sheets, energy std {1000 * y[use].std():.1f}); PD {1000 * pd_s:.0f} ms/structure",
              flush=True)  # fmt: skip


def _held_out_rmse(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int) -> float:
    """RMSE (meV/atom) of kernel ridge (RBF, inner grid search) predicting each fold of sheets from the others."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, GroupKFold

    pred = np.empty_like(y)
    for train, test in GroupKFold(folds).split(x, y, groups):
        mu, sd = y[train].mean(), y[train].std()
        scale = x[train].max() or 1.0
        grid = GridSearchCV(
            KernelRidge(kernel="rbf"),
            {"alpha": [1e-4, 1e-3, 1e-2, 1e-1], "gamma": list(np.logspace(-3, 1, 5) / (x.shape[1] * 1e-4))},
            cv=GroupKFold(min(4, len(set(groups[train])))),
            scoring="neg_root_mean_squared_error",
        )
        grid.fit(x[train] / scale, (y[train] - mu) / sd, groups=groups[train])
        pred[test] = grid.predict(x[test] / scale) * sd + mu
    return 1000 * float(np.sqrt(np.mean((pred - y) ** 2)))


def _pairs(d):
    return d.births_A2, d.deaths_A2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="generate and evaluate tiny sheets, in seconds (tests)")
    p.add_argument("--out", type=Path, help="with --quick: the folder of the sheets (default: a temporary one)")
    sub = p.add_subparsers(dest="cmd")
    g = sub.add_parser("generate")
    g.add_argument("out", type=Path)
    g.add_argument("--runs", type=int, default=24)
    g.add_argument("--n-atoms", type=int, default=200)
    g.add_argument("--variants", type=int, default=5)
    g.add_argument("--max-amp", type=float, default=2.0, help="largest buckling amplitude (Å)")
    g.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("evaluate")
    e.add_argument("data", type=Path)
    e.add_argument("--bins", type=int, default=64)
    e.add_argument("--folds", type=int, default=5)
    e.add_argument("--amp-max", type=float, help="only sheets buckled with at most this amplitude (Å)")
    e.add_argument("--modes", nargs="+", default=["projection:homcloud", "3d:delaunay"], help="SHEET:BACKEND pairs")
    a = p.parse_args()
    if a.quick:
        from _quick import output_folder

        path = output_folder(a.out, "sheets") / "buckled.extxyz"
        generate(path, 3, 80, 1, 2.0, 0, fast=True)
        evaluate(path, 16, 3, ["projection:homcloud", "3d:delaunay"])
    elif a.cmd is None:
        p.error("give a step (generate, evaluate) or --quick")
    elif a.cmd == "generate":
        generate(a.out, a.runs, a.n_atoms, a.variants, a.max_amp, a.seed)
    else:
        evaluate(a.data, a.bins, a.folds, a.modes, a.amp_max)


if __name__ == "__main__":
    main()
