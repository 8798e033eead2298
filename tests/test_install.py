"""`pip install .` (a wheel, not editable) into a fresh venv gives a working `pdmd` and shipped workflows.

Offline: the wheel is built without build isolation and installed with --no-deps --no-index; the fresh
venv reaches the already-installed dependencies through a .pth line to this environment's site-packages
(plain path lines do not run that environment's .pth hooks, so its editable pdmd stays invisible).
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    drop = ("MONGOMOCK_SERVERSTORE_FILE", "PDMD_DATA_DIR", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_in_fresh_venv_runs_pd_and_the_shipped_tiny_workflow(tmp_path):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(wheels)], cwd=tmp_path)  # fmt: skip
    wheel = next(wheels.glob("pdmd-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run([str(py), "-c", purelib], tmp_path).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=tmp_path)  # fmt: skip
    where = run([str(py), "-c", "import pdmd; print(pdmd.__file__)"], tmp_path).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed wheel, not the checkout

    work = tmp_path / "work"
    out = run([str(venv / "bin" / "pdmd"), "init", str(work)], tmp_path).stdout
    for name in ("FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml", "workflows/agr_tiny.yaml"):
        assert (work / name).is_file(), out
    assert (work / ".pdmd").is_dir() and not list(Path(where).parent.glob("*.yaml"))  # nothing into site-packages

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 12.0, (2000, 2))
    keep = [0]
    for i in range(1, len(xy)):
        d = (xy[keep] - xy[i] + 6.0) % 12.0 - 6.0
        if np.min(np.hypot(d[:, 0], d[:, 1])) > 1.3:
            keep.append(i)
    sheet = Atoms(f"C{len(keep)}", positions=np.column_stack([xy[keep], np.zeros(len(keep))]), cell=[12, 12, 0],
                  pbc=[True, True, False])  # fmt: skip
    write(work / "sheet.extxyz", sheet)
    pd = run([str(venv / "bin" / "pdmd"), "pd", "sheet.extxyz", "--png", "pd.png"], work).stdout
    assert "2D sheet" in pd and "finite pairs" in pd and (work / "pd.png").stat().st_size > 1000

    lpad = [str(py), "-c", "import sys; from fireworks.scripts.lpad_run import lpad; sys.exit(lpad())"]
    run([*lpad, "reset", "--password", __import__("time").strftime("%Y-%m-%d")], work)
    run([*lpad, "add", "workflows/agr_tiny.yaml"], work)
    rlaunch = [str(py), "-c", "import sys; from fireworks.scripts.rlaunch_run import rlaunch; sys.exit(rlaunch())"]
    run([*rlaunch, "singleshot"], work, timeout=600)  # the first melt-quench firework, from the installed package
    status = run([str(venv / "bin" / "pdmd"), "status"], work).stdout
    assert "COMPLETED 1" in status and "structures: 0 " not in status, status
