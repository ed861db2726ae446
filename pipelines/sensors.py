"""Sensors that keep the daily runs going without a person (docs/operations.md).

- ``market_intel_late_data_retry``: a scheduled run that failed (a late feed leaves a market
  stale, and the quality gate blocks the report) is run again, whole, every ``RETRY_AFTER``,
  up to ``MAX_ATTEMPTS`` runs per report date. A whole run re-fetches the feeds; Dagster's own
  run retries would start at once and re-run only the failed steps, over the same stale rows.
- ``duckdb_pool_slots``: a run whose process died without a word (``kill -9``, the OOM killer)
  keeps its slot of the ``duckdb`` pool, and every later run would wait for it forever. The
  sensor marks such a run failed and frees its slots. ``make backfill`` does the same first
  (``python -m pipelines.sensors release-dead-slots``).

Both only read Dagster's run storage, never the DuckDB file.
"""

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultRunLauncher,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from market_intel.storage import DUCKDB_POOL
from pipelines.partitions import PARTITION_TAG
from pipelines.schedules import (
    ATTEMPT_TAG,
    DAILY_PRIORITY,
    JOB_NAME,
    PRIORITY_TAG,
    SCHEDULE_TRIGGER,
    TRIGGER_TAG,
)

RETRY_TRIGGER = "late-data-retry"
RETRY_AFTER = timedelta(hours=2)
# The scheduled run and three retries: the last one starts about six hours after the schedule.
MAX_ATTEMPTS = 4
# Report dates whose scheduled run started this recently are watched.
WATCH_DAYS = 2
# A run's process starts seconds before its run does; a process that got the pid of a dead run
# starts after that run died. Start times come from the boot time in /proc/stat, which a clock
# adjusted since boot makes inexact: a generous margin, since calling a live run dead kills it.
PID_CLOCK_SLACK_SECONDS = 60.0
_AUTOMATIC = (SCHEDULE_TRIGGER, RETRY_TRIGGER)


@dataclass(frozen=True)
class Attempt:
    """One run of a report date, as the retry decision sees it."""

    status: DagsterRunStatus
    trigger: str | None
    end_time: float | None


def next_attempt(attempts: list[Attempt], now: float) -> int | None:
    """The attempt number to start now for a report date, or None (runs oldest first).

    Only a failure of an automatic run (the schedule's, or a retry's) is retried: a run a person
    started, or stopped, is theirs to decide about. Anything queued, running or successful since
    ends the retries.
    """
    if not attempts:
        return None
    latest = attempts[-1]
    automatic = [attempt for attempt in attempts if attempt.trigger in _AUTOMATIC]
    if latest.status != DagsterRunStatus.FAILURE or latest.trigger not in _AUTOMATIC:
        return None
    if len(automatic) >= MAX_ATTEMPTS or latest.end_time is None:
        return None
    if now - latest.end_time < RETRY_AFTER.total_seconds():
        return None
    return len(automatic) + 1


def retry_requests(instance: DagsterInstance, now: float) -> Iterator[RunRequest]:
    """Run requests for the watched report dates whose latest automatic run failed long enough ago."""
    scheduled = instance.get_run_records(
        RunsFilter(
            job_name=JOB_NAME,
            tags={TRIGGER_TAG: SCHEDULE_TRIGGER},
            created_after=datetime.fromtimestamp(now, UTC) - timedelta(days=WATCH_DAYS),
        )
    )
    report_dates = sorted({record.dagster_run.tags.get(PARTITION_TAG) for record in scheduled})
    for report_date in filter(None, report_dates):
        records = instance.get_run_records(
            RunsFilter(job_name=JOB_NAME, tags={PARTITION_TAG: report_date})
        )
        records = sorted(records, key=lambda record: record.storage_id)
        attempts = [
            Attempt(
                record.dagster_run.status, record.dagster_run.tags.get(TRIGGER_TAG), record.end_time
            )
            for record in records
        ]
        attempt = next_attempt(attempts, now)
        if attempt is not None:
            yield RunRequest(
                run_key=f"late-data-{report_date}-{attempt}",
                partition_key=report_date,
                tags={
                    TRIGGER_TAG: RETRY_TRIGGER,
                    ATTEMPT_TAG: str(attempt),
                    PRIORITY_TAG: DAILY_PRIORITY,
                },
            )


@sensor(
    name="market_intel_late_data_retry",
    job_name=JOB_NAME,
    minimum_interval_seconds=300,
    # Safe to leave on: it only acts on failed runs the (opt-in) schedule started.
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Runs a report date again, whole, {RETRY_AFTER} after its scheduled run (or a "
    f"retry) failed, e.g. blocked as stale by a late feed; at most {MAX_ATTEMPTS} runs a date.",
)
def market_intel_late_data_retry(context: SensorEvaluationContext):
    requests = list(retry_requests(context.instance, time.time()))
    if not requests:
        return SkipReason("no failed scheduled run due for a retry")
    return requests


def process_alive(pid: int, run_started: float) -> bool:
    """True while the process ``pid``, which started a run at ``run_started`` (a timestamp), is
    alive on this host: not a zombie, and not a later process that was given the same pid.

    The command line says nothing: a run launched from the UI or a schedule runs in a
    ``multiprocessing`` child of the code server, whose command line does not name Dagster.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return True  # no procfs (macOS): the pid exists, which is all we can tell
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return False
    # After the command name: field 3 is the state, field 22 the start time in clock ticks.
    state, start_ticks = fields[0], int(fields[19])
    process_started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    return state != "Z" and process_started <= run_started + PID_CLOCK_SLACK_SECONDS


def run_process(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that executes the run (in-process executor: the run worker), and
    when the run started."""
    starts = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    if not starts or starts[-1].dagster_event is None:
        return None
    return starts[-1].dagster_event.pid, starts[-1].timestamp


def runs_execute_on_this_host(instance: DagsterInstance) -> bool:
    """True when the instance launches runs as processes of this host (Dagster's default run
    launcher: ``dagster dev``, the CLI), so a run's pid can be looked up here. Other launchers
    (Docker, Kubernetes) run them elsewhere, and their run monitoring frees dead runs' slots."""
    return isinstance(instance.run_launcher, DefaultRunLauncher)


def release_dead_run_slots(
    instance: DagsterInstance, alive: Callable[[int, float], bool] = process_alive
) -> list[str]:
    """Free the ``duckdb`` pool slots of runs that can no longer use them; returns their run ids.

    A finished run's slots are freed; a started run whose process is gone is first marked
    failed. Only when runs execute on this host (``runs_execute_on_this_host``): elsewhere
    their pids mean nothing here.
    """
    if not runs_execute_on_this_host(instance):
        return []
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(DUCKDB_POOL)
    holders = {slot.run_id for slot in info.claimed_slots if slot.run_id}
    holders |= {step.run_id for step in info.pending_steps}
    released = []
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            if run.status != DagsterRunStatus.STARTED:
                continue
            process = run_process(instance, run_id)
            if process is None or alive(*process):
                continue
            pid = process[0]
            instance.report_run_failed(
                run,
                message=f"The run's process ({pid}) is gone: marked failed and its "
                f"'{DUCKDB_POOL}' pool slots freed.",
            )
        storage.free_concurrency_slots_for_run(run_id)
        released.append(run_id)
    return released


@sensor(
    name="duckdb_pool_slots",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Frees the '{DUCKDB_POOL}' pool slots of runs whose process died (kill -9, "
    "out of memory), so later runs do not wait for them forever.",
)
def duckdb_pool_slots(context: SensorEvaluationContext):
    released = release_dead_run_slots(context.instance)
    for run_id in released:
        context.log.warning("freed the '%s' pool slots of run %s", DUCKDB_POOL, run_id)
    return SkipReason(f"freed the slots of {len(released)} run(s)")


sensors: list[SensorDefinition] = [market_intel_late_data_retry, duckdb_pool_slots]


def main(argv: list[str]) -> int:
    if argv != ["release-dead-slots"]:
        print("usage: python -m pipelines.sensors release-dead-slots", file=sys.stderr)
        return 2
    with DagsterInstance.get() as instance:
        for run_id in release_dead_run_slots(instance):
            print(f"freed the '{DUCKDB_POOL}' pool slots of dead run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
