"""Shared fixtures: a pipeline in a temporary folder, and the optional reference data."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.settings import DEMO_DATA_DIR, PROJECT_ROOT

REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "reference-data"


@pytest.fixture
def reference_data() -> Path:
    """The real series in ../shared/reference-data; tests using it skip when it is absent."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip("../shared/reference-data is not present")
    return REFERENCE_DATA


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection beyond this machine in a test is a bug: fail loudly instead of reaching out.
    Local sockets (a Dagster webserver the test started) are fine."""
    import socket

    connect = socket.socket.connect

    def local_only(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise RuntimeError(f"a test tried to open a network connection to {address}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


class Pipeline:
    """The project's Definitions run in-process against a temporary DuckDB and reports folder."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, source: str = "demo"):
        self.root = root
        self.db = root / "market_intel.duckdb"
        self.reports = root / "reports"
        self.replay = root / "replay"
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
            tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
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


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield Pipeline(tmp_path, monkeypatch)
