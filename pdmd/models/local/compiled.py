# SPDX-License-Identifier: GPL-3.0-or-later
"""numba for pd-local's evaluation: whether it is used, and the geometry its kernels share.

The compiled kernels (`pdmd.models.local.pairing`: complexes and pairs; `pdmd.models.local.kernels`:
features and their gradient) serve evaluation — MD, predictions, grades. They give the results of
the numpy / gudhi / torch path (to rounding), which training uses (it needs the gradient of forces)
and which serves when numba is missing (one warning line) or switched off (`PDMD_COMPILED=0`, or
`use_compiled(False)`: benchmarks compare both in one run).
"""

from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)

try:
    import numba
except ImportError:  # pragma: no cover - numba comes with pdmd's dependencies
    numba = None

DEGENERATE_TOL = 1e-10
"""Relative Gram determinant below which a simplex is flat (its orthogonal sphere is infinite)."""
ATTACH_TOL = 1e-10
"""Relative tolerance of the in-sphere (attachment) test."""

_state = {"enabled": os.environ.get("PDMD_COMPILED", "1") != "0", "warned": False}


def use_compiled(enabled: bool) -> None:
    """Switch the compiled kernels on or off for this process (off: the numpy / gudhi / torch path)."""
    _state["enabled"] = bool(enabled)


def compiled_available() -> bool:
    """True when the compiled kernels are on and numba is installed; warns once (one line) when it is missing."""
    if numba is None and _state["enabled"] and not _state["warned"]:
        _state["warned"] = True
        log.warning("numba is not installed: pd-local runs without its compiled kernels (slower): pip install numba")
    return numba is not None and _state["enabled"]


def jit(f):
    """The function compiled by numba (cached, releasing the GIL); the function itself without numba."""
    return numba.njit(cache=True, nogil=True)(f) if numba is not None else f


_env_threads = os.environ.get("OMP_NUM_THREADS", "")
_pool: dict = {"threads": int(_env_threads) if _env_threads.isdigit() and int(_env_threads) > 0 else 1, "exec": None,
               "exec_threads": 0}  # fmt: skip


def threads() -> int:
    """Threads of pd-local evaluation now (default: $OMP_NUM_THREADS, else 1)."""
    return _pool["threads"]


def set_threads(n: int) -> int:
    """Threads of pd-local evaluation, torch's and the compiled kernels' (default: $OMP_NUM_THREADS, else 1)."""
    import torch

    n = max(1, int(n))
    torch.set_num_threads(n)
    _pool["threads"] = n
    return n


def in_chunks(kernel, n_items: int, *args) -> None:
    """kernel(lo, hi, *args) over chunks of range(n_items), on the evaluation's threads (the kernels release
    the GIL; each chunk writes only its own items' outputs). Four chunks per thread balance the load.
    """
    threads = _pool["threads"]
    if threads == 1 or n_items < 2:
        kernel(0, n_items, *args)
        return
    from concurrent.futures import ThreadPoolExecutor

    if _pool["exec"] is None or _pool["exec_threads"] != threads:
        if _pool["exec"] is not None:
            _pool["exec"].shutdown()
        _pool["exec"], _pool["exec_threads"] = ThreadPoolExecutor(threads, thread_name_prefix="pdmd-kernel"), threads
    chunks = min(n_items, 4 * threads)
    bounds = [(c * n_items // chunks, (c + 1) * n_items // chunks) for c in range(chunks)]
    for future in [_pool["exec"].submit(kernel, lo, hi, *args) for lo, hi in bounds]:
        future.result()


@jit
def orthosphere_power(rel, entry, ids, base, q, centre, w):  # pragma: no cover - compiled
    """Power radius (Å²) of the smallest orthogonal sphere of points rel[base + ids[:q]]; its centre into `centre`.

    `w`: scratch (at least 40 floats): edge vectors, Gram matrix, right-hand side, adjugate, coefficients.
    """
    d = rel.shape[1]
    i0 = base + ids[0]
    if q == 1:
        for c in range(d):
            centre[c] = rel[i0, c]
        return entry[i0]
    m = q - 1  # e: w[0:9] (row i at 3i), gram: w[9:18], rhs: w[18:21], adjugate: w[21:30], lam: w[30:33]
    for i in range(m):
        for c in range(d):
            w[3 * i + c] = rel[base + ids[i + 1], c] - rel[i0, c]
    for i in range(m):
        for j in range(i, m):
            s = w[3 * i] * w[3 * j]
            for c in range(1, d):
                s += w[3 * i + c] * w[3 * j + c]
            w[9 + 3 * i + j] = s
            w[9 + 3 * j + i] = s
    for i in range(m):
        w[18 + i] = 0.5 * (w[9 + 4 * i] + entry[base + ids[i + 1]] - entry[i0])
    if m == 1:
        w[30] = w[18] / w[9]
    else:
        if m == 2:
            w[21], w[22], w[24], w[25] = w[13], -w[10], -w[10], w[9]
        else:  # cofactors of the symmetric 3x3 Gram matrix
            g00, g01, g02, g11, g12, g22 = w[9], w[10], w[11], w[13], w[14], w[17]
            w[21], w[22], w[23] = g11 * g22 - g12 * g12, g12 * g02 - g01 * g22, g01 * g12 - g11 * g02
            w[24], w[25], w[26] = w[22], g22 * g00 - g02 * g02, g02 * g01 - g12 * g00
            w[27], w[28], w[29] = w[23], w[26], g00 * g11 - g01 * g01
        det = 0.0
        scale = 0.0
        for j in range(m):
            det += w[9 + j] * w[21 + 3 * j]
            scale += w[9 + 4 * j]
        scale /= m
        if abs(det / (scale * scale if m == 2 else scale * scale * scale)) < DEGENERATE_TOL:
            return np.inf
        for i in range(m):
            s = 0.0
            for j in range(m):
                s += w[21 + 3 * i + j] * w[18 + j]
            w[30 + i] = s / det
    value = entry[i0]
    for c in range(d):
        u = 0.0
        for i in range(m):
            u += w[30 + i] * w[3 * i + c]
        centre[c] = rel[i0, c] + u
        value += u * u
    return value
