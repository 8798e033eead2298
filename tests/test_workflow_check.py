"""`pdmd check WORKFLOW.yaml`, the builders' check and the firetasks' own check of their parameters."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from conftest import REPO, fw
from ruamel.yaml import YAML
from test_embedded_store import reset_and_add

from pdmd.errors import InputError
from pdmd.models.cnn.options import CNN_RULES, TRAIN_RULES
from pdmd.workflow.check import check_workflow_dict, check_workflow_file


def load(name: str = "agr_tiny.yaml") -> dict:
    return YAML(typ="safe", pure=True).load((REPO / "workflows" / name).read_text())


def dump(wf, path) -> None:
    YAML(typ="safe", pure=True).dump(wf, path)


@pytest.mark.parametrize("name", ["agr_tiny.yaml", "agr_demo.yaml", "ac_demo.yaml", "agr_demo_analyses.yaml"])
def test_committed_workflows_pass(name):
    summary = check_workflow_file(REPO / "workflows" / name)
    assert summary["fireworks"] == summary["tasks"] > 0


def test_pdmd_check_names_each_bad_field_in_one_line(tmp_path):
    wf = load()
    wf["fws"][0]["spec"]["_tasks"][0]["protocol"]["n_atoms"] = -5
    pd = next(f for f in wf["fws"] if f["name"].startswith("PD "))
    pd["spec"]["_tasks"][0]["bins"] = 0
    pd["spec"]["_tasks"][0]["rnage_A2"] = [0, 4]
    train = next(f for f in wf["fws"] if f["name"].startswith("train "))
    train["spec"]["_tasks"][0]["train"]["epochs"] = "many"
    wf["links"]["999"] = [-1]
    dump(wf, tmp_path / "bad.yaml")
    proc = fw(["pdmd", "check", str(tmp_path / "bad.yaml")], tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 5, lines
    assert (
        "fws[0] (melt-quench agr-n120-s1-r1610.66).spec._tasks[0].protocol: protocol field n_atoms must be" in lines[0]
    )
    assert ".spec._tasks[0].bins: must be an integer >= 2, got 0" in proc.stderr
    assert ".spec._tasks[0].rnage_A2: unknown parameter of PersistenceDescriptorTask" in proc.stderr
    assert ".spec._tasks[0].train.epochs: must be an integer >= 1, got 'many'" in proc.stderr
    assert "links.999: no firework has fw_id 999" in proc.stderr
    ok = fw(["pdmd", "check", str(REPO / "workflows" / "agr_tiny.yaml")], tmp_path)
    assert "OK (10 fireworks, 10 firetasks)" in ok.stdout


@pytest.mark.parametrize(
    "text, expected",
    [
        ("fws: [\n", "not valid YAML at line 2, column 1"),
        ("fws:\n- fw_id: 1\n  name: a\nlinks: {}\nmetadata: {}\n", "fws[0] (a).spec: missing"),
        ("name: x\n", "spec: missing"),  # lpad add reads a mapping without fws as one firework: KeyError 'spec'
        ("- 1\n- 2\n", "the top level must be a mapping"),
    ],
)
def test_malformed_files_that_lpad_add_fails_on_with_a_key_error(tmp_path, text, expected):
    (tmp_path / "w.yaml").write_text(text)
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_workflow_file(tmp_path / "w.yaml")


def test_missing_metadata_is_named():
    wf = load()
    del wf["metadata"]
    assert check_workflow_dict(wf, "w.yaml") == ["w.yaml: metadata: missing (lpad add needs it; use {} for none)"]


def test_rules_check_only_real_training_and_architecture_fields():
    from pdmd.models.cnn.config import CNNConfig, TrainConfig

    assert set(TRAIN_RULES) <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(CNN_RULES) <= {f.name for f in dataclasses.fields(CNNConfig)}


def test_builders_refuse_a_bad_parameter(monkeypatch):
    from pdmd.workflow import builders

    settings = copy.deepcopy(builders.TRAIN_SETTINGS)
    settings["agr-tiny"]["test_fraction"] = 1.5
    monkeypatch.setattr(builders, "TRAIN_SETTINGS", settings)
    with pytest.raises(InputError, match=r"_tasks\[0\]\.test_fraction: must be a number between 0 and 1"):
        builders.plan_workflow("agr-tiny")


def test_firework_with_a_bad_parameter_fizzles_at_once_naming_the_field(fw_checkout):
    """Before, a PD firework with bins 0 failed only after looking for structures, with another message."""
    wf = load()
    pd = next(f for f in wf["fws"] if f["name"].startswith("PD "))
    pd["spec"]["_tasks"][0]["bins"] = 0
    wf = {"fws": [pd], "links": {}, "metadata": {}}
    dump(wf, fw_checkout / "bad.yaml")
    reset_and_add(fw_checkout, "bad.yaml")
    fw(["rlaunch", "singleshot"], fw_checkout)
    code = (
        "from fireworks import LaunchPad; lp = LaunchPad.auto_load(); f = lp.get_fw_by_id(1)\n"
        "print(f.state, f.launches[-1].action.stored_data['_exception']['_stacktrace'].strip().splitlines()[-1])"
    )
    out = fw(["python", "-c", code], fw_checkout).stdout.strip().splitlines()[-1]
    assert out.startswith("FIZZLED") and "PersistenceDescriptorTask.bins: must be an integer >= 2, got 0" in out


def test_no_run_id_is_shared_by_plans_with_other_settings():
    """Run ids name system, size, seed and rate; two plans must not give one run id two protocols.

    (A stored run is reused only with identical settings; ac-demo once shared two run ids with ac-paper.)
    """
    from pdmd.campaign import PLANS, plan_runs

    seen: dict[str, tuple[str, dict]] = {}
    for name in PLANS:
        train, valid = plan_runs(name)
        for protocol in [*train, *valid]:
            first = seen.setdefault(protocol.run_id, (name, protocol.as_dict()))
            assert first[1] == protocol.as_dict(), f"{protocol.run_id}: plans {first[0]} and {name} differ"


def test_stored_protocols_compare_by_their_settings_not_their_form():
    """Old documents lack newer fields; temperatures are a set; the unused density field is ignored."""
    from dataclasses import replace

    from pdmd.md.protocol import MeltQuenchProtocol
    from pdmd.pipeline import protocol_differences

    p = MeltQuenchProtocol(seed=3, cooling_rate_K_per_ps=500.0, snapshot_temperatures_K=(600.0, 1200.0))
    stored = p.as_dict()
    old = {k: v for k, v in stored.items() if k != "n_quench_snapshots"}  # written before the field existed
    assert protocol_differences(old, p) == []
    assert protocol_differences({**stored, "snapshot_temperatures_K": [1200, 600]}, p) == []
    assert protocol_differences({**stored, "density_g_cm3": 2.5}, p) == []  # not used by a sheet
    assert protocol_differences(stored, replace(p, timestep_fs=0.5, T_melt_K=5000.0)) == [
        "T_melt_K: stored 6000.0, asked 5000.0", "timestep_fs: stored 1.0, asked 0.5"
    ]  # fmt: skip
