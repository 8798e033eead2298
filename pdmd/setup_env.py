"""One-time set-up of an installation: the start-up hook that makes the embedded store safe."""

from __future__ import annotations

import sysconfig
from pathlib import Path

PTH_NAME = "pdmd_embedded_store.pth"
PTH_LINE = "import sys; exec('try:\\n import pdmd.store.embedded_hook\\nexcept ImportError:\\n pass')\n"


def hook_path() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def install_embedded_hook() -> Path:
    """Write the .pth file that patches mongomock-persistence in every Python process of this
    environment (so FireWorks' own `lpad`/`rlaunch` get the lock and atomic writes).
    """
    path = hook_path()
    if not path.exists() or path.read_text() != PTH_LINE:
        path.write_text(PTH_LINE)
    return path


def hook_installed() -> bool:
    path = hook_path()
    return path.exists() and path.read_text() == PTH_LINE
