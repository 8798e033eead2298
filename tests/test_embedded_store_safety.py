"""The embedded store loses, reverts or sticks no write: threads, crashes, full disks, damaged files.

Every test drives real processes (FireWorks' `lpad` / `rlaunch`, or a Python process that opens
the store through `LaunchPad.auto_load()`), and reads the result back in a fresh process.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, REPO, fw_env
from embedded_stress import prepare, run

STORE = ".pdmd/fireworks_store.json"
STRESS_RUNS = int(os.environ.get("PDMD_STRESS_RUNS", "1"))


def py(code: str, cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run Python code in `cwd` (its FW_config.yaml picks the store)."""
    env = {**fw_env(), **kw.pop("env", {})}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def lpad(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**fw_env(), **kw.pop("env", {})}
    return subprocess.run([str(BIN / "lpad"), *args], cwd=cwd, capture_output=True, text=True, env=env, **kw)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error line of a failed command, after checking it printed no traceback."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "KeyError" not in proc.stderr and "StoreBusyError" not in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    return next((line for line in lines if line.startswith("Error: ")), lines[-1])


def checkout(tmp_path: Path, store: str = STORE) -> Path:
    """An embedded-store FireWorks folder; `store` may be an absolute path elsewhere (a small disk)."""
    for name in ("my_launchpad.yaml", "my_fworker.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "FW_config.yaml").write_text(f"MONGOMOCK_SERVERSTORE_FILE: {store}\n")
    (tmp_path / ".pdmd").mkdir(exist_ok=True)
    return tmp_path


COUNT = "from fireworks import LaunchPad; print(LaunchPad.auto_load().db.t.count_documents({}))"
KILLED_AFTER_INSERTS = (
    "import os, signal\nfrom fireworks import LaunchPad\ndb = LaunchPad.auto_load().db\n"
    "for i in range({n}):\n    db.t.insert_one({{'_id': i, 'state': 'COMPLETED'}})\n"
    "os.kill(os.getpid(), signal.SIGKILL)  # no exit handler: everything must already be in the journal\n"
)


def split_records(data: bytes) -> list[bytes]:
    """A journal's records (their BSON payloads may hold newline bytes: split by length)."""
    out, pos = [], 0
    while pos < len(data):
        m = re.compile(rb"J1 (\d+) [0-9a-f]{8} ").match(data, pos)
        end = m.end() + int(m.group(1)) + 1
        out.append(data[pos:end])
        pos = end
    return out


def killed_writer(cwd: Path, n: int) -> Path:
    """A process inserts `n` documents and is SIGKILLed; returns the journal it left."""
    proc = py(KILLED_AFTER_INSERTS.format(n=n), cwd, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    return cwd / (STORE + ".journal")


# 1. threads -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", range(STRESS_RUNS))
def test_ping_thread_and_completion_race_leaves_no_firework_inconsistent(tmp_path, attempt):
    """FireWorks' ping thread every millisecond against `complete_launch` on 100 fireworks.

    Each ping stores a tracked file's 1000 lines, so it is a long write; before the fix 3-11 of 100
    fireworks ended COMPLETED with a RUNNING launch. PDMD_STRESS_RUNS=20 repeats it.
    """
    prepare(tmp_path, n_fireworks=100, ping_s=0.001)
    result = run(tmp_path)
    assert result["n"] == 100
    assert not result["inconsistent"], f"[fw_id, fw state, launch states]: {result['inconsistent']}"


KILLED_IN_WFLOCK = (
    "import os, signal\nfrom fireworks import Firework, LaunchPad, ScriptTask\n"
    "from fireworks.core.launchpad import WFLock\n"
    "lp = LaunchPad.auto_load()\nlp.reset('', require_password=False)\n"
    "lp.add_wf(Firework(ScriptTask.from_str('true')))\nfw_id = lp.get_fw_ids()[0]\n"
    "with WFLock(lp, fw_id):\n    os.kill(os.getpid(), signal.SIGKILL)  # killed while it holds the workflow\n"
)


def test_workflow_lock_of_a_killed_process_is_released_when_the_store_is_next_opened(tmp_path):
    """Killed inside FireWorks' WFLock, the flag would make every later rerun wait 5 min and fail."""
    cwd = checkout(tmp_path)
    assert py(KILLED_IN_WFLOCK, cwd, check=False).returncode == -9
    start = time.monotonic()
    proc = lpad(cwd, "rerun_fws", "-i", "1")
    assert proc.returncode == 0 and "LOCKED" not in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - start < 60  # released at once, not after FireWorks' 5-min lock expiry
    assert "released the lock of 1 workflow(s) (first fw_id 1)" in proc.stderr
    proc = py("from fireworks import LaunchPad; print(LaunchPad.auto_load().workflows.find_one()['state'])", cwd)
    assert "released the lock" not in proc.stderr and "READY" in proc.stdout  # saved: said once


KILLED_IN_CHECKOUT = (
    "import os, signal\nfrom fireworks import Firework, FWorker, LaunchPad, ScriptTask, Workflow\n"
    "lp = LaunchPad.auto_load()\nlp.reset('', require_password=False)\n"
    "parent, child = Firework(ScriptTask.from_str('true'), name='a'), Firework(ScriptTask.from_str('true'))\n"
    "lp.add_wf(Workflow([parent, child], {parent: [child]}))\n"
    "lp.add_wf(Firework(ScriptTask.from_str('true'), name='b'))  # no children: rapidfire does not wait for it\n"
    "queued, _ = lp.reserve_fw(FWorker(), '.', fw_id=lp.get_fw_ids({'name': 'b'})[0])  # qlaunch -r: kept\n"
    "print('IDS', queued.fw_id, lp._get_a_fw_to_run(fw_id=lp.get_fw_ids({'name': 'a'})[0]).fw_id, flush=True)\n"
    "os.kill(os.getpid(), signal.SIGKILL)  # killed after READY -> RESERVED, before the launch exists\n"
)
STATES = "from fireworks import LaunchPad; lp = LaunchPad.auto_load(); print(lp.get_fw_ids({'state': 'RESERVED'}))"


def test_firework_reserved_by_a_killed_checkout_is_ready_again_when_the_store_is_next_opened(tmp_path):
    """Killed between reservation and start, the firework stayed RESERVED and `rlaunch rapidfire` waited forever."""
    cwd = checkout(tmp_path)
    proc = py(KILLED_IN_CHECKOUT, cwd, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    queued, orphan = map(int, proc.stdout.split("IDS")[1].split())
    proc = py(STATES, cwd)
    assert f"fw_id {orphan} set back from RESERVED to READY" in proc.stderr
    assert proc.stdout.strip() == f"[{queued}]"  # the queue reservation is kept
    assert "set back" not in py(STATES, cwd).stderr  # saved: said once
    out = subprocess.run([str(BIN / "rlaunch"), "rapidfire"], cwd=cwd, capture_output=True, text=True, env=fw_env(),
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    done = py(STATES.replace("RESERVED", "COMPLETED"), cwd).stdout.strip()
    assert done == str(sorted({1, 2, 3} - {queued}))


# 2. journal damage ------------------------------------------------------------------------------
def test_torn_last_record_is_dropped_with_one_line_and_nothing_else_is_lost(tmp_path):
    cwd = checkout(tmp_path)
    journal = killed_writer(cwd, 5)
    records = split_records(journal.read_bytes())
    journal.write_bytes(b"".join(records) + records[-1][:25])  # a crash in the middle of the next write
    proc = py(COUNT, cwd)
    assert proc.stdout.split()[-1] == "5"
    assert "cut short by a crash and is dropped" in proc.stderr and "record 7" in proc.stderr
    assert py(COUNT, cwd).stderr.count("cut short") == 0  # said once; the new generation has no torn record


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda r: r[:20] + bytes([r[20] ^ 0xFF]) + r[21:], id="flipped-byte"),
        pytest.param(lambda r: b"{}\n", id="legacy-line-of-wrong-shape"),
        pytest.param(lambda r: b"garbage\n", id="garbage-line"),
    ],
)
def test_damage_in_the_middle_refuses_to_open_naming_file_line_and_recovery(tmp_path, damage):
    cwd = checkout(tmp_path)
    journal = killed_writer(cwd, 5)
    records = split_records(journal.read_bytes())
    records[3] = damage(records[3])  # record 4 of 6: the header, then changes 0, 1, [2], 3, 4
    journal.write_bytes(b"".join(records))
    line = one_line_error(py(COUNT, cwd, check=False))
    assert f"journal {journal.resolve()} is damaged at record 4" in line and "recover" in line
    assert journal.read_bytes() == b"".join(records)  # nothing changed on disk
    out = py(f"from pdmd.store.embedded import main; main(['recover', '{STORE}'])", cwd).stdout
    assert "from snapshot + journal" in out and "record 4" in out
    assert py(COUNT, cwd).stdout.split()[-1] == "2"  # the changes before the damage


def test_record_of_the_wrong_shape_with_a_valid_checksum_is_refused_not_a_key_error(tmp_path):
    from pdmd.store.embedded import encode_record

    cwd = checkout(tmp_path)
    journal = killed_writer(cwd, 2)
    with open(journal, "ab") as fh:
        fh.write(encode_record({"ops": [{"db": "pdmd", "col": "t", "op": "set"}]}))  # no key, no doc
    line = one_line_error(py(COUNT, cwd, check=False))
    assert "damaged at record 4" in line and "lacks ['key', 'doc']" in line


def test_journal_of_the_previous_format_is_still_read(tmp_path):
    cwd = checkout(tmp_path)
    py(COUNT, cwd)  # creates the store
    (cwd / (STORE + ".journal")).write_text(
        "".join(f'{{"db": "pdmd", "col": "t", "op": "set", "key": {i}, "doc": {{"_id": {i}}}}}\n' for i in range(3))
    )
    assert py(COUNT, cwd).stdout.split()[-1] == "3"


# 3. full disk -----------------------------------------------------------------------------------
WRITE_UNTIL_FULL = """
from fireworks import LaunchPad
from pdmd.store.embedded import StoreWriteError
db = LaunchPad.auto_load().db
acked = 0
try:
    for i in range(100000):
        db.t.insert_one({"_id": i, "pad": "x" * 20000})
        acked += 1
        if i % 3 == 2:
            db.t.update_one({"_id": i}, {"$set": {"pad": "y" * 30000}})
except StoreWriteError as err:
    print("ERROR", err)
print("ACKED", acked, "MEMORY", db.t.count_documents({}), "Y", db.t.count_documents({"pad": "y" * 30000}))
"""


WORKFLOW = """
from fireworks import Firework, ScriptTask, Workflow
Workflow([Firework([ScriptTask(script="true")])]).to_file("w.yaml")
"""
FILL = """
from fireworks import LaunchPad
from pdmd.store.embedded import StoreWriteError
db = LaunchPad.auto_load().db
for size in (30000, 3000, 300, 30, 1):
    try:
        while True:
            db.f.insert_one({"p": "x" * size})
    except StoreWriteError:
        pass
"""


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(request, tmp_path):
    """(checkout, preexec_fn): a store on a 2 MB tmpfs, or under a 2 MB file-size limit."""
    if request.param == "tmpfs":
        mnt = tmp_path / "disk"
        mnt.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
            pytest.skip("mounting a tmpfs needs root")
        (mnt / ".pdmd").mkdir()
        (tmp_path / "fw").mkdir()
        try:
            yield checkout(tmp_path / "fw", f"{mnt}/{STORE}"), None
        finally:
            subprocess.run(["umount", "-l", str(mnt)])
        return
    limit = 2 * 1024 * 1024

    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    yield checkout(tmp_path), preexec


def test_full_disk_keeps_memory_equal_to_disk_and_fails_with_one_line(small_disk):
    cwd, preexec = small_disk
    assert lpad(cwd, "reset", "--password", time.strftime("%Y-%m-%d")).returncode == 0
    proc = py(WRITE_UNTIL_FULL, cwd, preexec_fn=preexec)
    error = next(line for line in proc.stdout.splitlines() if line.startswith("ERROR"))
    assert "nothing after" in error and "was not saved and was undone in memory" in error
    assert "disk full" in error or "File too large" in error
    acked, memory, updated = (int(w) for w in proc.stdout.split()[-5::2])
    assert memory == acked > 10  # the failed change is undone in memory
    # the disk holds exactly what was acknowledged, read back by a new process without the limit
    back = py(COUNT.replace("print(", "print(LaunchPad.auto_load().db.t.count_documents({'pad': 'y' * 30000}), "), cwd)
    assert [int(w) for w in back.stdout.split()[-2:]] == [updated, acked]
    # FireWorks' own command on the full disk: one line, no traceback
    py(WORKFLOW, cwd)
    py(FILL, cwd, check=False, preexec_fn=preexec)  # the last bytes too
    add = lpad(cwd, "add", "w.yaml", preexec_fn=preexec)
    line = one_line_error(add)
    assert line.startswith("Error: ") and "nothing after" in line and "Traceback" not in add.stderr, add.stderr[-3000:]


# 4. readers during compaction -------------------------------------------------------------------
WRITER = """
import sys
from fireworks import LaunchPad
from pdmd.files import atomic_write_bytes
lp = LaunchPad.auto_load()
db, store = lp.db, lp.connection._store
for i in range(3000):
    db.bulk.insert_one({"_id": i, "pad": "b" * 1000})  # a 3 MB store: compaction takes a while
for i in range({n}):
    db.t.insert_one({"_id": i})
    atomic_write_bytes("acked", str(i + 1).encode())
    store.flush()  # a compaction after every change
"""
READER = """
import sys, time
from pathlib import Path
from pdmd.store.embedded import read_state
import mongomock_persistence
bad, n = [], 0
while not Path("acked").exists():
    time.sleep(0.01)
t_end = time.time() + {seconds}
while time.time() < t_end:
    acked = int(Path("acked").read_text())
    dbs = read_state(Path("{store}"), wait_s=20).databases
    col = dbs["pdmd"]._collections.get("t")
    ids = sorted(col._documents) if col else []
    n += 1
    if ids != list(range(len(ids))) or len(ids) < acked or len(dbs["pdmd"]["bulk"]._documents) != 3000:
        bad.append((acked, len(ids)))
print("READS", n, "BAD", len(bad), bad[:5])
"""


def test_read_only_views_during_compactions_see_before_or_after_never_older(tmp_path):
    cwd = checkout(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER.replace("{n}", "60")], cwd=cwd, stderr=subprocess.PIPE)
    try:
        reader = py(READER.replace("{seconds}", "6").replace("{store}", str(cwd / STORE)), cwd, timeout=120)
    finally:
        writer.wait(timeout=120)
    reads, bad = int(reader.stdout.split()[1]), int(reader.stdout.split()[3])
    assert reads >= 5 and bad == 0, reader.stdout


# 5. damaged snapshot ----------------------------------------------------------------------------
def test_damaged_snapshot_names_file_and_recovery_and_bak_plus_journals_rebuild_it(tmp_path):
    cwd = checkout(tmp_path)
    py("from fireworks import LaunchPad\nfor i in range(4): LaunchPad.auto_load().db.t.insert_one({'_id': i})", cwd)
    py("from fireworks import LaunchPad\nLaunchPad.auto_load().db.t.insert_one({'_id': 4})", cwd)  # 2nd generation
    snap = cwd / STORE
    assert (cwd / (STORE + ".bak")).exists() and (cwd / (STORE + ".journal.bak")).exists()
    snap.write_bytes(snap.read_bytes()[:-40])  # damaged after the last compaction
    line = one_line_error(py(COUNT, cwd, check=False))
    assert str(snap.resolve()) in line and "recover" in line and "pdmd reindex" in line and "in use" not in line
    out = py(f"from pdmd.store.embedded import main; main(['recover', '{STORE}'])", cwd).stdout
    assert "from snapshot.bak + journal.bak + journal" in out
    assert py(COUNT, cwd).stdout.split()[-1] == "5"


# 7. pinned versions -----------------------------------------------------------------------------
def test_other_mongomock_version_is_refused_at_import_with_one_line(tmp_path):
    cwd = checkout(tmp_path)
    fake = tmp_path / "site"
    (fake / "mongomock-9.9.9.dist-info").mkdir(parents=True)
    (fake / "mongomock-9.9.9.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mongomock\nVersion: 9.9.9\n"
    )
    proc = lpad(cwd, "get_fws", env={"PYTHONPATH": str(fake)})
    line = one_line_error(proc)
    assert "mongomock 4.3.0" in line and "mongomock 9.9.9 is installed" in line and "Traceback" not in proc.stderr


def test_pinned_versions_match_pyproject_and_the_installed_ones():
    from importlib.metadata import version

    from pdmd.store.embedded import PINNED_VERSIONS

    text = (REPO / "pyproject.toml").read_text()
    for name, want in PINNED_VERSIONS.items():
        assert f'"{name}=={want}"' in text and version(name) == want
