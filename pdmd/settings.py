"""Where pdmd keeps results, and how it reaches the FireWorks database.

Data directory, first match wins:
1. the FWorker's `env.pdmd_data_dir` (FireWorks env_chk `>>pdmd_data_dir<<`), for HPC sites;
2. the environment variable PDMD_DATA_DIR;
3. `pdmd_data/` beside the LaunchPad file FireWorks uses (the repository root by default).
Relative paths are taken relative to the LaunchPad file's folder, never to a launcher directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def config_root() -> Path:
    """Folder of the LaunchPad file FireWorks found (its FW_config.yaml / my_launchpad.yaml)."""
    from fireworks import fw_config

    loc = fw_config.LAUNCHPAD_LOC
    return Path(loc).resolve().parent if loc else Path.cwd()


def data_dir(fw_spec: dict[str, Any] | None = None) -> Path:
    """Root folder of the pdmd result store (created if missing)."""
    value = None
    if fw_spec is not None:
        value = (fw_spec.get("_fw_env") or {}).get("pdmd_data_dir")
    value = value or os.environ.get("PDMD_DATA_DIR")
    path = Path(value).expanduser() if value else Path("pdmd_data")
    if not path.is_absolute():
        path = config_root() / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_embedded() -> bool:
    """True when FireWorks is configured for the embedded mongomock store."""
    from fireworks import fw_config

    return bool(fw_config.MONGOMOCK_SERVERSTORE_FILE)


def open_launchpad(read_only_if_busy: bool = True):
    """The configured LaunchPad. If the embedded store is held by a running FireWorks process,
    return a read-only view of its last saved state instead of failing (`.read_only = True`).
    """
    from fireworks import LaunchPad

    from pdmd.errors import StoreBusyError
    from pdmd.store import embedded_hook  # noqa: F401 - patches mongomock persistence

    try:
        lp = LaunchPad.auto_load()
        lp.read_only = False
        return lp
    except StoreBusyError:
        if not (read_only_if_busy and is_embedded()):
            raise
    return _read_only_launchpad()


def _read_only_launchpad():
    """A query-only view of the embedded store as it is on disk now (snapshot + journal)."""
    import mongomock
    from fireworks import LaunchPad, fw_config
    from mongomock.store import ServerStore

    from pdmd.store.embedded import read_store, replay_journal

    path = Path(os.environ.get("MONGOMOCK_SERVERSTORE_FILE") or fw_config.MONGOMOCK_SERVERSTORE_FILE).resolve()
    databases = read_store(path)
    replay_journal(databases, path.with_name(path.name + ".journal"))
    store = object.__new__(ServerStore)
    store._filename = None
    store._databases = databases
    lp = object.__new__(LaunchPad)  # a view for queries only: no connection, nothing written back
    client = mongomock.MongoClient(_store=store)
    lp.db = client[_launchpad_name()]
    lp.fireworks, lp.launches, lp.workflows = lp.db.fireworks, lp.db.launches, lp.db.workflows
    lp.read_only = True
    return lp


def _launchpad_name() -> str:
    from fireworks import fw_config
    from monty.serialization import loadfn

    loc = fw_config.LAUNCHPAD_LOC
    return (loadfn(loc) or {}).get("name", "fireworks") if loc else "fireworks"
