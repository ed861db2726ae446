"""Progress lines of long loops: done of total, rate and time left."""

import logging

import pytest

from market_intel.progress import Progress


def test_progress_logs_every_n_items_and_the_last(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([0.0, 10.0, 20.0, 25.0])
    log = logging.getLogger("progress-test")
    progress = Progress(log, "reports", "dates", 5, every=2, clock=lambda: next(ticks))
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for done in range(5):
            progress.step(f"{done + 1} published")
    assert caplog.messages == [
        "reports: 2/5 dates, 0.2 dates/s, about 15 s left, 2 published",
        "reports: 4/5 dates, 0.2 dates/s, about 5 s left, 4 published",
        "reports: 5/5 dates, 0.2 dates/s, about 0 s left, 5 published",
    ]
