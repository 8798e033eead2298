"""The embedded (mongomock) store under plain FireWorks use, with real separate OS processes."""

import json
import signal
import subprocess
import time

from conftest import BIN, fw


def reset_and_add(cwd, workflow="workflows/agr_tiny.yaml"):
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], cwd)
    fw(["lpad", "add", workflow], cwd)


def wait_until_holding(proc: subprocess.Popen, cwd, timeout_s: float = 60.0) -> None:
    """Wait until `proc` has taken the embedded store's lock (its PID is in the lock file)."""
    lock = cwd / ".pdmd" / "fireworks_store.json.lock"
    deadline = time.time() + timeout_s
    while not lock.exists() or f"PID {proc.pid}" not in lock.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"PID {proc.pid} exited ({proc.returncode}) before it held the store")
        if time.time() > deadline:
            raise AssertionError(f"PID {proc.pid} did not take the store's lock within {timeout_s:.0f} s")
        time.sleep(0.05)


def fw_states(cwd) -> list[str]:
    code = "from fireworks import LaunchPad; print(sorted(f['state'] for f in LaunchPad.auto_load().fireworks.find()))"
    return eval(fw(["python", "-c", code], cwd).stdout.strip().splitlines()[-1])  # noqa: S307 - our own output


def test_concurrent_launchers_and_lpad_add_during_a_run_are_refused(fw_checkout):
    reset_and_add(fw_checkout)
    first = subprocess.Popen(
        [str(BIN / "rlaunch"), "rapidfire"], cwd=fw_checkout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_holding(first, fw_checkout)
        second = fw(["rlaunch", "rapidfire"], fw_checkout, check=False)
        assert second.returncode != 0 and "allows one FireWorks process at a time" in second.stderr
        add = fw(["lpad", "add", "workflows/agr_tiny.yaml"], fw_checkout, check=False)
        assert add.returncode != 0 and f"in use by PID {first.pid}" in add.stderr
    finally:
        assert first.wait(timeout=300) == 0
    assert fw_states(fw_checkout) == ["COMPLETED"] * 10  # every firework once, nothing lost or duplicated


def test_rlaunch_multi_is_refused_up_front(fw_checkout):
    reset_and_add(fw_checkout)
    proc = fw(["rlaunch", "multi", "2"], fw_checkout, check=False, timeout=60)
    assert proc.returncode != 0 and "`rlaunch multi`" in proc.stderr and "MongoDB" in proc.stderr
    assert fw_states(fw_checkout).count("READY") == 4  # untouched


def test_webgui_holds_the_store_and_stopping_it_loses_nothing(fw_checkout):
    reset_and_add(fw_checkout)
    fw(["rlaunch", "singleshot"], fw_checkout)
    gui = subprocess.Popen(
        [str(BIN / "lpad"), "webgui", "-s", "--port", "5877"],
        cwd=fw_checkout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_holding(gui, fw_checkout)
        run = fw(["rlaunch", "rapidfire"], fw_checkout, check=False)
        assert run.returncode != 0 and "allows one FireWorks process at a time" in run.stderr
    finally:
        gui.send_signal(signal.SIGINT)
        gui.wait(timeout=30)
    fw(["rlaunch", "rapidfire"], fw_checkout)  # after the GUI is gone the run goes ahead
    assert fw_states(fw_checkout) == ["COMPLETED"] * 10


def test_16_MB_document_limit_is_enforced_and_gridfs_fallback_works(fw_checkout):
    code = (
        "from fireworks import LaunchPad; from pymongo.errors import DocumentTooLarge; lp=LaunchPad.auto_load()\n"
        "try:\n    lp.db.big.insert_one({'x': 'a' * (17 * 1024 * 1024)}); print('stored')\n"
        "except DocumentTooLarge as e:\n    print('refused', e)\n"
        "lp.db.big.insert_one({'_id': 1, 'x': 'small'})\n"
        "try:\n    lp.db.big.update_one({'_id': 1}, {'$set': {'x': 'a' * (17 * 1024 * 1024)}}); print('stored')\n"
        "except DocumentTooLarge:\n    print('refused update', lp.db.big.find_one({'_id': 1})['x'])\n"
    )
    out = fw(["python", "-c", code], fw_checkout).stdout
    assert "refused BSON document too large" in out and "refused update small" in out
    from fireworks import Firework, Workflow
    from fireworks.user_objects.firetasks.script_task import PyTask

    big = PyTask(func="operator.mul", args=["x", 17 * 1024 * 1024], stored_data_varname="big")
    Workflow([Firework([big])]).to_file(str(fw_checkout / "big.yaml"))
    reset_and_add(fw_checkout, "big.yaml")
    fw(["rlaunch", "rapidfire"], fw_checkout)
    assert fw_states(fw_checkout) == ["COMPLETED"]  # the action went to GridFS, as with MongoDB
    assert json.loads((fw_checkout / ".pdmd" / "fireworks_store.json").read_text())
