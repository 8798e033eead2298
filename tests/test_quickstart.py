"""The README's quick start, run as written on a tiny labelled data set (about a minute).

The shell, Python and active-learning blocks are read from README.md between their `<!-- quickstart... -->`
markers. What the README marks as the user's stays the user's: the file names (`sheets.extxyz`,
`new.extxyz`, `start.extxyz`) are files this test writes, and only the sizes (committee size, training
minutes, MD steps, the active-learning campaign) are made tiny. Every command runs as its own process from
a folder set up like the repository root (FireWorks config, embedded store, `.venv`), and must exit 0 and
leave its outputs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, fw_env

README = REPO / "README.md"

SIZES = {
    "shell": {
        "--ensemble 4": "--ensemble 2",
        '"max_minutes": 30': '"max_minutes": 0.03',
        "--steps 20000": "--steps 10",
    },
    "active": {"agr_active.yaml": "agr_active_tiny.yaml"},
}
"""The README's size knobs -> tiny values (each must appear in its block, so README and test stay in step)."""


def readme_block(marker: str) -> tuple[str, str]:
    """(language, code) of the fenced block between `<!-- marker -->` and `<!-- /marker -->` in README.md."""
    text = README.read_text()
    m = re.search(rf"<!-- {re.escape(marker)} -->\s*```(\w+)\n(.*?)```\s*<!-- /{re.escape(marker)} -->", text, re.S)
    assert m, f"README.md has no ```-block between <!-- {marker} --> and <!-- /{marker} -->"
    return m.group(1), m.group(2)


def with_sizes(code: str, sizes: dict[str, str]) -> str:
    for user, tiny in sizes.items():
        assert user in code, f"README quick start lost {user!r}; update SIZES in {Path(__file__).name}"
        code = code.replace(user, tiny)
    return code


def commands(code: str) -> list[str]:
    return [line.strip() for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]


def write_labelled_sheets(folder: Path) -> None:
    """sheets.extxyz: 24 distorted 60-atom graphene sheets in 6 groups (info run_id), Tersoff energies and
    forces from LAMMPS single points; new.extxyz: two of them; start.extxyz: the least distorted one."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from pdmd.md.single_point import LammpsSinglePoint
    from pdmd.structure import Frame

    rng = np.random.default_rng(0)
    a, b = 2.46, 2.46 * np.sqrt(3)  # rectangular 4-atom cell of graphene
    basis = np.array([[0, 0], [a / 2, b / 6], [a / 2, b / 2], [0, 2 * b / 3]])
    nx, ny = 5, 3
    flat = np.array([[i * a + x, j * b + y, 0.0] for i in range(nx) for j in range(ny) for x, y in basis])
    images = []
    with LammpsSinglePoint(2) as reference:
        for run in range(6):
            for k in range(4):
                strain = 1 + rng.uniform(-0.03, 0.03, 2)
                pos = flat.copy()
                pos[:, :2] = pos[:, :2] * strain + rng.normal(0, 0.02 + 0.02 * k, (len(pos), 2))
                cell = np.diag([nx * a * strain[0], ny * b * strain[1], 20.0])
                atoms = Atoms(f"C{len(pos)}", positions=pos, cell=cell, pbc=(True, True, False))
                point = reference(Frame.from_ase(atoms))
                atoms.calc = SinglePointCalculator(atoms, energy=point.energy_eV, forces=point.forces_eV_per_A)
                atoms.info["run_id"] = f"run-{run}"
                images.append(atoms)
    write(folder / "sheets.extxyz", images)
    write(folder / "new.extxyz", images[-4:-2])
    write(folder / "start.extxyz", images[0])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder like the repository root after the set-up: FireWorks config, workflows, store, .venv."""
    import shutil

    work = tmp_path_factory.mktemp("quickstart")
    for name in ("FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml"):
        shutil.copy(REPO / name, work / name)
    shutil.copytree(REPO / "workflows", work / "workflows")
    (work / ".pdmd").mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))  # the environment running the tests, as `.venv` of the checkout
    write_labelled_sheets(work)
    return work


def run(work: Path, setup: list[str], cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    script = " && ".join([*setup, cmd])
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=fw_env(), input=stdin, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_readme_quick_start_runs_as_written(workdir):
    lang, code = readme_block("quickstart")
    assert lang == "bash"
    lines = commands(with_sizes(code, SIZES["shell"]))
    setup = [c for c in lines if c.startswith("source ")]
    assert setup == ["source .venv/bin/activate"], setup
    out = {}
    for cmd in lines:
        if cmd in setup:
            continue
        out[cmd.split()[1]] = run(workdir, setup, cmd)
    assert set(out) == {"train", "predict", "md", "results"}, sorted(out)

    model = workdir / "pdmd_data" / "models" / "my-pot"
    assert {"model.json", "weights.pt", "weights-1.pt", "domain.npz", "parity.png"} <= {p.name for p in model.iterdir()}
    assert "mean predictor" in out["train"].stdout and "committee of 2" in out["train"].stdout
    rows = [line for line in out["predict"].stdout.splitlines() if line.startswith("new.extxyz@")]
    assert len(rows) == 2 and "grade" in out["predict"].stdout
    for name in ("run.extxyz", "run.csv", "run.png", "run.model_devi.out"):
        assert (workdir / name).is_file(), name
    from ase.io import read

    assert len(read(workdir / "run.extxyz", index=":")) >= 2
    listed = [line for line in out["results"].stdout.splitlines() if "my-pot" in line]
    assert listed and "pd-local" in listed[0], out["results"].stdout


def test_readme_python_snippet_runs_as_written(workdir):
    if not (workdir / "pdmd_data" / "models" / "my-pot" / "model.json").is_file():
        pytest.skip("needs the model of test_readme_quick_start_runs_as_written")
    lang, code = readme_block("quickstart-python")
    assert lang == "python"
    assert len(commands(code)) <= 6
    (workdir / "snippet.py").write_text(code)
    proc = run(workdir, [], ".venv/bin/python snippet.py")
    numbers = re.findall(r"-?\d+\.\d+", proc.stdout)
    assert len(numbers) >= 4, proc.stdout


def test_readme_active_learning_step_adds_a_checked_workflow(workdir):
    """Every command up to the launch, and `pdmd results`; the launch of the tiny campaign itself (about two
    minutes) is tests/test_active.py::test_active_learning_workflow_runs_resumes_after_a_kill_and_reports."""
    lang, code = readme_block("quickstart-active")
    assert lang == "bash"
    lines = commands(with_sizes(code, SIZES["active"]))
    assert "rlaunch rapidfire" in lines
    for cmd in lines:
        if cmd.startswith("rlaunch"):
            continue
        run(workdir, ["source .venv/bin/activate"], cmd, stdin="pdmd\n" if cmd == "lpad reset" else None)
    status = run(workdir, ["source .venv/bin/activate"], "pdmd status").stdout
    assert "active learning agr-active-tiny" in status, status
