"""Dagster resources, each configured from the environment (``EnvVar``) in ``definitions.py``."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import (
    ConfigurableResource,
    DagsterInstance,
    InitResourceContext,
    get_dagster_logger,
)
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from market_intel.settings import absolute_path
from market_intel.sources import RawSource
from market_intel.storage import DUCKDB_POOL
from pipelines.writer_lock import exclusive_writer


class MarketSource(ConfigurableResource):
    """Where raw data comes from (``market_intel.sources.RawSource``), configured from the
    environment: a thin client whose ``client()`` logs to the step that uses it."""

    mode: str = Field(description="live, replay or demo (MARKET_INTEL_SOURCE)")
    replay_dir: str = Field(description="replay directory (MARKET_INTEL_REPLAY_DIR)")
    ccxt_exchanges: str = Field(description="ccxt exchange fallback chain, comma-separated")
    requests_per_minute: int = Field(description="throttle for live sources that ban bursts")
    lookback_days: int = Field(description="days of history fetched before a window's sessions")
    stablecoins: str = Field(default="USDT,USDC", description="stablecoin symbols to track")
    defi_top_protocols: int = Field(default=50, description="protocols tracked by TVL rank")

    def client(self) -> RawSource:
        return RawSource(
            mode=self.mode,
            replay_dir=self.replay_dir,
            ccxt_exchanges=self.ccxt_exchanges,
            requests_per_minute=self.requests_per_minute,
            lookback_days=self.lookback_days,
            stablecoins=self.stablecoins,
            defi_top_protocols=self.defi_top_protocols,
            log=get_dagster_logger(),
        )


class ReportPublisher(ConfigurableResource):
    """Writes report files; each file is replaced atomically, so a failure leaves the old one."""

    reports_dir: str = Field(description="where reports are written (MARKET_INTEL_REPORTS_DIR)")
    partial: str = Field(
        default="false",
        description="true: publish without a market whose ERROR checks fail, marked as left "
        "out, instead of blocking the whole report (MARKET_INTEL_PARTIAL_REPORTS)",
    )

    @property
    def partial_reports(self) -> bool:
        return self.partial.strip().lower() in ("1", "true", "yes")

    def publish(self, report_date: date, contents: dict[str, str]) -> dict[str, Path]:
        """Write ``<date>.<suffix>`` for each suffix; returns the paths by suffix."""
        directory = Path(absolute_path(self.reports_dir))
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for suffix, text in contents.items():
            path = directory / f"{report_date.isoformat()}.{suffix}"
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
            paths[suffix] = path
        return paths


class SingleWriterDuckDB(DuckDBResource):
    """dagster-duckdb's resource, each connection held under the file's writer lock
    (``pipelines/writer_lock.py``): one writer at a time whatever the Dagster instance.

    At a run's start it also checks that the instance limits the ``duckdb`` pool, which
    schedules the steps of concurrent runs instead of letting them queue on the lock.
    """

    _holder: str = PrivateAttr(default="")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._holder = f"run {context.run_id} (pid {os.getpid()})"
        if context.instance is not None and context.run_id not in _POOL_CHECKED_RUNS:
            _POOL_CHECKED_RUNS.add(context.run_id)
            warning = missing_pool_warning(context.instance)
            if warning:
                context.log.warning(warning)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """The file's writer lock alone, for a step that opens the file elsewhere (dbt)."""
        log = get_dagster_logger().info
        holder = self._holder or f"pid {os.getpid()}"
        with exclusive_writer(absolute_path(self.database), holder, log):
            yield

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.writer_lock(), super().get_connection() as conn:
            yield conn


# Runs whose pool configuration was checked in this process: one line per run, not per step.
_POOL_CHECKED_RUNS: set[str] = set()
POOL_DOCS = "docs/operations.md#one-writer"
POOL_FIX = "concurrency: {pools: {granularity: op, default_limit: 1}}"


def missing_pool_warning(instance: DagsterInstance) -> str | None:
    """One line when the instance sets no limit for the ``duckdb`` pool, with the fix."""
    if instance.get_concurrency_config().pool_config.default_pool_limit is not None:
        return None
    storage = instance.event_log_storage
    if (
        storage.supports_global_concurrency_limits
        and storage.get_concurrency_info(DUCKDB_POOL).slot_count
    ):
        return None
    return (
        f"This Dagster instance sets no limit for the pool {DUCKDB_POOL!r}: steps of concurrent "
        f"runs take turns on the DuckDB file's lock instead of being scheduled. Fix: in "
        f"$DAGSTER_HOME/dagster.yaml, {POOL_FIX} ({POOL_DOCS})."
    )


class ReportDelivery(ConfigurableResource):
    """Who receives the published report, and the alert of a blocked date (docs/delivery.md).

    The URLs are Apprise URLs and secrets: delivery hands them to Apprise and shows, logs and
    stores only Apprise's privacy form of each. No ``notify_urls``: nothing is delivered.
    """

    notify_urls: str = Field(
        default="",
        description="comma-separated Apprise URLs of the readers (MARKET_INTEL_NOTIFY_URLS)",
    )
    alert_urls: str = Field(
        default="",
        description="comma-separated Apprise URLs told of a blocked date (MARKET_INTEL_ALERT_URLS)",
    )
    reports_base_url: str = Field(
        default="",
        description="where reports are served: chat notes link <base>/<date>.html, else the "
        "file's path (MARKET_INTEL_REPORTS_BASE_URL)",
    )
    force: str = Field(
        default="false",
        description="true: deliver dates already delivered again (MARKET_INTEL_NOTIFY_FORCE)",
    )
    backfill: str = Field(
        default="latest",
        description="which published dates of a range run are delivered: latest, all or none "
        "(MARKET_INTEL_NOTIFY_BACKFILL)",
    )
    retries: int = Field(
        default=3, description="retries of a failed send, per target (MARKET_INTEL_NOTIFY_RETRIES)"
    )
    retry_seconds: int = Field(
        default=5,
        description="wait before the first retry, doubled before each next one "
        "(MARKET_INTEL_NOTIFY_RETRY_SECONDS)",
    )

    @property
    def forced(self) -> bool:
        return self.force.strip().lower() in ("1", "true", "yes")
