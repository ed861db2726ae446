"""Dagster's storage in PostgreSQL (docs/scaling.md), really run: a throwaway server, an instance
configured like the project's (its pool limits) but stored there, and the CLI runs a deployment
makes: a one-year one-run backfill and, at the same time, a daily run of a later date.

Skipped, with the reason, when no PostgreSQL server can be started here (``bench/postgres.py``
finds the binaries of the OS package ``postgresql``; ``.ci/run`` installs it)."""

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from bench.generate import generate, unconfirmed_moves
from bench.postgres import PostgresServer, PostgresUnavailable, postgres_server, write_instance
from market_intel.settings import PROJECT_ROOT
from market_intel.storage import DUCKDB_POOL
from tests.conftest import step_intervals

DAGSTER = str(Path(sys.executable).with_name("dagster"))
# The backfill: a month of report dates. A one-year one-run backfill is `make bench`'s
# postgres-1y: on this instance Dagster stores each planned event (one per asset and date) with
# inserts and commits of its own (dagster-postgres batches materializations only): minutes.
FIRST, LAST = date(2025, 12, 1), date(2025, 12, 31)
DAILY = date(2026, 1, 6)  # the daily run's report date, later than the backfill
LOOKBACK_DAYS = 550  # the feeds' default history before a window
# What docs/scaling.md sets in a run worker's environment: Dagster's events (the per-date planned
# events above all) stored in batches, one insert each. Without it a one-year backfill spends
# minutes inserting them one at a time.
EVENT_BATCH_SIZE = "1000"
RUN_TIMEOUT = 600
LOCK_ERRORS = ("Could not set lock", "Conflicting lock", "database is locked")
CHECKED_DATES = (FIRST, date(2025, 12, 7), LAST, DAILY)  # a Monday, a Sunday, the last two


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the session, stopped and deleted at its end."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server(durable=False))
        except PostgresUnavailable as reason:
            pytest.skip(f"no PostgreSQL server can run here: {reason}")
        yield server


def start(root: Path, env: dict[str, str], name: str, *partition: str) -> subprocess.Popen:
    """``dagster asset materialize`` of the whole pipeline; output in ``<name>.log``."""
    command = [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", "*"]
    with open(root / f"{name}.log", "w") as log:
        return subprocess.Popen(
            [*command, *partition], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )


def finish(process: subprocess.Popen, root: Path, name: str) -> str:
    """The run's output, once it exited; fails with its tail if it did not succeed."""
    try:
        code = process.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = "timeout"
    output = (root / f"{name}.log").read_text()
    assert code == 0, f"run {name} exited with {code}:\n{output[-4000:]}"
    return output


def latest_close_before(replay: Path, instrument_id: str, report_date: date) -> tuple[str, float]:
    """The date rule read off the replay file itself: the last session on or before R-1."""
    bars = pd.read_csv(replay / f"{instrument_id}.csv", dtype={"date": str})
    row = bars[bars["date"] <= (report_date - timedelta(days=1)).isoformat()].iloc[-1]
    return row["date"], float(row["close"])


@pytest.mark.slow
def test_a_backfill_and_a_daily_run_share_a_postgres_instance(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """A month's one-run backfill and a daily run started with it: both succeed in the Postgres
    instance, one DuckDB writer at a time, and every report date has its report with the facts
    of its sessions."""
    replay = tmp_path / "replay"
    generate(replay, FIRST - timedelta(days=LOOKBACK_DAYS + 31), DAILY, reference=None)
    assert unconfirmed_moves(replay) == [], "generated data the quality gate would block"
    home = write_instance(tmp_path / "dagster_home", postgres)
    database, reports = tmp_path / "market_intel.duckdb", tmp_path / "reports"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_INTEL_SOURCE": "replay",
        "MARKET_INTEL_DB": str(database),
        "MARKET_INTEL_REPORTS_DIR": str(reports),
        "MARKET_INTEL_REPLAY_DIR": str(replay),
        "MARKET_INTEL_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
        "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
    }
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert instance.get_runs() == []  # its tables exist before two runs start side by side

    backfill = start(tmp_path, env, "backfill", "--partition-range", f"{FIRST}...{LAST}")
    daily = start(tmp_path, env, "daily", "--partition", DAILY.isoformat())
    try:
        outputs = [finish(backfill, tmp_path, "backfill"), finish(daily, tmp_path, "daily")]
    finally:
        for process in (backfill, daily):
            if process.poll() is None:  # the other run, once one failed: the CLI ignores SIGTERM
                process.kill()
                process.wait()

    for output in outputs:
        assert not [error for error in LOCK_ERRORS if error in output]
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
        ranges = {
            run.tags.get("dagster/partition")
            or run.tags["dagster/asset_partition_range_start"]
            + ".."
            + run.tags["dagster/asset_partition_range_end"]
            for run in runs
        }
        assert ranges == {f"{FIRST}..{LAST}", DAILY.isoformat()}
        intervals = step_intervals(instance)
        assert {run for _, _, run, _ in intervals} == {run.run_id for run in runs}
        for (_, end, run, step), (begin, _, other, other_step) in itertools.pairwise(intervals):
            assert end <= begin, f"{run}:{step} overlapped {other}:{other_step} on the DuckDB file"
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []

    expected = {FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)} | {DAILY}
    assert {date.fromisoformat(path.stem) for path in reports.glob("????-??-??.json")} == expected
    with duckdb.connect(str(database), read_only=True) as conn:
        for report_date in CHECKED_DATES:
            report = json.loads((reports / f"{report_date}.json").read_text())
            assert report["report_date"] == report_date.isoformat()
            assert (reports / f"{report_date}.md").exists()
            (us,) = [market for market in report["markets"] if market["market"] == "us"]
            (gspc,) = [row for row in us["instruments"] if row["id"] == "us/GSPC"]
            session, close = latest_close_before(replay, "us/GSPC", report_date)
            assert gspc["session_date"] == session
            assert gspc["close"] == pytest.approx(close)
            fact_session, fact_close = conn.execute(
                "SELECT cast(session_date AS varchar), close FROM marts.fct_report_snapshot "
                "WHERE report_date = ? AND instrument_id = 'us/GSPC'",
                [report_date],
            ).fetchone()
            assert (fact_session, fact_close) == (session, pytest.approx(close))
