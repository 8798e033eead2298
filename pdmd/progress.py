"""Progress lines with counts, rate and ETA for long loops (logged, so `rlaunch` shows them)."""

from __future__ import annotations

import logging
import time


class ProgressLog:
    """Log `label: k/N (pct) elapsed, ETA` at most every `every_s` seconds and at the end."""

    def __init__(self, total: int, label: str, logger: logging.Logger, every_s: float = 5.0, done: int = 0) -> None:
        """`done`: steps finished before this process started (a resumed loop); the rate counts only new ones."""
        self.total, self.label, self.log, self.every_s = total, label, logger, every_s
        self.done = self._done_before = done
        self.start = self._last = time.perf_counter()

    def step(self, n: int = 1, note: str = "", reused: bool = False) -> None:
        """Count `n` finished steps; `reused` ones (found done on disk) do not enter the rate."""
        self.done += n
        if reused:
            self._done_before += n
        now = time.perf_counter()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            elapsed = now - self.start
            new = self.done - self._done_before
            eta = elapsed / new * (self.total - self.done) if new else float("nan")
            self.log.info(
                "%s: %d/%d (%.0f%%) elapsed %.0f s, ETA %.0f s %s",
                self.label,
                self.done,
                self.total,
                100.0 * self.done / max(self.total, 1),
                elapsed,
                eta,
                note,
            )
