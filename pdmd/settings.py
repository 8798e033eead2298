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
