# SPDX-License-Identifier: GPL-3.0-or-later
"""What this process may use, shared by every layer (MD, descriptors, training): cores, threads."""

from __future__ import annotations

import os


def default_threads() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
