"""Progress lines for long loops (backfills over years, thousands of stocks): how many are done
of the total, the rate and the time left, every so often and once at the end."""

import logging
import time
from collections.abc import Callable


class Progress:
    """Counts items as a loop handles them and logs ``<what>: <done>/<total> <unit>, <rate>
    <unit>/s, about <n> s left`` every ``every`` items and after the last one."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        unit: str,
        total: int,
        every: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.unit, self.total, self.every = log, what, unit, total, every
        self.clock, self.started, self.done = clock, clock(), 0

    def step(self, detail: str = "") -> None:
        """One more item done; ``detail`` (e.g. failures so far) ends the line when it is logged."""
        self.done += 1
        if self.done % self.every and self.done != self.total:
            return
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        self.log.info(
            "%s: %d/%d %s, %.1f %s/s, about %.0f s left%s",
            self.what,
            self.done,
            self.total,
            self.unit,
            rate,
            self.unit,
            (self.total - self.done) / rate,
            f", {detail}" if detail else "",
        )
