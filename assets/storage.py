"""Raw tables in DuckDB and the one way they are written.

A partition of report dates ``[start, end)`` owns the sessions dated ``[start - 1, end - 1)``
(the report for R covers sessions up to R-1). Writing a partition replaces the rows it owns, for
the entities it fetched, and adds older history only where a row is missing, so re-running a date
never duplicates a row and never changes a row another date owns. Each write is one transaction.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd

# DuckDB allows one writer per file: every step that opens it is in this Dagster concurrency pool,
# whose one slot (.dagster_home/dagster.yaml) makes concurrent runs take turns.
DUCKDB_POOL = "duckdb"

FEED_COLUMNS = (
    "source VARCHAR NOT NULL, is_fallback BOOLEAN NOT NULL, fetched_at TIMESTAMP NOT NULL"
)
BAR_COLUMNS = (
    "instrument_id VARCHAR NOT NULL, session_date DATE NOT NULL, open DOUBLE, high DOUBLE, "
    f"low DOUBLE, close DOUBLE, volume DOUBLE, {FEED_COLUMNS}"
)


@dataclass(frozen=True)
class RawTable:
    """A raw table: its columns, its key and the date column partitions are owned by."""

    name: str
    columns: str
    keys: tuple[str, ...]
    date_column: str = "session_date"

    @property
    def qualified(self) -> str:
        return f"raw.{self.name}"

    @property
    def entity(self) -> str:
        return self.keys[0]


RAW_TABLES = {
    table.name: table
    for table in (
        RawTable(
            "market_sessions",
            "market VARCHAR NOT NULL, session_date DATE NOT NULL, open_utc TIMESTAMP, "
            "close_utc TIMESTAMP",
            ("market", "session_date"),
        ),
        RawTable("us_bars", BAR_COLUMNS, ("instrument_id", "session_date")),
        RawTable("hk_bars", BAR_COLUMNS, ("instrument_id", "session_date")),
        RawTable("cn_bars", BAR_COLUMNS, ("instrument_id", "session_date")),
        RawTable("crypto_bars", BAR_COLUMNS, ("instrument_id", "session_date")),
        RawTable(
            "cn_breadth",
            "market VARCHAR NOT NULL, session_date DATE NOT NULL, advancers INTEGER, "
            f"decliners INTEGER, unchanged INTEGER, turnover_cny DOUBLE, {FEED_COLUMNS}",
            ("market", "session_date"),
        ),
        RawTable(
            "cn_stock_bars",
            "stock_code VARCHAR NOT NULL, session_date DATE NOT NULL, close DOUBLE, "
            f"previous_close DOUBLE, volume DOUBLE, turnover_cny DOUBLE, {FEED_COLUMNS}",
            ("stock_code", "session_date"),
        ),
        RawTable(
            "defi_protocol_tvl",
            "protocol VARCHAR NOT NULL, session_date DATE NOT NULL, category VARCHAR, "
            f"tvl_usd DOUBLE, {FEED_COLUMNS}",
            ("protocol", "session_date"),
        ),
        RawTable(
            "stablecoin_supply",
            "symbol VARCHAR NOT NULL, session_date DATE NOT NULL, circulating_usd DOUBLE, "
            f"{FEED_COLUMNS}",
            ("symbol", "session_date"),
        ),
    )
}


@dataclass(frozen=True)
class ReportWindow:
    """A half-open window of report dates, ``start <= report_date < end``."""

    start: date
    end: date

    @property
    def owned_sessions(self) -> tuple[date, date]:
        """The session dates this window owns: ``[start - 1, end - 1)``."""
        return self.start - timedelta(days=1), self.end - timedelta(days=1)

    def fetch_range(self, lookback_days: int) -> tuple[date, date]:
        """Session dates to fetch: the owned ones plus ``lookback_days`` of history before them."""
        first, end = self.owned_sessions
        return first - timedelta(days=lookback_days), end

    def report_dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days)]


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and every raw table, so dbt can read a feed that has not run yet."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in RAW_TABLES.values():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table.qualified} ({table.columns})")
    # Which stocks a per-stock backfill window has saved, so a re-run resumes (assets/raw.py).
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raw.cn_stock_fetches "
        "(stock_code VARCHAR, window_start DATE, window_end DATE)"
    )


@dataclass(frozen=True)
class WriteSummary:
    replaced: int
    history_added: int


def write_window(
    conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, window: ReportWindow
) -> WriteSummary:
    """Replace the window's own rows and fill in missing history, in one transaction."""
    duplicated = frame.duplicated(list(table.keys))
    if duplicated.any():
        sample = frame.loc[duplicated, list(table.keys)].head(3).to_dict("records")
        raise ValueError(f"{table.qualified}: duplicate keys in fetched data, e.g. {sample}")
    owned_start, owned_end = window.owned_sessions
    dates = pd.to_datetime(frame[table.date_column]).dt.date
    owned = frame[(dates >= owned_start) & (dates < owned_end)]
    history = frame[dates < owned_start]
    columns = ", ".join(name.split()[0] for name in table.columns.split(", "))
    key_match = " AND ".join(f"t.{key} = h.{key}" for key in table.keys)
    ensure_raw_schema(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.register("owned_rows", owned)
        conn.register("history_rows", history)
        conn.execute(
            f"DELETE FROM {table.qualified} WHERE {table.date_column} >= ? "
            f"AND {table.date_column} < ? AND {table.entity} IN "
            f"(SELECT DISTINCT {table.entity} FROM owned_rows)",
            [owned_start, owned_end],
        )
        conn.execute(f"INSERT INTO {table.qualified} SELECT {columns} FROM owned_rows")
        before = conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone()[0]
        conn.execute(
            f"INSERT INTO {table.qualified} SELECT {columns} FROM history_rows h "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table.qualified} t WHERE {key_match})"
        )
        after = conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone()[0]
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("owned_rows")
        conn.unregister("history_rows")
    return WriteSummary(replaced=len(owned), history_added=after - before)
