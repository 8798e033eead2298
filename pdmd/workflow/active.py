# SPDX-License-Identifier: GPL-3.0-or-later
"""Active learning as fireworks (`pdmd.active`): train committee → explore (one firework per T × seed) → select
and label; the select firework adds the next iteration (FWAction additions) until the candidate fraction
falls below `converge_fraction` or `max_iterations` is reached.

Params of every task: `active` (the `ActiveSettings` fields, the same dict in every firework of a
campaign), `iteration`, optional `data_dir`; the explore task also `temperature_K` and `seed`; the select
task optional `vasp_cmd` (reference "vasp-pbe"; default the FWorker's env `vasp_cmd`, its firework category "vasp").
"""

from __future__ import annotations

from dataclasses import replace

from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize

from pdmd.active import ActiveSettings, explore, select_and_label, train_committee
from pdmd.errors import InputError
from pdmd.md.protocol import POTENTIALS, MeltQuenchProtocol
from pdmd.workflow.tasks import PdmdTask, env_chk, firework_spec, melt_quench_firework, task_store


def _settings(task: FiretaskBase) -> ActiveSettings:
    return ActiveSettings.from_dict(dict(task["active"]))


@explicit_serialize
class ActiveTrainTask(PdmdTask):
    """Train (or reuse) the committee of one active-learning iteration."""

    def run_task(self, fw_spec: dict) -> FWAction:
        from pdmd.models.card import register_model

        store = task_store(self, fw_spec)
        card = train_committee(store, _settings(self), int(self["iteration"]))
        register_model(store, card)
        keep = ("test_rmse_meV_per_atom", "mean_predictor_test_rmse_meV_per_atom", "test_force_rmse_eV_per_A")
        return FWAction(stored_data={"model": card["name"], "path": card["path"],
                                     **{k: card["metrics"].get(k) for k in keep}})  # fmt: skip


@explicit_serialize
class ActiveExploreTask(PdmdTask):
    """One exploration MD run of an iteration's committee (temperature_K, seed)."""

    def run_task(self, fw_spec: dict) -> FWAction:
        store = task_store(self, fw_spec)
        record = explore(
            store, _settings(self), int(self["iteration"]), float(self["temperature_K"]), int(self["seed"])
        )
        return FWAction(stored_data=record)


@explicit_serialize
class ActiveSelectTask(PdmdTask):
    """Select and label an iteration's candidates; add the next iteration unless converged or at the cap."""

    def run_task(self, fw_spec: dict) -> FWAction:
        store = task_store(self, fw_spec)
        s, k = _settings(self), int(self["iteration"])
        vasp_cmd = None
        if POTENTIALS[s.reference].engine == "vasp":  # VASP labels: the site's command, from the FWorker's env
            vasp_cmd = env_chk(self.get("vasp_cmd", ">>vasp_cmd<<"), fw_spec, "vasp_cmd")
        summary = select_and_label(store, s, k, vasp_cmd)
        if summary["converged"] or k + 1 >= s.max_iterations or summary["n_labelled"] == 0:
            return FWAction(stored_data={**summary, "finished": True})
        lp = getattr(self, "launchpad", None)
        if lp is not None and lp.fireworks.count_documents({"name": _train_name(s, k + 1)}):
            return FWAction(stored_data={**summary, "next_iteration": "already added"})  # a rerun of this firework
        nxt = iteration_workflow(s, k + 1, self.get("data_dir"), self.get("vasp_cmd"))  # the same site settings
        return FWAction(stored_data=summary, additions=[nxt])


def _train_name(s: ActiveSettings, k: int) -> str:
    return f"active {s.name} {k}: train"


def iteration_fireworks(s: ActiveSettings, k: int, data_dir: str | None = None, parents: list[Firework] | None = None,
                        vasp_cmd: str | None = None) -> list[Firework]:  # fmt: skip
    """Fireworks of iteration k: train → explore (temperatures × seeds) → select/label (`vasp_cmd`, when given,
    on the select task: VASP labels with that command instead of the FWorker's env).
    """
    extra = {"data_dir": data_dir} if data_dir else {}
    active = s.as_dict()
    train = Firework([ActiveTrainTask(active=active, iteration=k, **extra)], name=_train_name(s, k), parents=parents,
                     spec=firework_spec("train"))  # fmt: skip
    runs = [
        Firework([ActiveExploreTask(active=active, iteration=k, temperature_K=t, seed=seed, **extra)],
                 name=f"active {s.name} {k}: explore {t:g} K seed {seed}", parents=[train], spec=firework_spec("md"))
        for t in s.temperatures_K for seed in s.seeds
    ]  # fmt: skip
    labels = "vasp" if POTENTIALS[s.reference].engine == "vasp" else "train"  # VASP labels: a VASP FWorker's
    site = {"vasp_cmd": vasp_cmd} if vasp_cmd else {}
    task = ActiveSelectTask(active=active, iteration=k, **extra, **site)
    select = Firework([task], name=f"active {s.name} {k}: select", parents=runs, spec=firework_spec(labels))
    return [train, *runs, select]


def iteration_workflow(s: ActiveSettings, k: int, data_dir: str | None = None, vasp_cmd: str | None = None) -> Workflow:
    """Iteration k as a workflow of its own (what the select firework of k - 1 adds)."""
    return Workflow(iteration_fireworks(s, k, data_dir, vasp_cmd=vasp_cmd), name=f"active {s.name} iteration {k}")


def active_workflow(seed: list[MeltQuenchProtocol], test: list[MeltQuenchProtocol], s: ActiveSettings) -> Workflow:
    """Melt-quench the seed and test runs (structures with forces), then iteration 0."""
    md = [melt_quench_firework(p) for p in [*seed, *test]]  # LAMMPS, or VASP AIMD for the potential "vasp-pbe"
    return Workflow([*md, *iteration_fireworks(s, 0, parents=md)], name=f"active learning {s.name}")


SEED_OFFSET = 100_000
"""Seed runs are new melt-quench runs (their seeds shifted, so their run ids differ from the plan's, which keep
snapshots); the test runs are the plan's own, reused where a store already holds them."""


def active_plan(name: str) -> tuple[list[MeltQuenchProtocol], list[MeltQuenchProtocol], ActiveSettings]:
    """(seed runs, test runs, settings) of a named campaign.

    - agr-active: 20 relaxed 680-atom aGr sheets (final structures only) as the seed; 10 runs of the paper
      plan with snapshots at 300-3000 K as the test set; exploration at 300, 1000 and 2000 K.
    - ac-active: the aC stand-in (216 atoms, 2.0-3.4 g/cm³), 8 relaxed cells as the seed, 4 runs with
      quench snapshots as the test set; exploration at 300, 1500 and 3000 K.
    - agr-active-tiny: 60-atom sheets, a few MD steps: the tests' campaign.
    """
    from pdmd.campaign import plan_runs

    if name == "agr-active":
        runs = plan_runs("agr-paper")[0]
        seed = [replace(p, seed=p.seed + SEED_OFFSET, snapshot_temperatures_K=()) for p in runs][:20]
        test = [p for p in runs if p.snapshot_temperatures_K][:10]
        s = ActiveSettings(name, tuple(p.run_id for p in seed), tuple(p.run_id for p in test), "agr",
                           (300.0, 1000.0, 2000.0), (0, 1, 2, 3), steps=4000, every=20, ensemble=4, max_labels=50,
                           max_iterations=6)  # fmt: skip
    elif name in (
        "ac-active",
        "ac-active-vasp",
    ):  # labels from the Tersoff stand-in, or from VASP (AIMD + single points)
        pot = "vasp-pbe" if name == "ac-active-vasp" else "tersoff1989"
        runs = [replace(p, potential=pot) for p in plan_runs("ac-demo")[0]]
        seed = [replace(p, seed=p.seed + SEED_OFFSET, n_quench_snapshots=0) for p in runs[:8]]
        test = runs[8:12]
        s = ActiveSettings(name, tuple(p.run_id for p in seed), tuple(p.run_id for p in test), "ac",
                           (300.0, 1500.0, 3000.0), (0, 1), steps=2000, every=20, ensemble=4, max_labels=40,
                           max_iterations=5, reference=pot)  # fmt: skip
    elif name == "agr-active-tiny":
        base = {"n_atoms": 60, "melt_ps": 0.5, "hold_ps": 0.1, "snapshot_temperatures_K": (600.0, 2000.0)}
        seed = [
            MeltQuenchProtocol(seed=51 + i, cooling_rate_K_per_ps=r, **base) for i, r in enumerate((400, 900, 1500))
        ]
        test = [MeltQuenchProtocol(seed=61, cooling_rate_K_per_ps=1200, **base)]
        s = ActiveSettings(name, tuple(p.run_id for p in seed), tuple(p.run_id for p in test), "agr", (300.0, 3000.0),
                           (0,), steps=40, every=5, ensemble=2, max_labels=4, max_iterations=2,
                           model_options={"train": {"epochs": 8, "batch_structures": 4, "hidden": [16, 16]}},
                           )  # fmt: skip
    else:
        raise InputError(f"unknown active-learning campaign {name!r}; choose one of {sorted(ACTIVE_FILES.values())}")
    return seed, test, s


ACTIVE_FILES = {
    "agr_active.yaml": "agr-active",
    "ac_active.yaml": "ac-active",
    "ac_active_vasp.yaml": "ac-active-vasp",
    "agr_active_tiny.yaml": "agr-active-tiny",
}
"""The committed active-learning workflow files and their campaigns."""


def active_plan_workflow(name: str) -> Workflow:
    return active_workflow(*active_plan(name))
