"""Raw writes: a window replaces what it owns, fills only missing history, all or nothing."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from market_intel.storage import PANDAS_DTYPES, RAW_TABLES, ReportWindow, empty_frame, write_window

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


SAMPLE_VALUES = {
    "VARCHAR": "x",
    "DATE": date(2026, 3, 20),
    "DOUBLE": 1.5,
    "INTEGER": 7,
    "BOOLEAN": False,
    "TIMESTAMP": pd.Timestamp("2026-03-21 08:00"),
}
FRIDAY_REPORT = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))


def one_row(table_name: str) -> pd.DataFrame:
    """A row of every column of the table, typed like ``empty_frame``, on the window's session."""
    types = RAW_TABLES[table_name].column_types
    row = pd.DataFrame({name: [SAMPLE_VALUES[sql_type]] for name, sql_type in types.items()})
    return pd.concat([empty_frame(table_name), row], ignore_index=True)


@pytest.mark.parametrize("table_name", sorted(RAW_TABLES))
def test_empty_frame_has_the_tables_columns_and_types(table_name: str) -> None:
    frame = empty_frame(table_name)
    types = RAW_TABLES[table_name].column_types
    assert frame.empty and list(frame.columns) == list(types)
    for name, sql_type in types.items():
        assert str(frame[name].dtype) == PANDAS_DTYPES[sql_type], name


@pytest.mark.parametrize("table_name", sorted(RAW_TABLES))
def test_no_data_leaves_every_raw_table_byte_identical(tmp_path, table_name: str) -> None:
    table = RAW_TABLES[table_name]
    path = tmp_path / "market.duckdb"
    with duckdb.connect(str(path)) as conn:
        summary = write_window(conn, table, one_row(table_name), FRIDAY_REPORT)
        assert summary.replaced == 1
        conn.execute("CHECKPOINT")
    before = path.read_bytes()
    for no_data in (empty_frame(table_name), pd.DataFrame()):
        with duckdb.connect(str(path)) as conn:
            summary = write_window(conn, table, no_data, FRIDAY_REPORT)
            assert (summary.replaced, summary.history_added) == (0, 0)
            assert conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone() == (1,)
    assert path.read_bytes() == before


def test_rows_lacking_a_column_are_refused_by_name(conn) -> None:
    rows = bars({"2026-03-20": 6506.48}).drop(columns=["source"])
    with pytest.raises(ValueError, match=r"raw.us_bars: fetched data lacks columns \['source'\]"):
        write_window(conn, TABLE, rows, ReportWindow(date(2026, 3, 21), date(2026, 3, 22)))


def test_a_database_from_an_older_release_gains_new_columns_and_keeps_its_rows(tmp_path) -> None:
    """A raw table made before a column was added (market_sessions without ``provisional``)."""
    conn = duckdb.connect(str(tmp_path / "old.duckdb"))
    conn.execute("CREATE SCHEMA raw")
    conn.execute(
        "CREATE TABLE raw.market_sessions (market VARCHAR NOT NULL, session_date DATE NOT NULL, "
        "open_utc TIMESTAMP, close_utc TIMESTAMP)"
    )
    conn.execute("INSERT INTO raw.market_sessions VALUES ('us', DATE '2026-03-19', NULL, NULL)")
    frame = empty_frame("market_sessions")
    frame.loc[0] = ["us", date(2026, 3, 20), None, None, False]
    write_window(
        conn,
        RAW_TABLES["market_sessions"],
        frame,
        ReportWindow(date(2026, 3, 21), date(2026, 3, 22)),
    )
    rows = conn.execute(
        "SELECT session_date, provisional FROM raw.market_sessions ORDER BY session_date"
    ).fetchall()
    assert rows == [(date(2026, 3, 19), None), (date(2026, 3, 20), False)]
