"""Worker processes that die with their parent.

A pool worker blocked on its task queue never notices that the process which started it was
killed (SIGKILL, OOM, walltime): it holds both ends of its own pipes, so it would wait forever,
and so would multiprocessing's resource tracker, which exits only when every holder of its pipe
is gone. `process_pool` starts "spawn" workers that

* ask the kernel to SIGKILL them when their parent dies (Linux `prctl(PR_SET_PDEATHSIG)`; only
  when the pool is started from the main thread, because the kernel ties it to the starting
  thread), and
* run a watchdog thread that exits the worker within `WATCHDOG_S` once its parent PID changes
  (every platform; the fallback when the death signal is unavailable).

Once the workers are gone the resource tracker sees end-of-file on its pipe and exits too.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

WATCHDOG_S = 0.5
"""How often a worker checks that its parent is alive (s)."""
PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send `sig` to this process when its parent (thread) exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)  # the parent is gone: nobody will read our results
        time.sleep(interval_s)


def die_with_parent(parent_pid: int, use_death_signal: bool = True, interval_s: float = WATCHDOG_S) -> None:
    """Make this (child) process exit when `parent_pid` is no longer its parent."""
    if use_death_signal:
        set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid, interval_s), name="pdmd-parent-watchdog", daemon=True
    ).start()


def _init_worker(parent_pid: int, use_death_signal: bool, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent_pid, use_death_signal)
    if initializer is not None:
        initializer(*initargs)


def process_pool(max_workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> cf.ProcessPoolExecutor:
    """A "spawn" `ProcessPoolExecutor` whose workers die with this process (see the module docstring)."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    return cf.ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), on_main_thread, initializer, initargs),
    )
