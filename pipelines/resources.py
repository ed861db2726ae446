"""Dagster resources, each configured from the environment (``EnvVar``) in ``definitions.py``."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from importlib import metadata
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource, get_dagster_logger
from dagster_dbt import DbtCliResource
from packaging.version import Version
from pydantic import Field

from assets import calendars
from assets.feeds import (
    BAR_FRAME_COLUMNS,
    FeedError,
    Throttle,
    akshare_breadth,
    akshare_indices,
    bar_frame,
    crypto,
    defillama,
    replay,
    yahoo,
)
from assets.storage import ReportWindow
from assets.universe import Instrument, Market, markets
from pipelines.settings import DEMO_DATA_DIR, absolute_path

SOURCE_MODES = ("live", "replay", "demo")
# Quotes move from the pre-open auction on (A-shares: 09:15 for a 09:30 open).
PRE_OPEN = pd.Timedelta(minutes=15)


@dataclass
class FeedBatch:
    """What one feed answered for a window: rows, plus what it could not provide and why."""

    frame: pd.DataFrame
    unavailable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplayTable:
    """A replay CSV for a feed that is not per instrument (design.md, "Replay format")."""

    name: str
    columns: tuple[str, ...]


BREADTH_FILE = ReplayTable(
    "cn/breadth", ("date", "advancers", "decliners", "unchanged", "turnover_cny")
)
STOCK_BARS_FILE = ReplayTable(
    "cn/stock_bars",
    ("date", "stock_code", "close", "previous_close", "volume", "turnover_cny"),
)
PROTOCOLS_FILE = ReplayTable("defi/protocols", ("date", "protocol", "category", "tvl_usd"))
STABLECOINS_FILE = ReplayTable("defi/stablecoins", ("date", "symbol", "circulating_usd"))


class MarketSource(ConfigurableResource):
    """Where raw data comes from: ``live`` feeds, a ``replay`` directory, or the ``demo`` sample.

    Every method answers the same columns whatever the mode, so everything downstream is
    identical; rows carry ``source`` (the live function or venue, or replay/demo) and
    ``is_fallback``.
    """

    mode: str = Field(description="live, replay or demo (MARKET_INTEL_SOURCE)")
    replay_dir: str = Field(description="replay directory (MARKET_INTEL_REPLAY_DIR)")
    ccxt_exchanges: str = Field(description="ccxt exchange fallback chain, comma-separated")
    requests_per_minute: int = Field(description="throttle for live sources that ban bursts")
    lookback_days: int = Field(description="days of history fetched before a window's sessions")
    stablecoins: str = Field(default="USDT,USDC", description="stablecoin symbols to track")
    defi_top_protocols: int = Field(default=50, description="protocols tracked by TVL rank")

    @property
    def is_live(self) -> bool:
        if self.mode not in SOURCE_MODES:
            raise ValueError(f"MARKET_INTEL_SOURCE={self.mode!r}: expected one of {SOURCE_MODES}")
        return self.mode == "live"

    def data_dir(self) -> Path:
        return DEMO_DATA_DIR if self.mode == "demo" else Path(absolute_path(self.replay_dir))

    def throttle(self) -> Throttle:
        return Throttle(self.requests_per_minute)

    def fetch_bars(
        self, market: Market, instruments: tuple[Instrument, ...], start: date, end: date
    ) -> FeedBatch:
        """Daily bars with ``start <= session_date < end`` for the market's instruments."""
        log = get_dagster_logger()
        frames, unavailable = [], []
        throttle = self.throttle()
        failures = []
        for instrument in instruments:
            if self.is_live:
                try:
                    frame = self._live_bars(market, instrument, start, end, throttle)
                except FeedError as error:
                    # One instrument down is reported (and caught by the freshness check);
                    # the others of the market still land.
                    log.error("%s", error)
                    failures.append(error)
                    unavailable.append(f"{instrument.instrument_id}: {error}")
                    continue
            else:
                bars = replay.read_bars(self.data_dir(), instrument.instrument_id, market.feed)
                frame = (
                    None if bars is None else bar_frame(instrument.instrument_id, bars, self.mode)
                )
            if frame is None:
                unavailable.append(f"{instrument.instrument_id}: no {self.mode} file")
                continue
            frame = frame[(frame["session_date"] >= start) & (frame["session_date"] < end)]
            if frame.empty:
                unavailable.append(f"{instrument.instrument_id}: no data from {start} to {end}")
            log.info(
                "[%s] %s: %d bars from %s to %s",
                market.feed,
                instrument.instrument_id,
                len(frame),
                start,
                end,
            )
            frames.append(frame)
        if failures and len(failures) == len(instruments):
            raise FeedError(
                market.feed, market.market, f"every instrument failed from {start} to {end}"
            ) from failures[-1]
        return self._batch(frames, unavailable, BAR_FRAME_COLUMNS)

    def _live_bars(
        self, market: Market, instrument: Instrument, start: date, end: date, throttle: Throttle
    ) -> pd.DataFrame:
        if market.feed == "yfinance":
            throttle.wait()
            return yahoo.fetch_bars(instrument, start, end)
        if market.feed == "ccxt":
            chain = [name.strip() for name in self.ccxt_exchanges.split(",") if name.strip()]
            return crypto.fetch_bars(instrument, start, end, chain, throttle)
        if market.feed == "akshare":
            return akshare_indices.fetch_bars(instrument, start, end, throttle)
        raise NotImplementedError(f"no live adapter for feed {market.feed!r} ({market.market})")

    def fetch_breadth(self, start: date, end: date, now: datetime | None = None) -> FeedBatch:
        """A-share breadth and turnover per session, ``start <= session_date < end``.

        Live, only today's snapshot exists: it is taken when the latest completed session is in
        the window and the next one has not begun. Past sessions come from per-stock bars.
        """
        if not self.is_live:
            batch = self._replay_table(BREADTH_FILE, start, end)
            batch.frame["market"] = "cn"
            return batch
        session = latest_completed_session("cn", now or datetime.now(UTC))
        if session is None or not start <= session < end:
            return FeedBatch(
                pd.DataFrame(),
                [f"cn/breadth: no snapshot for {start}..{end}; history comes from stock bars"],
            )
        frame = akshare_breadth.fetch_breadth_snapshot(session, self.throttle())
        return FeedBatch(frame.assign(market="cn"))

    def fetch_stock_bars(
        self,
        window: ReportWindow,
        already_done: set[str],
        sink: Callable[[list[str], pd.DataFrame], None],
        log: logging.Logger,
        now: datetime | None = None,
    ) -> int:
        """Per-stock A-share bars for breadth history; ``sink`` saves each batch as it arrives.

        Live, this is for backfills only (about 5,000 calls): a window whose sessions reach the
        latest completed one is left to the daily snapshot (``fetch_breadth``).
        """
        if not self.is_live:
            batch = self._replay_table(STOCK_BARS_FILE, *window.fetch_range(self.lookback_days))
            frame = batch.frame[~batch.frame["stock_code"].isin(already_done)]
            codes = sorted(frame["stock_code"].unique())
            if codes:
                sink(codes, frame)
            return len(codes)
        start, end = window.owned_sessions
        latest = latest_completed_session("cn", now or datetime.now(UTC))
        if latest is None or latest < end:
            log.info(
                "cn_stock_bars: %s..%s reaches today; breadth comes from the snapshot", start, end
            )
            return 0
        throttle = self.throttle()
        codes = akshare_breadth.fetch_stock_codes(throttle)

        def save(code: str, bars: pd.DataFrame) -> None:
            sink(
                [code],
                stamp(bars.assign(stock_code=code), f"{akshare_breadth.FEED}:stock_zh_a_hist"),
            )

        return akshare_breadth.fetch_universe_history(
            codes, start, end, throttle, already_done, save, log
        )

    def fetch_protocol_tvl(self, start: date, end: date) -> FeedBatch:
        """DeFi protocol TVL with category per UTC day, ``start <= session_date < end``."""
        if not self.is_live:
            return self._replay_table(PROTOCOLS_FILE, start, end)
        frame = defillama.fetch_protocol_tvl(start, end, self.throttle(), self.defi_top_protocols)
        return FeedBatch(frame.rename(columns={"date": "session_date"}))

    def fetch_stablecoins(self, start: date, end: date) -> FeedBatch:
        """Stablecoin circulating supply in USD per UTC day, ``start <= session_date < end``."""
        if not self.is_live:
            return self._replay_table(STABLECOINS_FILE, start, end)
        symbols = [symbol.strip() for symbol in self.stablecoins.split(",") if symbol.strip()]
        frame = defillama.fetch_stablecoin_supply(symbols, start, end, self.throttle())
        return FeedBatch(frame.rename(columns={"date": "session_date"}))

    def _replay_table(self, table: ReplayTable, start: date, end: date) -> FeedBatch:
        """A feed-wide replay CSV in the window; a missing file is unavailable, not an error."""
        path = replay.replay_path(self.data_dir(), table.name)
        if not path.exists():
            get_dagster_logger().warning("unavailable: %s: no %s file", table.name, self.mode)
            empty = pd.DataFrame(columns=["session_date", *table.columns[1:]])
            return FeedBatch(stamp(empty, self.mode), [f"{table.name}: no {self.mode} file"])
        frame = replay.read_csv(path, table.columns, self.mode, table.name)
        frame["session_date"] = pd.to_datetime(frame.pop("date"), format="ISO8601").dt.date
        frame = frame[(frame["session_date"] >= start) & (frame["session_date"] < end)]
        return FeedBatch(stamp(frame, self.mode))

    @staticmethod
    def _batch(frames: list[pd.DataFrame], unavailable: list[str], columns: list[str]) -> FeedBatch:
        log = get_dagster_logger()
        for message in unavailable:
            log.warning("unavailable: %s", message)
        rows = [frame for frame in frames if not frame.empty]
        combined = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
        return FeedBatch(combined, unavailable)


def stamp(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Provenance columns every raw row carries."""
    return frame.assign(
        source=source, is_fallback=False, fetched_at=datetime.now(UTC).replace(tzinfo=None)
    )


def latest_completed_session(market: str, now: datetime) -> date | None:
    """The market's last session that has closed by ``now``, if no later session has begun."""
    calendar_name = markets()[market].calendar
    window = calendars.sessions(
        calendar_name, (now - timedelta(days=15)).date(), now.date() + timedelta(days=2)
    )
    now_utc = pd.Timestamp(now).tz_convert("UTC").tz_localize(None)
    closed = window[window["close_utc"] <= now_utc]
    begun = window[window["open_utc"] - PRE_OPEN <= now_utc]
    if closed.empty or len(begun) > len(closed):
        return None
    return closed["session_date"].iloc[-1]


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


class DbtCoreResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, without two costs this project does not need.

    At every dbt step dagster-dbt runs ``dbt --version`` in a subprocess, to tell dbt-core from
    the Fusion engine, and loads the dbt project in-process for an adapter, used only to fetch
    row counts and column metadata: 2.4 s and 1 s of a 20 s daily run here.
    ``settings.DBT_EXECUTABLE`` is this environment's dbt-core, so its version is the installed
    package's; and the dbt assets attach no row counts or column metadata (``assets/dbt.py``).
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None
