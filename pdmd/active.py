# SPDX-License-Identifier: GPL-3.0-or-later
"""Active learning for pd-local, as DP-GEN does it: train a committee → explore with MD → select → label.

One iteration k of a campaign NAME lives in `DATA_DIR/active/NAME/iter-k/`:

- `model/`: a committee (`ensemble` networks) trained on the seed runs and every structure labelled in
  iterations < k; the test set is the seed's test runs, the same in every iteration.
- `explore/T<T>-s<seed>.extxyz` (+ `.csv`, `.model_devi.out`, DP-GEN's columns): MD with the committee
  (member 0 integrated, all evaluated; the core repulsion keeps atoms apart) from a seed structure,
  stopped where the force deviation passes the trust window's high end ×`STOP_OVER_HIGH` (frames beyond
  it would not be labelled). The extrapolation grade is recorded but does not stop exploration: leaving
  the training data is what exploration is for.
- selection (trust window: the settings', else the iteration's committee's):
  every explored frame is *accurate* (max force deviation < low), a *candidate* (low ≤ it
  < high) or *failed* (≥ high, not labelled: too far to trust, DP-GEN's rule); at most `max_labels`
  candidates, drawn at random, are labelled with the reference: LAMMPS single points, or VASP single points
  from the templates (`reference` "vasp-pbe"; one folder per structure under `vasp/`, kept, so a rerun
  runs VASP only for the points that had not finished).
- the labelled structures go into the store as run `active-NAME-iter-k` (energy, forces, provenance:
  iteration, temperature, parent structure, trajectory step, deviation), and into `labelled.extxyz`
  (energy, forces, provenance in `info`: what MACE and dpdata read).
- `summary.json`: labelled count, the three fractions, the model's test RMSE; the campaign has
  converged when the candidate fraction falls below `converge_fraction`.

Every step writes its result atomically and is skipped when it is there, so a killed launcher loses
only the step that was running (`lpad detect_lostruns --rerun` + `rlaunch rapidfire`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pdmd.errors import ExtrapolationStop, InputError, SimulationError
from pdmd.files import write_json_atomic
from pdmd.store.datastore import DataStore
from pdmd.systems import system_dim

log = logging.getLogger(__name__)

STOP_OVER_HIGH = 2.0
"""Exploration stops once a frame's max force deviation passes this multiple of the trust window's high end."""


@dataclass(frozen=True)
class ActiveSettings:
    """One campaign's settings (temperatures K, MD steps of `timestep_fs` fs, deviations eV/Å)."""

    name: str
    seed_run_ids: tuple[str, ...]
    test_run_ids: tuple[str, ...]
    system: str = "agr"
    temperatures_K: tuple[float, ...] = (300.0, 1500.0)
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 2000
    every: int = 20
    timestep_fs: float = 0.5
    ensemble: int = 4
    trust_low_eV_per_A: float | None = None
    """None: the committee's own (`pdmd.models.local.uncertainty.trust_window`)."""
    trust_high_eV_per_A: float | None = None
    max_labels: int = 50
    converge_fraction: float = 0.05
    max_iterations: int = 5
    reference: str = "tersoff1989"
    """What labels: a LAMMPS potential of `pdmd.md.protocol.POTENTIALS`, or "vasp-pbe" (VASP single points)."""
    model_options: dict = field(default_factory=dict)
    vasp: dict = field(default_factory=dict)
    """With reference "vasp-pbe": `templates_dir` and `write_potcar` of `VaspSinglePoint` (the command comes
    from the select firework's `vasp_cmd`, default the FWorker's env `vasp_cmd`)."""

    def __post_init__(self) -> None:
        if not self.name or not self.seed_run_ids or not self.test_run_ids:
            raise InputError("active learning needs a name, seed_run_ids and test_run_ids")
        if set(self.seed_run_ids) & set(self.test_run_ids):
            raise InputError("active learning: test_run_ids must not be among seed_run_ids")
        if self.ensemble < 2:
            raise InputError(f"active learning needs a committee: ensemble >= 2, got {self.ensemble}")
        if self.steps < 1 or self.every < 1 or self.max_labels < 1 or self.max_iterations < 1:
            raise InputError("active learning: steps, every, max_labels and max_iterations must be >= 1")
        from pdmd.md.protocol import POTENTIALS

        if self.reference not in POTENTIALS:
            raise InputError(
                f"active learning: unknown reference {self.reference!r}; choose one of {sorted(POTENTIALS)}"
            )
        self._check_vasp()
        low, high = self.trust_low_eV_per_A, self.trust_high_eV_per_A
        if low is not None and high is not None and not 0 <= low < high:
            raise InputError(f"active learning: need 0 <= trust_low < trust_high, got {low}, {high} eV/Å")

    def _check_vasp(self) -> None:
        """The `vasp` settings: known keys of the right types, and only with VASP labels."""
        unknown = sorted(set(self.vasp) - {"templates_dir", "write_potcar"})
        if unknown:
            raise InputError(f"active learning: unknown vasp setting(s) {unknown}; known: templates_dir, "
                             "write_potcar (vasp_cmd is the select firework's parameter)")  # fmt: skip
        if not isinstance(self.vasp.get("write_potcar", True), bool):
            raise InputError(
                f"active learning: vasp.write_potcar must be true or false, got {self.vasp['write_potcar']!r}"
            )
        templates = self.vasp.get("templates_dir", "x")
        if not (isinstance(templates, str) and templates):
            raise InputError(f"active learning: vasp.templates_dir must be a folder, got {templates!r}")
        if self.vasp and self.reference != "vasp-pbe":
            raise InputError(f"active learning: vasp settings are for the reference vasp-pbe, not {self.reference}")

    @classmethod
    def from_dict(cls, d: dict) -> ActiveSettings:
        tuples = ("seed_run_ids", "test_run_ids", "temperatures_K", "seeds")
        known = {k for k in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"active learning: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items()})

    def as_dict(self) -> dict:
        """Plain JSON types (lists, not tuples): what a firework's parameters hold."""
        d = json.loads(json.dumps(asdict(self)))
        if not d["vasp"]:
            del d["vasp"]  # campaigns without VASP labels read as before
        return d


def iteration_dir(root: Path, name: str, iteration: int) -> Path:
    return Path(root) / "active" / name / f"iter-{iteration:03d}"


def run_id(name: str, iteration: int) -> str:
    """The store's run id of the structures labelled in an iteration."""
    return f"active-{name}-iter-{iteration:03d}"


def labelled_run_ids(root: Path, name: str, before: int) -> list[str]:
    """Run ids of the structures labelled in iterations < `before` (those that finished)."""
    return [run_id(name, k) for k in range(before) if (iteration_dir(root, name, k) / "summary.json").is_file()]


# -- train ---------------------------------------------------------------------------------------
def train_committee(store: DataStore, s: ActiveSettings, iteration: int) -> dict:
    """The committee of `iteration` (reused when its card is there); its card."""
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.training import train_model
    from pdmd.store.documents import read_card

    out = iteration_dir(store.root, s.name, iteration) / "model"
    if (out / "model.json").is_file():
        log.info("active %s iteration %d: committee already trained, reused", s.name, iteration)
        return read_card(out)
    runs = list(s.seed_run_ids) + labelled_run_ids(store.root, s.name, iteration) + list(s.test_run_ids)
    data = frames_data(store, runs, DescriptorSpec.for_system(s.system))
    test_runs = set(s.test_run_ids)
    test = np.array([i for i, g in enumerate(data.groups) if g in test_runs])
    train = np.array([i for i, g in enumerate(data.groups) if g not in test_runs])
    options = {**s.model_options, "ensemble": s.ensemble, "store_root": str(store.root)}
    provenance = {"active_learning": s.name, "iteration": iteration, "runs": runs, "data_dir": str(store.root)}
    card = train_model("pd-local", data, out, f"{s.name}-iter-{iteration:03d}", split_indices=(train, test),
                       options=options, provenance=provenance)  # fmt: skip
    return card


def frames_data(store: DataStore, run_ids: list[str], spec):
    """ModelData (frames) of every stored structure of `run_ids` with an energy."""
    from pdmd.models.data import data_from_frames

    docs = [d for r in run_ids for d in store.run_structures(r) if d.get("energy_eV_per_atom") is not None]
    if not docs:
        raise InputError(f"active learning: no labelled structures in runs {run_ids[:3]}... of {store.root}")
    frames = [store.load_frame(d) for d in docs]
    energies = np.array([d["energy_eV_per_atom"] for d in docs])
    return data_from_frames(frames, energies, [d["run_id"] for d in docs], [d["_id"] for d in docs], spec,
                            {"frames"})  # fmt: skip


# -- explore -------------------------------------------------------------------------------------
def start_structure(store: DataStore, s: ActiveSettings, seed: int):
    """(doc, frame) of the seed run's final structure that exploration `seed` starts from."""
    run = s.seed_run_ids[seed % len(s.seed_run_ids)]
    docs = store.run_structures(run)
    if not docs:
        raise InputError(f"active learning: seed run {run} has no structures in {store.root}")
    doc = next((d for d in docs if d["kind"] == "final"), docs[-1])
    return doc, store.load_frame(doc)


def explore(store: DataStore, s: ActiveSettings, iteration: int, temperature_K: float, seed: int) -> dict:
    """MD with the iteration's committee from a seed structure; the trajectory's record (reused when done)."""
    from pdmd.api import load_potential
    from pdmd.calculator import PDPotential
    from pdmd.dynamics.ase_engine import Limits, run_md

    folder = iteration_dir(store.root, s.name, iteration)
    traj = folder / "explore" / f"T{temperature_K:g}-s{seed}.extxyz"
    done = traj.with_suffix(".done.json")
    if done.is_file():
        return json.loads(done.read_text())
    from pdmd.models.local.compiled import set_threads

    set_threads(1)  # exploration fireworks run side by side, one core each
    pot = load_potential(folder / "model")
    window = trust(store.root, s, iteration)
    limits = Limits(max_force_deviation_eV_per_A=STOP_OVER_HIGH * window[1])  # the committee decides, not the grade
    doc, frame = start_structure(store, s, seed)
    record = {"temperature_K": temperature_K, "seed": seed, "parent": doc["_id"], "trajectory": str(traj),
              "stopped": None}  # fmt: skip
    try:
        run_md(PDPotential(pot), frame.to_ase(), dim=pot.dim, temperature_K=temperature_K, steps=s.steps,
               timestep_fs=s.timestep_fs, every=s.every, seed=1000 * iteration + seed, trajectory=traj,
               limits=limits)  # fmt: skip
    except ExtrapolationStop as stop:  # frames so far are kept; the rest of the run was untrustworthy
        record["stopped"] = str(stop).split(":")[0]
        log.info("active %s: exploration at %g K (seed %d) stopped: %s", s.name, temperature_K, seed, stop)
    except SimulationError as err:  # blew up: the frames before are kept and judged like the others
        record["stopped"] = f"failed: {err}"
        log.warning("active %s: exploration at %g K (seed %d) failed: %s", s.name, temperature_K, seed, err)
    write_json_atomic(done, record)
    return record


def trust(root: Path, s: ActiveSettings, iteration: int) -> tuple[float, float]:
    """The trust window (low, high) eV/Å of an iteration: the settings', else that iteration's committee's (from its
    deviation on its own training structures, so the window widens as hot frames join a relaxed-only seed).
    """
    from pdmd.store.documents import read_card

    card = read_card(iteration_dir(root, s.name, iteration) / "model")
    c = card.get("committee") or {}
    low = s.trust_low_eV_per_A if s.trust_low_eV_per_A is not None else c.get("trust_low_eV_per_A")
    high = s.trust_high_eV_per_A if s.trust_high_eV_per_A is not None else c.get("trust_high_eV_per_A")
    if low is None or high is None:
        raise InputError(f"model {card.get('name')} has no committee trust window; train it with ensemble >= 2")
    if not 0 <= low < high:
        raise InputError(f"active learning {s.name}: trust window [{low:.3g}, {high:.3g}] eV/Å is empty; set both "
                         "trust_low_eV_per_A and trust_high_eV_per_A")  # fmt: skip
    return float(low), float(high)


# -- select and label ----------------------------------------------------------------------------
def explored_frames(folder: Path) -> list[tuple[dict, object]]:
    """(record, ASE Atoms with `force_deviation`) of every frame of every finished exploration of an iteration."""
    from ase.io import read

    out = []
    for done in sorted((folder / "explore").glob("*.done.json")):
        record = json.loads(done.read_text())
        path = Path(record["trajectory"])
        if path.is_file():
            for k, atoms in enumerate(read(path, index=":")):
                out.append(({**record, "frame": k}, atoms))
    return out


def classify(max_devi_f: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 accurate (< low), 1 candidate ([low, high)), 2 failed (>= high or not finite) per frame."""
    d = np.asarray(max_devi_f, float)
    return np.where(~np.isfinite(d) | (d >= high), 2, np.where(d >= low, 1, 0))


def select_and_label(store: DataStore, s: ActiveSettings, iteration: int, vasp_cmd: str | None = None) -> dict:
    """Classify every explored frame, label up to `max_labels` candidates, store and export them; the summary.

    vasp_cmd: the site's VASP command, for the reference "vasp-pbe".
    """
    from pdmd.store.documents import read_card

    folder = iteration_dir(store.root, s.name, iteration)
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        return json.loads(summary_path.read_text())
    card = read_card(folder / "model")
    low, high = trust(store.root, s, iteration)
    frames = explored_frames(folder)
    devi = np.array([float(np.max(a.arrays["force_deviation"])) for _, a in frames]) if frames else np.zeros(0)
    cls = classify(devi, low, high)
    candidates = np.flatnonzero(cls == 1)
    rng = np.random.default_rng(iteration)
    chosen = np.sort(rng.choice(candidates, min(s.max_labels, len(candidates)), replace=False))
    labelled = label(store, s, iteration, [frames[i] for i in chosen], devi[chosen], vasp_cmd)
    n = max(len(frames), 1)
    m = card["metrics"]
    summary = {
        "iteration": iteration, "model": card["name"], "n_frames": len(frames), "n_labelled": labelled,
        "accurate_fraction": float((cls == 0).sum() / n), "candidate_fraction": float((cls == 1).sum() / n),
        "failed_fraction": float((cls == 2).sum() / n), "trust_window_eV_per_A": [low, high],
        "test_rmse_meV_per_atom": m["test_rmse_meV_per_atom"],
        "mean_predictor_test_rmse_meV_per_atom": m["mean_predictor_test_rmse_meV_per_atom"],
        "test_force_rmse_eV_per_A": m.get("test_force_rmse_eV_per_A"),
        "n_train": m.get("n_train"), "labelled_total": _labelled_total(store.root, s.name, iteration) + labelled,
        "export": str(folder / "labelled.extxyz") if labelled else None,
    }  # fmt: skip
    # converged: (nearly) every explored frame is one the committee agrees on; all-failed is not convergence
    summary["converged"] = bool(frames) and summary["accurate_fraction"] >= 1.0 - s.converge_fraction
    write_json_atomic(summary_path, summary)
    return summary


def _labelled_total(root: Path, name: str, before: int) -> int:
    total = 0
    for k in range(before):
        path = iteration_dir(root, name, k) / "summary.json"
        total += json.loads(path.read_text())["n_labelled"] if path.is_file() else 0
    return total


def reference_calculator(store: DataStore, s: ActiveSettings, vasp_cmd: str | None = None):
    """The campaign's labeller (a context manager called with a `Frame`): LAMMPS or VASP single points."""
    from pdmd.md.protocol import POTENTIALS
    from pdmd.md.single_point import LammpsSinglePoint
    from pdmd.md.vasp.single_point import VaspSinglePoint

    dim = system_dim(s.system)
    if POTENTIALS[s.reference].engine != "vasp":
        return LammpsSinglePoint(dim, s.reference)
    if not vasp_cmd:
        raise InputError(f"active learning {s.name}: reference {s.reference} needs vasp_cmd (the select firework's "
                         "parameter, default the FWorker's env vasp_cmd)")  # fmt: skip
    return VaspSinglePoint(store.root / "active" / s.name / "vasp", vasp_cmd, dim, **s.vasp)


def label(store: DataStore, s: ActiveSettings, iteration: int, picked: list, devi: np.ndarray,
          vasp_cmd: str | None = None) -> int:  # fmt: skip
    """Reference single points of the picked frames into the store (run `run_id`) and `labelled.extxyz`."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from pdmd.structure import Frame

    if not picked:
        return 0
    folder = iteration_dir(store.root, s.name, iteration)
    folder.mkdir(parents=True, exist_ok=True)
    export = folder / "labelled.extxyz"
    tmp = export.with_suffix(".tmp.extxyz")
    tmp.unlink(missing_ok=True)
    with reference_calculator(store, s, vasp_cmd) as reference:
        for k, ((record, atoms), d) in enumerate(zip(picked, devi)):
            frame = Frame.from_ase(atoms)
            point = reference(frame)
            provenance = {"campaign": s.name, "iteration": iteration, "temperature_K": record["temperature_K"],
                          "parent": record["parent"], "trajectory": record["trajectory"], "frame": record["frame"],
                          "max_devi_f_eV_per_A": float(d), "reference": s.reference}  # fmt: skip
            meta = {"run_id": run_id(s.name, iteration), "kind": "active", "step": k, "system": s.system,
                    "energy_eV_per_atom": point.energy_eV / len(atoms), "temperature_K": record["temperature_K"],
                    "active": provenance}  # fmt: skip
            doc = store.save_structure(frame, meta)
            store.save_forces(doc, point.forces_eV_per_A, s.reference)
            out = frame.to_ase()
            out.info.update({k2: v for k2, v in provenance.items() if isinstance(v, (int, float, str))})
            out.calc = SinglePointCalculator(out, energy=point.energy_eV, forces=point.forces_eV_per_A)
            write(tmp, out, format="extxyz", append=True)
    tmp.replace(export)
    return len(picked)


def campaign_summaries(root: Path) -> dict[str, list[dict]]:
    """Every campaign's iteration summaries under a data folder, by campaign name."""
    out: dict[str, list[dict]] = {}
    for path in sorted(Path(root).glob("active/*/iter-*/summary.json")):
        out.setdefault(path.parents[1].name, []).append(json.loads(path.read_text()))
    return out
