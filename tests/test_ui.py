"""The UI's way in: ``dagster dev`` (webserver, daemon, code server) on the demo data, driven
through the GraphQL API the UI itself calls: a range backfill, and the daily schedule.

Runs launched this way differ from CLI runs: the daemon plans them, and they execute in a
``multiprocessing`` child of the code server, next to the sensors.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from market_intel.settings import PROJECT_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))
INSTANCE_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
LOCATION = {"repositoryLocationName": "pipelines.definitions", "repositoryName": "__repository__"}
TIMEOUT = 300
# `dagster dev` shuts its services down within about 10 s of a Ctrl-C here.
STOP_TIMEOUT = 30
# `dagster dev` and the backfill daemon's ticks, 30 s apart: about two minutes here.
pytestmark = pytest.mark.slow


class DagsterDev:
    """``dagster dev`` in its own process group, with a GraphQL client."""

    def __init__(self, root: Path):
        self.root = root
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = root / "dagster-dev.log"
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DAGSTER_HOME": str(home),
            "MARKET_INTEL_SOURCE": "demo",
            "MARKET_INTEL_DB": str(root / "market_intel.duckdb"),
            "MARKET_INTEL_REPORTS_DIR": str(root / "reports"),
        }
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [DAGSTER, "dev", "-w", "workspace.yaml", "-p", str(self.port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def query(self, text: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            json.dumps({"query": text, "variables": variables or {}}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer
        return answer["data"]

    def wait_for(self, condition, what: str):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.tail()}"
            try:
                value = condition()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(2)
        pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-4000:]

    def stop(self) -> None:
        """Ctrl-C, as a person stops it: SIGINT to the whole process group (``dagster dev``, the
        webserver, the daemon, code servers), then whatever is left once ``dagster dev`` has
        shut its services down (a code server waiting for its heartbeat) is killed."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    dev = DagsterDev(tmp_path_factory.mktemp("ui"))
    try:
        dev.wait_for(
            lambda: dev.query("{ assetNodes { assetKey { path } } }")["assetNodes"],
            "the code location to load",
        )
        yield dev
    finally:
        dev.stop()


def test_a_range_backfill_launched_in_the_ui_is_one_run_that_publishes_every_date(
    dagster_dev: DagsterDev,
) -> None:
    """The backfill of ``market_intel_job``'s page (Jobs, market_intel_job, Partitions): every
    asset, dated or not, in one run of the job over the range."""
    launched = dagster_dev.query(
        """mutation($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
          } }""",
        {
            "params": {
                "selector": {
                    "partitionSetName": "market_intel_job_partition_set",
                    "repositorySelector": LOCATION,
                },
                "partitionNames": ["2026-03-21", "2026-03-22"],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished() -> dict | None:
        backfill = dagster_dev.query(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
              ... on PartitionBackfill { status runs(limit: 10) { status jobName tags { key value } } }
            } }""",
            {"id": launched["backfillId"]},
        )["partitionBackfillOrError"]
        return backfill if backfill["status"].startswith(("COMPLETED", "FAILED")) else None

    backfill = dagster_dev.wait_for(finished, "the backfill to finish")
    assert backfill["status"] == "COMPLETED_SUCCESS", dagster_dev.tail()
    (run,) = backfill["runs"]
    assert (run["status"], run["jobName"]) == ("SUCCESS", "market_intel_job")
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert tags["dagster/asset_partition_range_start"] == "2026-03-21"
    assert tags["dagster/asset_partition_range_end"] == "2026-03-22"
    for report_date in ("2026-03-21", "2026-03-22"):
        report = json.loads((dagster_dev.root / "reports" / f"{report_date}.json").read_text())
        assert report["report_date"] == report_date


def test_the_daily_schedule_is_visible_and_startable_in_the_ui(dagster_dev: DagsterDev) -> None:
    schedules = dagster_dev.query(
        """query($location: RepositorySelector!) { schedulesOrError(repositorySelector: $location) {
          ... on Schedules { results { name cronSchedule executionTimezone
            scheduleState { status } } } } }""",
        {"location": LOCATION},
    )["schedulesOrError"]["results"]
    (daily,) = [s for s in schedules if s["name"] == "market_intel_daily"]
    assert (daily["cronSchedule"], daily["executionTimezone"]) == ("20 0 * * *", "UTC")
    assert daily["scheduleState"]["status"] == "STOPPED"
    started = dagster_dev.query(
        """mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
          __typename ... on ScheduleStateResult { scheduleState { status } } } }""",
        {"selector": {**LOCATION, "scheduleName": "market_intel_daily"}},
    )["startSchedule"]
    assert started["scheduleState"]["status"] == "RUNNING", started
