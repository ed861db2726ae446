"""The series the divergence charts draw (marts.fct_divergence_history) against the facts the
report states (marts.fct_cross_market_divergence), on the demo run: one definition of the
statistics (macro divergence_observations), so a chart's last point is the table's figure."""

import json
from typing import Any

import pytest

from tests.conftest import DEMO_DATE, Pipeline

STATISTICS = ["spread_bps", "zscore", "band_low_bps", "band_high_bps", "correlation_60d"]


@pytest.fixture(scope="module")
def report(demo_run: Pipeline) -> dict[str, Any]:
    return json.loads((demo_run.reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8"))


def test_the_mart_row_is_the_views_latest_observation_before_the_report_date(
    demo_run: Pipeline,
) -> None:
    columns = ", ".join(f"d.{c}, h.{c}" for c in STATISTICS)
    rows = demo_run.query(
        f"""
        SELECT d.left_id, d.right_id, {columns}
        FROM marts.fct_cross_market_divergence AS d
        JOIN marts.fct_divergence_history AS h USING (left_id, right_id, observed_on)
        WHERE d.report_date = ?
        """,
        [DEMO_DATE],
    )
    assert len(rows) == 55  # every pair of the demo date has its observation in the view
    for left, right, *values in rows:
        assert values[0::2] == values[1::2], (left, right)
    latest = demo_run.query(
        """
        SELECT count(*) FROM marts.fct_cross_market_divergence AS d
        WHERE d.report_date = ? AND d.observed_on <> (
            SELECT max(h.observed_on) FROM marts.fct_divergence_history AS h
            WHERE h.left_id = d.left_id AND h.right_id = d.right_id AND h.observed_on < ?
        )
        """,
        [DEMO_DATE, DEMO_DATE],
    )
    assert latest == [(0,)]


def test_each_charted_pair_carries_its_last_60_observations(report: dict[str, Any]) -> None:
    """The configured pairs and the three others of largest |z|; each history ends on today's
    observation with today's figures, oldest first, one entry per observation."""
    charted = [d for d in report["divergences"] if d["charted"]]
    configured = [d for d in report["divergences"] if d["configured"]]
    others = sorted(
        (d for d in report["divergences"] if not d["configured"] and d["zscore"] is not None),
        key=lambda d: d["zscore_rank"],
    )
    assert charted == configured + sorted(others[:3], key=report["divergences"].index)
    assert all(d["history"] is None for d in report["divergences"] if not d["charted"])
    for divergence in charted:
        history = divergence["history"]
        assert len(history) == 60
        days = [row["observed_on"] for row in history]
        assert days == sorted(set(days)) and days[-1] < DEMO_DATE
        assert max(divergence["left_session_date"], divergence["right_session_date"]) == days[-1]
        for key in ("spread_bps", "band_low_bps", "band_high_bps", "correlation_60d"):
            assert history[-1][key] == divergence[key], (divergence["label"], key)
