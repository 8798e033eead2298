# SPDX-License-Identifier: GPL-3.0-or-later
"""Active learning as fireworks: committee → explore → select/label → retrain, resumable after a kill."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import BIN, fw, fw_env

from pdmd.active import ActiveSettings, classify
from pdmd.errors import InputError

CAMPAIGN = "agr-active-tiny"


def test_trust_window_classes_and_settings_checks():
    assert classify(np.array([0.1, 0.5, 0.99, 1.0, np.nan, 7.0]), 0.5, 1.0).tolist() == [0, 1, 1, 2, 2, 2]
    good = {"name": "x", "seed_run_ids": ["a"], "test_run_ids": ["b"]}
    assert ActiveSettings.from_dict(good).ensemble >= 2
    window = {"trust_low_eV_per_A": 2.0, "trust_high_eV_per_A": 1.0}
    cases = (({"ensemble": 1}, "committee"), ({"test_run_ids": ["a"]}, "test_run_ids"), (window, "trust"),
             ({"colour": 1}, "unknown"))  # fmt: skip
    for bad, word in cases:
        with pytest.raises(InputError, match=word):
            ActiveSettings.from_dict({**good, **bad})


def test_pdmd_check_knows_the_active_learning_parameters(fw_checkout):
    assert fw(["pdmd", "check", "workflows/agr_active_tiny.yaml"], fw_checkout).returncode == 0
    src = (fw_checkout / "workflows" / "agr_active_tiny.yaml").read_text()
    assert "max_labels: 4" in src
    (fw_checkout / "bad.yaml").write_text(src.replace("max_labels: 4", "max_labels: 0"))
    out = fw(["pdmd", "check", "bad.yaml"], fw_checkout, check=False)
    assert out.returncode != 0 and "max_labels" in out.stdout + out.stderr


def test_active_learning_workflow_runs_resumes_after_a_kill_and_reports(fw_checkout):
    from ase.io import read

    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "workflows/agr_active_tiny.yaml"], fw_checkout)
    root = fw_checkout / "pdmd_data" / "active" / CAMPAIGN
    log = open(fw_checkout / "rlaunch.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(BIN / "rlaunch"), "rapidfire"], cwd=fw_checkout, stdout=log, stderr=subprocess.STDOUT,
                            env=fw_env())  # fmt: skip
    deadline = time.time() + 1200  # generous: CI machines may be loaded
    while not (root / "iter-000" / "summary.json").is_file() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into iteration 1 (its committee is training)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    first = root / "iter-000"
    assert (first / "summary.json").is_file()
    done = [
        first / "summary.json",
        first / "labelled.extxyz",
        *first.glob("model/weights*.pt"),
        *first.glob("explore/*"),
    ]
    stamps = {p: p.stat().st_mtime_ns for p in done}
    time.sleep(2)
    fw(["lpad", "detect_lostruns", "--time", "1", "--rerun"], fw_checkout)
    out = fw(["rlaunch", "rapidfire"], fw_checkout, timeout=600)
    assert "Task completed" in out.stdout + out.stderr
    states = fw(["lpad", "get_fws", "-d", "ids", "-s", "COMPLETED"], fw_checkout).stdout
    assert states.count(",") + 1 == 12  # 4 melt-quench + (train, 2 explore, select) × 2 iterations
    # what finished before the kill was neither recomputed nor relabelled
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    for k in (0, 1):
        summary = (root / f"iter-{k:03d}" / "summary.json").read_text()
        assert '"n_labelled"' in summary
    labelled = read(first / "labelled.extxyz", index=":")
    assert labelled and all(a.calc.results["forces"].shape == (60, 3) for a in labelled)
    assert all(
        a.info["iteration"] == 0 and a.info["reference"] == "tersoff1989" and "parent" in a.info for a in labelled
    )
    devi = np.loadtxt(next((first / "explore").glob("*.model_devi.out")), ndmin=2)
    assert devi.shape[1] == 11 and np.all(devi[:, 4] >= devi[:, 6])  # max_devi_f >= avg_devi_f
    # the labelled structures are in the store with provenance, and the second committee trained on them
    from pdmd.store.datastore import DataStore
    from pdmd.store.documents import read_card

    docs = DataStore(fw_checkout / "pdmd_data").run_structures(f"active-{CAMPAIGN}-iter-000")
    assert len(docs) == len(labelled) and all(d["active"]["iteration"] == 0 for d in docs)
    card = read_card(root / "iter-001" / "model")
    assert f"active-{CAMPAIGN}-iter-000" in card["provenance"]["runs"]
    report = fw(["pdmd", "results"], fw_checkout).stdout
    assert f"active learning {CAMPAIGN}: 2 iteration(s)" in report and "iteration 1: labelled" in report
