"""The raw-table checks, check by check: for each raw check of market_intel.checks.suites a
crafted bad input that fails it and a good one that passes, and how an outcome becomes a Dagster
AssetCheckResult. The fact checks, and how findings map to report dates, are SQL in dbt: they are
tested in tests/test_gate_findings.py on this module's world, built by dbt.

Every test works on an in-memory DuckDB holding a small clean "world": every instrument of the
universe on the real sessions of its exchange calendar (raw.market_sessions from
market_intel.calendars) and the other raw feeds.
"""

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from dagster import AssetCheckSeverity

from data_checks.results import check_result
from market_intel import calendars
from market_intel.checks import suites
from market_intel.checks.outcome import ERROR, WARN, CheckOutcome, Finding
from market_intel.settings import SEEDS_DIR
from market_intel.storage import ReportWindow, ensure_raw_schema
from market_intel.universe import instruments, markets

WINDOW = ReportWindow(date(2026, 3, 22), date(2026, 3, 23))  # the Sunday report
THURSDAY, FRIDAY, SATURDAY = date(2026, 3, 19), date(2026, 3, 20), date(2026, 3, 21)
FIRST_DAY, LAST_DAY = date(2026, 3, 2), date(2026, 3, 24)  # raw rows, calendar days inclusive
CALENDAR_START, CALENDAR_END = date(2026, 2, 1), date(2026, 4, 1)
FIRST_REPORT, LAST_REPORT = date(2026, 3, 10), date(2026, 3, 31)
FETCHED_AT = pd.Timestamp("2026-03-22 06:00")
SOURCE = "replay"

ALL_CHECKS = suites.all_checks()
CHECK_NAMES = {
    "freshness",
    "market_session",
    "provisional_session",
    "calendar_end",
    "unavailable_instruments",
    "feeds_present",
    "bars_suite",
    "bars_on_calendar",
    "breadth_suite",
    "stock_bars_suite",
    "defi_suite",
    "stablecoin_suite",
    "return_bounds",
}


def check(name: str, asset: str | None = None) -> suites.Check:
    """The check called ``name`` (on ``asset`` where several assets share the name)."""
    found = [c for c in ALL_CHECKS if c.name == name and (asset is None or c.asset == asset)]
    assert len(found) == 1, f"{name} {asset}: {found}"
    return found[0]


def text(outcome: CheckOutcome) -> str:
    return "\n".join(finding.message for finding in outcome.findings)


def assert_fails(outcome: CheckOutcome, severity: str, *parts: str) -> None:
    """Failed with ``severity``, and the messages name every one of ``parts``."""
    assert not outcome.passed, outcome.summary()
    assert outcome.severity == severity
    messages = text(outcome)
    for part in parts:
        assert part in messages, f"{part!r} not in:\n{messages}"


def assert_passes(outcome: CheckOutcome) -> None:
    assert outcome.passed, outcome.summary()
    assert outcome.findings == []


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class World:
    """A clean in-memory database every check passes on; tests corrupt one thing each."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def clean(cls) -> "World":
        self = cls(duckdb.connect(":memory:"))
        ensure_raw_schema(self.conn)
        self.conn.execute("CREATE SCHEMA config")
        self.conn.execute(
            "CREATE TABLE config.instruments AS SELECT * FROM read_csv(?, all_varchar = true)",
            [str(SEEDS_DIR / "instruments.csv")],
        )
        self.conn.execute("CREATE SCHEMA marts")
        for market in markets().values():
            sessions = calendars.sessions(market.calendar, CALENDAR_START, CALENDAR_END)
            self.append("market_sessions", sessions.assign(market=market.market))
            traded = [d for d in sessions["session_date"] if FIRST_DAY <= d <= LAST_DAY]
            for instrument in instruments(market.market):
                closes = [100.0] * len(traded)
                self.append(f"{market.market}_bars", bars(instrument.instrument_id, traded, closes))
        cn_sessions = self.sessions("cn")
        self.append(
            "cn_breadth",
            feed(
                cn_sessions,
                market="cn",
                advancers=3000,
                decliners=2000,
                unchanged=100,
                turnover_cny=1.2e12,
            ),
        )
        for code in ("600000", "000001"):
            self.append(
                "cn_stock_bars",
                feed(
                    cn_sessions,
                    stock_code=code,
                    close=10.0,
                    previous_close=9.9,
                    volume=1e6,
                    turnover_cny=1e7,
                ),
            )
        for protocol, category in (("Aave", "Lending"), ("Uniswap", "Dexs")):
            self.append(
                "defi_protocol_tvl",
                feed(days(FIRST_DAY, LAST_DAY), protocol=protocol, category=category, tvl_usd=2e10),
            )
        for symbol in ("USDT", "USDC"):
            self.append(
                "stablecoin_supply",
                feed(days(FIRST_DAY, LAST_DAY), symbol=symbol, circulating_usd=1.5e11),
            )
        return self

    def sessions(self, market: str) -> list[date]:
        rows = self.conn.execute(
            "SELECT session_date FROM raw.market_sessions WHERE market = ? "
            "AND session_date BETWEEN ? AND ? ORDER BY 1",
            [market, FIRST_DAY, LAST_DAY],
        ).fetchall()
        return [row[0] for row in rows]

    def append(self, table: str, frame: pd.DataFrame) -> None:
        self.conn.register("new_rows", frame)
        self.conn.execute(f"INSERT INTO raw.{table} BY NAME SELECT * FROM new_rows")
        self.conn.unregister("new_rows")

    def execute(self, sql: str, params: list | None = None) -> None:
        self.conn.execute(sql, params or [])


def bars(instrument_id: str, sessions: list[date], closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_id": instrument_id,
            "session_date": sessions,
            "open": closes,
            "high": [c * 1.01 for c in closes],
            "low": [c * 0.99 for c in closes],
            "close": closes,
            "volume": 1e6,
            "source": SOURCE,
            "is_fallback": False,
            "fetched_at": FETCHED_AT,
        }
    )


def feed(dates: list[date], **columns: object) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "session_date": dates,
            **columns,
            "source": SOURCE,
            "is_fallback": False,
            "fetched_at": FETCHED_AT,
        }
    )


@pytest.fixture(scope="module")
def clean_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The clean world, built once and saved; each test gets its own in-memory copy."""
    path = str(tmp_path_factory.mktemp("checks") / "clean.duckdb")
    conn = World.clean().conn
    conn.execute("ATTACH ? AS saved", [path])
    conn.execute("COPY FROM DATABASE memory TO saved")
    conn.close()
    return path


def copy_of(path: str) -> World:
    conn = duckdb.connect(":memory:")
    conn.execute("ATTACH ? AS saved (READ_ONLY)", [path])
    conn.execute("COPY FROM DATABASE saved TO memory")
    conn.execute("DETACH saved")
    return World(conn)


@pytest.fixture
def world(clean_database: str) -> World:
    return copy_of(clean_database)


def test_every_check_is_covered_here() -> None:
    """A new check in suites.all_checks() needs its bad and good cases in this file (a raw
    check) or in tests/test_gate_findings.py (a fact check)."""
    assert {c.name for c in ALL_CHECKS} == CHECK_NAMES
    per_market = {c.asset for c in ALL_CHECKS if c.name in ("bars_suite", "bars_on_calendar")}
    assert per_market == {f"raw/{market}_bars" for market in markets()}


@pytest.mark.parametrize("name_asset", [(c.name, c.asset) for c in ALL_CHECKS if c.is_raw], ids=str)
def test_every_raw_check_passes_on_clean_data(world: World, name_asset: tuple[str, str]) -> None:
    outcome = check(*name_asset).evaluate(world.conn, WINDOW)
    assert_passes(outcome)
    assert outcome.severity == suites.config()["severities"][outcome.name]


# --- raw bars: bars_suite, expectation by expectation ------------------------------------------


def set_bar(world: World, instrument_id: str, day: date, **values: float) -> None:
    market = instrument_id.split("/")[0]
    assignments = ", ".join(f"{column} = ?" for column in values)
    world.execute(
        f"UPDATE raw.{market}_bars SET {assignments} WHERE instrument_id = ? AND session_date = ?",
        [*values.values(), instrument_id, day],
    )


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        pytest.param(
            {"close": -5.0},
            ["expect_column_values_to_be_between(close)", "close=-5.0"],
            id="negative_close",
        ),
        pytest.param(
            {"close": float("nan")},
            ["expect_column_values_to_not_be_null(close)", "close=nan"],
            id="nan_close",
        ),
        pytest.param(
            {"close": float("inf")},
            ["expect_column_values_to_be_between(close)", "close=inf"],
            id="infinite_close",
        ),
        pytest.param(
            {"close": 2e9, "high": 2e9},
            ["expect_column_values_to_be_between(close)", "close=2000000000.0"],
            id="absurd_close",
        ),
        pytest.param(
            {"open": 100.0, "high": 101.0, "low": 99.0, "close": 102.5},
            ["expect_column_pair_values_a_to_be_greater_than_b", "high=101.0", "close=102.5"],
            id="high_below_close",
        ),
        pytest.param(
            {"open": 98.5, "high": 101.0, "low": 99.0, "close": 100.0},
            ["expect_column_pair_values_a_to_be_greater_than_b", "open=98.5", "low=99.0"],
            id="low_above_open",
        ),
    ],
)
def test_bars_suite_rejects_a_bad_bar(world: World, values: dict, shown: list[str]) -> None:
    set_bar(world, "us/GSPC", FRIDAY, **values)
    outcome = check("bars_suite", "raw/us_bars").evaluate(world.conn, WINDOW)
    assert_fails(outcome, ERROR, "raw.us_bars", "us/GSPC 2026-03-20", f"[{SOURCE}]", *shown)
    flagged = pd.concat([f.rows for f in outcome.findings])
    assert set(map(tuple, flagged.to_numpy())) == {("us/GSPC", FRIDAY)}
    assert {f.market for f in outcome.findings} == {"us"}


def test_bars_suite_rejects_a_duplicate_session(world: World) -> None:
    world.append("us_bars", bars("us/DJI", [FRIDAY], [123.0]))
    outcome = check("bars_suite", "raw/us_bars").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        ERROR,
        "raw.us_bars expect_compound_columns_to_be_unique",
        "2 row(s)",
        "us/DJI 2026-03-20",
        f"[{SOURCE}]",
    )


def test_bars_suite_rejects_an_unknown_instrument(world: World) -> None:
    world.append("us_bars", bars("us/SPX", [FRIDAY], [5600.0]))
    outcome = check("bars_suite", "raw/us_bars").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        ERROR,
        "expect_column_values_to_be_in_set(instrument_id)",
        "us/SPX 2026-03-20 instrument_id=us/SPX",
        f"[{SOURCE}]",
    )


def test_bars_suite_passes_close_only_bars_and_ignores_later_sessions(world: World) -> None:
    """Close-only histories (replay CSVs with empty open/high/low) are valid bars; a bad bar
    after R-1 belongs to later reports, and the Sunday window does not read it."""
    set_bar(world, "us/GSPC", FRIDAY, open=None, high=None, low=None)
    set_bar(world, "us/GSPC", date(2026, 3, 23), close=-5.0)
    assert_passes(check("bars_suite", "raw/us_bars").evaluate(world.conn, WINDOW))


@pytest.mark.parametrize("market", ["hk", "cn", "crypto"])
def test_bars_suite_of_every_market(world: World, market: str) -> None:
    instrument_id = instruments(market)[0].instrument_id
    set_bar(world, instrument_id, FRIDAY, close=-1.0)
    outcome = check("bars_suite", f"raw/{market}_bars").evaluate(world.conn, WINDOW)
    assert_fails(outcome, ERROR, f"raw.{market}_bars", f"{instrument_id} 2026-03-20", "close=-1.0")
    assert {f.market for f in outcome.findings} == {market}


# --- bars_on_calendar --------------------------------------------------------------------------


@pytest.mark.parametrize("market", ["us", "hk", "cn"])
def test_a_bar_on_saturday_is_off_the_exchange_calendar(world: World, market: str) -> None:
    instrument_id = instruments(market)[0].instrument_id
    world.append(f"{market}_bars", bars(instrument_id, [SATURDAY], [100.0]))
    outcome = check("bars_on_calendar", f"raw/{market}_bars").evaluate(world.conn, WINDOW)
    calendar = markets()[market].calendar
    assert_fails(
        outcome,
        ERROR,
        f"raw.{market}_bars (calendar {calendar})",
        f"{instrument_id} 2026-03-21 on_calendar=False",
        f"[{SOURCE}]",
    )
    assert list(outcome.findings[0].rows.itertuples(index=False, name=None)) == [
        (instrument_id, SATURDAY)
    ]


def test_a_crypto_bar_on_saturday_is_on_the_24_7_calendar(world: World) -> None:
    assert SATURDAY in world.sessions("crypto")
    assert_passes(check("bars_on_calendar", "raw/crypto_bars").evaluate(world.conn, WINDOW))


def provisional_from(world: World, market: str, first: date) -> None:
    """Pretend the market's published calendar ends before ``first``: its later sessions are
    the provisional calendar's (what market_intel.calendars writes past the library's end)."""
    world.execute(
        "UPDATE raw.market_sessions SET provisional = session_date >= ? WHERE market = ?",
        [first, market],
    )


def test_a_bar_past_the_published_calendar_is_not_off_calendar(world: World) -> None:
    """Past the published calendar's end a bar confirms a session (stg_market_sessions): the
    provisional calendar never makes an ERROR of a session the data has."""
    provisional_from(world, "cn", FRIDAY)
    world.append("cn_bars", bars("cn/sh000001", [SATURDAY], [100.0]))
    assert_passes(check("bars_on_calendar", "raw/cn_bars").evaluate(world.conn, WINDOW))
    # before the published calendar's end, a Saturday bar is still off the calendar
    world.append("cn_bars", bars("cn/sh000001", [date(2026, 3, 14)], [100.0]))
    outcome = check("bars_on_calendar", "raw/cn_bars").evaluate(world.conn, WINDOW)
    assert_fails(outcome, ERROR, "cn/sh000001 2026-03-14 on_calendar=False")


# --- other raw feeds ---------------------------------------------------------------------------


def test_breadth_suite_rejects_negative_counts_and_missing_turnover(world: World) -> None:
    world.execute("UPDATE raw.cn_breadth SET advancers = -3 WHERE session_date = ?", [FRIDAY])
    world.execute(
        "UPDATE raw.cn_breadth SET turnover_cny = NULL WHERE session_date = ?", [THURSDAY]
    )
    outcome = check("breadth_suite").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        ERROR,
        "raw.cn_breadth expect_column_values_to_be_between(advancers)",
        "2026-03-20 advancers=-3",
        "raw.cn_breadth expect_column_values_to_not_be_null(turnover_cny)",
        "2026-03-19 turnover_cny=nan",
        f"[{SOURCE}]",
    )
    assert {f.table for f in outcome.findings} == {"raw.cn_breadth"}
    assert set().union(*(f.dates for f in outcome.findings)) == {THURSDAY, FRIDAY}


def test_stock_bars_suite_warns_on_a_zero_close(world: World) -> None:
    world.execute(
        "UPDATE raw.cn_stock_bars SET close = 0 WHERE stock_code = '600000' AND session_date = ?",
        [FRIDAY],
    )
    outcome = check("stock_bars_suite").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        WARN,
        "raw.cn_stock_bars expect_column_values_to_be_between(close)",
        "600000 2026-03-20 close=0.0",
        f"[{SOURCE}]",
    )
    assert outcome.findings[0].dates == {FRIDAY}


def test_defi_suite_rejects_negative_tvl_and_missing_category(world: World) -> None:
    world.execute(
        "UPDATE raw.defi_protocol_tvl SET tvl_usd = -1e9 WHERE protocol = 'Aave' "
        "AND session_date = ?",
        [SATURDAY],
    )
    world.execute(
        "UPDATE raw.defi_protocol_tvl SET category = NULL WHERE protocol = 'Uniswap' "
        "AND session_date = ?",
        [FRIDAY],
    )
    outcome = check("defi_suite").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        ERROR,
        "raw.defi_protocol_tvl expect_column_values_to_be_between(tvl_usd)",
        "Aave 2026-03-21 tvl_usd=-1000000000.0",
        "raw.defi_protocol_tvl expect_column_values_to_not_be_null(category)",
        "Uniswap 2026-03-20 category=nan",
        f"[{SOURCE}]",
    )
    assert {f.market for f in outcome.findings} == {"defi"}


def test_stablecoin_suite_rejects_negative_supply(world: World) -> None:
    world.execute(
        "UPDATE raw.stablecoin_supply SET circulating_usd = -5 WHERE symbol = 'USDC' "
        "AND session_date = ?",
        [SATURDAY],
    )
    outcome = check("stablecoin_suite").evaluate(world.conn, WINDOW)
    assert_fails(
        outcome,
        ERROR,
        "raw.stablecoin_supply expect_column_values_to_be_between(circulating_usd)",
        "USDC 2026-03-21 circulating_usd=-5.0",
        f"[{SOURCE}]",
    )
    assert outcome.findings[0].dates == {SATURDAY}
    assert outcome.findings[0].table == "raw.stablecoin_supply"


def test_stablecoin_suite_rejects_a_duplicate_day(world: World) -> None:
    world.append("stablecoin_supply", feed([FRIDAY], symbol="USDT", circulating_usd=1.5e11))
    outcome = check("stablecoin_suite").evaluate(world.conn, WINDOW)
    assert_fails(outcome, ERROR, "expect_compound_columns_to_be_unique", "USDT 2026-03-20")


# --- calendar_end ------------------------------------------------------------------------------


def test_calendar_end_warns_60_days_before_the_last_published_session(world: World) -> None:
    """exchange-calendars 4.13.2 publishes XSHG up to 2026-12-31: 2026-11-15 is 46 days before."""
    outcome = check("calendar_end").evaluate(
        world.conn, ReportWindow(date(2026, 11, 15), date(2026, 11, 17))
    )
    assert_fails(
        outcome,
        WARN,
        "calendar XSHG (A-shares) of exchange-calendars 4.13.2 publishes sessions only up to "
        "2026-12-31, 60 days or less after report(s) 2026-11-15..2026-11-16",
        "pandas-market-calendars' SSE calendar",
        "Fix: raise the exchange-calendars pin in pyproject.toml",
    )
    [finding] = outcome.findings
    assert finding.report_dates == {date(2026, 11, 15), date(2026, 11, 16)}
    # past the end it keeps warning; 60 days and one before the end it is quiet
    past = ReportWindow(date(2027, 1, 6), date(2027, 1, 7))
    assert_fails(check("calendar_end").evaluate(world.conn, past), WARN, "XSHG")
    quiet = ReportWindow(date(2026, 10, 31), date(2026, 11, 1))
    assert_passes(check("calendar_end").evaluate(world.conn, quiet))
    assert_passes(check("calendar_end").evaluate(world.conn, WINDOW))  # 2026-03-22


# --- check_result: what the Dagster UI shows ----------------------------------------------


def test_check_result_of_a_failed_error_check(world: World) -> None:
    set_bar(world, "us/GSPC", FRIDAY, close=-5.0, open=-5.0)
    outcome = check("bars_suite", "raw/us_bars").evaluate(world.conn, WINDOW)
    result = check_result(outcome)
    assert result.passed is False
    assert result.severity == AssetCheckSeverity.ERROR
    metadata = {key: value.value for key, value in result.metadata.items()}
    assert metadata["severity"] == ERROR
    assert metadata["failures"] == len(outcome.findings) > 0
    assert metadata["first_failures"] == [f.message for f in outcome.findings]
    assert any("us/GSPC 2026-03-20 close=-5.0" in m for m in metadata["first_failures"])
    assert result.description.startswith("raw/us_bars bars_suite FAILED (ERROR):")


def test_check_result_of_a_warning_and_of_a_pass(world: World) -> None:
    world.execute("UPDATE raw.cn_stock_bars SET close = 0 WHERE session_date = ?", [FRIDAY])
    warned = check_result(check("stock_bars_suite").evaluate(world.conn, WINDOW))
    assert warned.passed is False
    assert warned.severity == AssetCheckSeverity.WARN
    assert warned.metadata["severity"].value == WARN
    assert warned.metadata["failures"].value == 1

    passed = check_result(check("stablecoin_suite").evaluate(world.conn, WINDOW))
    assert passed.passed is True
    assert passed.metadata["failures"].value == 0
    assert passed.metadata["first_failures"].value == []


def test_check_result_lists_at_most_twenty_failures() -> None:
    findings = [Finding(f"problem {n}") for n in range(25)]
    outcome = CheckOutcome("bars_suite", "raw/us_bars", ERROR, "test", findings)
    result = check_result(outcome)
    assert result.metadata["failures"].value == 25
    assert len(result.metadata["first_failures"].value) == 20
    assert result.description.endswith("... and 5 more")
