"""Safe persistence for FireWorks' embedded mongomock store.

FireWorks' `MONGOMOCK_SERVERSTORE_FILE` support (mongomock-persistence) loads the whole JSON
store when a process starts and writes it back, non-atomically and without a lock, when the
process exits: two processes overwrite each other and a killed process loses all its changes.
This module replaces that persistence:

* one process at a time: the first process to open the store takes an exclusive `flock` on
  `<store>.lock` for its lifetime; any other process is refused with `StoreBusyError`, which
  names the holder and says what to do. `rlaunch multi` is refused up front, and a process
  forked from the holder that tries to write is refused too;
* write-ahead journal: every change (document set/delete, drop, index) is appended to
  `<store>.journal` before the call returns, so a process killed at any moment (SIGKILL, OOM,
  walltime) keeps every change it made; the journal is replayed on the next start;
* one store per process: every `MongoClient` in the process (`lpad`'s LaunchPad, a firetask's
  own LaunchPad) shares the same in-memory databases;
* atomic compaction: at exit (of the process that opened the store) the snapshot is rebuilt from
  disk (snapshot + journal), written to a temporary file, renamed over the old one, and the
  journal is emptied;
* MongoDB's 16 MB document limit is enforced (`pymongo.errors.DocumentTooLarge`), so FireWorks'
  GridFS fallback behaves as on a real server.

The patch is applied by `pdmd.store.embedded_hook` when `mongomock_persistence` is imported,
so it works for FireWorks' own `lpad`, `rlaunch` and `lpad webgui`, not only through `pdmd`.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import sys
import threading
import time
import weakref
from pathlib import Path

from pdmd.errors import StoreBusyError
from pdmd.store.files import atomic_write_bytes

MAX_BSON_BYTES = 16 * 1024 * 1024
_OPEN: dict[str, _StoreState] = {}
ONE_PROCESS_HELP = (
    "The embedded store allows one FireWorks process at a time (mongomock keeps the whole database "
    "in memory). Wait for that process to finish, or use MongoDB for parallel launches: see README, "
    "'Running on the embedded store vs MongoDB'."
)


class _StoreState:
    """Lock, files and in-memory databases of one store file held by this process family."""

    def __init__(self, path: Path) -> None:
        if Path(sys.argv[0]).name == "rlaunch" and "multi" in sys.argv[1:3]:
            raise StoreBusyError(
                "`rlaunch multi` runs several processes on one store at once, which the embedded store does not "
                "support. Use `rlaunch rapidfire` (pdmd's LAMMPS and torch already use every core) or MongoDB "
                "(README, 'Running on the embedded store vs MongoDB')."
            )
        self.path = path
        self.journal_path = path.with_name(path.name + ".journal")
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_fh = open(self.lock_path, "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(self.lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_fh.seek(0)
            holder = self.lock_fh.read().strip() or "another process"
            self.lock_fh.close()
            raise StoreBusyError(
                f"the embedded FireWorks store {path} is in use by {holder}. {ONE_PROCESS_HELP}"
            ) from None
        self.lock_fh.seek(0)
        self.lock_fh.truncate()
        command = " ".join(os.path.basename(a) for a in sys.argv[:3])
        self.lock_fh.write(f"PID {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        self.lock_fh.flush()
        self.owner_pid = os.getpid()
        self.journal_lock = threading.Lock()
        self.databases: dict = {}
        try:
            if self.journal_path.exists() and self.journal_path.stat().st_size:
                self.compact()  # a previous process was killed: fold its journal into the snapshot
            self.databases.update(read_store(path))
        except StoreBusyError:
            self.release()
            raise
        self.journal_fh = open(self.journal_path, "ab")  # noqa: SIM115 - O_APPEND
        self.forked = False
        os.register_at_fork(after_in_child=self._mark_forked)

    def _mark_forked(self) -> None:
        self.forked = True
        self.journal_lock = threading.Lock()

    def append(self, entry: dict) -> None:
        """Journal one change; it is on disk (page cache) when this returns."""
        import bson.json_util

        if self.forked:
            raise StoreBusyError(
                f"a process forked from PID {self.owner_pid} tried to write the embedded store {self.path}; only one "
                f"process may write it. {ONE_PROCESS_HELP}"
            )
        line = (bson.json_util.dumps(entry) + "\n").encode()
        with self.journal_lock:
            os.write(self.journal_fh.fileno(), line)  # one write() on an O_APPEND file: not interleaved

    def compact(self) -> None:
        """Rebuild the snapshot from disk (snapshot + journal), write it atomically, empty the journal."""
        import bson.json_util

        merged = read_store(self.path)
        replay_journal(merged, self.journal_path)
        data = bson.json_util.dumps({k: v.to_dict() for k, v in merged.items()}).encode()
        atomic_write_bytes(self.path, data)
        with open(self.journal_path, "wb"):
            pass

    def release(self) -> None:
        try:
            fcntl.flock(self.lock_fh, fcntl.LOCK_UN)
        finally:
            self.lock_fh.close()


def read_store(path: Path) -> dict:
    """The databases in a snapshot file ({} if it does not exist)."""
    import bson.json_util
    from mongomock.store import DatabaseStore

    if not path.exists() or path.stat().st_size == 0:
        return {}
    try:
        content = bson.json_util.loads(path.read_text(encoding="utf-8"))
    except (ValueError, json.JSONDecodeError) as err:
        raise StoreBusyError(
            f"the embedded FireWorks store {path} is not valid JSON ({err}); "
            "restore it, or delete it and run `lpad reset`"
        ) from err
    return {k: DatabaseStore.from_dict(v) for k, v in content.items()}


def replay_journal(databases: dict, journal: Path) -> int:
    """Apply the journal's changes to `databases`; a torn last line (killed mid-write) is skipped."""
    import bson.json_util
    from mongomock.store import DatabaseStore

    if not journal.exists():
        return 0
    n = 0
    for line in journal.read_bytes().splitlines():
        try:
            e = bson.json_util.loads(line)
        except ValueError:
            continue
        db = databases.setdefault(e["db"], DatabaseStore())
        col = db[e["col"]]
        op = e["op"]
        if op == "set":
            col[e["key"]] = e["doc"]
        elif op == "del":
            if e["key"] in col._documents:
                del col[e["key"]]
        elif op == "drop":
            col.drop()
        elif op == "create":
            col.create()
        elif op == "index":
            col.create_index(e["name"], e["spec"])
        elif op == "drop_index":
            col.indexes.pop(e["name"], None)
        n += 1
    return n


# -- hooks into mongomock's store classes ------------------------------------------------------
def _attach(col_store, state: _StoreState, db_name: str) -> None:
    col_store._pdmd = (state, db_name)


def _journal(col_store, **entry) -> None:
    tag = getattr(col_store, "_pdmd", None)
    if tag is None:  # not a store opened through this module (e.g. one rebuilt by replay_journal)
        return
    state, db_name = tag
    state.append({"db": db_name, "col": col_store.name, **entry})


def _check_size(doc) -> None:
    import bson
    from pymongo.errors import DocumentTooLarge

    size = len(bson.encode(doc, check_keys=False)) if isinstance(doc, dict) else 0
    if size > MAX_BSON_BYTES:
        raise DocumentTooLarge(
            f"BSON document too large ({size} bytes) - the connected server supports "
            f"BSON document sizes up to {MAX_BSON_BYTES} bytes."
        )


def _wrap_store_classes() -> None:
    from mongomock.collection import Collection
    from mongomock.store import CollectionStore, DatabaseStore, ServerStore

    orig_server_getitem = ServerStore.__getitem__
    orig_db_getitem = DatabaseStore.__getitem__
    orig_set, orig_del = CollectionStore.__setitem__, CollectionStore.__delitem__
    orig_drop, orig_create = CollectionStore.drop, CollectionStore.create
    orig_index, orig_drop_index = CollectionStore.create_index, CollectionStore.drop_index
    orig_update = Collection._update

    def server_getitem(self, db_name):
        db = orig_server_getitem(self, db_name)
        db._pdmd = (getattr(self, "_pdmd_state", None), db_name)
        return db

    def db_getitem(self, col_name):
        col = orig_db_getitem(self, col_name)
        state, db_name = getattr(self, "_pdmd", (None, None))
        if state is not None and getattr(col, "_pdmd", None) is None:
            _attach(col, state, db_name)
        return col

    def setitem(self, key, val):
        if getattr(self, "_pdmd", None) is not None:
            _check_size(val)
        orig_set(self, key, val)
        _journal(self, op="set", key=key, doc=val)

    def delitem(self, key):
        orig_del(self, key)
        _journal(self, op="del", key=key)

    def drop(self):
        orig_drop(self)
        _journal(self, op="drop")

    def create(self):
        orig_create(self)
        _journal(self, op="create")

    def create_index(self, index_name, index_dict):
        orig_index(self, index_name, index_dict)
        _journal(self, op="index", name=index_name, spec=index_dict)

    def drop_index(self, index_name):
        orig_drop_index(self, index_name)
        _journal(self, op="drop_index", name=index_name)

    def update(self, spec, document, *args, **kwargs):
        """In-place updates bypass CollectionStore.__setitem__: journal (and size-check) the results."""
        store = self._store
        if getattr(store, "_pdmd", None) is None:
            return orig_update(self, spec, document, *args, **kwargs)
        before = {d["_id"]: copy.deepcopy(d) for d in self._iter_documents(spec)}
        result = orig_update(self, spec, document, *args, **kwargs)
        for key, old in before.items():
            if key in store._documents and store._documents[key] != old:
                new = store._documents[key]
                try:
                    _check_size(new)
                except Exception:
                    orig_set(store, key, old)  # roll back, as the server would never have stored it
                    raise
                _journal(store, op="set", key=key, doc=new)
        return result

    ServerStore.__getitem__ = server_getitem
    DatabaseStore.__getitem__ = db_getitem
    CollectionStore.__setitem__ = setitem
    CollectionStore.__delitem__ = delitem
    CollectionStore.drop = drop
    CollectionStore.create = create
    CollectionStore.create_index = create_index
    CollectionStore.drop_index = drop_index
    Collection._update = update


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
            _attach(col, state, db_name)


def _finalize(state: _StoreState) -> None:
    if os.getpid() != state.owner_pid:
        return  # a forked worker: the opening process compacts what everybody journaled
    try:
        state.compact()
    finally:
        state.release()


def _to_file(self) -> None:
    """Compact the store now (everything is already journaled; this only shortens the replay)."""
    state = getattr(self, "_pdmd_state", None)
    if state is not None:
        state.compact()


def patch_mongomock_persistence(module=None) -> None:
    """Install the locked, journaled, shared persistence into mongomock's store classes."""
    from mongomock.store import ServerStore

    if getattr(ServerStore, "_pdmd_patched", False):
        return
    _wrap_store_classes()
    ServerStore.__init__ = _server_store_init
    ServerStore._to_file = _to_file
    ServerStore.flush = _to_file
    ServerStore._pdmd_patched = True
