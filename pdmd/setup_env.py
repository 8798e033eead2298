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


CONFIG_FILES = ("FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml")
"""FireWorks configuration a working folder needs: the embedded store, its LaunchPad and a FireWorker."""


def config_templates() -> dict[str, str]:
    """Shipped FireWorks configuration files (package data `pdmd/templates/fireworks/`), name -> text."""
    import importlib.resources

    folder = importlib.resources.files("pdmd") / "templates" / "fireworks"
    return {name: (folder / name).read_text() for name in CONFIG_FILES}


def init_workdir(folder: str | Path = ".") -> tuple[list[Path], list[Path]]:
    """Make `folder` a pdmd working folder: FireWorks config files and the shipped workflows (existing
    files are kept), `.pdmd/` for the embedded store, and the store's start-up hook in this environment.
    Returns (written, kept) files.
    """
    from pdmd.errors import InputError

    folder = Path(folder).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".pdmd").mkdir(exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the working folder {folder}: {err.strerror}; pick a writable folder") from err
    written, kept = [], []
    for name, text in config_templates().items():
        path = folder / name
        if path.exists():
            kept.append(path)
            continue
        path.write_text(text)
        written.append(path)
    import importlib.resources

    shipped = importlib.resources.files("pdmd") / "workflows"
    (folder / "workflows").mkdir(exist_ok=True)
    for item in sorted(shipped.iterdir(), key=lambda t: t.name):
        path = folder / "workflows" / item.name
        if item.name.endswith(".yaml"):
            if path.exists():
                kept.append(path)
            else:
                path.write_text(item.read_text())
                written.append(path)
    install_embedded_hook()
    return written, kept
