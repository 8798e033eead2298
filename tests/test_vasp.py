"""VASP path without VASP: templates, vasprun.xml streaming, and the firework through rlaunch with a fake vasp_cmd."""

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import fw

from pdmd.errors import InputError
from pdmd.md.protocol import MeltQuenchProtocol
from pdmd.md.vasp.inputs import TEMPLATES_DIR, load_templates, melt_quench_stages
from pdmd.md.vasp.melt_quench import parse_vasp_cmd, run_vasp_melt_quench
from pdmd.md.vasp.vasprun import VasprunReader, read_vasprun

FAKE_VASP = [sys.executable, str(Path(__file__).with_name("fake_vasp.py"))]
SMALL = {
    "seed": 3,
    "cooling_rate_K_per_ps": 20000.0,
    "n_atoms": 96,
    "system": "ac",
    "density_g_cm3": 2.6,
    "T_melt_K": 5000.0,
    "melt_ps": 0.01,
    "hold_ps": 0.005,
    "timestep_fs": 1.0,
    "n_quench_snapshots": 6,
    "potential": "vasp-pbe",
}


def test_templates_validate_and_make_the_protocol_stages():
    t = load_templates()
    assert t.md_incar["IBRION"] == 0 and t.md_incar["ISYM"] == 0 and t.potcar_symbols == {"C": "C"}
    p = MeltQuenchProtocol.from_dict({**SMALL, "n_atoms": 216, "cooling_rate_K_per_ps": 1000.0, "timestep_fs": 0.5})
    stages = {s.name: s for s in melt_quench_stages(p, t)}
    assert list(stages) == ["melt", "quench", "hold", "relax"]
    q = stages["quench"]
    assert (q.incar["TEBEG"], q.incar["TEEND"], q.incar["POTIM"]) == (5000.0, 300.0, 0.5)
    assert q.nsw == round(4700 / 1000 / 0.0005) and stages["melt"].nsw == 20 and stages["relax"].incar["IBRION"] == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: (d / "INCAR").write_text((d / "INCAR").read_text() + "TEBEG = 300\n"), "pdmd sets these"),
        (lambda d: (d / "INCAR").write_text((d / "INCAR").read_text() + "ENCUTT = 500\n"), "ENCUTT"),
        (lambda d: (d / "INCAR").write_text((d / "INCAR").read_text().replace("ISYM = 0", "ISYM = 2")), "ISYM"),
        (lambda d: (d / "KPOINTS").unlink(), "KPOINTS"),
        (lambda d: (d / "POTCAR.spec.yaml").write_text("functional: PBE\n"), "symbols"),
    ],
)
def test_bad_templates_are_refused(tmp_path, edit, message):
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    edit(folder)
    with pytest.raises(InputError, match=message):
        load_templates(folder)


@pytest.fixture(scope="module")
def vasp_run(tmp_path_factory):
    """One complete fake-VASP melt-quench: (work dir, snapshots)."""
    work = tmp_path_factory.mktemp("vasp")
    snaps = []
    result = run_vasp_melt_quench(
        MeltQuenchProtocol.from_dict(SMALL), work, FAKE_VASP, snaps.append, write_potcar=False, relax_steps=15,
        poll_s=0.05,
    )  # fmt: skip
    return work, snaps, result


@pytest.mark.filterwarnings("ignore:.*unconverged VASP run")  # pymatgen: the capped relaxation stops before EDIFFG
def test_vasp_melt_quench_streams_the_protocol_snapshots(vasp_run):
    work, snaps, result = vasp_run
    assert [s.kind for s in snaps] == ["intermediate"] * 6 + ["final"]
    setpoints = [s.setpoint_K for s in snaps[:-1]]
    assert setpoints == sorted(setpoints, reverse=True) and setpoints[-1] == 300.0
    assert all(s.frame.n_atoms == 96 and np.isfinite(s.energy_eV_per_atom) for s in snaps)
    # energies are VASP's TOTEN per atom of exactly those steps (read back with pymatgen)
    from pymatgen.io.vasp import Vasprun

    relax = Vasprun(work / "03_relax" / "vasprun.xml", parse_dos=False, parse_eigen=False, parse_potcar_file=False)
    assert snaps[-1].energy_eV_per_atom == pytest.approx(relax.final_energy / 96, abs=1e-6)
    np.testing.assert_allclose(snaps[-1].frame.positions, relax.final_structure.cart_coords, atol=1e-6)
    # the step count the runner reports is what pymatgen reads from every stage's vasprun.xml
    n_pymatgen = sum(
        len(Vasprun(p, parse_dos=False, parse_eigen=False, parse_potcar_file=False).ionic_steps)
        for p in work.glob("*/vasprun.xml")
    )
    assert result.steps == n_pymatgen and n_pymatgen > 0


def test_vasprun_reader_streams_what_pymatgen_reads_and_reports_truncation(vasp_run, tmp_path):
    from pymatgen.io.vasp import Vasprun

    source = vasp_run[0] / "01_quench" / "vasprun.xml"
    data = source.read_bytes()
    growing = tmp_path / "vasprun.xml"
    reader = VasprunReader(growing)
    steps = []
    for cut in range(0, len(data) + 7919, 7919):  # VASP appending in arbitrary chunks
        growing.write_bytes(data[:cut])
        steps += reader.poll()
    assert reader.complete
    reference = Vasprun(source, parse_dos=False, parse_eigen=False, parse_potcar_file=False)
    assert len(steps) == len(reference.ionic_steps)
    assert [s.free_energy_eV for s in steps] == pytest.approx([s["e_fr_energy"] for s in reference.ionic_steps])
    np.testing.assert_allclose(steps[17].positions_A, reference.structures[17].cart_coords, atol=1e-6)
    cut = data.rfind(b"<calculation>", 0, len(data) // 2) + 300  # inside a step
    growing.write_bytes(data[:cut])
    with pytest.raises(InputError, match=r"truncated vasprun.xml, it ends after \d+ complete ionic steps"):
        read_vasprun(growing)
    _, partial = read_vasprun(growing, require_complete=False)
    assert 0 < len(partial) < len(steps) and partial[-1].free_energy_eV == steps[len(partial) - 1].free_energy_eV
    growing.write_bytes(data[:200])
    with pytest.raises(InputError, match="before <atominfo>"):
        read_vasprun(growing)


def test_missing_vasp_cmd_and_unset_env_are_clear_errors():
    from pdmd.workflow.tasks import env_chk

    with pytest.raises(InputError, match="'no_such_vasp_std' not found on PATH"):
        parse_vasp_cmd("no_such_vasp_std -n 4")
    with pytest.raises(InputError, match="my_fworker.yaml"):
        env_chk(">>vasp_cmd<<", {"_fw_env": {}}, "vasp_cmd")
    assert env_chk(">>vasp_cmd<<", {"_fw_env": {"vasp_cmd": "srun vasp_gam"}}, "vasp_cmd") == "srun vasp_gam"
    from pdmd.md.lammps_melt_quench import run_melt_quench

    with pytest.raises(InputError, match="VASP firework"):
        run_melt_quench(MeltQuenchProtocol.from_dict(SMALL), "/tmp/unused", lambda s: None)


def _vasp_workflow(folder: Path) -> None:
    from fireworks import Firework, Workflow

    from pdmd.workflow.tasks import PersistenceDescriptorTask, VaspMeltQuenchTask

    protocol = MeltQuenchProtocol.from_dict(SMALL)
    mq = Firework(
        [VaspMeltQuenchTask(protocol=protocol.as_dict(), write_potcar=False, relax_steps=15)],
        name="VASP melt-quench",
        spec={"_add_launchpad_and_fw_id": True, "_category": "vasp"},
    )
    pd = Firework(
        [PersistenceDescriptorTask(run_id=protocol.run_id, range_A2=[0.0, 8.0], backend="delaunay", workers=1)],
        parents=[mq],
        spec={"_add_launchpad_and_fw_id": True},
    )
    Workflow([mq, pd]).to_file(str(folder / "vasp_wf.yaml"))
    worker = yaml.safe_load((folder / "my_fworker.yaml").read_text())
    worker["env"]["vasp_cmd"] = " ".join(FAKE_VASP)
    (folder / "my_fworker.yaml").write_text(yaml.safe_dump(worker))


def _states_and_structures(folder: Path) -> tuple[list[str], int, int, str]:
    code = (
        "from pdmd.store.launchpad import open_launchpad as o; lp=o(); import json; "
        "fz=[f for f in lp.fireworks.find() if f['state']=='FIZZLED']; "
        "l=[lp.launches.find_one({'launch_id': f['launches'][-1]}) for f in fz]; "
        "print(json.dumps([sorted(f['state'] for f in lp.fireworks.find()), lp.db.pdmd_structures.count_documents({}),"
        " lp.db.pdmd_descriptors.count_documents({}), l[-1]['action']['stored_data']['_exception']['_stacktrace']"
        " if l else '']))"
    )
    import json

    return tuple(json.loads(fw(["python", "-c", code], folder).stdout.strip().splitlines()[-1]))


def test_vasp_firework_through_rlaunch_fizzles_with_vasps_reason_and_rerun_completes(fw_checkout, monkeypatch):
    _vasp_workflow(fw_checkout)
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "vasp_wf.yaml"], fw_checkout)
    monkeypatch.setenv("FAKE_VASP_FAIL", "quench:120")  # VASP dies mid-quench
    fw(["rlaunch", "rapidfire"], fw_checkout)
    states, n_structures, _, trace = _states_and_structures(fw_checkout)
    assert "FIZZLED" in states and "Error EDDDAV" in trace and "stage quench" in trace and "exit status 1" in trace, (
        states,
        trace[-1500:],
    )
    assert n_structures == 3  # the quench snapshots before the crash are stored, not lost
    monkeypatch.delenv("FAKE_VASP_FAIL")
    fw(["lpad", "rerun_fws", "-s", "FIZZLED"], fw_checkout)
    out = fw(["rlaunch", "rapidfire"], fw_checkout)
    assert "VASP stage melt already finished" in out.stdout + out.stderr  # finished stages are not rerun
    states, n_structures, n_descriptors, _ = _states_and_structures(fw_checkout)
    assert states == ["COMPLETED", "COMPLETED"]
    # 6 quench snapshots + final; the fake is deterministic, so the 3 the crashed attempt stored are the same
    # content (same ids) and are not duplicated
    assert n_structures == 7 and n_descriptors == n_structures
    doc = next((fw_checkout / "pdmd_data" / "structures").rglob("*.json")).read_text()
    assert '"code": "VASP"' in doc and "e_fr_energy" in doc


def test_missing_vasp_cmd_fizzles_the_firework_with_how_to_fix(fw_checkout):
    _vasp_workflow(fw_checkout)
    worker = yaml.safe_load((fw_checkout / "my_fworker.yaml").read_text())
    worker["env"]["vasp_cmd"] = "no_such_vasp_gam"
    (fw_checkout / "my_fworker.yaml").write_text(yaml.safe_dump(worker))
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "vasp_wf.yaml"], fw_checkout)
    fw(["rlaunch", "singleshot"], fw_checkout)
    states, n_structures, _, trace = _states_and_structures(fw_checkout)
    assert "FIZZLED" in states and "'no_such_vasp_gam' not found on PATH" in trace and n_structures == 0


def test_ac_yaml_is_the_vasp_study_and_loads(fw_checkout):
    from fireworks import Workflow

    wf = Workflow.from_file(str(fw_checkout / "workflows" / "ac.yaml"))
    vasp = [f for f in wf.fws if f.spec.get("_category") == "vasp"]
    assert len(vasp) == 48 + 8  # 48 training runs of 216 atoms, 8 validation runs of 512
    task = vasp[0].tasks[0]
    assert type(task).__name__ == "VaspMeltQuenchTask" and task["vasp_cmd"] == ">>vasp_cmd<<"
    protocol = MeltQuenchProtocol.from_dict(task["protocol"])
    assert protocol.potential == "vasp-pbe" and protocol.n_atoms == 216 and 2.0 <= protocol.density_g_cm3 <= 3.4
    assert sum(MeltQuenchProtocol.from_dict(f.tasks[0]["protocol"]).n_quench_snapshots + 1 for f in vasp[:48]) == 12960
    fw(["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], fw_checkout)
    fw(["lpad", "add", "workflows/ac.yaml"], fw_checkout)  # fails the test if lpad refuses it
    listing = fw(["lpad", "get_wflows", "-d", "more"], fw_checkout).stdout
    assert "pdmd ac-paper (vasp)" in listing and "VASP melt-quench" in listing
