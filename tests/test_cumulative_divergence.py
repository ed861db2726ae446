"""Divergences on cumulative returns (issue 13): the mart's 5- and 20-session spreads against
an independent pandas computation from the daily series, on the demo run."""

import pandas as pd
import pytest

from tests.conftest import DEMO_DATE, Pipeline


def compounded(returns: pd.Series, sessions: int) -> float:
    """Per cent return over the last ``sessions`` returns, compounded."""
    last = returns.dropna().iloc[-sessions:]
    return 100 * ((1 + last / 100).prod() - 1)


@pytest.mark.parametrize("sessions", [5, 20])
def test_cumulative_spread_compounds_each_sides_own_sessions(
    demo_run: Pipeline, sessions: int
) -> None:
    rows = demo_run.query(
        f"SELECT left_id, right_id, left_session_date, right_session_date, "
        f"spread_{sessions}s_bps, zscore_{sessions}s FROM marts.fct_cross_market_divergence "
        "WHERE report_date = ? AND configured",
        [DEMO_DATE],
    )
    assert len(rows) == 5
    for left, right, left_session, right_session, spread, zscore in rows:
        sides = []
        for series_id, session in ((left, left_session), (right, right_session)):
            returns = pd.DataFrame(
                demo_run.query(
                    "SELECT series_date, return_pct FROM intermediate.int_daily_series "
                    "WHERE series_id = ? AND series_date <= ? ORDER BY series_date",
                    [series_id, session],
                ),
                columns=["series_date", "return_pct"],
            )["return_pct"]
            sides.append(compounded(returns, sessions))
        assert spread == pytest.approx(100 * (sides[0] - sides[1]), abs=1e-6), (left, right)
        assert zscore is not None
