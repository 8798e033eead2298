"""Safe persistence for FireWorks' embedded mongomock store.

FireWorks' `MONGOMOCK_SERVERSTORE_FILE` support (mongomock-persistence) loads the whole JSON
store when a process starts and writes it back, non-atomically and without a lock, when the
process exits. Two processes on one store therefore overwrite each other. This module replaces
that persistence:

* one process at a time: the first process to open the store takes an exclusive `flock` on
  `<store>.lock` for its lifetime; any other process is refused with `StoreBusyError`, which
  names the holder and says what to do;
* one store per process: every `MongoClient` in the process (`lpad`'s LaunchPad, a firetask's
  own LaunchPad) shares the same in-memory databases, so none overwrites another's writes;
* atomic write-back: the store is written to a temporary file and renamed over the old one, at
  exit and on `flush()`, so a crash leaves the last complete state, never half a file.

The patch is applied by `pdmd.store.embedded_hook` when `mongomock_persistence` is imported,
so it works for FireWorks' own `lpad`, `rlaunch` and `lpad webgui`, not only through `pdmd`.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
import weakref
from pathlib import Path

from pdmd.errors import StoreBusyError

_OPEN: dict[str, _StoreState] = {}
ONE_PROCESS_HELP = (
    "The embedded store allows one FireWorks process at a time (mongomock keeps the whole database "
    "in memory and writes it at exit). Wait for that process to finish, or use MongoDB for parallel "
    "launches: see README, 'Running on the embedded store vs MongoDB'."
)


class _StoreState:
    """Lock, path and databases of one store file held by this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
        self.lock_fh.write(
            f"PID {os.getpid()} ({' '.join(os.path.basename(a) for a in sys.argv[:3])}, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n"
        )
        self.lock_fh.flush()
        self.databases: dict = {}

    def flush(self) -> None:
        """Write the databases to the store file atomically (temporary file + rename)."""
        import bson.json_util

        data = bson.json_util.dumps({k: v.to_dict() for k, v in self.databases.items()}).encode()
        write_atomic(self.path, data)

    def release(self) -> None:
        try:
            fcntl.flock(self.lock_fh, fcntl.LOCK_UN)
        finally:
            self.lock_fh.close()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _server_store_init(self, filename: str | None = None) -> None:
    """Replacement for mongomock's ServerStore.__init__ (installed by `patch_mongomock_persistence`)."""
    from mongomock.store import DatabaseStore

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
        if path.exists() and path.stat().st_size > 0:
            import bson.json_util

            try:
                content = bson.json_util.loads(path.read_text(encoding="utf-8"))
            except (ValueError, json.JSONDecodeError) as err:
                state.release()
                raise StoreBusyError(
                    f"the embedded FireWorks store {path} is not valid JSON ({err}); "
                    "restore it or delete it and run `lpad reset`"
                ) from err
            state.databases.update({k: DatabaseStore.from_dict(v) for k, v in content.items()})
        _OPEN[key] = state
        # later clients in this process (e.g. a firetask in a launcher directory) must find the same file
        os.environ["MONGOMOCK_SERVERSTORE_FILE"] = key
        weakref.finalize(state, _finalize, state)
    self._databases = state.databases  # shared by every client of this file in this process
    self._filename = key
    self._pdmd_state = state


def _finalize(state: _StoreState) -> None:
    try:
        state.flush()
    finally:
        state.release()


def _to_file(self) -> None:
    """Write the store now (atomic replace); the lock stays held."""
    state = getattr(self, "_pdmd_state", None)
    if state is not None:
        state.flush()


def patch_mongomock_persistence(module=None) -> None:
    """Install the locked, shared, atomic persistence into mongomock's ServerStore."""
    from mongomock.store import ServerStore

    if getattr(ServerStore, "_pdmd_patched", False):
        return
    ServerStore.__init__ = _server_store_init
    ServerStore._to_file = _to_file
    ServerStore.flush = _to_file
    ServerStore._pdmd_patched = True


def flush_open_stores() -> int:
    """Write every embedded store this process holds (no-op with MongoDB); returns the count."""
    for state in _OPEN.values():
        state.flush()
    return len(_OPEN)
