"""The raw breadth check over live rows: a legulegu snapshot has no turnover of its own, the
exchanges' rows of the same session supply it; a session without either is an error."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from market_intel.checks.suites import find_bad_breadth
from market_intel.storage import RAW_TABLES, ReportWindow, empty_frame, write_window

WINDOW = ReportWindow(date(2026, 3, 20), date(2026, 3, 22))  # owns 2026-03-19 and 2026-03-20
THURSDAY, FRIDAY = date(2026, 3, 19), date(2026, 3, 20)


def rows(*entries: tuple) -> pd.DataFrame:
    """``(market, session_date, advancers, turnover_cny)`` rows as the live feed writes them."""
    frame = pd.DataFrame(
        {
            "market": [entry[0] for entry in entries],
            "session_date": [entry[1] for entry in entries],
            "advancers": [entry[2] for entry in entries],
            "decliners": [None if entry[2] is None else 4705 for entry in entries],
            "unchanged": [None if entry[2] is None else 114 for entry in entries],
            "turnover_cny": [entry[3] for entry in entries],
            "source": "live",
            "is_fallback": False,
            "fetched_at": pd.Timestamp("2026-03-21"),
        }
    )
    return pd.concat([empty_frame("cn_breadth"), frame], ignore_index=True)


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def test_a_snapshot_takes_its_turnover_from_both_exchanges(conn) -> None:
    live = rows(
        ("cn", FRIDAY, 662, None),
        ("sse", FRIDAY, None, 9648.63e8),
        ("szse", FRIDAY, None, 13219.48e8),
        ("sse", THURSDAY, None, 9352.64e8),
        ("szse", THURSDAY, None, 11757.04e8),
    )
    write_window(conn, RAW_TABLES["cn_breadth"], live, WINDOW)
    assert find_bad_breadth(conn, WINDOW) == []


def test_a_snapshot_without_any_turnover_and_a_bad_exchange_row_fail(conn) -> None:
    live = rows(
        ("cn", FRIDAY, 662, None),
        ("sse", FRIDAY, None, 9648.63e8),  # Shenzhen did not answer: no total
        ("szse", THURSDAY, None, -1.0),
    )
    write_window(conn, RAW_TABLES["cn_breadth"], live, WINDOW)
    messages = [finding.message for finding in find_bad_breadth(conn, WINDOW)]
    assert any(
        "raw.cn_breadth expect_column_values_to_not_be_null(turnover_cny)" in message
        and "2026-03-20" in message
        for message in messages
    )
    assert any(
        message.startswith("raw.cn_breadth (exchange turnover) expect_column_values_to_be_between")
        and "szse 2026-03-19" in message
        for message in messages
    )
