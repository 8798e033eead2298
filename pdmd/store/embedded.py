"""Safe persistence for FireWorks' embedded mongomock store.

FireWorks' `MONGOMOCK_SERVERSTORE_FILE` support (mongomock-persistence) loads the whole JSON
store when a process starts and writes it back, non-atomically and without a lock, when the
process exits: two processes overwrite each other and a killed process loses all its changes.
This module replaces that persistence (docs/embedded_store.md says what it guarantees):

* one process at a time: the first process to open the store takes an exclusive `flock` on
  `<store>.lock` for its lifetime; any other process is refused with `StoreBusyError`, which
  names the holder and says what to do. `rlaunch multi` is refused up front, and a process
  forked from the holder that tries to write is refused too;
* one re-entrant lock per store, held across match -> change -> serialize -> write of every write
  (insert, update, replace, delete, drop, index), so threads of one process (FireWorks' ping
  thread and its main thread) can never journal a stale copy after a newer one;
* write-ahead journal, journal first: every change is appended to `<store>.journal` as one
  record `J1 <length> <crc32> <BSON>` *before* memory changes. A short write is continued; any
  write error (disk full, file too large) truncates the journal back to its last whole record,
  undoes the change in memory and raises `StoreWriteError` ("disk full: ..., nothing after ...
  was saved"): memory and disk stay equal. A process killed at any moment keeps every change it
  was told was made;
* replay tells a torn last record (crash mid-write: dropped, one line says so) from damage in the
  middle or a record of the wrong shape (refused with `StoreCorruptError`, which names the file,
  record and byte and how to recover: `python -m pdmd.store.embedded recover STORE`);
* generations: the journal's first record names the snapshot it belongs to (size + CRC32 of the
  snapshot file). Compaction keeps the previous snapshot and journal as `<store>.bak` and
  `<store>.journal.bak` (hard links), writes the new snapshot atomically, then a new journal
  atomically. A read-only view (`read_state`) accepts only a snapshot/journal pair that belong
  together (or `.bak` + its journal, the same state), so it sees the store before or after a
  compaction, never a mix;
* one store per process: every `MongoClient` in the process shares the same in-memory databases;
* MongoDB's 16 MB document limit is enforced (`pymongo.errors.DocumentTooLarge`), so FireWorks'
  GridFS fallback behaves as on a real server;
* the patch reaches into mongomock internals, so it checks the installed mongomock and
  mongomock-persistence against `PINNED_VERSIONS` and refuses others with `StoreVersionError`.

The patch is applied by `pdmd.store.embedded_hook` when `mongomock_persistence` is imported,
so it works for FireWorks' own `lpad`, `rlaunch` and `lpad webgui`, not only through `pdmd`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import sys
import threading
import time
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pdmd.errors import PdmdError, StoreBusyError
from pdmd.files import atomic_write_bytes

MAX_BSON_BYTES = 16 * 1024 * 1024
PINNED_VERSIONS = {"mongomock": "4.3.0", "mongomock-persistence": "0.0.5"}
"""The versions whose internals this patch was written against (also pinned in pyproject.toml)."""

_OPEN: dict[str, _StoreState] = {}
ONE_PROCESS_HELP = (
    "The embedded store allows one FireWorks process at a time (mongomock keeps the whole database "
    "in memory). Wait for that process to finish, or use MongoDB for parallel launches: see README, "
    "'Running on the embedded store vs MongoDB'."
)
_RECORD = re.compile(rb"J1 (\d{1,10}) ([0-9a-f]{8}) ")
_OP_FIELDS = {
    "set": ("key", "doc"),
    "del": ("key",),
    "drop": (),
    "create": (),
    "index": ("name", "spec"),
    "drop_index": ("name",),
    "rename": ("new",),
}
_NO_SNAPSHOT = "none"
READER_WAIT_S = 20.0
"""How long a read-only view waits for a compaction in progress to finish (s)."""


class StoreCorruptError(PdmdError, RuntimeError):
    """A file of the embedded store is damaged; the message names it and the recovery."""


class StoreWriteError(PdmdError, RuntimeError):
    """A change could not be written to the journal (disk full, ...); it was undone in memory."""


class StoreVersionError(PdmdError, RuntimeError):
    """mongomock / mongomock-persistence are not the versions the patch was written for."""


def _files(path: Path) -> dict[str, Path]:
    return {
        "snapshot": path,
        "bak": path.with_name(path.name + ".bak"),
        "journal": path.with_name(path.name + ".journal"),
        "journal_bak": path.with_name(path.name + ".journal.bak"),
        "lock": path.with_name(path.name + ".lock"),
    }


def recovery_help(path: Path) -> str:
    """What to run when a store file is damaged."""
    return (
        f"Keep a copy of the .pdmd folder, then run `python -m pdmd.store.embedded recover {path}`: it rebuilds the "
        f"FireWorks state from the newest intact files ({path.name}.bak + {path.name}.journal.bak + "
        f"{path.name}.journal) and moves the damaged ones aside; `pdmd reindex` then rebuilds the pdmd collections "
        "from the result files. With no usable backup: `lpad reset` and re-add the workflows (result files are kept "
        "and reused)."
    )


# -- journal records ---------------------------------------------------------------------------
def fingerprint(data: bytes | None) -> str:
    """Identity of a snapshot file's content: size and CRC32 ('none' for a missing file)."""
    return _NO_SNAPSHOT if data is None else f"{len(data)}-{zlib.crc32(data):08x}"


def encode_record(entry: dict) -> bytes:
    """One journal record, `J1 <payload bytes> <crc32 hex> <payload BSON>` and a newline.

    BSON is what MongoDB stores (and fast to write); a document already encoded can be passed as
    `bson.raw_bson.RawBSONDocument` and is copied, not encoded again.
    """
    import bson

    payload = bson.encode(entry, check_keys=False)
    return b"J1 %d %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def encode_document(doc: dict) -> bytes:
    """BSON of a document; MongoDB's 16 MB limit raises `DocumentTooLarge`, as on a server."""
    import bson
    from pymongo.errors import DocumentTooLarge

    raw = bson.encode(doc, check_keys=False)
    if len(raw) > MAX_BSON_BYTES:
        raise DocumentTooLarge(
            f"BSON document too large ({len(raw)} bytes) - the connected server supports "
            f"BSON document sizes up to {MAX_BSON_BYTES} bytes."
        )
    return raw


def decode_document(raw: bytes) -> dict:
    import bson

    return bson.decode(raw)


def _op_problem(op) -> str | None:
    if not isinstance(op, dict):
        return f"a change is {type(op).__name__}, not an object"
    kind = op.get("op")
    if kind not in _OP_FIELDS:
        return f"unknown operation {kind!r}"
    if not isinstance(op.get("db"), str) or not isinstance(op.get("col"), str):
        return "a change names no database/collection"
    missing = [k for k in _OP_FIELDS[kind] if k not in op]
    if missing:
        return f"a {kind!r} change lacks {missing}"
    if kind == "set" and not isinstance(op["doc"], dict):
        return "a 'set' change holds no document"
    return None


@dataclass
class Journal:
    """A parsed journal: the snapshot it belongs to, its change batches, and a torn last record."""

    path: Path
    base: str | None = None  # fingerprint of its snapshot; None: legacy journal (no header) or no journal
    batches: list[list[dict]] = field(default_factory=list)
    torn: tuple[int, int] | None = None  # (line, byte offset) of a cut-short last record
    size: int = 0
    exists: bool = False

    @property
    def n_changes(self) -> int:
        return sum(len(b) for b in self.batches)


def _frame(data: bytes, pos: int) -> tuple[bytes, int, str | None, bool, bool]:
    """The record at byte `pos`: (payload, offset of the next record, framing problem or None, whether nothing
    follows it (a crash can have cut it short), whether it is a binary `J1` record).
    """
    m = _RECORD.match(data, pos)
    if m:  # binary payload: its length, not a newline, says where it ends
        start = m.end()
        end = start + int(m.group(1))
        payload = data[start:end]
        last = end + 1 >= len(data)
        if end >= len(data) or data[end : end + 1] != b"\n":
            problem = "the record is shorter than its length says" if end >= len(data) else "bad record length"
        elif zlib.crc32(payload) != int(m.group(2), 16):
            problem = "checksum mismatch"
        else:
            problem = None
        return payload, end + 1, problem, last, True
    if data.startswith(b"{", pos):  # journal of pdmd <= 0.1: one JSON object per line, no checksum
        nl = data.find(b"\n", pos)
        last = nl == -1 or nl == len(data) - 1
        payload = data[pos : len(data) if nl == -1 else nl]
        return payload, len(data) if nl == -1 else nl + 1, None, last, False
    last = data.find(b"\nJ1 ", pos) == -1 and data.find(b"\n{", pos) == -1
    return b"", len(data), "not a journal record", last, False


def _decode_entry(payload: bytes, binary: bool) -> tuple[object, str | None]:
    """A record's payload decoded (BSON, or JSON for a record of pdmd <= 0.1), or why it is unreadable."""
    import bson.errors
    import bson.json_util

    try:
        return (decode_document(payload) if binary else bson.json_util.loads(payload)), None
    except (ValueError, bson.errors.BSONError) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"


def _is_header(entry) -> bool:
    """Whether a decoded record is the journal's header (naming its snapshot), not a batch of changes."""
    return isinstance(entry, dict) and "pdmd_journal" in entry


def _entry_ops(entry):
    """The changes of a decoded batch record (a record of pdmd <= 0.1 holds one change, not a list)."""
    return entry.get("ops") if isinstance(entry, dict) and "ops" in entry else [entry]


def _entry_problem(entry, line: int) -> str | None:
    """Why a decoded record of the wrong shape cannot be used as record `line` (1-based); None if it can."""
    if _is_header(entry):
        return None if line == 1 else "a journal header in the middle"
    ops = _entry_ops(entry)
    bad = _op_problem(ops) if not isinstance(ops, list) else next(filter(None, map(_op_problem, ops)), None)
    return f"wrong shape: {bad}" if bad else None


def parse_journal(data: bytes | None, path: Path, store: Path, lenient: bool = False) -> Journal:
    """Parse journal bytes. A damaged last record is torn (dropped); damage before it raises
    `StoreCorruptError` (with `lenient`, parsing stops there instead and `torn` marks the spot).
    """
    journal = Journal(path, exists=data is not None, size=len(data or b""))
    data = data or b""
    pos, line = 0, 0
    while pos < len(data):
        line += 1
        payload, nxt, problem, last, binary = _frame(data, pos)
        entry = None
        if problem is None:
            entry, problem = _decode_entry(payload, binary)
        if problem is None:
            problem = _entry_problem(entry, line)
            if problem is not None:
                last = False  # a whole record of the wrong shape is no crash
        if problem is None:
            if _is_header(entry):
                journal.base = entry.get("base")
            else:
                journal.batches.append(_entry_ops(entry))
            pos = nxt
            continue
        if last or lenient:
            journal.torn = (line, pos)
            return journal
        raise StoreCorruptError(
            f"the embedded FireWorks store's journal {path} is damaged at record {line} (byte {pos}): {problem}; "
            f"the {journal.n_changes} changes before it are intact, the records from there on cannot be trusted. "
            f"Nothing was opened or changed. {recovery_help(store)}"
        )
    return journal


def apply_ops(databases: dict, ops: list[dict]) -> None:
    """Apply journaled changes to plain (unpatched-state) mongomock `DatabaseStore`s."""
    from mongomock.store import DatabaseStore

    for e in ops:
        db = databases.setdefault(e["db"], DatabaseStore())
        col = db[e["col"]]
        op = e["op"]
        if op == "set":
            col._documents[e["key"]] = e["doc"]
        elif op == "del":
            col._documents.pop(e["key"], None)
        elif op == "drop":
            col.drop()
        elif op == "create":
            col.create()
        elif op == "index":
            col.create_index(e["name"], e["spec"])
        elif op == "drop_index":
            col.indexes.pop(e["name"], None)
        elif op == "rename":
            db.rename(e["col"], e["new"])


# -- snapshots -----------------------------------------------------------------------------------
def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def parse_snapshot(data: bytes | None, path: Path, store: Path) -> dict:
    """The databases in snapshot bytes ({} for a missing or empty file); damage raises `StoreCorruptError`."""
    import bson.json_util
    from mongomock.store import DatabaseStore

    if not data:
        return {}
    try:
        content = bson.json_util.loads(data.decode("utf-8"))
        if not isinstance(content, dict):
            raise ValueError(f"top level is {type(content).__name__}, not an object")
        return {k: DatabaseStore.from_dict(v) for k, v in content.items()}
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as err:
        raise StoreCorruptError(
            f"the embedded FireWorks store's snapshot {path} is damaged ({type(err).__name__}: {err}). "
            f"{recovery_help(store)}"
        ) from err


def snapshot_bytes(databases: dict) -> bytes:
    import bson.json_util

    return bson.json_util.dumps({k: v.to_dict() for k, v in databases.items()}).encode()


@dataclass
class DiskState:
    """What `read_state` found: the databases and how they were assembled."""

    databases: dict
    journal: Journal
    snapshot_fp: str
    from_backup: bool = False


def read_state(path: str | Path, wait_s: float = 0.0, lenient: bool = False) -> DiskState:
    """The store as it is on disk: a snapshot plus the journal that belongs to it.

    A journal names its snapshot (size + CRC32). If the snapshot does not match, the state is
    `.bak` + that journal when the journal belongs to `.bak` (a compaction in progress, or one cut
    short by a crash: the same state); otherwise retry for up to `wait_s` seconds (a compaction
    in progress) and then refuse with `StoreCorruptError`. So a reader sees before or after a
    compaction, never a mix.
    """
    path = Path(path)
    files = _files(path)
    deadline = time.monotonic() + wait_s
    while True:
        snap = _read(files["snapshot"])  # snapshot first, then its journal: the order a compaction writes them
        journal = parse_journal(_read(files["journal"]), files["journal"], path, lenient)
        snap_fp = fingerprint(snap)
        if journal.base is None or journal.base == snap_fp:
            dbs = parse_snapshot(snap, files["snapshot"], path)
            from_backup = False
            break
        bak = _read(files["bak"])
        if bak is not None and journal.base == fingerprint(bak):
            dbs = parse_snapshot(bak, files["bak"], path)
            from_backup = True
            break
        if time.monotonic() >= deadline:
            raise StoreCorruptError(
                f"the embedded FireWorks store's snapshot {path} does not match its journal {files['journal']} "
                f"(the journal was written for a snapshot of fingerprint {journal.base}, the file has {snap_fp}): the "
                f"snapshot was damaged or replaced. {recovery_help(path)}"
            )
        time.sleep(0.02)
    _replay(dbs, [journal])
    return DiskState(dbs, journal, snap_fp, from_backup)


def _backup(src: Path, dst: Path, data: bytes | None) -> None:
    """Make `dst` a copy of `src` atomically (hard link, else a written copy); no-op if `src` is missing."""
    if data is None:
        dst.unlink(missing_ok=True)
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write_bytes(dst, data)


def write_generation(path: Path, databases: dict, snap: bytes | None, journal: bytes | None) -> int:
    """Compaction: keep the current snapshot/journal as .bak, write the new snapshot, then its empty journal.

    `snap`/`journal` are the current files' bytes (for the backups). Returns the new journal's size.
    Each step is atomic, so a crash or reader at any point finds a matching pair (see `read_state`).
    """
    files = _files(path)
    _backup(files["snapshot"], files["bak"], snap)
    _backup(files["journal"], files["journal_bak"], journal)
    data = snapshot_bytes(databases)
    atomic_write_bytes(files["snapshot"], data)
    header = encode_record({"pdmd_journal": 1, "base": fingerprint(data)})
    atomic_write_bytes(files["journal"], header)
    return len(header)


Release = tuple[str, str, object, dict]
"""A document changed in memory when the store is opened: (database, collection, key, new document)."""


def _collection_docs(db, name: str) -> dict:
    col = getattr(db, "_collections", {}).get(name)
    return {} if col is None else col._documents


def release_stale_workflow_locks(databases: dict) -> list[Release]:
    """Unset FireWorks' `WFLock` flag (`locked` on a workflow) everywhere; returns the changed documents.

    Called by the process that has just taken the store's exclusive lock: no other process can hold
    a workflow lock then, so any flag on disk was left by a process killed inside a `WFLock` (else
    `rerun_fw`, `detect_lostruns --rerun` and the next launch wait 5 min and fail with
    `LockedWorkflowError`). Only FireWorks workflow documents (with `nodes`) are touched, in memory;
    the caller saves them.
    """
    released = []
    for db_name, db in databases.items():
        docs = _collection_docs(db, "workflows")
        for key, doc in list(docs.items()):
            if "locked" in doc and "nodes" in doc:
                doc = {k: v for k, v in dict(doc).items() if k != "locked"}
                docs[key] = doc
                released.append((db_name, "workflows", key, doc))
    return released


def release_orphan_reservations(databases: dict) -> list[Release]:
    """Put fireworks a killed launcher had reserved but not started back to READY; returns the changed documents.

    `rlaunch` checks a firework out in steps: READY -> RESERVED, then a launch document, then the
    firework RUNNING with that launch in its list. A launcher killed before the last step leaves a
    RESERVED firework with no launch in its list: `detect_lostruns` only sees RUNNING launches, and
    `rlaunch rapidfire` waits for it forever because it has children. Called, like
    `release_stale_workflow_locks`, by the process that has just taken the store's lock, so no checkout
    can be under way. Only fireworks with an empty launch list are released: one that lists a launch
    (a `qlaunch -r` reservation, a duplicate's launches, an interrupted rerun) is left to FireWorks'
    own commands. The workflow's `fw_states` entry and state follow the firework.
    """
    released = []
    for db_name, db in databases.items():
        fireworks, workflows = _collection_docs(db, "fireworks"), _collection_docs(db, "workflows")
        orphans = set()
        for key, doc in list(fireworks.items()):
            if doc.get("state") == "RESERVED" and "fw_id" in doc and not doc.get("launches"):
                doc = {**doc, "state": "READY"}
                fireworks[key] = doc
                orphans.add(str(doc["fw_id"]))  # the workflow's fw_states keys
                released.append((db_name, "fireworks", key, doc))
        for key, doc in list(workflows.items()):
            states = doc.get("fw_states") or {}
            hit = {k for k in states if str(k) in orphans and states[k] == "RESERVED"}
            if hit:
                states = {k: ("READY" if k in hit else v) for k, v in states.items()}
                state = doc.get("state")
                if state == "RESERVED" and "RESERVED" not in states.values():
                    state = "READY"  # FireWorks: a workflow is RESERVED while one of its fireworks is
                doc = {**doc, "fw_states": states, "state": state}
                workflows[key] = doc
                released.append((db_name, "workflows", key, doc))
    return released


# -- the store of this process -------------------------------------------------------------------
def _refuse_rlaunch_multi() -> None:
    """Refuse `rlaunch multi` up front: its processes would share one store."""
    if Path(sys.argv[0]).name == "rlaunch" and "multi" in sys.argv[1:3]:
        raise StoreBusyError(
            "`rlaunch multi` runs several processes on one store at once, which the embedded store does not "
            "support. Use `rlaunch rapidfire` (pdmd's LAMMPS and torch already use every core) or MongoDB "
            "(README, 'Running on the embedded store vs MongoDB')."
        )


def _try_lock(lock_fh) -> bool:
    """Take the exclusive `flock` of an open lock file without waiting; False if another process holds it."""
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _take_store_lock(lock_path: Path, path: Path):
    """Open and lock `<store>.lock` for this process's lifetime and write the holder into it; its file object.

    Raises `StoreBusyError` naming the holder when another process has the store.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock_fh = open(lock_path, "a+")  # noqa: SIM115 - held for the process lifetime
    if not _try_lock(lock_fh):
        lock_fh.seek(0)
        holder = lock_fh.read().strip() or "another process"
        lock_fh.close()
        raise StoreBusyError(f"the embedded FireWorks store {path} is in use by {holder}. {ONE_PROCESS_HELP}")
    lock_fh.seek(0)
    lock_fh.truncate()
    command = " ".join(os.path.basename(a) for a in sys.argv[:3])
    lock_fh.write(f"PID {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    lock_fh.flush()
    return lock_fh


def _report_released(locks: list[Release], reservations: list[Release]) -> None:
    """Say on stderr what a killed FireWorks process had left and was released at open."""
    if locks:
        first = sorted(min(doc["nodes"] or [-1]) for _, _, _, doc in locks)
        print(
            f"pdmd: released the lock of {len(locks)} workflow(s) (first fw_id {', '.join(map(str, first))})"
            " left by a FireWorks process that was killed while it held them; `lpad detect_lostruns --rerun` "
            "resets a firework it was running",
            file=sys.stderr,
        )
    fw_ids = sorted(doc["fw_id"] for _, col, _, doc in reservations if col == "fireworks")
    if fw_ids:
        print(
            f"pdmd: fw_id {', '.join(map(str, fw_ids))} set back from RESERVED to READY: a FireWorks process was "
            "killed while it checked them out, before they started",
            file=sys.stderr,
        )


class _StoreState:
    """Lock, files and in-memory databases of one store file held by this process family."""

    def __init__(self, path: Path) -> None:
        _refuse_rlaunch_multi()
        self.path = path
        self.files = _files(path)
        self.journal_path = self.files["journal"]
        self.lock_path = self.files["lock"]
        self.lock_fh = _take_store_lock(self.lock_path, path)
        self.owner_pid = os.getpid()
        self.forked = False
        self.lock = threading.RLock()
        self.databases: dict = {}
        self.journal_fd = -1
        self.last_saved = "opening the store"
        try:
            self._load()
        except BaseException:
            self.release()
            raise
        self.forked = False
        os.register_at_fork(after_in_child=self._mark_forked)

    def _load(self) -> None:
        """Read the store from disk, release what a killed process left (workflow locks, reservations), start
        a new generation if needed, open the journal for appending.
        """
        state = read_state(self.path)
        if state.journal.torn:
            line, offset = state.journal.torn
            print(
                f"pdmd: the last record of {self.journal_path} (record {line}, byte {offset}) was cut short by a "
                "crash and is dropped (its write never completed)",
                file=sys.stderr,
            )
        self.databases.update(state.databases)
        locks = release_stale_workflow_locks(self.databases)
        reservations = release_orphan_reservations(self.databases)
        released = locks + reservations
        saved = self._start_generation(state, bool(released))
        self._open_journal()
        if released and not saved:  # no new generation (disk full): journal the released documents
            ops = [{"db": db, "col": col, "op": "set", "key": key, "doc": doc} for db, col, key, doc in released]
            self.write(ops, "release of what a killed process left")
        _report_released(locks, reservations)

    def _start_generation(self, state: DiskState, changed: bool) -> bool:
        """Fold what is on disk (a killed process's journal, `changed` documents) into a new generation when
        needed; whether one was written.
        """
        current = state.journal.base == state.snapshot_fp and not state.from_backup
        if not (state.journal.batches or state.journal.torn or not current or changed):
            return False
        try:
            self.compact(state)
        except OSError as err:
            self._keep_journal(state, err)
            return False
        return True

    def _keep_journal(self, state: DiskState, err: OSError) -> None:
        """Compaction at start failed (disk full): go on appending to the journal if it is the snapshot's."""
        if state.from_backup or state.journal.base != state.snapshot_fp:
            raise StoreWriteError(
                f"disk full: cannot start a new generation of {self.path} ({err.strerror or err}); nothing was "
                "changed. Free space and run again."
            ) from err
        if state.journal.torn:  # never append after a cut-short record: it would become damage in the middle
            os.truncate(self.journal_path, state.journal.torn[1])
        print(
            f"pdmd: could not compact {self.path} ({err.strerror or err}); continuing with its journal", file=sys.stderr
        )

    def _open_journal(self) -> None:
        if self.journal_fd >= 0:
            os.close(self.journal_fd)
        self.journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        self.journal_size = os.fstat(self.journal_fd).st_size

    def _mark_forked(self) -> None:
        self.forked = True
        self.lock = threading.RLock()

    def write(self, ops: list[dict], what: str) -> None:
        """Journal one batch of changes (one record) before they are applied; raises `StoreWriteError`."""
        if self.forked:
            raise StoreBusyError(
                f"a process forked from PID {self.owner_pid} tried to write the embedded store {self.path}; only one "
                f"process may write it. {ONE_PROCESS_HELP}"
            )
        with self.lock:
            record = memoryview(encode_record({"ops": ops}))
            done = 0
            try:
                while done < len(record):
                    n = os.write(self.journal_fd, record[done:])  # O_APPEND; a short write is continued
                    if n <= 0:
                        raise OSError(errno.EIO, "write() wrote nothing")
                    done += n
            except OSError as err:
                with contextlib.suppress(OSError):  # else a partial last record is dropped as torn at the next start
                    os.ftruncate(self.journal_fd, self.journal_size)  # drop the partial record
                reason = "disk full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "write failed"
                raise StoreWriteError(
                    f"{reason}: {self.journal_path} ({err.strerror or err}); nothing after {self.last_saved} was "
                    f"saved: {what} was not saved and was undone in memory. Free space (or fix the file system) and "
                    "run again: FireWorks continues from the saved state."
                ) from err
            self.journal_size += len(record)
            self.last_saved = what

    def compact(self, state: DiskState | None = None) -> None:
        """Rebuild the snapshot from disk (snapshot + journal) as a new generation; keep the old one as .bak."""
        with self.lock:
            state = state or read_state(self.path)
            snap, journal = _read(self.files["snapshot"]), _read(self.journal_path)
            if state.from_backup:
                snap = _read(self.files["bak"])  # the snapshot is not the journal's: keep the pair that is
            self.journal_size = write_generation(self.path, state.databases, snap, journal)
            if self.journal_fd >= 0:
                self._open_journal()

    def release(self) -> None:
        try:
            if self.journal_fd >= 0:
                os.close(self.journal_fd)
                self.journal_fd = -1
            fcntl.flock(self.lock_fh, fcntl.LOCK_UN)
        finally:
            self.lock_fh.close()


# -- hooks into mongomock's store classes ------------------------------------------------------
def _plain(value):
    """An index spec as BSON can store it (mongomock keeps index keys as `dict_items`, tuples)."""
    from collections.abc import ItemsView, KeysView, ValuesView

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, ItemsView, KeysView, ValuesView)):
        return [_plain(v) for v in value]
    return value


def _tag(store) -> tuple[_StoreState, str] | None:
    tag = getattr(store, "_pdmd", None)
    return tag if tag is not None and tag[0] is not None else None


def _tagging_server_getitem(orig):
    """ServerStore.__getitem__ that tags each database with this store's state and its name."""

    def server_getitem(self, db_name):
        db = orig(self, db_name)
        db._pdmd = (getattr(self, "_pdmd_state", None), db_name)
        return db

    return server_getitem


def _tagging_db_getitem(orig):
    """DatabaseStore.__getitem__ that passes the database's tag on to each collection."""

    def db_getitem(self, col_name):
        col = orig(self, col_name)
        state, db_name = getattr(self, "_pdmd", (None, None))
        if state is not None and getattr(col, "_pdmd", None) is None:
            col._pdmd = (state, db_name)
        return col

    return db_getitem


def _journaled(orig, op: str, check=None, **fixed):
    """A CollectionStore method that journals `op` (with its arguments) before applying it, under the lock."""

    def method(self, *args):
        tag = _tag(self)
        if tag is None:
            return orig(self, *args)
        state, db = tag
        with state.lock:
            if check is not None:
                check(self, *args)
            entry = {"db": db, "col": self.name, "op": op}
            entry.update({k: _plain(args[i]) for k, i in fixed.items()})
            key = f" {args[0]!r}" if args and op == "del" else ""
            state.write([entry], f"{op}{key} in {db}.{self.name}")
            return orig(self, *args)

    return method


def _del_check(store, key) -> None:
    """Refuse (KeyError, as mongomock would) to delete a document that is not there, before it is journaled."""
    if key not in store._documents:
        raise KeyError(key)


def _drop_index_check(store, name) -> None:
    """Refuse (KeyError, as mongomock would) to drop an index that is not there, before it is journaled."""
    if name not in store.indexes:
        raise KeyError(name)


def _journaled_setitem(orig_set):
    """CollectionStore.__setitem__ that size-checks and journals the document before storing it."""
    from bson.raw_bson import RawBSONDocument

    def setitem(self, key, val):
        tag = _tag(self)
        if tag is None:
            return orig_set(self, key, val)
        state, db = tag
        with state.lock:
            raw = RawBSONDocument(encode_document(val))  # encoded once: size check and journal record
            state.write(
                [{"db": db, "col": self.name, "op": "set", "key": key, "doc": raw}], f"set {key!r} in {db}.{self.name}"
            )
            return orig_set(self, key, val)

    return setitem


def _journaled_rename(orig_rename):
    """DatabaseStore.rename that journals the rename of a collection before doing it."""

    def rename(self, name, new_name):
        state, db = getattr(self, "_pdmd", (None, None))
        if state is None:
            return orig_rename(self, name, new_name)
        with state.lock:
            state.write([{"db": db, "col": name, "op": "rename", "new": new_name}], f"rename of {db}.{name}")
            return orig_rename(self, name, new_name)

    return rename


def _encoded_matches(collection, spec, multi: bool) -> dict:
    """BSON of the documents an update of `spec` changes, by `_id` (mongomock changes only the first unless multi)."""
    import bson

    matched = collection._iter_documents(spec)
    if not multi:
        matched = [d for d in [next(matched, None)] if d is not None]
    return {d["_id"]: bson.encode(d, check_keys=False) for d in matched}


def _changed(store, before: dict) -> list[tuple]:
    """(key, old BSON, new BSON) of the documents of `before` that an update changed in place."""
    import bson

    out = []
    for key, old in before.items():
        new = bson.encode(store._documents[key], check_keys=False) if key in store._documents else old
        if new != old:
            out.append((key, old, new))
    return out


def _undo(orig_set, store, changes: list[tuple]) -> None:
    """Put the documents changed in place back as they were (memory back to what is on disk)."""
    for key, old, _ in changes:
        orig_set(store, key, decode_document(old))


def _journal_changes(state: _StoreState, db: str, store, changes: list[tuple]) -> None:
    """Journal the documents an update changed as one record; `DocumentTooLarge` for one over MongoDB's limit."""
    from bson.raw_bson import RawBSONDocument

    ops = []
    for key, _, new in changes:
        ops.append({"db": db, "col": store.name, "op": "set", "key": key, "doc": RawBSONDocument(new)})
        if len(new) > MAX_BSON_BYTES:
            encode_document(store._documents[key])  # raises DocumentTooLarge
    state.write(ops, f"update of {len(ops)} document(s) in {db}.{store.name}")


def _journaled_update(orig_update, orig_set):
    """Collection._update that journals the documents it changed in place, or undoes the change."""

    def update(self, spec, document, *args, **kwargs):
        """In-place updates bypass CollectionStore.__setitem__: journal (and size-check) the results, or undo them."""
        store = self._store
        tag = _tag(store)
        if tag is None:
            return orig_update(self, spec, document, *args, **kwargs)
        state, db = tag
        multi = kwargs.get("multi", args[2] if len(args) > 2 else False)
        with state.lock:  # match -> change -> serialize -> write, with no other writer in between
            before = _encoded_matches(self, spec, multi)
            try:
                result = orig_update(self, spec, document, *args, **kwargs)
            except BaseException:  # failed part-way (e.g. duplicate key): undo what it changed in place
                _undo(orig_set, store, _changed(store, before))
                raise
            changes = _changed(store, before)
            if changes:
                try:
                    _journal_changes(state, db, store, changes)
                except BaseException:
                    _undo(orig_set, store, changes)
                    raise
            return result

    return update


def _locked(orig):
    """A Collection method whose match and change happen under the store's lock."""

    def method(self, *args, **kwargs):
        tag = _tag(self._store)
        if tag is None:
            return orig(self, *args, **kwargs)
        with tag[0].lock:
            return orig(self, *args, **kwargs)

    return method


def _wrap_store_classes() -> None:
    """Install the tagging, journaling and locking wrappers into mongomock's store and collection classes."""
    from mongomock.collection import Collection
    from mongomock.store import CollectionStore, DatabaseStore, ServerStore

    orig_set = CollectionStore.__setitem__
    ServerStore.__getitem__ = _tagging_server_getitem(ServerStore.__getitem__)
    DatabaseStore.__getitem__ = _tagging_db_getitem(DatabaseStore.__getitem__)
    DatabaseStore.rename = _journaled_rename(DatabaseStore.rename)
    CollectionStore.__setitem__ = _journaled_setitem(orig_set)
    CollectionStore.__delitem__ = _journaled(CollectionStore.__delitem__, "del", _del_check, key=0)
    CollectionStore.drop = _journaled(CollectionStore.drop, "drop")
    CollectionStore.create = _journaled(CollectionStore.create, "create")
    CollectionStore.create_index = _journaled(CollectionStore.create_index, "index", name=0, spec=1)
    CollectionStore.drop_index = _journaled(CollectionStore.drop_index, "drop_index", _drop_index_check, name=0)
    Collection._update = _journaled_update(Collection._update, orig_set)
    for name in ("_insert", "_delete", "_find_and_modify"):  # their match and change happen under one lock
        setattr(Collection, name, _locked(getattr(Collection, name)))


def _server_store_init(self, filename: str | None = None) -> None:
    """Replacement for mongomock's ServerStore.__init__ (installed by `patch_mongomock_persistence`)."""
    raw = os.environ.get("MONGOMOCK_SERVERSTORE_FILE", filename)
    self._filename = None
    self._databases = {}
    if not raw:
        return
    path = Path(raw).expanduser().resolve()
    key = str(path)
    state = _OPEN.get(key)
    if state is None:
        state = _StoreState(path)
        _OPEN[key] = state
        # later clients in this process (e.g. a firetask in a launcher directory) must find the same file
        os.environ["MONGOMOCK_SERVERSTORE_FILE"] = key
        weakref.finalize(state, _finalize, state)
    self._databases = state.databases  # shared by every client of this file in this process
    self._filename = key
    self._pdmd_state = state
    for db_name, db in state.databases.items():
        db._pdmd = (state, db_name)
        for col in db._collections.values():
            col._pdmd = (state, db_name)


def _finalize(state: _StoreState) -> None:
    if os.getpid() != state.owner_pid:
        return  # a forked worker: the opening process compacts what everybody journaled
    try:
        state.compact()
    except (OSError, PdmdError) as err:
        print(f"pdmd: could not compact {state.path} at exit ({err}); every change is in its journal", file=sys.stderr)
    finally:
        state.release()


def _to_file(self) -> None:
    """Compact the store now (everything is already journaled; this only shortens the replay)."""
    state = getattr(self, "_pdmd_state", None)
    if state is not None:
        state.compact()


def check_versions() -> None:
    """Refuse mongomock / mongomock-persistence versions other than `PINNED_VERSIONS`."""
    from importlib.metadata import PackageNotFoundError, version

    for name, want in PINNED_VERSIONS.items():
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "none"
        if got != want:
            raise StoreVersionError(
                f"pdmd's embedded FireWorks store patches internals of {name} {want}, but {name} {got} is installed; "
                f"install the pinned version (`pip install '{name}=={want}'`, as pyproject.toml pins it) or use "
                "MongoDB (README, 'Running on the embedded store vs MongoDB')"
            )


def _one_line_excepthook(previous):
    def hook(kind, value, tb):
        if isinstance(value, PdmdError):
            print(f"Error: {value}", file=sys.stderr)
            return
        previous(kind, value, tb)

    return hook


def patch_mongomock_persistence(module=None) -> None:
    """Install the locked, journaled, shared persistence into mongomock's store classes."""
    from mongomock.store import ServerStore

    if getattr(ServerStore, "_pdmd_patched", False):
        return
    if sys.excepthook is sys.__excepthook__:  # FireWorks' own commands: a pdmd error is one line, not a traceback
        sys.excepthook = _one_line_excepthook(sys.excepthook)
    check_versions()
    _wrap_store_classes()
    ServerStore.__init__ = _server_store_init
    ServerStore._to_file = _to_file
    ServerStore.flush = _to_file
    ServerStore._pdmd_patched = True


# -- recovery ------------------------------------------------------------------------------------
def recover(path: str | Path, out=sys.stdout) -> dict:
    """Rebuild a damaged store from its newest intact files; the damaged ones are moved aside.

    Tries, in order: snapshot + journal; .bak + journal; .bak + .journal.bak + journal (the
    snapshot a compaction wrote from those two). A journal damaged in the middle keeps the
    changes before the damage. Returns what was used and how many changes were kept.
    """
    import mongomock_persistence  # noqa: F401 - DatabaseStore.from_dict/to_dict

    path = Path(path).resolve()
    files = _files(path)
    lock_fh = open(files["lock"], "a+")  # noqa: SIM115
    try:
        if not _try_lock(lock_fh):
            raise StoreBusyError(f"the embedded FireWorks store {path} is in use; stop that process first")
        if _intact(path, out):
            return {"recovered": False}
        raw = {k: _read(p) for k, p in files.items() if k != "lock"}
        journal = parse_journal(raw["journal"], files["journal"], path, lenient=True)
        for label, base_file, journals in _recovery_plans(raw, files, path, journal):
            try:
                dbs = parse_snapshot(raw[base_file], files[base_file], path)
            except StoreCorruptError:
                continue
            kept = _replay(dbs, journals)
            stamp = _set_damaged_aside(files, raw)
            write_generation(path, dbs, None, None)
            lost = journal.torn is not None
            print(
                f"rebuilt {path} from {label}: {kept} journaled changes applied"
                + (f"; the journal's records from record {journal.torn[0]} on were dropped" if lost else "")
                + f"; the damaged files were kept as *.damaged-{stamp}",
                file=out,
            )
            return {"recovered": True, "from": label, "changes": kept, "dropped_from_line": journal.torn}
        raise StoreCorruptError(
            f"no intact snapshot/journal pair for {path} (snapshot, .bak and the journals do not match): "
            "`lpad reset` and re-add the workflows, then `pdmd reindex` (result files are kept and reused)"
        )
    finally:
        lock_fh.close()


def _intact(path: Path, out) -> bool:
    """Whether the store reads cleanly (said on `out`); else the first sentence of what is damaged goes to `out`."""
    try:
        read_state(path)
    except StoreCorruptError as err:
        print(f"{path}: {str(err).split('. ')[0]}", file=out)
        return False
    print(f"{path}: snapshot and journal are intact; nothing to recover", file=out)
    return True


def _recovery_plans(raw: dict, files: dict, path: Path, journal: Journal) -> list[tuple[str, str, list[Journal]]]:
    """The usable (label, snapshot file key, journals to replay in order) rebuilds, newest first."""
    journal_bak = parse_journal(raw["journal_bak"], files["journal_bak"], path, lenient=True)
    snap_fp, bak_fp = fingerprint(raw["snapshot"]), fingerprint(raw["bak"])
    plans = [
        ("snapshot + journal", "snapshot", [journal], journal.base in (None, snap_fp)),
        ("snapshot.bak + journal", "bak", [journal], journal.base == bak_fp and raw["bak"] is not None),
        (
            "snapshot.bak + journal.bak + journal",
            "bak",
            [journal_bak, journal],
            raw["journal_bak"] is not None and journal_bak.base in (None, bak_fp),
        ),
    ]
    return [(label, base_file, journals) for label, base_file, journals, usable in plans if usable]


def _replay(databases: dict, journals: list[Journal]) -> int:
    """Apply the journals' changes to `databases`, in order; the number of changes applied."""
    for journal in journals:
        for ops in journal.batches:
            apply_ops(databases, ops)
    return sum(j.n_changes for j in journals)


def _set_damaged_aside(files: dict, raw: dict) -> str:
    """Rename the present snapshot and journal to `*.damaged-<stamp>`; the stamp (local time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for key in ("snapshot", "journal"):
        if raw[key] is not None:
            os.replace(files[key], files[key].with_name(f"{files[key].name}.damaged-{stamp}"))
    return stamp


def main(argv: list[str] | None = None) -> int:
    """`python -m pdmd.store.embedded recover STORE`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pdmd.store.embedded", description=recover.__doc__)
    parser.add_argument("command", choices=["recover"])
    parser.add_argument("store", help="the store file, e.g. .pdmd/fireworks_store.json")
    args = parser.parse_args(argv)
    try:
        recover(args.store)
    except PdmdError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from pdmd.store.embedded import main as _main  # the imported module, whose patch state is the real one

    sys.exit(_main())
