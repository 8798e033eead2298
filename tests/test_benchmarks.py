# SPDX-License-Identifier: GPL-3.0-or-later
"""Every benchmark in benchmarks/ runs end to end in its `--quick` mode and prints its table.

`--quick` is the same code path on tiny data: the data set of `benchmarks/_quick.py` (6 melt-quench runs of 60
atoms + one 240-atom run, generated once here and shared), a few epochs, a few MD steps. The checks read the
printed tables: headers, rows with numbers, and where a benchmark compares two codes that must agree (the two
persistence backends, the two MD engines, the exported labels against the reference that made them), that they do.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, assert_png_shows_something, fw_env

BENCH = REPO / "benchmarks"
NUM = r"[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
"""A printed number."""
WORKERS = 2
"""Benchmarks run at once: most of a quick run is one core importing torch and pdmd, so two cores take two."""

# script -> (takes --quick-data, extra arguments, patterns the output must match (re.MULTILINE))
QUICK: dict[str, tuple[bool, list[str], list[str]]] = {
    "active_learning_curve.py": (True, [], [
        r'^\{"iteration": 0, "labels": 0, "active_test_rmse_meV_per_atom": ' + NUM,
        r'^\{"iteration": 1, "labels": 2, .*"random_test_rmse_meV_per_atom": ' + NUM,
        r"curve\.json, curve\.png$",
    ]),
    "ac_foreign_cells.py": (False, [], [
        r"^3 AIREBO cells, 1.0–3.5 g/cm³, labelled with Tersoff single points; errors meV/atom$",
        rf"^\| cnn \| {NUM} \| {NUM} \({NUM}\) \| {NUM} \({NUM}\) \| {NUM} \| {NUM} \| \d of 3 \(\d refused\) \|",
        rf"^\| kernel \| {NUM} \| ",
        r"^\| 2.25 \| -\d\.\d{4} \| ",
        r"foreign_cells\.png$",
    ]),
    "demo_train_settings.py": (True, [], [
        rf"^plan settings \| seed 0 \| train {NUM} \| test {NUM} \(mean predictor {NUM}\) \| 240-atom {NUM} "
        rf"\(bias {NUM}\) \| epochs 2 ",
        r'^JSON \{"label": "plan settings", "seed": 0, ',
    ]),
    "embedded_store_overhead.py": (False, [], [
        rf"^3 fireworks, rlaunch rapidfire, median of 1: plain mongomock-persistence {NUM} s, pdmd guard {NUM} s$",
        rf"^ratio {NUM} \(fastest: {NUM}\); overhead {NUM} ms per firework$",
    ]),
    "embedded_store_stress.py": (False, [], [
        r"^total: 0 of 5 fireworks inconsistent; 0 of 1 runs failed$",
    ]),
    "local_ablation.py": (True, [], [
        rf'^\{{"name": "default", .*"test_energy_rmse_meV_per_atom": {NUM}, .*"test_force_rmse_over_std": {NUM}',
        rf'^\{{"name": "inner 1", .*"test_force_rmse_over_std": {NUM}',
    ]),
    "local_force_timing.py": (True, [], [
        r"^\| cell \| atoms \| before: ms/call \| after: single call \| after: MD \(cache\) \| LAMMPS Tersoff ms "
        r"\| ratio MD/LAMMPS \|$",
        rf"^\| 2D \(stored aGr final state\) \| 60 \| — \| {NUM} \| {NUM} \| {NUM} \| \d+× \|$",
        rf"^\| 3D \(random packing\) \| 64 \| — \| {NUM} \| {NUM} \| {NUM} \| \d+× \|$",
    ]),
    "local_md_profile.py": (False, [], [
        r"^\| cell \| atoms \| ms/step \(1 thread\) \| µs/atom-step \| vs smallest \| neighbour lists \|",
        rf"^\| 2D \| 120 \| {NUM} \| {NUM} \| 1.00 \| ",
        rf"^\| 3D \| 64 \| {NUM} \| {NUM} \| 1.00 \| ",
    ]),
    "local_safety.py": (True, [], [
        rf'"acsf_krr_test_rmse_meV_per_atom": {NUM},',
        r'^\{"temperature_K": 300.0, "seed": 0, "core": true, "ensemble": "nvt", "steps_asked": 4, .*"steps_done": 4',
        r'^\{"temperature_K": 1500.0, "seed": 1, "core": false, ',
        rf'"spearman_extrapolation_grade": {NUM},',
        rf'"committee_over_none": {NUM},',
        rf'"lammps_over_ase": {NUM}',
        r'^\{"iteration": 0, "n_frames": \d+, "n_labelled": 2, "labelled_total": 2, ',
        rf'"acsf_krr_test_rmse_meV_per_atom": {NUM}\n\}}',
        rf'"core": true, "ensemble": "nve", .*"drift_meV_per_atom_per_ps": {NUM}',
    ]),
    "local_train_speed.py": (True, [], [
        rf"^fp64: {NUM} s per training step \(4 structures, 240 atoms\)$",
        rf"^fp64 / fp32 = {NUM}x$",
        rf"^fp32: 1 epochs in {NUM} s; test energy RMSE {NUM} meV/atom, force RMSE / std {NUM}$",
    ]),
    "mace_reference.py": (True, [], [
        r'"structures": \{"train": 15, "test": 3, "large": 3\}, "pbc": \[true, true, false\]',
        r"^\| quantity \| .+ \| mean predictor / std \|$",
        rf"^\| energy RMSE, 240-atom \(meV/atom\) \| {NUM} \| {NUM} \|$",
    ]),
    "md_energy_compare.py": (True, [], [
        r"^\| run \| time \(ps\) \| drift \(meV/atom/ps\) \| max \\\|ΔE_tot\\\| \(meV/atom\) \| mean T \(K\) \|$",
        rf"^\| Tersoff 1 fs \| 0.02 \| {NUM} \| {NUM} \| {NUM} \|$",
        rf"^\| Tersoff 0.5 fs \| 0.01 \| {NUM} \| {NUM} \| {NUM} \|$",
    ]),
    "cnn_small_sets.py": (True, ["--seeds", "0"], [
        r"^bench-quick: 18 structures, energy std [\d.]+ meV/atom, \d+ H1 pairs per diagram; snapshot split$",
        r"^\| seed \| test std \| mean predictor \| pd-cnn \| ratio to std \| pd-kernel \| representation \| epochs "
        r"\| restarts \|$",
        rf"^\| 0 \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| — \| smooth σ 3 \| 2 \| [0-2] \|$",
    ]),
    "paper_accuracy.py": (True, [], [
        r"^bench-quick: 18 structures of 60 atoms \(6 runs\); run split$",
        rf"^train RMSE {NUM} meV/atom \(paper 7.9\), test RMSE {NUM} meV/atom \(paper 8.3\)",
        rf"^240-atom validation RMSE {NUM} meV/atom \(paper 3.1\) on 3 structures",
        rf"^2 epochs \(best \d\), {NUM} s/epoch, CNN {NUM} ms per structure",
    ]),
    "periodic_pd_throughput.py": (False, [], [
        rf"^216 atoms, 1 structures: HomCloud {NUM} /s \({NUM} ms each\), delaunay {NUM} /s \({NUM} ms each\), "
        rf"ratio {NUM}x; largest birth/death difference {NUM} Å²$",
        r"^64 atoms, 2 structures: HomCloud ",
        r"pairs outside \[0, 8\]² Å² by density",
    ]),
    "sheet_projection_vs_3d.py": (False, [], [
        r"^wrote 3 sheets to ",
        rf"^sheet=projection backend=homcloud: held-out RMSE {NUM} meV/atom \(3-fold by sheet, 3 sheets",
        rf"^sheet=3d +backend=delaunay: held-out RMSE {NUM} meV/atom",
    ]),
    "size_transfer.py": (True, [], [
        r"^\| boundary \| vectorization \| kernel \| CV \| train \| test \| 2,720 RMSE \| 2,720 bias \|",
        rf"^\| periodic \+ bulk pair \| hist 32 pairs\*? \| rbf \| {NUM} \|",
        rf"^\| open \| pi 32 σ0.3 pairs \| final states only \(rbf\) \| {NUM} \|",
        r"^total \d+ s$",
    ]),
    "train_speed.py": (True, [], [
        r"^variant +s/epoch +ms/structure +speed-up$",
        rf"^today: fp32, channels_last, batch 32 +{NUM} +{NUM} +1\.00x$",
        rf"^bf16, batch 128, lr x4 +{NUM} +{NUM} +{NUM}x$",
        rf"^auto \(the default; (bf16|fp32) on this CPU\) +{NUM} +{NUM} +{NUM}x$",
    ]),
    "validate_models.py": (True, [], [
        r"^\| model \| kind \| 240-atom validation, all 3: RMSE \(meV/atom\) \| bias \| mean predictor \|$",
        rf"^\| \S+/pd-kernel \| pd-kernel \| {NUM} \| {NUM} \| {NUM} \|$",
        rf"^\| \S+/pd-local \| pd-local \| {NUM} \| {NUM} \| {NUM} \|$",
    ]),
}  # fmt: skip


EXPECTED_S = {"local_safety.py": 11, "ac_foreign_cells.py": 9, "active_learning_curve.py": 10, "train_speed.py": 7,
              "sheet_projection_vs_3d.py": 6, "demo_train_settings.py": 6, "paper_accuracy.py": 6}  # fmt: skip
"""Rough CPU seconds of the slowest quick runs (the order they start in; the others take 5 or less)."""


def benchmark_scripts() -> list[str]:
    """The benchmarks the docs cite: the scripts directly in benchmarks/ (helpers start with `_`)."""
    return sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def env() -> dict[str, str]:
    """This environment without FireWorks pointers, one OpenMP thread per process."""
    return {**fw_env(), "OMP_NUM_THREADS": "1"}


class Run:
    """A finished `python ARGS`: exit code, output, wall and CPU seconds (user + system, children included)."""

    def __init__(self, args: list[str], cwd: Path, timeout_s: float = 300) -> None:
        out, err = cwd / "stdout.txt", cwd / "stderr.txt"
        t0 = time.perf_counter()
        with out.open("w") as fo, err.open("w") as fe:
            proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=fo, stderr=fe, env=env(),
                                    start_new_session=True)  # fmt: skip
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            while pid == 0:  # wait4 (not Popen.wait): the process's own resource usage comes with its exit
                if time.perf_counter() - t0 > timeout_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                time.sleep(0.05)
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        proc.returncode = self.returncode = os.waitstatus_to_exitcode(status)
        self.wall_s = time.perf_counter() - t0
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self.stdout, self.stderr = out.read_text(), err.read_text()


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory) -> dict[str, tuple[Run, Path]]:
    """Every selected benchmark's `--quick` run, `WORKERS` at a time: script -> (the run, its folder).

    The tiny data set is built once (`benchmarks/_quick.py`), beside the benchmarks that do not read it; the others
    wait for it and share it.
    """
    here = [item for item in request.session.items if item.path == Path(__file__)]
    wanted = {item.callspec.params["script"] for item in here if getattr(item, "originalname", None) == "test_quick"}
    order = sorted(wanted, key=lambda s: (QUICK[s][0], -EXPECTED_S.get(s, 5.0), s))  # data-free first, then slowest
    root = tmp_path_factory.mktemp("quick_data")

    def build() -> Run:
        done = Run([str(BENCH / "_quick.py"), str(root)], root)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return done

    def one(script: str) -> tuple[Run, Path]:
        shared, extra, _ = QUICK[script]
        if shared:
            data.result()  # built
        folder = tmp_path_factory.mktemp(script.removesuffix(".py"))
        args = [str(BENCH / script), "--quick", *(["--quick-data", str(root)] if shared else []), *extra]
        if script == "md_energy_compare.py":
            args += ["--out", str(folder / "compare.png")]
        return Run(args, folder), folder

    t0 = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        data = pool.submit(build)
        futures = {script: pool.submit(one, script) for script in order}
        results = {script: future.result() for script, future in futures.items()}
    runs = [r for r, _ in results.values()]
    print(f"\nquick data set: {data.result().wall_s:.1f} s wall, {data.result().cpu_s:.1f} s CPU")
    print(f"{len(results)} quick runs and the data set, {WORKERS} at a time: {time.perf_counter() - t0:.1f} s wall; "
          f"runs summed: {sum(r.wall_s for r in runs):.1f} s wall, {sum(r.cpu_s for r in runs):.1f} s CPU")  # fmt: skip
    for script, (r, _) in sorted(results.items(), key=lambda kv: -kv[1][0].cpu_s):
        print(f"  {script:32} {r.wall_s:5.1f} s wall {r.cpu_s:5.1f} s CPU")
    return results


def test_every_benchmark_has_a_quick_check():
    assert benchmark_scripts() == sorted(QUICK), "a benchmark without a --quick check here, or a check without one"


def test_every_benchmark_has_help(tmp_path):
    """`--help` of every script, experiments/ included (one process: runpy, as `python SCRIPT --help`): it imports,
    and shows its docstring, its usage commands and --quick.
    """
    scripts = [BENCH / s for s in benchmark_scripts()] + sorted((BENCH / "experiments").glob("*.py"))
    code = (
        "import contextlib, io, os, runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    sys.path.insert(0, os.path.dirname(path))  # as `python SCRIPT` does\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            runpy.run_path(path, run_name='__main__')\n"
        "        except SystemExit as stop:\n"
        "            assert stop.code in (0, None), (path, stop.code)\n"
        "    print('=== ' + path + '\\n' + out.getvalue())\n"
    )
    proc = Run(["-c", code, *map(str, scripts)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    helps = dict(re.findall(r"^=== (\S+)\n(.*?)(?=^=== |\Z)", proc.stdout, re.S | re.M))
    assert sorted(helps) == sorted(map(str, scripts))
    for path, text in helps.items():
        first = " ".join(Path(path).read_text().split('"""')[1].strip().splitlines()[0].split())
        text = " ".join(text.split())
        assert first[:60] in text, f"{path}: --help lacks its docstring's first line"
        assert "--quick" in text and f"benchmarks/{Path(path).relative_to(BENCH)} " in text, path


@pytest.mark.parametrize("script", sorted(QUICK))
def test_quick(script, quick_runs):
    proc, folder = quick_runs[script]
    patterns = QUICK[script][2]
    out = proc.stdout
    assert proc.returncode == 0, f"{script} --quick failed:\n{out[-3000:]}\n{proc.stderr[-5000:]}"
    for pattern in patterns:
        assert re.search(pattern, out, re.M), f"{script}: no line matches {pattern!r} in:\n{out[-4000:]}"
    if script == "periodic_pd_throughput.py":  # the two backends give the same diagrams
        diffs = re.findall(rf"largest birth/death difference ({NUM}) Å²", out)
        assert len(diffs) == 2 and max(float(d) for d in diffs) < 1e-9, diffs
    if script == "local_safety.py":  # the LAMMPS engine follows the ASE engine's trajectory
        assert float(re.search(rf'"max_dr_A": ({NUM})', out).group(1)) < 1e-6
    if script == "mace_reference.py" and "mace-torch is not installed" in out:
        # evaluated on the Tersoff reference that labelled the data: the exported energies and forces are its own
        for row in ("energy RMSE, test 60-atom (meV/atom)", "force RMSE xyz, test (eV/Å)"):
            assert re.search(rf"^\| {re.escape(row)} \| 0\.000 \|", out, re.M), row
    if script == "md_energy_compare.py":
        assert_png_shows_something(folder / "compare.png")
