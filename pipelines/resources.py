"""Dagster resources, each configured from the environment (``EnvVar``) in ``definitions.py``."""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from assets.feeds import BAR_FRAME_COLUMNS, Throttle, bar_frame, replay, yahoo
from assets.universe import Instrument, Market
from pipelines.settings import DEMO_DATA_DIR, absolute_path

SOURCE_MODES = ("live", "replay", "demo")


@dataclass
class FeedBatch:
    """What one feed answered for a window: rows, plus what it could not provide and why."""

    frame: pd.DataFrame
    unavailable: list[str] = field(default_factory=list)


class MarketSource(ConfigurableResource):
    """Where raw data comes from: ``live`` feeds, a ``replay`` directory, or the ``demo`` sample."""

    mode: str = Field(description="live, replay or demo (MARKET_INTEL_SOURCE)")
    replay_dir: str = Field(description="replay directory (MARKET_INTEL_REPLAY_DIR)")
    ccxt_exchanges: str = Field(description="ccxt exchange fallback chain, comma-separated")
    requests_per_minute: int = Field(description="throttle for live sources that ban bursts")
    lookback_days: int = Field(description="days of history fetched before a window's sessions")

    def data_dir(self) -> Path:
        if self.mode not in SOURCE_MODES:
            raise ValueError(f"MARKET_INTEL_SOURCE={self.mode!r}: expected one of {SOURCE_MODES}")
        return DEMO_DATA_DIR if self.mode == "demo" else Path(absolute_path(self.replay_dir))

    def fetch_bars(
        self, market: Market, instruments: tuple[Instrument, ...], start: date, end: date
    ) -> FeedBatch:
        """Daily bars with ``start <= session_date < end`` for the market's instruments."""
        log = get_dagster_logger()
        frames, unavailable = [], []
        throttle = Throttle(self.requests_per_minute)
        for instrument in instruments:
            if self.mode == "live":
                throttle.wait()
                frame = self._live_bars(market, instrument, start, end)
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
        for message in unavailable:
            log.warning("[%s] unavailable: %s", market.feed, message)
        rows = [frame for frame in frames if not frame.empty]
        combined = (
            pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=BAR_FRAME_COLUMNS)
        )
        return FeedBatch(combined, unavailable)

    def _live_bars(
        self, market: Market, instrument: Instrument, start: date, end: date
    ) -> pd.DataFrame:
        if market.feed == "yfinance":
            return yahoo.fetch_bars(instrument, start, end)
        raise NotImplementedError(f"no live adapter for feed {market.feed!r} ({market.market})")


class ReportPublisher(ConfigurableResource):
    """Writes report files; each file is replaced atomically, so a failure leaves the old one."""

    reports_dir: str = Field(description="where reports are written (MARKET_INTEL_REPORTS_DIR)")

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
