"""The batched event log (the project's one private Dagster seam) records exactly what
Dagster's own SQLite event log records, on the one Dagster version it was checked against."""

import inspect
import os
import sqlite3
from contextlib import closing
from importlib import metadata
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)

from pipelines import event_log
from pipelines.event_log import BatchedSqliteEventLogStorage

BATCHED_YAML = """
event_log_storage:
  module: pipelines.event_log
  class: BatchedSqliteEventLogStorage
"""
DAYS = DailyPartitionsDefinition("2025-01-01")
RANGE = {
    "dagster/asset_partition_range_start": "2025-01-01",
    "dagster/asset_partition_range_end": "2025-02-14",
}
FIRST, LAST = AssetKey("first"), AssetKey("second")


@asset(name="first", partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def first_table() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 3})


@asset(
    name="second",
    deps=[first_table],
    partitions_def=DAYS,
    backfill_policy=BackfillPolicy.single_run(),
)
def second_table() -> None:
    """Partitioned like ``first`` and run in the same single run."""


@asset_check(asset=first_table)
def first_is_fine() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@pytest.fixture(autouse=True)
def batch_size_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start without ``DAGSTER_EVENT_BATCH_SIZE``, and leave none behind for other tests; plan
    range runs as the project does (``market_intel.settings.PROCESS_ENVIRONMENT``)."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")


def test_the_seam_is_checked_against_the_installed_dagster() -> None:
    """Fails on a Dagster upgrade, on purpose: pipelines/event_log.py overrides private methods
    of SqliteEventLogStorage (``_connect``, ``_store_asset_check_evaluation_planned``) and calls
    others (``_event_to_row``, ``_store_asset_event_tags``, ``_store_asset_event``), which a
    release may change silently.
    Run this file on the new version, read those methods again, then update TESTED_DAGSTER."""
    installed = metadata.version("dagster")
    assert installed == event_log.TESTED_DAGSTER, (
        f"Dagster {installed} is installed; pipelines/event_log.py was checked against "
        f"{event_log.TESTED_DAGSTER}: check its private overrides, then update TESTED_DAGSTER"
    )
    storage = event_log.SqliteEventLogStorage
    for name, parameters in {
        "_connect": ["self", "shard"],
        "_store_asset_check_evaluation_planned": ["self", "event", "event_id"],
        "_event_to_row": ["self", "event"],
        "_store_asset_event_tags": ["self", "conn", "events", "event_ids"],
        "_store_asset_event": ["self", "conn", "event", "event_id"],
    }.items():
        assert list(inspect.signature(getattr(storage, name)).parameters)[: len(parameters)] == (
            parameters
        ), f"SqliteEventLogStorage.{name} changed: pipelines/event_log.py relies on it"


def instance_at(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.from_config(str(home))


def recorded(instance: DagsterInstance) -> dict:
    """What the UI and Dagster's partition status read back, without ids and timestamps."""
    summary: dict = {}
    for key in (FIRST, LAST):
        records = instance.fetch_materializations(key, limit=1000).records
        latest = instance.get_latest_materialization_event(key)
        summary[key] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "events": sorted(
                (r.partition_key, getattr(r.asset_materialization.metadata.get("rows"), "value", 0))
                for r in records
            ),
            "latest": latest.dagster_event.partition,
            "planned": len(instance.fetch_planned_materializations(key, limit=1000).records),
        }
    (run,) = instance.get_runs()
    summary["run_events"] = [
        (e.dagster_event_type, e.dagster_event.partition if e.dagster_event else None)
        for e in instance.all_logs(run.run_id)
        if e.dagster_event_type
        in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    summary["check"] = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [first_is_fine.check_key]
    )[first_is_fine.check_key].status
    summary["last_run"] = (
        instance.get_asset_records([FIRST])[0].asset_entry.last_run_id == run.run_id
    )
    return summary


def check_rows(home: Path) -> list[tuple[str, int]]:
    """(status, rows) of the check's execution records, read straight from the index shard."""
    index = home / "history" / "runs" / "index.db"
    with closing(sqlite3.connect(index)) as conn:
        return conn.execute(
            "SELECT execution_status, count(*) FROM asset_check_executions GROUP BY 1 ORDER BY 1"
        ).fetchall()


def backfill(instance: DagsterInstance) -> None:
    result = materialize([first_table, second_table, first_is_fine], instance=instance, tags=RANGE)
    assert result.success


def test_batched_storage_records_what_dagster_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with instance_at(tmp_path / "default", "", monkeypatch) as instance:
        backfill(instance)
        expected = recorded(instance)

    batched_writes = []
    original = BatchedSqliteEventLogStorage._store_asset_events
    monkeypatch.setattr(
        BatchedSqliteEventLogStorage,
        "_store_asset_events",
        lambda self, events: batched_writes.append(len(events)) or original(self, events),
    )
    with instance_at(tmp_path / "batched", BATCHED_YAML, monkeypatch) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        backfill(instance)
        assert recorded(instance) == expected

    # Dagster plans the check once per date and its result completes none of those rows; here
    # it is planned once and completed.
    assert check_rows(tmp_path / "default") == [("PLANNED", 45), ("SUCCEEDED", 1)]
    assert check_rows(tmp_path / "batched") == [("SUCCEEDED", 1)]
    assert expected[FIRST]["materialized"][-1] == "2025-02-14"
    assert len(expected[FIRST]["materialized"]) == 45
    # Materialization events went through in batches, not one write each.
    assert sum(batched_writes) >= 2 * 45
    assert max(batched_writes) >= 45
    assert (tmp_path / "batched" / "history" / "runs" / "index.db").exists()


def test_batching_is_switched_on_unless_the_environment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with instance_at(tmp_path / "on", BATCHED_YAML, monkeypatch):
        assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) == event_log.DEFAULT_BATCH_SIZE
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "7")
    with instance_at(tmp_path / "set", BATCHED_YAML, monkeypatch):
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "7"


def test_a_missing_dagster_home_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(RuntimeError, match="DAGSTER_HOME"):
        BatchedSqliteEventLogStorage()
