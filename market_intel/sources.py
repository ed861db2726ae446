"""Where raw data comes from, whatever the mode: the live feeds, a replay directory or the demo
sample, each answering the raw tables' columns (design.md, "Source modes")."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from market_intel.calendars import closed_sessions, last_closed_session, latest_completed_session
from market_intel.feeds import (
    FeedError,
    Throttle,
    akshare_breadth,
    bar_frame,
    connectivity,
    defillama,
    replay,
)
from market_intel.feeds.bars import LiveOptions, bar_feed
from market_intel.settings import DEMO_DATA_DIR, absolute_path
from market_intel.storage import ReportWindow, empty_frame
from market_intel.universe import Instrument, Market

LOG = logging.getLogger(__name__)

SOURCE_MODES = ("live", "replay", "demo")


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
    raw_table: str


BREADTH_FILE = ReplayTable(
    "cn/breadth", ("date", "advancers", "decliners", "unchanged", "turnover_cny"), "cn_breadth"
)
STOCK_BARS_FILE = ReplayTable(
    "cn/stock_bars",
    ("date", "stock_code", "close", "previous_close", "volume", "turnover_cny"),
    "cn_stock_bars",
)
PROTOCOLS_FILE = ReplayTable(
    "defi/protocols", ("date", "protocol", "category", "tvl_usd"), "defi_protocol_tvl"
)
STABLECOINS_FILE = ReplayTable(
    "defi/stablecoins", ("date", "symbol", "circulating_usd"), "stablecoin_supply"
)


# The probe of the run this process executes (``RawSource.source_health``), by run id.
_HEALTH_OF_RUN: dict[str, connectivity.Health] = {}


@dataclass(frozen=True)
class RawSource:
    """Where raw data comes from: ``live`` feeds, a ``replay`` directory, or the ``demo`` sample.

    Every method answers the same columns whatever the mode, so everything downstream is
    identical; rows carry ``source`` (the live function or venue, or replay/demo) and
    ``is_fallback``. The Dagster resource ``pipelines.resources.MarketSource`` configures one
    from the environment and hands it its step's logger.
    """

    mode: str
    replay_dir: str
    ccxt_exchanges: str
    requests_per_minute: int
    lookback_days: int
    stablecoins: str = "USDT,USDC"
    defi_top_protocols: int = 50
    log: logging.Logger = field(default=LOG, compare=False, repr=False)

    @property
    def is_live(self) -> bool:
        if self.mode not in SOURCE_MODES:
            raise ValueError(f"MARKET_INTEL_SOURCE={self.mode!r}: expected one of {SOURCE_MODES}")
        return self.mode == "live"

    def data_dir(self) -> Path:
        return DEMO_DATA_DIR if self.mode == "demo" else Path(absolute_path(self.replay_dir))

    def throttle(self) -> Throttle:
        return Throttle(self.requests_per_minute)

    def source_health(self, run_id: str) -> connectivity.Health:
        """The connectivity probe of every live source host, taken once per run: the job's
        steps share one process (in-process executor), so each raw asset reads the first one."""
        if run_id not in _HEALTH_OF_RUN:
            feeds = connectivity.live_feeds(connectivity.exchange_chain(self.ccxt_exchanges))
            _HEALTH_OF_RUN.clear()
            _HEALTH_OF_RUN[run_id] = connectivity.check_feeds(feeds)
        return _HEALTH_OF_RUN[run_id]

    def unreachable_cause(self, table: str, run_id: str) -> str | None:
        """Live: one line on why ``table``'s feed cannot fetch (no host of any of its sources
        answered the run's probe), else None. Replay and demo read files: always None."""
        return self.source_health(run_id).unreachable_cause(table) if self.is_live else None

    def fetch_bars(
        self, market: Market, instruments: tuple[Instrument, ...], start: date, end: date
    ) -> FeedBatch:
        """Daily bars with ``start <= session_date < end`` for the market's instruments."""
        log = self.log
        frames, unavailable = [], []
        live = LiveOptions(self.throttle(), tuple(connectivity.exchange_chain(self.ccxt_exchanges)))
        failures = []
        for instrument in instruments:
            if self.is_live:
                try:
                    frame = bar_feed(market)(instrument, start, end, live)
                    unavailable += frame.attrs.get("unavailable", [])
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
            failed = ", ".join(error.instrument for error in failures)
            raise FeedError(
                market.feed,
                market.market,
                f"every instrument failed from {start} to {end} ({failed}); the last: "
                f"{failures[-1]}",
            ) from failures[-1]
        return self._batch(frames, unavailable, f"{market.market}_bars")

    def fetch_breadth(
        self, start: date, end: date, now: datetime | None = None, live_from: date | None = None
    ) -> FeedBatch:
        """A-share breadth and turnover per session, ``start <= session_date < end``.

        Live, the rows are what each source publishes, one row per source and session
        (``market`` names it): ``sse`` and ``szse``, each exchange's turnover for every closed
        session from ``live_from`` (the window's own sessions; earlier ones are history that
        earlier runs wrote); ``cn``, the counts of the latest closed session when it is in the
        fetched range (one call, so a run after a missed snapshot still takes it as history),
        dated by their source. Past counts come from per-stock bars. One part failing leaves the
        others; only when every part fails is it an error.
        """
        if not self.is_live:
            batch = self._replay_table(BREADTH_FILE, start, end)
            batch.frame["market"] = "cn"
            return batch
        log = self.log
        now = now or datetime.now(UTC)
        throttle = self.throttle()
        sessions = closed_sessions("cn", live_from or start, end, now)
        frames, unavailable, failures = [], [], []
        try:
            turnover, missing = akshare_breadth.fetch_exchange_turnover(sessions, throttle, log)
            frames.append(turnover)
            unavailable += missing
        except FeedError as error:
            log.error("%s", error)
            failures.append(error)
            unavailable.append(f"cn/turnover: {error}")
        latest = last_closed_session("cn", now)
        if latest is not None and start <= latest < end:
            try:
                counts = akshare_breadth.fetch_breadth_snapshot(
                    throttle, latest_completed_session("cn", now)
                )
                counts = counts[(counts["session_date"] >= start) & (counts["session_date"] < end)]
                frames.append(counts.assign(market="cn"))
                if counts.empty:
                    unavailable.append(f"{akshare_breadth.BREADTH_ID}: no final counts of {latest}")
            except FeedError as error:
                log.error("%s", error)
                failures.append(error)
                unavailable.append(f"{akshare_breadth.BREADTH_ID}: {error}")
        else:
            unavailable.append(
                f"{akshare_breadth.BREADTH_ID}: no snapshot for {start}..{end}; "
                "past counts come from stock bars"
            )
        if failures and not any(not frame.empty for frame in frames):
            raise FeedError(
                akshare_breadth.FEED, akshare_breadth.BREADTH_ID, "every breadth source failed"
            ) from failures[-1]
        return self._batch(frames, unavailable, "cn_breadth")

    def fetch_stock_bars(
        self,
        window: ReportWindow,
        already_done: set[str],
        sink: Callable[[list[str], pd.DataFrame], None],
        log: logging.Logger,
        now: datetime | None = None,
    ) -> int:
        """Per-stock A-share bars for breadth history; ``sink`` saves each batch as it arrives.

        Live, this is for backfills (about 5,100 calls, one per stock): a window is fetched when
        all its sessions precede the last closed one, even while a session is in progress; a
        window reaching the last closed session is left to the daily snapshot
        (``fetch_breadth``), since per-stock sources publish a day's bars hours after the close.
        """
        if not self.is_live:
            batch = self._replay_table(STOCK_BARS_FILE, *window.fetch_range(self.lookback_days))
            frame = batch.frame[~batch.frame["stock_code"].isin(already_done)]
            codes = sorted(frame["stock_code"].unique())
            if codes:
                sink(codes, frame)
            return len(codes)
        start, end = window.owned_sessions
        latest = last_closed_session("cn", now or datetime.now(UTC))
        if latest is None or latest < end:
            log.info(
                "cn_stock_bars: %s..%s reaches the last closed session (%s); its breadth comes "
                "from the snapshot",
                start,
                end,
                latest,
            )
            return 0
        throttle = self.throttle()
        codes = akshare_breadth.fetch_stock_codes(throttle)

        def save(code: str, bars: pd.DataFrame) -> None:
            sink([code], bars.assign(stock_code=code))

        return akshare_breadth.fetch_universe_history(
            codes, start, end, throttle, already_done, save, log
        )

    def fetch_protocol_tvl(self, start: date, end: date) -> FeedBatch:
        """DeFi protocol TVL with category per UTC day, ``start <= session_date < end``."""
        if not self.is_live:
            return self._replay_table(PROTOCOLS_FILE, start, end)
        frame = defillama.fetch_protocol_tvl(start, end, self.throttle(), self.defi_top_protocols)
        return self._live_batch(frame)

    def fetch_stablecoins(self, start: date, end: date) -> FeedBatch:
        """Stablecoin circulating supply in USD per UTC day, ``start <= session_date < end``."""
        if not self.is_live:
            return self._replay_table(STABLECOINS_FILE, start, end)
        symbols = [symbol.strip() for symbol in self.stablecoins.split(",") if symbol.strip()]
        frame = defillama.fetch_stablecoin_supply(symbols, start, end, self.throttle())
        return self._live_batch(frame)

    @staticmethod
    def _live_batch(frame: pd.DataFrame) -> FeedBatch:
        """A DefiLlama answer as a batch: the days are session dates, and what the feed skipped
        or found empty (``frame.attrs["unavailable"]``) is listed, not lost."""
        return FeedBatch(
            frame.rename(columns={"date": "session_date"}), frame.attrs.get("unavailable", [])
        )

    def _replay_table(self, table: ReplayTable, start: date, end: date) -> FeedBatch:
        """A feed-wide replay CSV in the window; a missing file is unavailable, not an error."""
        path = replay.replay_path(self.data_dir(), table.name)
        if not path.exists():
            self.log.warning("unavailable: %s: no %s file", table.name, self.mode)
            return FeedBatch(empty_frame(table.raw_table), [f"{table.name}: no {self.mode} file"])
        frame = replay.read_csv(path, table.columns, self.mode, table.name)
        frame["session_date"] = pd.to_datetime(frame.pop("date"), format="ISO8601").dt.date
        frame = frame[(frame["session_date"] >= start) & (frame["session_date"] < end)]
        return FeedBatch(stamp(frame, self.mode))

    def _batch(
        self, frames: list[pd.DataFrame], unavailable: list[str], table_name: str
    ) -> FeedBatch:
        """The frames' rows in the raw table's columns; none is the table's typed empty frame."""
        log = self.log
        for message in unavailable:
            log.warning("unavailable: %s", message)
        rows = [frame for frame in frames if not frame.empty]
        empty = empty_frame(table_name)
        if not rows:
            return FeedBatch(empty, unavailable)
        combined = pd.concat(rows, ignore_index=True).reindex(columns=empty.columns)
        return FeedBatch(combined.astype(empty.dtypes.to_dict()), unavailable)


def stamp(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Provenance columns every raw row carries."""
    return frame.assign(
        source=source, is_fallback=False, fetched_at=datetime.now(UTC).replace(tzinfo=None)
    )
