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
def orthosphere_power(rel, entry, ids, base, q, centre, coef):  # pragma: no cover - compiled
    """Power radius (Å²) of the smallest orthogonal sphere of points rel[base + ids[:q]] (q <= 4); its centre into
    `centre` and, for q > 1, its coefficients on the edge vectors from the first point into `coef[:3]`.

    The Gram system of the edge vectors is solved with its adjugate, written out in scalars (in 2D the third
    components are zero and add nothing); +inf for a flat simplex.
    """
    d = rel.shape[1]
    i0 = base + ids[0]
    x0, y0 = rel[i0, 0], rel[i0, 1]
    z0 = rel[i0, 2] if d == 3 else 0.0
    if q == 1:
        centre[0], centre[1] = x0, y0
        if d == 3:
            centre[2] = z0
        return entry[i0]
    i1 = base + ids[1]
    a0, a1 = rel[i1, 0] - x0, rel[i1, 1] - y0
    a2 = rel[i1, 2] - z0 if d == 3 else 0.0
    g00 = a0 * a0 + a1 * a1 + a2 * a2
    r0 = 0.5 * (g00 + entry[i1] - entry[i0])
    b0 = b1 = b2 = c0 = c1 = c2 = 0.0
    if q == 2:
        l0, l1, l2 = r0 / g00, 0.0, 0.0
    else:
        i2 = base + ids[2]
        b0, b1 = rel[i2, 0] - x0, rel[i2, 1] - y0
        b2 = rel[i2, 2] - z0 if d == 3 else 0.0
        g01 = a0 * b0 + a1 * b1 + a2 * b2
        g11 = b0 * b0 + b1 * b1 + b2 * b2
        r1 = 0.5 * (g11 + entry[i2] - entry[i0])
        if q == 3:
            l0, l1, l2 = _solve2(g00, g01, g11, r0, r1)
        else:
            i3 = base + ids[3]
            c0, c1 = rel[i3, 0] - x0, rel[i3, 1] - y0
            c2 = rel[i3, 2] - z0 if d == 3 else 0.0
            r2 = 0.5 * (c0 * c0 + c1 * c1 + c2 * c2 + entry[i3] - entry[i0])
            l0, l1, l2 = _solve3(g00, g01, a0 * c0 + a1 * c1 + a2 * c2, g11, b0 * c0 + b1 * c1 + b2 * c2,
                                 c0 * c0 + c1 * c1 + c2 * c2, r0, r1, r2)  # fmt: skip
        if l0 == np.inf:
            return np.inf
    coef[0], coef[1], coef[2] = l0, l1, l2
    u0 = l0 * a0 + l1 * b0 + l2 * c0
    u1 = l0 * a1 + l1 * b1 + l2 * c1
    centre[0], centre[1] = x0 + u0, y0 + u1
    value = entry[i0] + u0 * u0 + u1 * u1
    if d == 3:
        u2 = l0 * a2 + l1 * b2 + l2 * c2
        centre[2] = z0 + u2
        value += u2 * u2
    return value


@jit
def _solve2(g00, g01, g11, r0, r1):  # pragma: no cover - compiled
    """Coefficients of the 2x2 Gram system by its adjugate; (inf, 0, 0) when it is (nearly) singular."""
    det = g00 * g11 + g01 * -g01
    scale = (g00 + g11) / 2
    if abs(det / (scale * scale)) < DEGENERATE_TOL:
        return np.inf, 0.0, 0.0
    return (g11 * r0 + -g01 * r1) / det, (-g01 * r0 + g00 * r1) / det, 0.0


@jit
def _solve3(g00, g01, g02, g11, g12, g22, r0, r1, r2):  # pragma: no cover - compiled
    """Coefficients of the symmetric 3x3 Gram system by its adjugate; (inf, 0, 0) when it is (nearly) singular."""
    m00, m01, m02 = g11 * g22 - g12 * g12, g12 * g02 - g01 * g22, g01 * g12 - g11 * g02
    m11, m12, m22 = g22 * g00 - g02 * g02, g02 * g01 - g12 * g00, g00 * g11 - g01 * g01
    det = g00 * m00 + g01 * m01 + g02 * m02
    scale = (g00 + g11 + g22) / 3
    if abs(det / (scale * scale * scale)) < DEGENERATE_TOL:
        return np.inf, 0.0, 0.0
    return ((m00 * r0 + m01 * r1 + m02 * r2) / det, (m01 * r0 + m11 * r1 + m12 * r2) / det,
            (m02 * r0 + m12 * r1 + m22 * r2) / det)  # fmt: skip
