"""Every `pdmd` command through the real console script: its error path gives one clear line, no traceback.

The successful paths run in the tests of each area (test_workflow, test_model, test_analysis, ...);
the cheap ones are also here.
"""

import time

import pytest
from conftest import fw

ERRORS = [
    (["demo", "--plan", "nope"], "no workflow file for plan 'nope'"),
    (["campaign", "nope", "--data-dir", "x"], "unknown plan 'nope'"),
    (["campaign", "agr-tiny", "--data-dir", "x", "--extra-degrees", "2"], "cnn.extra_degrees [2]: invalid"),
    (["campaign", "agr-tiny", "--data-dir", "x", "--extra-degrees", "1"], "repeats the descriptor's own degree"),
    (["status"], "no FireWorks database is configured"),
    (["structures"], "no FireWorks database is configured"),
    (["results"], "no FireWorks database is configured"),
    (["reindex"], "no FireWorks database is configured"),
    (["show", "nope"], "no model 'nope'"),
    (["predict", "nope", "x.xyz"], "no model 'nope'"),
    (["train", "--data", "missing.extxyz"], "missing.extxyz"),
    (["train", "--data", "x.extxyz", "--model-options", "{bad"], "--model-options: not valid JSON"),
    (["pd", "missing.xyz"], "missing.xyz"),
    (["explain", "nope", "x.xyz"], "no model 'nope'"),
    (["interpolation-test", "missing", "--plan", "agr-demo"], "missing"),
    (["baseline", "missing", "--plan", "agr-demo"], "missing"),
    (["baseline", "x", "--plan", "agr-demo", "--kind-options", "[1]"], "--kind-options: expected a JSON object"),
    (["baseline", "x", "--plan", "agr-demo", "--kind-options", '{"pd-local": {}}'], "add it to --kinds pd-local"),
    (["baseline", "x", "--plan", "agr-demo", "--kind-options", '{"pd-kernel": 5}'], "must be a JSON object"),
    (["compare-descriptors", "--subset", "2"], "subset"),
    (["md", "nope", "x.xyz", "--temperature-K", "300", "--steps", "2"], "no model 'nope'"),
    (["forces", "missing"], "not a pdmd data folder"),
    (["init", "/proc/no/such/folder"], "cannot create the working folder"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[" ".join(a[:2]) for a, _ in ERRORS])
def test_each_command_fails_with_one_clear_line(tmp_path, argv, message):
    proc = fw(["pdmd", *argv], tmp_path, check=False, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr[-1500:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pdmd: error:")]
    assert len(errors) == 1, proc.stderr


def test_query_commands_on_a_fresh_embedded_store(fw_checkout):
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    assert "structures: 0" in fw(["pdmd", "status"], fw_checkout).stdout
    assert "0 structures" in fw(["pdmd", "structures"], fw_checkout).stdout
    assert "no trained models yet" in fw(["pdmd", "results"], fw_checkout).stdout
    assert "pdmd_structures 0" in fw(["pdmd", "reindex"], fw_checkout).stdout


def test_compare_descriptors_cli_on_a_subset(tmp_path):
    out = fw(["pdmd", "compare-descriptors", "--subset", "60", "--highlight", "4", "--out", "cmp"], tmp_path).stdout
    assert "60 cyclo-octane conformations" in out and (tmp_path / "cmp" / "cyclooctane_pca.json").is_file()


def test_check_names_the_bad_field_and_passes_a_shipped_workflow(tmp_path):
    (tmp_path / "bad.yaml").write_text("fws: [\n")
    bad = fw(["pdmd", "check", "bad.yaml"], tmp_path, check=False)
    assert bad.returncode == 1 and "not valid YAML at line 2" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    fw(["pdmd", "init", "work"], tmp_path)
    assert {"FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml"} <= {p.name for p in (tmp_path / "work").iterdir()}
    fw(["pdmd", "check", "work/workflows/agr_tiny.yaml"], tmp_path)
