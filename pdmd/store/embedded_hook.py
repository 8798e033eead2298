"""Start-up hook: patch mongomock-persistence as soon as anything imports it.

`pdmd-embedded-store.pth` in site-packages runs `import pdmd.store.embedded_hook` at interpreter
start. That costs one tiny import; the patch itself (pdmd.store.embedded) loads only when
FireWorks imports `mongomock_persistence`, i.e. only for the embedded store.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TARGET = "mongomock_persistence"


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            from pdmd.store.embedded import patch_mongomock_persistence

            patch_mongomock_persistence(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Register the finder (idempotent); patch at once if the module is already imported.

    PDMD_EMBEDDED_GUARD=off leaves mongomock-persistence as it is (unsafe; for benchmarks only).
    """
    import os

    if os.environ.get("PDMD_EMBEDDED_GUARD", "").lower() == "off":
        return
    if TARGET in sys.modules:
        from pdmd.store.embedded import patch_mongomock_persistence

        patch_mongomock_persistence(sys.modules[TARGET])
        return
    if not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


install()
