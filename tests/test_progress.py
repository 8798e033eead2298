# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress lines: the ETA of a resumed loop counts only the steps done in this process."""

from __future__ import annotations

import logging

from pdmd.progress import ProgressLog


def test_reused_steps_do_not_enter_the_rate(caplog, monkeypatch):
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("pdmd.progress.time.perf_counter", lambda: next(clock))
    log = logging.getLogger("pdmd.test_progress")
    with caplog.at_level(logging.INFO, logger=log.name):
        progress = ProgressLog(10, "runs", log, every_s=0.0)  # start at t = 0
        for _ in range(5):
            progress.step(reused=True)  # found on disk: t = 1..5, no rate yet
        progress.step()  # the first new run finishes at t = 6: 6 s for 1 run, 4 left
    assert "ETA nan s" in caplog.records[0].getMessage()
    assert caplog.records[-1].getMessage().startswith("runs: 6/10 (60%) elapsed 6 s, ETA 24 s")
