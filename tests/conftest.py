"""Shared fixtures: a pipeline in a temporary folder, the runs several modules read (the demo
date, the reference replay), the optional reference data, and the guards that keep every test
offline and silent. Also how `make test` spreads the modules over pytest-xdist workers."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dagster import DagsterEventType, DagsterInstance

from market_intel.settings import DEMO_DATA_DIR, PROJECT_ROOT
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG

REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "reference-data"
DEMO_DATE = "2026-03-22"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """The real series in ../shared/reference-data; tests using it skip when it is absent."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip("../shared/reference-data is not present")
    return REFERENCE_DATA


# --- offline and silent -------------------------------------------------------------------

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Settings that would make a test send something: reports, alerts, LLM prompts.
SENDING_SETTINGS = ("MARKET_INTEL_NOTIFY_URLS", "MARKET_INTEL_ALERT_URLS")


def refuse_remote_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python sockets may connect to this machine only (a Dagster webserver, a stub server)."""
    import socket

    connect = socket.socket.connect

    def local_only(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise RuntimeError(f"a test tried to open a network connection to {address}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


def refuse_remote_curl(monkeypatch: pytest.MonkeyPatch) -> None:
    """curl_cffi (yfinance's client) opens its sockets in C, past the socket guard: its session
    may reach this machine only. ``tests/transports/yahoo.FakeYahoo.install`` replaces the same
    method, so a test that installs the fake gets the fake."""
    from curl_cffi import requests as curl_requests

    request = curl_requests.Session.request

    def local_only(session, method, url, *args, **kwargs):
        if urlsplit(str(url)).hostname not in LOOPBACK:
            raise RuntimeError(f"a test tried to reach {url} through curl_cffi")
        return request(session, method, url, *args, **kwargs)

    monkeypatch.setattr(curl_requests.Session, "request", local_only)


def send_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No delivery or alert target, no LLM endpoint, whatever the developer's shell has."""
    for name in SENDING_SETTINGS:
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("MARKET_INTEL_LLM_BASE_URL", raising=False)


@pytest.fixture(scope="session", autouse=True)
def offline_and_silent() -> Iterator[None]:
    """For the whole session, module and session fixtures included (they run before any
    function-scoped guard): no connection off this machine, and nothing a developer's shell
    configured to send reaches a test."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        refuse_remote_sockets(monkeypatch)
        refuse_remote_curl(monkeypatch)
        send_nothing(monkeypatch)
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection beyond this machine in a test is a bug: fail loudly instead of reaching out.
    Local sockets (a Dagster webserver the test started) are fine."""
    refuse_remote_sockets(monkeypatch)


# --- the pipeline -------------------------------------------------------------------------


class Pipeline:
    """The project's Definitions run in-process against a temporary DuckDB and reports folder."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, source: str = "demo"):
        self.root = root
        self.db = root / "market_intel.duckdb"
        self.reports = root / "reports"
        self.replay = root / "replay"
        self.run_id: str | None = None
        monkeypatch.setenv("MARKET_INTEL_DB", str(self.db))
        monkeypatch.setenv("MARKET_INTEL_REPORTS_DIR", str(self.reports))
        monkeypatch.setenv("MARKET_INTEL_REPLAY_DIR", str(self.replay))
        monkeypatch.setenv("MARKET_INTEL_SOURCE", source)
        self.monkeypatch = monkeypatch

    def use_replay_of_demo(self) -> Path:
        """Switch to replay mode over a copy of the demo data, for tests that corrupt it."""
        shutil.copytree(DEMO_DATA_DIR, self.replay, dirs_exist_ok=True)
        self.monkeypatch.setenv("MARKET_INTEL_SOURCE", "replay")
        return self.replay

    def copy_from(self, other: "Pipeline") -> "Pipeline":
        """Start from copies of ``other``'s database and reports: what its runs built, without
        running them again, and without changing ``other`` for the tests that read it."""
        for path in other.root.glob(f"{other.db.name}*"):  # the file, and its WAL if any
            shutil.copy2(path, self.root / path.name.replace(other.db.name, self.db.name))
        if other.reports.exists():
            shutil.copytree(other.reports, self.reports, dirs_exist_ok=True)
        self.run_id = other.run_id
        return self

    def run(
        self,
        first: str,
        last: str | None = None,
        selection: list | None = None,
        raise_on_error: bool = True,
    ):
        """Materialize report dates ``first..last`` (inclusive) in one run."""
        from pipelines.definitions import defs

        job = defs.resolve_job_def("market_intel_job")
        tags = {}
        partition_key = first
        if last is not None:
            tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
            partition_key = None
        return job.execute_in_process(
            partition_key=partition_key,
            tags=tags,
            instance=DagsterInstance.ephemeral(),
            asset_selection=selection,
            raise_on_error=raise_on_error,
        )

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        import duckdb

        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()


def what_failed(result) -> list[str]:
    """A run's failed steps and failed checks, for an assertion's message."""
    failed = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data.error:
            failed.append(event.step_failure_data.error.message)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.asset_check_evaluation_data
            if not check.passed:
                failed.append(check.description or check.asset_check_key.to_user_string())
    return failed


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield Pipeline(tmp_path, monkeypatch)


# --- runs shared by the session: tests read them; a test that runs more works on a copy -----


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The whole pipeline on the demo data for DEMO_DATE (what `make demo` runs), once."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        send_nothing(monkeypatch)  # even if built while a module fixture configured some
        pipeline = Pipeline(tmp_path_factory.mktemp("demo"), monkeypatch)
        result = pipeline.run(DEMO_DATE)
        assert result.success, what_failed(result)
        pipeline.run_id = result.run_id
    return pipeline


@pytest.fixture
def demo_copy(pipeline: Pipeline, demo_run: Pipeline) -> Pipeline:
    """The demo run's database and reports, copied into this test's pipeline (which its runs
    use, in demo mode): for a test that runs the pipeline again on top of the demo date."""
    return pipeline.copy_from(demo_run)


# instrument id -> reference file (SOURCES.md: Yahoo for US and HSCEI, Sina close-only for the
# other Hong Kong and A-share indices, Binance spot for crypto).
REFERENCE_FILES = {
    "us/GSPC": "sp500_GSPC.csv",
    "us/IXIC": "nasdaq_composite_IXIC.csv",
    "us/DJI": "dow_jones_DJI.csv",
    "hk/HSI": "hsi_HSI_close_only.csv",
    "hk/HSCEI": "hscei_HSCE.csv",
    "hk/HSTECH": "hstech_HSTECH_close_only.csv",
    "cn/sh000001": "sse_composite_000001.SH_close_only.csv",
    "cn/sz399001": "szse_component_399001.SZ_close_only.csv",
    "cn/sz399006": "chinext_399006.SZ_close_only.csv",
    "crypto/BTC-USDT": "btc_usdt_binance.csv",
    "crypto/ETH-USDT": "eth_usdt_binance.csv",
}
# Years of history in one run: the raw feeds fetch sessions from R-1 - LOOKBACK_DAYS on.
REFERENCE_LOOKBACK_DAYS = 4000


@pytest.fixture(scope="session")
def reference_run(reference_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """DEMO_DATE replayed from the real closes over years, once: the reference files linked
    (never copied) into a temporary replay dir. Skips when the reference data is absent."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        send_nothing(monkeypatch)
        pipeline = Pipeline(tmp_path_factory.mktemp("reference"), monkeypatch, "replay")
        for instrument_id, name in REFERENCE_FILES.items():
            link = pipeline.replay / f"{instrument_id}.csv"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(reference_data / name)
        monkeypatch.setenv("MARKET_INTEL_LOOKBACK_DAYS", str(REFERENCE_LOOKBACK_DAYS))
        result = pipeline.run(DEMO_DATE, raise_on_error=False)
        assert result.success, what_failed(result)
        pipeline.run_id = result.run_id
    return pipeline


def step_intervals(instance: DagsterInstance) -> list[tuple[float, float, str, str]]:
    """(start, end, run, step) of every step of every run, from the instance's event log."""
    intervals = []
    for run in instance.get_runs():
        starts = {}
        for event in instance.all_logs(run.run_id):
            kind = event.dagster_event_type
            if kind == DagsterEventType.STEP_START:
                starts[event.step_key] = event.timestamp
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                intervals.append(
                    (starts[event.step_key], event.timestamp, run.run_id, event.step_key)
                )
    return sorted(intervals)


# --- pytest-xdist: which modules share a worker, longest first -----------------------------

# `make test` runs `pytest -n ... --dist loadgroup --no-loadscope-reorder`. Each group below runs
# on one worker, and every other module is a group of its own (pytest-xdist 3.8's own loadgroup
# marks tests by rewriting a node id attribute pytest 9 no longer has, hence the scheduler
# here). The modules reading the session's demo and reference runs share a worker, so that
# those runs are built once. test_ui and test_operations share one because `dagster dev`
# rewrites dbt_project/target/manifest.json (dagster-dbt prepares the project in dev), which
# the CLI runs of test_operations read as they start.
XDIST_GROUPS = {
    "test_ui": "dagster_processes",
    "test_operations": "dagster_processes",
    "test_pipeline": "demo_and_reference_runs",
    "test_report": "demo_and_reference_runs",
    "test_report_index": "demo_and_reference_runs",
    "test_report_layout": "demo_and_reference_runs",
    "test_divergence_history": "demo_and_reference_runs",
    "test_connectivity": "demo_and_reference_runs",
    "test_facts_reference": "demo_and_reference_runs",
}
# Groups by their time alone here (225, 115, 70, 65, 55, 40 and 20 s), longest first: xdist
# hands the groups out in collection order, and a long group started last would keep one
# worker busy while the others are idle.
LONGEST_FIRST = [
    "dagster_processes",
    "test_postgres",
    "demo_and_reference_runs",
    "test_chaos",
    "test_gate",
    "test_calendar_cases",
    "test_delivery",
    "test_calendar_provisional",
    "test_gate_findings",
    "test_raw_checks",
]


def xdist_group(path: str) -> str:
    """The group of a test module, given its path or a test's node id."""
    module = Path(path.split("::")[0]).stem
    return XDIST_GROUPS.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With ``--dist loadgroup``: one work unit per group of XDIST_GROUPS."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return ModuleGroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest groups first and, in a group, the slow tests first: xdist hands a worker its
    next group once two tests of the current one are left, so those should be quick ones. The
    sort is stable: a module's other tests keep their order."""

    def rank(item: pytest.Item) -> tuple[int, bool]:
        group = xdist_group(item.nodeid)
        longest = LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)
        return longest, item.get_closest_marker("slow") is None

    items.sort(key=rank)
