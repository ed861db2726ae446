"""Operations: the daily schedule, the late-data retry, and one writer at a time on the DuckDB file.

The last two tests run the real CLI (``dagster asset materialize``, as ``make backfill`` and
``make demo`` do) in subprocesses on the demo data, against one DuckDB file and one Dagster
instance configured by the project's ``.dagster_home/dagster.yaml``.
"""

import itertools
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    PartitionKeyRange,
    build_schedule_context,
    partition_loading_context,
)

from market_intel.settings import PROJECT_ROOT
from market_intel.storage import RAW_TABLES
from pipelines import schedules, sensors
from pipelines.partitions import report_dates
from pipelines.schedules import (
    JOB_NAME,
    SCHEDULE_TRIGGER,
    TRIGGER_TAG,
    latest_complete_report_date,
    market_intel_daily,
)
from pipelines.sensors import (
    DUCKDB_POOL,
    MAX_ATTEMPTS,
    RETRY_TRIGGER,
    Attempt,
    next_attempt,
    release_dead_run_slots,
    retry_requests,
    runs_execute_on_this_host,
)
from tests.conftest import step_intervals

NEW_YORK = ZoneInfo("America/New_York")
DAGSTER = str(Path(sys.executable).with_name("dagster"))
INSTANCE_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
RUN_TIMEOUT = 300


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the daily schedule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tick", "report_date"),
    [
        # The schedule's own ticks, 00:20 UTC, on both sides of the US clock changes (2026-03-08,
        # 2026-11-01): 20:20 New York time in summer, 19:20 in winter, same report date rule.
        (utc(2026, 3, 7, 0, 20), date(2026, 3, 7)),
        (utc(2026, 3, 8, 0, 20), date(2026, 3, 8)),
        (utc(2026, 3, 9, 0, 20), date(2026, 3, 9)),
        (utc(2026, 3, 10, 0, 20), date(2026, 3, 10)),
        (utc(2026, 11, 1, 0, 20), date(2026, 11, 1)),
        (utc(2026, 11, 2, 0, 20), date(2026, 11, 2)),
        # Around midnight UTC: crypto's day R-1 ends exactly at 00:00 UTC on R.
        (utc(2026, 3, 21, 23, 59, 59), date(2026, 3, 21)),
        (utc(2026, 3, 22, 0, 0), date(2026, 3, 22)),
        # 18:30 New York is after the US close but before crypto's day ends: the new report date
        # (its crypto day unfinished, its partition not there yet) is not complete; the latest
        # complete one is the day before, in summer (22:30 UTC) and winter (23:30 UTC) alike.
        (datetime(2026, 3, 9, 18, 30, tzinfo=NEW_YORK), date(2026, 3, 9)),
        (datetime(2026, 3, 6, 18, 30, tzinfo=NEW_YORK), date(2026, 3, 6)),
        (datetime(2026, 3, 8, 20, 30, tzinfo=NEW_YORK), date(2026, 3, 9)),  # 00:30 UTC
        (datetime(2026, 3, 7, 19, 30, tzinfo=NEW_YORK), date(2026, 3, 8)),  # 00:30 UTC
    ],
)
def test_schedule_targets_the_report_date_whose_sessions_all_closed(
    tick: datetime, report_date: date
) -> None:
    assert latest_complete_report_date(tick) == report_date
    with partition_loading_context(effective_dt=tick):
        assert report_dates.get_last_partition_key() == tick.astimezone(UTC).date().isoformat()
        assert report_dates.has_partition_key(report_date.isoformat())


def test_session_closes_follow_the_exchange_clock_across_daylight_saving() -> None:
    """The US close is 21:00 UTC before 2026-03-08 (EST) and 20:00 UTC after it (EDT)."""
    at = utc(2026, 3, 6, 20, 30)
    assert latest_complete_report_date(at, ["XNYS"]) == date(2026, 3, 6)
    assert not schedules._closed_by("XNYS", date(2026, 3, 6), _naive(at))
    assert schedules._closed_by("XNYS", date(2026, 3, 9), _naive(utc(2026, 3, 9, 20, 30)))
    assert schedules._closed_by("XNYS", date(2026, 3, 8), _naive(at))  # Sunday: no session


def _naive(moment: datetime):
    import pandas as pd

    return pd.Timestamp(moment).tz_convert("UTC").tz_localize(None)


def test_schedule_runs_in_utc_and_requests_one_run_per_report_date() -> None:
    assert market_intel_daily.execution_timezone == "UTC"
    assert market_intel_daily.cron_schedule == "20 0 * * *"
    assert market_intel_daily.job_name == JOB_NAME
    context = build_schedule_context(scheduled_execution_time=utc(2026, 3, 22, 0, 20))
    request = market_intel_daily(context)
    assert request.partition_key == "2026-03-22"
    assert request.run_key == "daily-2026-03-22"
    assert request.tags[TRIGGER_TAG] == SCHEDULE_TRIGGER


def test_definitions_wire_the_schedule_the_sensors_and_the_pool() -> None:
    from pipelines.definitions import defs

    assert defs.get_schedule_def("market_intel_daily").job_name == JOB_NAME
    assert defs.get_sensor_def("market_intel_late_data_retry")
    assert defs.get_sensor_def("duckdb_pool_slots")
    job = defs.resolve_job_def(JOB_NAME)
    outside = sorted(node.name for node in job.graph.nodes if node.definition.pool != DUCKDB_POOL)
    assert not outside, f"steps outside the {DUCKDB_POOL!r} pool (they would race for the file)"


def test_a_range_backfill_from_the_ui_is_one_run_like_make_backfill() -> None:
    """The UI's backfill of a range from the job's page (a job backfill): the job's single-run
    policy makes ten years one run of every asset, as ``make backfill`` runs it. From the asset
    graph (an asset backfill), the daemon groups the assets by backfill policy: every asset is
    single-run, so the dated ones are one run over the range (the undated ones run apart).
    tests/test_ui.py launches the job's backfill for real."""
    from dagster import BackfillPolicy

    from pipelines.definitions import defs

    job = defs.resolve_job_def(JOB_NAME)
    assert job.backfill_policy == BackfillPolicy.single_run()
    assert job.partitions_def == report_dates
    keys = report_dates.get_partition_keys_in_range(PartitionKeyRange("2016-01-01", "2025-12-31"))
    assert len(keys) == 3653
    graph = defs.resolve_asset_graph()
    policies = {key: graph.get(key).backfill_policy for key in graph.materializable_asset_keys}
    multi_run = sorted(
        key.to_user_string() for key, p in policies.items() if p != BackfillPolicy.single_run()
    )
    assert not multi_run, f"assets a range backfill would split into runs: {multi_run}"


def test_dbt_runs_as_dagster_dbt_ships_it_without_its_version_check() -> None:
    """dagster-dbt's own resource, on this environment's dbt; dbt's version check and usage
    statistics are off in every process that loads the definitions (market_intel/settings.py)."""
    from dagster_dbt import DbtCliResource

    from pipelines.definitions import defs

    resource = defs.resources["dbt"]
    assert type(resource) is DbtCliResource
    assert Path(resource.dbt_executable) == Path(sys.executable).with_name("dbt")
    assert os.environ["DBT_VERSION_CHECK"] == "false"
    assert os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "true"


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``DAGSTER_HOME`` with the project's instance config, as the CLI and the UI see it."""
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def test_instance_config_gives_the_pool_one_slot(dagster_home: Path) -> None:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity.value == "op"


# --- the late-data retry --------------------------------------------------------------------

NOW = 1_800_000_000.0
HOUR = 3600.0


def attempt(status: DagsterRunStatus, trigger: str | None, ended_hours_ago: float) -> Attempt:
    return Attempt(status, trigger, NOW - ended_hours_ago * HOUR)


FAILURE, SUCCESS = DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        ([], None),
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 2.5)], 2),
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 1)], None),  # too early: the feed is still late
        ([attempt(SUCCESS, SCHEDULE_TRIGGER, 5)], None),
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 5), attempt(FAILURE, RETRY_TRIGGER, 3)], 3),
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 5), attempt(SUCCESS, RETRY_TRIGGER, 3)], None),
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 5), attempt(FAILURE, None, 3)], None),  # a person's
        ([attempt(FAILURE, SCHEDULE_TRIGGER, 9)] + [attempt(FAILURE, RETRY_TRIGGER, 3)] * 3, None),
    ],
)
def test_late_data_retry_decision(attempts: list[Attempt], expected: int | None) -> None:
    assert len(attempts) < MAX_ATTEMPTS or expected is None
    assert next_attempt(attempts, NOW) == expected


def test_late_data_retry_reruns_a_failed_scheduled_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sensors, "RETRY_AFTER", timedelta(0))
    with DagsterInstance.ephemeral() as instance:
        tags = {TRIGGER_TAG: SCHEDULE_TRIGGER, "dagster/partition": "2026-03-22"}
        run = instance.add_run(DagsterRun(job_name=JOB_NAME, tags=tags))
        instance.report_run_failed(run)
        requests = list(retry_requests(instance, time.time() + 1))
        assert [(r.partition_key, r.run_key) for r in requests] == [
            ("2026-03-22", "late-data-2026-03-22-2")
        ]
        assert requests[0].tags[TRIGGER_TAG] == RETRY_TRIGGER
        # A later success of the date (by anyone) ends the retries.
        success = DagsterRun(job_name=JOB_NAME, tags=tags, status=DagsterRunStatus.SUCCESS)
        instance.add_run(success)
        assert list(retry_requests(instance, time.time() + 1)) == []


def test_finished_runs_give_back_their_pool_slots(dagster_home: Path) -> None:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        failed = instance.add_run(DagsterRun(job_name=JOB_NAME))
        instance.report_run_failed(failed)
        assert storage.claim_concurrency_slot(DUCKDB_POOL, failed.run_id, "raw__us_bars").is_claimed
        waiting = instance.add_run(DagsterRun(job_name=JOB_NAME, status=DagsterRunStatus.STARTED))
        assert not storage.claim_concurrency_slot(DUCKDB_POOL, waiting.run_id, "x").is_claimed
        assert release_dead_run_slots(instance) == [failed.run_id]
        assert storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []


def test_runs_execute_on_this_host_with_dagsters_default_launcher(dagster_home: Path) -> None:
    """The project's instance, and Dagster's default one, launch runs as local processes: their
    pids can be checked here. An instance whose launcher runs them elsewhere is left alone."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert runs_execute_on_this_host(instance)
    default_home = dagster_home / "default"
    default_home.mkdir()
    with DagsterInstance.from_config(str(default_home)) as instance:  # no dagster.yaml
        assert runs_execute_on_this_host(instance)
    elsewhere = SimpleNamespace(run_launcher=object())  # e.g. Kubernetes' launcher
    assert not runs_execute_on_this_host(elsewhere)
    assert release_dead_run_slots(elsewhere) == []


def test_a_run_process_is_alive_whatever_its_command_line() -> None:
    """A run launched from the UI runs in a ``multiprocessing`` child of the code server, whose
    command line does not name Dagster: it is alive. A pid whose process started after the run
    (a dead run's pid given to a new process) is not, nor a pid that is gone."""
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=time.sleep, args=(60,))
    child.start()
    try:
        time.sleep(0.5)
        assert b"dagster" not in Path(f"/proc/{child.pid}/cmdline").read_bytes()
        assert sensors.process_alive(child.pid, run_started=time.time())
        reused = time.time() - 10 * sensors.PID_CLOCK_SLACK_SECONDS
        assert not sensors.process_alive(child.pid, run_started=reused)
    finally:
        child.kill()
        child.join()
    assert not sensors.process_alive(child.pid, run_started=time.time())


# --- one writer: real CLI runs against one DuckDB file ----------------------------------------


class Deployment:
    """A DuckDB file, a reports folder and a Dagster instance shared by CLI runs in subprocesses."""

    def __init__(self, root: Path, home: Path):
        self.root = root
        self.home = home
        self.db = root / "market_intel.duckdb"
        self.reports = root / "reports"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "MARKET_INTEL_SOURCE": "demo",
            "MARKET_INTEL_DB": str(self.db),
            "MARKET_INTEL_REPORTS_DIR": str(self.reports),
            "MARKET_INTEL_REPLAY_DIR": str(root / "replay"),
        }
        self.processes: list[subprocess.Popen] = []
        # Create the instance's storage once, before runs start side by side.
        with self.instance() as instance:
            instance.get_runs()

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def start(self, name: str, *partition: str) -> subprocess.Popen:
        """``dagster asset materialize`` in its own process group; output in ``<name>.log``."""
        command = [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions"]
        command += ["--select", "*", *partition]
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def wait(self, process: subprocess.Popen, name: str) -> int:
        try:
            code = process.wait(timeout=RUN_TIMEOUT)
        finally:
            process.log.close()  # type: ignore[attr-defined]
        if code != 0:
            tail = (self.root / f"{name}.log").read_text()[-4000:]
            pytest.fail(f"run {name} exited with {code}:\n{tail}")
        return code

    def output(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def duplicate_keys(self) -> dict[str, int]:
        """Rows beyond one per key, per raw table (all zero when the data is consistent)."""
        duplicates = {}
        with duckdb.connect(str(self.db), read_only=True) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
                ).fetchall()
            }
            for table in RAW_TABLES.values():
                if table.name not in tables:
                    continue
                keys = ", ".join(table.keys)
                duplicates[table.name] = conn.execute(
                    f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {keys} "
                    f"FROM {table.qualified})) FROM {table.qualified}"
                ).fetchone()[0]
        return duplicates

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def deployment(
    tmp_path_factory: pytest.TempPathFactory, dagster_home: Path
) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path_factory.mktemp("deployment"), dagster_home)
    yield deployment
    deployment.stop_all()


# Steps that do not open the DuckDB file outside live mode (the probe only reads files then).
OPENS_NO_FILE = {"raw__source_health"}


def took_turns_on_the_file(output: str, run_id: str, step_key: str) -> bool:
    """Whether the step of the run logged that it waited for the DuckDB file's writer lock."""
    return any(
        run_id in line and step_key in line and "waiting for the DuckDB file" in line
        for line in output.splitlines()
    )


@pytest.mark.slow
def test_concurrent_runs_take_turns_on_the_duckdb_file(deployment: Deployment) -> None:
    """A daily run and a two-date backfill started together: both succeed, one writer at a time
    (the pool schedules the steps; where both got a slot at once, the later one waited for the
    file's lock)."""
    daily = deployment.start("daily", "--partition", "2026-03-22")
    backfill = deployment.start("backfill", "--partition-range", "2026-03-21...2026-03-22")
    deployment.wait(daily, "daily")
    deployment.wait(backfill, "backfill")

    with deployment.instance() as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
        intervals = step_intervals(instance)
        assert {run for _, _, run, _ in intervals} == {run.run_id for run in runs}
        output = deployment.output("daily") + deployment.output("backfill")
        for (_, end, run, step), (start, _, next_run, next_step) in itertools.pairwise(intervals):
            if end > start:  # the pool let both start (Dagster's slot claim races on SQLite)
                assert step in OPENS_NO_FILE or took_turns_on_the_file(
                    output, next_run, next_step
                ), f"{run}:{step} overlapped {next_run}:{next_step} on the DuckDB file"
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []
    waited = "blocked by limit for pool duckdb"
    assert waited in deployment.output("daily") or waited in deployment.output("backfill")

    assert set(deployment.duplicate_keys().values()) == {0}
    for report_date in ("2026-03-21", "2026-03-22"):
        report = json.loads((deployment.reports / f"{report_date}.json").read_text())
        assert report["report_date"] == report_date
        assert (deployment.reports / f"{report_date}.md").exists()


@pytest.mark.slow
def test_a_run_killed_mid_way_leaves_the_file_consistent_and_a_rerun_completes(
    deployment: Deployment,
) -> None:
    """kill -9 once the raw tables are written (dbt running): the file opens, no row is doubled,
    the dead run's pool slot is freed (as ``make backfill`` does first) and a re-run succeeds."""
    killed = deployment.start("killed", "--partition", "2026-03-22")
    deadline = time.monotonic() + RUN_TIMEOUT
    while "market_intel_dbt - STEP_START" not in deployment.output("killed"):
        assert killed.poll() is None, deployment.output("killed")[-4000:]
        assert time.monotonic() < deadline, "the run never reached its dbt step"
        time.sleep(0.2)
    time.sleep(2)  # dbt is writing the marts
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    killed.log.close()  # type: ignore[attr-defined]

    assert set(deployment.duplicate_keys().values()) == {0}
    assert (
        deployment.rows("SELECT count(*) FROM raw.us_bars WHERE session_date = '2026-03-20'")[0][0]
        > 0
    )
    with deployment.instance() as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.STARTED  # nobody recorded its death
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots

    release = subprocess.run(
        [sys.executable, "-m", "pipelines.sensors", "release-dead-slots"],
        cwd=PROJECT_ROOT,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.run_id in release.stdout

    rerun = deployment.start("rerun", "--partition", "2026-03-22")
    deployment.wait(rerun, "rerun")
    with deployment.instance() as instance:
        statuses = {r.run_id: r.status for r in instance.get_runs()}
        assert statuses.pop(run.run_id) == DagsterRunStatus.FAILURE
        assert list(statuses.values()) == [DagsterRunStatus.SUCCESS]
    assert set(deployment.duplicate_keys().values()) == {0}
    report = json.loads((deployment.reports / "2026-03-22.json").read_text())
    assert report["report_date"] == "2026-03-22"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "2015-01-01"),
        ("2020-06-01", "2020-06-01"),
        ("2020-13-01", "MARKET_INTEL_FIRST_REPORT_DATE='2020-13-01': expected YYYY-MM-DD"),
    ],
)
def test_report_dates_start_where_the_setting_says(value: str | None, expected: str) -> None:
    """A fresh process, as the UI's code server loads the definitions."""
    env = {k: v for k, v in os.environ.items() if k != "MARKET_INTEL_FIRST_REPORT_DATE"}
    if value:
        env["MARKET_INTEL_FIRST_REPORT_DATE"] = value
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.partitions import report_dates; print(report_dates.get_first_partition_key())",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=value != "2020-13-01",
    )
    assert expected in shown.stdout + shown.stderr
