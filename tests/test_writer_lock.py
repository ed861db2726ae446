"""One writer on the DuckDB file whatever the Dagster instance: the file lock, and the run log's
line when the instance lacks the project's pool."""

import itertools
import multiprocessing
import shutil
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, materialize

from market_intel.settings import PROJECT_ROOT
from pipelines.resources import SingleWriterDuckDB, missing_pool_warning
from pipelines.writer_lock import current_holder, exclusive_writer, lock_path

INSTANCE_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
HOLD_SECONDS = 0.3


def hold(database: str, holder: str, intervals, log=lambda message: None) -> None:
    """Take the lock, note when it was held, and keep it a moment."""
    with exclusive_writer(database, holder, log):
        started = time.time()
        time.sleep(HOLD_SECONDS)
        intervals.append((started, time.time(), holder))


def assert_one_at_a_time(intervals: list[tuple[float, float, str]]) -> None:
    ordered = sorted(intervals)
    for (_, end, holder), (start, _, next_holder) in itertools.pairwise(ordered):
        assert end <= start, f"{holder} and {next_holder} held the file at once"


def test_processes_take_turns_and_a_waiter_names_the_holder(tmp_path: Path) -> None:
    database = str(tmp_path / "market_intel.duckdb")
    context = multiprocessing.get_context("spawn")
    intervals, waits = context.Manager().list(), context.Manager().list()
    contenders = [
        context.Process(target=hold, args=(database, f"run run-{n} (pid x)", intervals))
        for n in range(3)
    ]
    for process in contenders:
        process.start()
    deadline = time.monotonic() + 60
    while not current_holder(lock_path(database)).startswith("run run-"):
        assert time.monotonic() < deadline, "no contender ever took the lock"
        time.sleep(0.01)
    hold(database, "run waiting", intervals, waits.append)
    for process in contenders:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(intervals) == 4
    assert_one_at_a_time(list(intervals))
    # The waiter could start only once the others let go; whoever held it is named.
    assert any("held by run run-" in line and database in line for line in waits), list(waits)
    assert lock_path(database).read_text() == ""  # released: nobody named


def test_threads_take_turns_and_a_thread_may_nest(tmp_path: Path) -> None:
    database = str(tmp_path / "market_intel.duckdb")
    intervals: list = []
    threads = [
        threading.Thread(target=hold, args=(database, f"thread {n}", intervals)) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(intervals) == 3
    assert_one_at_a_time(intervals)
    with exclusive_writer(database, "outer", print), exclusive_writer(database, "inner", print):
        assert lock_path(database).read_text() == "outer"


def test_databases_that_are_no_local_file_need_no_lock() -> None:
    assert lock_path(":memory:") is None
    assert lock_path("md:market_intel") is None


@pytest.fixture
def default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``DAGSTER_HOME`` with no dagster.yaml: Dagster's default instance."""
    home = tmp_path / "default_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_a_run_on_an_instance_without_the_pool_says_so_once_with_the_fix(
    tmp_path: Path, default_home: Path
) -> None:
    resource = SingleWriterDuckDB(database=str(tmp_path / "market_intel.duckdb"))

    @asset
    def writes(duckdb: SingleWriterDuckDB) -> None:
        with duckdb.get_connection() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
            assert lock_path(resource.database).read_text().startswith("run ")

    @asset(deps=[writes])
    def reads(duckdb: SingleWriterDuckDB) -> None:
        with duckdb.get_connection() as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (1,)

    with DagsterInstance.from_config(str(default_home)) as instance:
        result = materialize([writes, reads], instance=instance, resources={"duckdb": resource})
        assert result.success
        warnings = [
            event.message
            for event in instance.all_logs(result.run_id)
            if "sets no limit for the pool 'duckdb'" in event.message
        ]
    assert len(warnings) == 1, warnings
    assert "default_limit: 1" in warnings[0] and "docs/operations.md" in warnings[0]


def test_the_projects_instance_has_the_pool_and_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert missing_pool_warning(instance) is None


def test_an_explicit_pool_limit_is_a_limit(default_home: Path) -> None:
    with DagsterInstance.from_config(str(default_home)) as instance:
        assert missing_pool_warning(instance)
        instance.event_log_storage.set_concurrency_slots("duckdb", 1)
        assert missing_pool_warning(instance) is None
