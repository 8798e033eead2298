"""End to end through FireWorks' own CLIs on the embedded store, in separate OS processes."""

import json
import signal
import subprocess
import time

from conftest import BIN, assert_png_shows_something, fw, fw_env

from pdmd.store.datastore import DataStore


def launchpad_counts(cwd):
    code = (
        "from pdmd.store.launchpad import open_launchpad as o; lp=o(); import json; print(json.dumps({"
        "'structures': lp.db.pdmd_structures.count_documents({}), 'descriptors': lp.db.pdmd_descriptors."
        "count_documents({}), 'models': lp.db.pdmd_models.count_documents({}), 'states': sorted(f['state'] "
        "for f in lp.fireworks.find())}))"
    )
    return json.loads(fw(["python", "-c", code], cwd).stdout.strip().splitlines()[-1])


def test_tiny_workflow_end_to_end_and_rerun_without_duplicates(fw_checkout):
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "workflows/agr_tiny.yaml"], fw_checkout)
    out = fw(["rlaunch", "rapidfire"], fw_checkout)
    assert "stored final snapshot" in out.stderr + out.stdout  # rlaunch shows progress
    counts = launchpad_counts(fw_checkout)
    # agr-tiny: 3 runs × (final + 2 snapshots) + 1 validation run × 3 = 12 structures
    assert counts == {"structures": 12, "descriptors": 12, "models": 1, "states": ["COMPLETED"] * 10}
    wf = fw(["lpad", "get_wflows", "-d", "more"], fw_checkout).stdout
    assert "COMPLETED" in wf
    files_before = sorted(p.name for p in (fw_checkout / "pdmd_data").rglob("*.json"))
    fw(["lpad", "rerun_fws", "-s", "COMPLETED"], fw_checkout)
    out = fw(["rlaunch", "rapidfire"], fw_checkout)
    assert "already stored" in out.stderr + out.stdout
    assert launchpad_counts(fw_checkout) == counts
    assert sorted(p.name for p in (fw_checkout / "pdmd_data").rglob("*.json")) == files_before


def test_second_process_is_refused_with_a_clear_message(fw_checkout):
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    holder = subprocess.Popen(
        [
            str(BIN / "python"),
            "-c",
            "from fireworks import LaunchPad; lp = LaunchPad.auto_load(); import time; "
            "print('ready', flush=True); time.sleep(60)",
        ],
        cwd=fw_checkout,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = fw(["lpad", "add", "workflows/agr_tiny.yaml"], fw_checkout, check=False)
        assert proc.returncode != 0
        assert "allows one FireWorks process at a time" in proc.stderr and f"PID {holder.pid}" in proc.stderr
        status = fw(["pdmd", "status"], fw_checkout)  # read-only view still works
        assert "read-only" in status.stderr
    finally:
        holder.kill()
        holder.wait()
    fw(["lpad", "add", "workflows/agr_tiny.yaml"], fw_checkout)  # lock released with the process


def test_killed_launcher_loses_nothing_and_detect_lostruns_recovers(fw_checkout):
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "workflows/agr_tiny.yaml"], fw_checkout)
    log = open(fw_checkout / "rlaunch.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(BIN / "rlaunch"), "rapidfire"], cwd=fw_checkout, stdout=log, stderr=subprocess.STDOUT,
                            env=fw_env())  # fmt: skip
    store = DataStore(fw_checkout / "pdmd_data")
    deadline = time.time() + 300  # generous: CI machines may be loaded

    def first_firework_done() -> bool:  # its run is on disk and FireWorks has recorded it COMPLETED
        if not list((store.root / "runs").glob("*/complete.json")):
            return False  # complete.json is written inside the firework, before FireWorks' state update
        return "Rocket finished" in (fw_checkout / "rlaunch.log").read_text()

    while not first_firework_done() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-workflow: the first run is stored, the next firework may be running
    proc.wait()
    log.close()
    assert len(list((store.root / "runs").glob("*/complete.json"))) >= 1  # the first run's results are on disk
    before = launchpad_counts(fw_checkout)
    assert "COMPLETED" in before["states"]  # state changes made before SIGKILL survived it
    n_running = before["states"].count("RUNNING")  # 1 if the kill landed inside a firework, else 0
    time.sleep(2)  # older than --time 1 s: the killed launch counts as lost
    lost = fw(["lpad", "detect_lostruns", "--time", "1", "--rerun"], fw_checkout)
    assert f"Detected {n_running} lost FWs" in lost.stdout + lost.stderr
    out = fw(["rlaunch", "rapidfire"], fw_checkout, timeout=300)
    assert "Task completed" in out.stdout + out.stderr
    counts = launchpad_counts(fw_checkout)
    assert counts["states"] == ["COMPLETED"] * 10 and counts["structures"] == 12 and counts["descriptors"] == 12
    # no melt-quench ran to completion twice: the rerun reused what the killed launcher had stored
    logs = (fw_checkout / "rlaunch.log").read_text() + out.stdout + out.stderr
    assert sum("done in" in line for line in logs.splitlines()) == 4


def test_fizzled_melt_quench_keeps_lammps_reason_and_reruns(fw_checkout):
    from fireworks import Firework, Workflow

    from pdmd.workflow.tasks import MeltQuenchTask

    bad = {
        "seed": 1,
        "cooling_rate_K_per_ps": 2000.0,
        "n_atoms": 60,
        "T_melt_K": 5.0e6,
        "timestep_fs": 2.0,
        "melt_ps": 0.5,
        "hold_ps": 0.0,
    }
    Workflow(
        [Firework([MeltQuenchTask(protocol=bad, omp_threads=1)], spec={"_add_launchpad_and_fw_id": True})]
    ).to_file(str(fw_checkout / "bad.yaml"))
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "bad.yaml"], fw_checkout)
    fw(["rlaunch", "rapidfire"], fw_checkout)
    code = (
        "from fireworks import LaunchPad; lp=LaunchPad.auto_load(); l=lp.launches.find_one(); "
        "print(l['state']); print(l['action']['stored_data']['_exception']['_stacktrace'][-600:])"
    )
    out = fw(["python", "-c", code], fw_checkout).stdout
    assert out.startswith("FIZZLED") and "LAMMPS failed" in out
    fw(["lpad", "rerun_fws", "-s", "FIZZLED"], fw_checkout)
    assert "READY" in fw(["lpad", "get_fws", "-d", "less"], fw_checkout).stdout


def test_malformed_workflow_yaml_is_rejected(fw_checkout):
    (fw_checkout / "broken.yaml").write_text("fws: [ {fw_id: -1, spec: {_tasks: [\n")
    proc = fw(["lpad", "add", "broken.yaml"], fw_checkout, check=False)
    assert proc.returncode != 0 and "while parsing" in proc.stderr


def test_committed_workflows_match_the_generator():
    from pdmd.workflow.builders import WORKFLOW_FILES, WORKFLOWS_DIR, workflow_yaml

    for fname, (plan, engine, analyses) in WORKFLOW_FILES.items():
        assert (WORKFLOWS_DIR / fname).read_text() == workflow_yaml(plan, engine, analyses), f"regenerate {fname}"


def test_cli_pd_and_structures(small_store, tmp_path):
    env_dir = str(small_store)
    export = tmp_path / "sel.extxyz"
    proc = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import sys; from pdmd.store.datastore import DataStore; "
            "from ase.io import write; s=DataStore(sys.argv[1]); d=next(s.iter_structures({'kind': "
            "'final'})); write(sys.argv[2], s.load_frame(d).to_ase())",
            env_dir,
            str(export),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "pd.png"
    out = fw(["pdmd", "pd", str(export), "--png", str(png)], tmp_path).stdout
    assert "finite pairs" in out
    assert_png_shows_something(png)
    (tmp_path / "junk.xyz").write_text("this is not\na structure\n")
    bad = fw(["pdmd", "pd", str(tmp_path / "junk.xyz")], tmp_path, check=False)
    assert bad.returncode == 2 and "cannot read structure file" in bad.stderr


def test_analysis_fireworks_run_after_validation_and_record_in_the_model(fw_checkout):
    from pdmd.analysis.registry import ANALYSES
    from pdmd.workflow.builders import plan_workflow

    wf = plan_workflow("agr-tiny", analyses=tuple(ANALYSES))
    last_validation = [f for f in wf.fws if f.name.startswith("validate")][0]
    analyses = [f for f in wf.fws if f.spec.get("_category") == "analysis"]
    assert len(analyses) == 4 and all(wf.links.parent_links[f.fw_id] == [last_validation.fw_id] for f in analyses)
    wf.to_file(str(fw_checkout / "tiny_analyses.yaml"))
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "tiny_analyses.yaml"], fw_checkout)
    fw(["rlaunch", "rapidfire"], fw_checkout, timeout=900)
    counts = launchpad_counts(fw_checkout)
    assert counts["states"] == ["COMPLETED"] * 14, fw(
        ["lpad", "get_fws", "-s", "FIZZLED", "-d", "all"], fw_checkout
    ).stdout[-3000:]
    card = json.loads((fw_checkout / "pdmd_data" / "models" / "agr-tiny-cnn" / "model.json").read_text())
    assert set(card["analyses"]) == {"baselines", "interpolation_test", "explain", "compare_descriptors"}
    code = (
        "from pdmd.store.launchpad import open_launchpad as o; lp=o(); "
        "print(sorted(lp.db.pdmd_models.find_one({'_id': 'agr-tiny-cnn'})['analyses']))"
    )
    assert "baselines" in fw(["python", "-c", code], fw_checkout).stdout
