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

from market_intel.universe import markets

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

    @property
    def column_types(self) -> dict[str, str]:
        """Each column's DuckDB type, in table order (``NOT NULL`` left out)."""
        pairs = (column.split()[:2] for column in self.columns.split(", "))
        return {name: sql_type for name, sql_type in pairs}


RAW_TABLES = {
    table.name: table
    for table in (
        RawTable(
            "market_sessions",
            "market VARCHAR NOT NULL, session_date DATE NOT NULL, open_utc TIMESTAMP, "
            "close_utc TIMESTAMP, provisional BOOLEAN",
            ("market", "session_date"),
        ),
        # One bars table per market of the universe (markets.csv).
        *(
            RawTable(f"{market}_bars", BAR_COLUMNS, ("instrument_id", "session_date"))
            for market in markets()
        ),
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


# What the raw-table checks found, one row per flagged place (docs/quality-gate.md): written by
# each raw asset's step (market_intel/checks/findings.py), read by dbt's gate models.
RAW_FINDINGS = "quality.raw_findings"
RAW_FINDINGS_COLUMNS = (
    "check_name VARCHAR NOT NULL, asset VARCHAR NOT NULL, severity VARCHAR NOT NULL, "
    "market VARCHAR, message VARCHAR NOT NULL, instrument_id VARCHAR, session_date DATE, "
    "dated_table VARCHAR, report_date DATE, window_start DATE NOT NULL, window_end DATE NOT NULL"
)


# The pandas dtype a frame column gets for each DuckDB type; DATE cells are ``datetime.date``.
PANDAS_DTYPES = {
    "VARCHAR": "object",
    "DATE": "object",
    "DOUBLE": "float64",
    "INTEGER": "Int64",
    "BOOLEAN": "bool",
    "TIMESTAMP": "datetime64[ns]",
}


def empty_frame(table_name: str) -> pd.DataFrame:
    """A typed frame with no rows and the raw table's columns: what every feed answers for "no
    data", so the writer, the metadata and the checks see one schema whatever the source."""
    types = RAW_TABLES[table_name].column_types
    return pd.DataFrame(
        {name: pd.Series(dtype=PANDAS_DTYPES[sql_type]) for name, sql_type in types.items()}
    )


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
    """Create the raw schema, every raw table and the raw checks' findings table, so dbt can
    read a feed (and its findings) that has not run yet."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in RAW_TABLES.values():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table.qualified} ({table.columns})")
    add_missing_columns(conn)
    # Which stocks a per-stock backfill window has saved, so a re-run resumes (assets/raw.py).
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raw.cn_stock_fetches "
        "(stock_code VARCHAR, window_start DATE, window_end DATE)"
    )
    conn.execute("CREATE SCHEMA IF NOT EXISTS quality")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {RAW_FINDINGS} ({RAW_FINDINGS_COLUMNS})")


def add_missing_columns(conn: duckdb.DuckDBPyConnection) -> None:
    """Add columns a newer release gave a raw table to a database made by an older one.

    A column added later is nullable, so existing rows keep their values and read it as null.
    """
    existing = set(
        conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw'"
        ).fetchall()
    )
    for table in RAW_TABLES.values():
        for name, sql_type in table.column_types.items():
            if (table.name, name) not in existing:
                conn.execute(f"ALTER TABLE {table.qualified} ADD COLUMN {name} {sql_type}")


@dataclass(frozen=True)
class WriteSummary:
    replaced: int
    history_added: int


def write_window(
    conn: duckdb.DuckDBPyConnection, table: RawTable, frame: pd.DataFrame, window: ReportWindow
) -> WriteSummary:
    """Replace the window's own rows and fill in missing history, in one transaction.

    A frame without rows is "no data" whatever its columns: the table is left untouched.
    """
    ensure_raw_schema(conn)
    if frame.empty:
        return WriteSummary(replaced=0, history_added=0)
    missing = [name for name in table.column_types if name not in frame.columns]
    if missing:
        raise ValueError(f"{table.qualified}: fetched data lacks columns {missing}")
    duplicated = frame.duplicated(list(table.keys))
    if duplicated.any():
        sample = frame.loc[duplicated, list(table.keys)].head(3).to_dict("records")
        raise ValueError(f"{table.qualified}: duplicate keys in fetched data, e.g. {sample}")
    owned_start, owned_end = window.owned_sessions
    dates = pd.to_datetime(frame[table.date_column]).dt.date
    owned = frame[(dates >= owned_start) & (dates < owned_end)]
    history = frame[dates < owned_start]
    columns = ", ".join(table.column_types)
    key_match = " AND ".join(f"t.{key} = h.{key}" for key in table.keys)
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
        conn.execute(f"INSERT INTO {table.qualified} ({columns}) SELECT {columns} FROM owned_rows")
        before = conn.execute(f"SELECT count(*) FROM {table.qualified}").fetchone()[0]
        conn.execute(
            f"INSERT INTO {table.qualified} ({columns}) SELECT {columns} FROM history_rows h "
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
