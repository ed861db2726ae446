"""Raw writes: a window replaces what it owns, fills only missing history, all or nothing."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from assets.storage import RAW_TABLES, ReportWindow, write_window

TABLE = RAW_TABLES["us_bars"]


def bars(closes: dict[str, float], instrument: str = "us/GSPC") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_id": instrument,
            "session_date": [date.fromisoformat(d) for d in closes],
            "open": None,
            "high": None,
            "low": None,
            "close": list(closes.values()),
            "volume": None,
            "source": "replay",
            "is_fallback": False,
            "fetched_at": pd.Timestamp("2026-03-22 06:00"),
        }
    )


def rows(conn: duckdb.DuckDBPyConnection) -> dict[str, float]:
    result = conn.execute(
        f"SELECT session_date, close FROM {TABLE.qualified} ORDER BY 1"
    ).fetchall()
    return {d.isoformat(): c for d, c in result}


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def test_window_owns_the_day_before_each_report_date() -> None:
    window = ReportWindow(date(2026, 3, 22), date(2026, 3, 23))
    assert window.owned_sessions == (date(2026, 3, 21), date(2026, 3, 22))
    assert window.fetch_range(10) == (date(2026, 3, 11), date(2026, 3, 22))


def test_rewrite_replaces_owned_rows_and_keeps_other_dates(conn) -> None:
    friday_report = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    write_window(conn, TABLE, bars({"2026-03-19": 6606.49, "2026-03-20": 6500.0}), friday_report)
    assert rows(conn) == {"2026-03-19": 6606.49, "2026-03-20": 6500.0}

    # The same window again, with a corrected close and different history: the owned session is
    # replaced, the history row another date owns stays as it was, nothing is duplicated.
    summary = write_window(
        conn, TABLE, bars({"2026-03-19": 1.0, "2026-03-20": 6506.48}), friday_report
    )
    assert rows(conn) == {"2026-03-19": 6606.49, "2026-03-20": 6506.48}
    assert (summary.replaced, summary.history_added) == (1, 0)


def test_history_fills_only_missing_rows(conn) -> None:
    window = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    write_window(
        conn,
        TABLE,
        bars({"2026-03-19": 6606.49}),
        ReportWindow(date(2026, 3, 20), date(2026, 3, 21)),
    )
    summary = write_window(conn, TABLE, bars({"2026-03-18": 6624.7, "2026-03-19": 9.9}), window)
    assert rows(conn) == {"2026-03-18": 6624.7, "2026-03-19": 6606.49}
    assert summary.history_added == 1


def test_rows_after_the_window_are_not_written(conn) -> None:
    window = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    write_window(conn, TABLE, bars({"2026-03-20": 6506.48, "2026-03-21": 1.0}), window)
    assert rows(conn) == {"2026-03-20": 6506.48}


def test_duplicate_keys_are_refused_and_nothing_is_written(conn) -> None:
    window = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    write_window(conn, TABLE, bars({"2026-03-20": 6506.48}), window)
    duplicated = pd.concat([bars({"2026-03-20": 1.0}), bars({"2026-03-20": 2.0})])
    with pytest.raises(ValueError, match="duplicate keys"):
        write_window(conn, TABLE, duplicated, window)
    assert rows(conn) == {"2026-03-20": 6506.48}


def test_a_failed_write_rolls_back(conn) -> None:
    window = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    write_window(conn, TABLE, bars({"2026-03-20": 6506.48}), window)
    unparseable = bars({"2026-03-20": 1.0}).astype({"close": "object"}).assign(close=["x"])
    with pytest.raises(duckdb.ConversionException):
        write_window(conn, TABLE, unparseable, window)
    # The delete of the owned row was rolled back with the failed insert.
    assert rows(conn) == {"2026-03-20": 6506.48}
