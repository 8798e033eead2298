# SPDX-License-Identifier: GPL-3.0-or-later
"""The configured FireWorks LaunchPad, and a read-only view of the embedded store while a launcher holds it."""

from __future__ import annotations

import os
from pathlib import Path

from pdmd.settings import is_embedded


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
    """A query-only view of the embedded store as it is on disk now (a snapshot + its own journal).

    During a compaction by the holder it waits for a matching pair, so it shows the store before or
    after the compaction, never a mix (`pdmd.store.embedded.read_state`).
    """
    import mongomock
    from fireworks import LaunchPad, fw_config
    from mongomock.store import ServerStore

    from pdmd.store.embedded import READER_WAIT_S, read_state

    path = Path(os.environ.get("MONGOMOCK_SERVERSTORE_FILE") or fw_config.MONGOMOCK_SERVERSTORE_FILE).resolve()
    databases = read_state(path, wait_s=READER_WAIT_S).databases
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
