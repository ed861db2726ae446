"""The gate in dbt, check by check: for each fact check (freshness, market_session,
provisional_session, unavailable_instruments, feeds_present, return_bounds) a crafted bad input
that fails it and a good one that passes, then how marts.fct_gate_findings maps raw findings to
report dates and what marts.fct_report_verdict (and the report's partial mode) make of them.

The seam is dbt itself: the clean world of tests/test_checks.py (its raw tables), with the marts
and the gate views built by running the dbt project on it (``DbtWorld.build_marts``), so the
SQL under test is the SQL the pipeline runs. The raw checks' findings reach dbt the way the raw
assets write them (market_intel.checks.findings.replace_findings).
"""

import gc
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from dbt.cli.main import dbtRunner

from data_checks.asset_checks import EVERY_DATE, check_outcome
from data_checks.results import check_result
from market_intel.checks import gate, suites
from market_intel.checks.findings import replace_findings
from market_intel.checks.outcome import ERROR, WARN
from market_intel.settings import DBT_PROJECT_DIR
from market_intel.storage import ReportWindow
from pipelines.partitions import window_from_tags
from tests.test_checks import (
    FRIDAY,
    SOURCE,
    THURSDAY,
    WINDOW,
    World,
    check,
    provisional_from,
    set_bar,
)

# The snapshot's report dates, as DbtWorld.build_marts builds them: [FIRST_REPORT, LAST_REPORT].
DBT_WINDOW = {"MARKET_INTEL_WINDOW_START": "2026-03-10", "MARKET_INTEL_WINDOW_END": "2026-04-01"}
GATE_WINDOW = ReportWindow(date(2026, 3, 21), date(2026, 3, 26))  # Sat .. Wed
SHOWS_FRIDAY = {date(2026, 3, 21), date(2026, 3, 22), date(2026, 3, 23)}  # Sat, Sun, Mon
USES_FRIDAY = SHOWS_FRIDAY | {date(2026, 3, 24)}  # Tue shows Monday, whose return is off Friday


class DbtWorld(World):
    """The clean world in a DuckDB file, its marts and gate views built by dbt."""

    path: Path | None = None
    dbt_dir: Path | None = None

    def build_marts(self) -> None:
        if self.path is None:  # World.clean builds the raw tables in memory first
            return
        self.conn.close()
        dbt(self.dbt_dir, "run", "--full-refresh", "--select", "+fct_report_verdict")
        self.conn = duckdb.connect(str(self.path))

    def findings(self, name: str, window: ReportWindow = WINDOW) -> list[gate.GateFinding]:
        return [f for f in gate.read_findings(self.conn, window) if f.check_name == name]

    def verdicts(
        self, window: ReportWindow = GATE_WINDOW, partial: bool = False
    ) -> dict[date, gate.DateVerdict]:
        return gate.verdicts(self.conn, window, partial)

    def blocked(self, window: ReportWindow = GATE_WINDOW, partial: bool = False) -> set[date]:
        return {d for d, v in self.verdicts(window, partial).items() if v.blocked}

    def record_raw_check(self, name: str, asset: str | None, window: ReportWindow) -> None:
        """What the raw asset's step does: run its check and store the findings."""
        replace_findings(self.conn, check(name, asset).evaluate(self.conn, window), window)


def dbt(dbt_dir: Path, *args: str) -> None:
    """Run dbt on the project in this process, with its parse state and logs in ``dbt_dir``;
    then close dbt-duckdb's database, which it keeps open between invocations."""
    result = dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(dbt_dir / "target"),
            "--log-path",
            str(dbt_dir / "logs"),
            "--quiet",
        ]
    )
    DuckDBConnectionManager.close_all_connections()
    gc.collect()
    assert result.success, result.exception


@pytest.fixture(scope="module")
def dbt_world(tmp_path_factory: pytest.TempPathFactory):
    """The clean raw world saved to a file and built by dbt once; each test gets a copy at the
    same path (dbt re-parses the project when its database path changes)."""
    root = tmp_path_factory.mktemp("gate")
    clean, path = root / "clean.duckdb", root / "world.duckdb"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MARKET_INTEL_DB", str(path))
        for name, value in DBT_WINDOW.items():
            monkeypatch.setenv(name, value)
        conn = DbtWorld.clean().conn
        conn.execute("DROP SCHEMA config CASCADE")
        conn.execute("DROP SCHEMA marts CASCADE")
        conn.execute("ATTACH ? AS saved", [str(path)])
        conn.execute("COPY FROM DATABASE memory TO saved")
        conn.close()
        dbt(root, "seed")
        world = DbtWorld(duckdb.connect(str(path)))
        world.path, world.dbt_dir = path, root
        world.build_marts()
        world.conn.close()
        shutil.copyfile(path, clean)
        yield clean, path, root, monkeypatch


@pytest.fixture
def world(dbt_world) -> DbtWorld:
    clean, path, root, _ = dbt_world
    shutil.copyfile(clean, path)
    built = DbtWorld(duckdb.connect(str(path)))
    built.path, built.dbt_dir = path, root
    yield built
    built.conn.close()


def messages(findings: list[gate.GateFinding]) -> str:
    return "\n".join(f.message for f in findings)


def assert_finds(findings: list[gate.GateFinding], severity: str, *parts: str) -> None:
    """Findings of ``severity`` whose messages name every one of ``parts``."""
    assert findings, "no finding"
    assert {f.severity for f in findings} == {severity}
    for part in parts:
        assert part in messages(findings), f"{part!r} not in:\n{messages(findings)}"


def test_a_clean_world_finds_blocks_and_warns_nothing(world: DbtWorld) -> None:
    assert gate.read_findings(world.conn, GATE_WINDOW) == []
    verdicts = world.verdicts()
    assert set(verdicts) == set(GATE_WINDOW.report_dates())
    assert all(v == gate.DateVerdict() for v in verdicts.values())


def test_severities_come_from_the_seed_dbt_reads(world: DbtWorld) -> None:
    seeded = dict(
        world.conn.execute("SELECT check_name, severity FROM config.quality_checks").fetchall()
    )
    assert seeded == suites.config()["severities"]
    assert {c.name: c.severity for c in suites.fact_checks()} == {
        "freshness": ERROR,
        "market_session": ERROR,
        "provisional_session": WARN,
        "unavailable_instruments": WARN,
        "feeds_present": WARN,
        "return_bounds": ERROR,
    }


# --- return_bounds ------------------------------------------------------------------------------


def jump(world: DbtWorld, instrument_id: str, day: date, factor: float) -> None:
    """Multiply every close from ``day`` on: one return of ``factor``, the others unchanged
    (the raw rows: ``build_marts`` makes the facts of them)."""
    market = instrument_id.split("/")[0]
    world.execute(
        f"UPDATE raw.{market}_bars SET open = open * ?, high = high * ?, low = low * ?, "
        "close = close * ? WHERE instrument_id = ? AND session_date >= ?",
        [factor, factor, factor, factor, instrument_id, day],
    )


def confirm(world: DbtWorld, *moves: tuple[str, date]) -> None:
    """A person confirms moves: rows of the seed confirmed_moves."""
    for instrument_id, day in moves:
        world.execute(
            "INSERT INTO config.confirmed_moves VALUES (?, ?, 'checked by a person')",
            [instrument_id, day],
        )


def test_a_40_pct_index_move_fails_return_bounds(world: DbtWorld) -> None:
    jump(world, "us/GSPC", FRIDAY, 1.4)
    world.build_marts()
    findings = world.findings("return_bounds")
    assert_finds(
        findings,
        ERROR,
        "marts.fct_market_daily return_bounds: 1 return(s) need confirmation",
        "confirmed_moves",
        "us/GSPC 2026-03-20 return +40.00% beyond ±15%",
        f"[{SOURCE}]",
    )
    [finding] = findings
    assert (finding.market, finding.asset) == ("us", "marts/fct_market_daily")
    # the reports that show the return, or take Monday's return from Friday's close
    dates = {f.report_date for f in world.findings("return_bounds", GATE_WINDOW)}
    assert dates == USES_FRIDAY


def test_a_confirmed_move_passes_return_bounds(world: DbtWorld) -> None:
    confirm(world, ("us/GSPC", FRIDAY))
    jump(world, "us/GSPC", FRIDAY, 1.4)
    world.build_marts()
    assert world.findings("return_bounds") == []


def test_a_confirmation_covers_one_instrument_and_session_only(world: DbtWorld) -> None:
    confirm(world, ("us/GSPC", THURSDAY), ("us/DJI", FRIDAY))
    jump(world, "us/GSPC", FRIDAY, 1.4)
    world.build_marts()
    assert_finds(world.findings("return_bounds"), ERROR, "us/GSPC 2026-03-20")


def test_return_bounds_follow_the_asset_class(world: DbtWorld) -> None:
    """±15 % for an index, ±20 % for an ETF, ±40 % for crypto (seeds/return_bounds.csv)."""
    jump(world, "us/QQQ", FRIDAY, 1.18)
    jump(world, "crypto/BTC-USDT", FRIDAY, 1.3)
    world.build_marts()
    assert world.findings("return_bounds") == []
    jump(world, "crypto/ETH-USDT", FRIDAY, 0.5)
    world.build_marts()
    assert_finds(
        world.findings("return_bounds"),
        ERROR,
        "crypto/ETH-USDT 2026-03-20 return -50.00% beyond ±40%",
    )


def test_return_bounds_and_severities_come_from_the_configuration(world: DbtWorld) -> None:
    jump(world, "us/GSPC", FRIDAY, 1.1)
    world.build_marts()
    assert world.findings("return_bounds") == []
    world.execute(
        "UPDATE config.return_bounds SET bound_pct = 5 WHERE asset_class = 'equity_index'"
    )
    world.execute(
        "UPDATE config.quality_checks SET severity = 'WARN' WHERE check_name = ?", ["return_bounds"]
    )
    assert_finds(
        world.findings("return_bounds"), WARN, "us/GSPC 2026-03-20 return +10.00% beyond ±5%"
    )


# --- snapshot checks ----------------------------------------------------------------------------


def test_an_instrument_lagging_its_market_fails_freshness(world: DbtWorld) -> None:
    world.execute(
        "DELETE FROM raw.us_bars WHERE instrument_id = 'us/IXIC' AND session_date >= ?", [FRIDAY]
    )
    world.build_marts()
    findings = world.findings("freshness")
    assert_finds(
        findings,
        ERROR,
        "us/IXIC lags its market for report 2026-03-22",
        "data ends 2026-03-19 (1 session(s) behind)",
        "the calendar expects 2026-03-20",
        "4 other US instrument(s) have it",
        f"[{SOURCE}]",
    )
    [finding] = findings
    assert (finding.market, finding.report_date) == ("us", date(2026, 3, 22))
    # the market as a whole has its session: not a market_session failure
    assert world.findings("market_session") == []


def test_a_whole_market_stale_fails_market_session(world: DbtWorld) -> None:
    world.execute("DELETE FROM raw.hk_bars WHERE session_date >= ?", [FRIDAY])
    world.build_marts()
    findings = world.findings("market_session")
    assert_finds(
        findings,
        ERROR,
        "Hong Kong is stale for report 2026-03-22",
        "the calendar (XHKG) expects session 2026-03-20",
        "the data ends 2026-03-19",
        "late, or the exchange had an unscheduled closure",
    )
    [finding] = findings
    assert (finding.market, finding.report_date) == ("hk", date(2026, 3, 22))
    # every instrument lags, so no single one "lags its market": freshness stays quiet
    assert world.findings("freshness") == []


def test_a_market_missing_a_provisional_session_is_a_warning(world: DbtWorld) -> None:
    """A session only the provisional calendar expects may be a holiday its rules do not know:
    the market is published marked stale, with a warning, instead of blocking the report."""
    provisional_from(world, "cn", FRIDAY)
    world.execute("DELETE FROM raw.cn_bars WHERE session_date >= ?", [FRIDAY])
    world.build_marts()
    assert world.findings("market_session") == []
    findings = world.findings("provisional_session")
    assert_finds(
        findings,
        WARN,
        "A-shares is stale for report 2026-03-22",
        "the provisional calendar (past XSHG's last published session) expects session 2026-03-20",
        "the data ends 2026-03-19",
        "a day the provisional rules do not know",
    )
    [finding] = findings
    assert (finding.market, finding.report_date) == ("cn", date(2026, 3, 22))
    verdict = world.verdicts(WINDOW)[date(2026, 3, 22)]
    assert verdict.blocked == []
    assert any("A-shares is stale" in line for line in verdict.warnings)


def test_a_market_missing_a_published_session_is_not_a_provisional_warning(
    world: DbtWorld,
) -> None:
    world.execute("DELETE FROM raw.cn_bars WHERE session_date >= ?", [FRIDAY])
    world.build_marts()
    assert world.findings("provisional_session") == []
    assert_finds(world.findings("market_session"), ERROR, "A-shares is stale")


def test_a_market_closed_for_the_weekend_is_not_stale(world: DbtWorld) -> None:
    """The Sunday report shows Friday's equity sessions: closed, not stale."""
    statuses = world.conn.execute(
        "SELECT DISTINCT market, status FROM marts.fct_report_snapshot WHERE report_date = ?",
        [WINDOW.start],
    ).fetchall()
    assert sorted(statuses) == [
        ("cn", "closed"),
        ("crypto", "open"),
        ("hk", "closed"),
        ("us", "closed"),
    ]
    assert world.findings("market_session") == []


def test_an_unavailable_instrument_is_a_warning(world: DbtWorld) -> None:
    world.execute("DELETE FROM raw.us_bars WHERE instrument_id = 'us/QQQ'")
    world.build_marts()
    findings = world.findings("unavailable_instruments")
    assert_finds(
        findings, WARN, "us/QQQ: no data from the source for report 2026-03-22", "unavailable"
    )
    assert [f.market for f in findings] == ["us"]
    # one row per report date: every date of a window has its own
    dates = {f.report_date for f in world.findings("unavailable_instruments", GATE_WINDOW)}
    assert dates == set(GATE_WINDOW.report_dates())


def test_a_dated_feed_without_data_for_the_week_is_a_warning(world: DbtWorld) -> None:
    world.execute("DELETE FROM raw.stablecoin_supply")
    world.build_marts()
    findings = world.findings("feeds_present")
    assert_finds(
        findings,
        WARN,
        "defi/stablecoins: no data from the source in the 7 days before report 2026-03-22",
        "unavailable",
    )
    assert [f.market for f in findings] == ["defi"]


# --- raw findings: which report dates a finding blocks ------------------------------------------


def test_a_bad_friday_bar_blocks_the_reports_that_show_or_use_it(world: DbtWorld) -> None:
    set_bar(world, "us/GSPC", FRIDAY, open=98.5, high=99.0, low=98.0, close=100.5)
    world.record_raw_check("bars_suite", "raw/us_bars", GATE_WINDOW)
    verdicts = world.verdicts()
    assert world.blocked() == USES_FRIDAY
    for report_date in USES_FRIDAY:
        [line] = verdicts[report_date].blocked
        assert line.startswith("[ERROR] raw.us_bars expect_column_pair_values_a_to_be_greater")
        assert "us/GSPC 2026-03-20" in line
    assert verdicts[date(2026, 3, 25)].blocked == []


def test_a_bad_bar_of_another_instrument_or_session_blocks_nothing_else(world: DbtWorld) -> None:
    """Wednesday's report shows Tuesday, whose return is off Monday: a bad Monday bar of the
    Dow blocks Tuesday and Wednesday and leaves the weekend reports alone."""
    set_bar(world, "us/DJI", date(2026, 3, 23), close=-5.0)
    world.record_raw_check("bars_suite", "raw/us_bars", GATE_WINDOW)
    assert world.blocked() == {date(2026, 3, 24), date(2026, 3, 25)}


def test_a_warning_blocks_nothing(world: DbtWorld) -> None:
    world.execute(
        "UPDATE raw.cn_stock_bars SET close = 0 WHERE stock_code = '600000' AND session_date = ?",
        [FRIDAY],
    )
    world.record_raw_check("stock_bars_suite", None, GATE_WINDOW)
    verdicts = world.verdicts()
    assert world.blocked() == set()
    # a dated feed is shown as of R-1: Friday's rows for Sat, Sun and Mon; Tue shows Monday
    assert {d for d, v in verdicts.items() if v.warnings} == SHOWS_FRIDAY
    [line] = verdicts[date(2026, 3, 22)].warnings
    assert line.startswith("[WARN] raw.cn_stock_bars")
    assert "600000 2026-03-20 close=0.0" in line


def test_a_partial_report_leaves_out_the_failing_market(world: DbtWorld) -> None:
    set_bar(world, "us/GSPC", FRIDAY, close=-5.0)
    world.record_raw_check("bars_suite", "raw/us_bars", GATE_WINDOW)
    assert world.blocked() == USES_FRIDAY

    verdicts = world.verdicts(partial=True)
    assert world.blocked(partial=True) == set()
    assert {d for d, v in verdicts.items() if v.left_out} == USES_FRIDAY
    verdict = verdicts[date(2026, 3, 22)]
    assert list(verdict.left_out) == ["us"]
    assert all("us/GSPC 2026-03-20" in line for line in verdict.left_out["us"])

    # an ERROR that belongs to no single market still blocks a partial report
    world.execute(
        "INSERT INTO quality.raw_findings (check_name, asset, severity, message, report_date, "
        "window_start, window_end) VALUES ('bars_suite', 'raw/us_bars', 'ERROR', "
        "'raw.us_bars: a finding of no single market', ?, ?, ?)",
        [date(2026, 3, 25), GATE_WINDOW.start, GATE_WINDOW.end],
    )
    verdicts = world.verdicts(partial=True)
    assert world.blocked(partial=True) == {date(2026, 3, 25)}
    assert "no single market" in verdicts[date(2026, 3, 25)].blocked[0]


def test_a_stale_market_is_left_out_of_a_partial_report(world: DbtWorld) -> None:
    world.execute("DELETE FROM raw.hk_bars WHERE session_date >= ?", [FRIDAY])
    world.build_marts()
    verdicts = world.verdicts(partial=True)
    assert world.blocked(partial=True) == set()
    assert set(verdicts) == set(GATE_WINDOW.report_dates())
    assert all(list(v.left_out) == ["hk"] for v in verdicts.values())


def test_a_missing_marts_table_blocks_every_date(world: DbtWorld) -> None:
    world.execute("DROP TABLE marts.fct_cn_breadth")
    with pytest.raises(duckdb.CatalogException):
        gate.read_findings(world.conn, GATE_WINDOW)
    verdicts = world.verdicts(partial=True)
    assert set(verdicts) == set(GATE_WINDOW.report_dates())
    for verdict in verdicts.values():
        [line] = verdict.blocked
        assert "the quality gate cannot be read" in line and "fct_cn_breadth" in line


# --- the Dagster step: one result per fact check, on its mart -----------------------------------


def test_the_check_step_reads_the_runs_window_from_its_tags() -> None:
    assert window_from_tags({"dagster/partition": "2026-03-22"}) == WINDOW
    assert (
        window_from_tags(
            {
                "dagster/asset_partition_range_start": "2026-03-21",
                "dagster/asset_partition_range_end": "2026-03-25",
            }
        )
        == GATE_WINDOW
    )
    assert window_from_tags({}) is None
    assert EVERY_DATE.start < date(2015, 1, 1) and EVERY_DATE.end > date(2100, 1, 1)


def test_a_check_result_groups_the_findings_of_the_window(world: DbtWorld) -> None:
    world.execute("DELETE FROM raw.us_bars WHERE instrument_id = 'us/QQQ'")
    world.build_marts()
    findings = gate.read_findings(world.conn, GATE_WINDOW)
    result = check_result(check_outcome(check("unavailable_instruments"), findings))
    assert result.passed is False
    assert result.description.startswith(
        "marts/fct_report_snapshot unavailable_instruments FAILED (WARN): us/QQQ: no data from "
        "the source for report 2026-03-21"
    )
    assert result.metadata["failures"].value == len(GATE_WINDOW.report_dates())
    passed = check_result(check_outcome(check("market_session"), findings))
    assert passed.passed is True
    assert passed.description == "marts/fct_report_snapshot market_session: passed"


# --- dbt tests: what Dagster shows on them ------------------------------------------------------


def test_every_dbt_test_has_a_description_and_compound_keys_use_the_generic_test() -> None:
    """Dagster shows a dbt test's description on its asset check ("No description" otherwise);
    compound keys are one generic test, not a singular copy per model."""
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    assert [t["name"] for t in tests if not t.get("description")] == []
    keys = {t["attached_node"] for t in tests if t["name"].startswith("unique_combination_")}
    assert "model.market_intel.fct_report_snapshot" in keys
    assert "model.market_intel.fct_gate_findings" in keys
    singular = sorted(p.name for p in (DBT_PROJECT_DIR / "tests").glob("*.sql"))
    assert singular == ["assert_divergence_spread_is_difference_of_returns.sql"]
