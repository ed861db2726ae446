"""Live daily-bar feeds registered by name: ``markets.csv``'s ``feed`` column picks one.

A new market on an existing feed is a row of configuration; a new feed is one module with a
``fetch_bars`` and one entry in ``BAR_FEEDS``. The adapters differ only in what each feed needs
beside the instrument and the range (a throttle, the ccxt venue chain).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from market_intel.feeds import Throttle, akshare_indices, crypto, yahoo
from market_intel.universe import Instrument, Market


@dataclass(frozen=True)
class LiveOptions:
    """What a live bar feed may need beside the instrument and the range."""

    throttle: Throttle
    exchanges: tuple[str, ...]


BarFeed = Callable[[Instrument, date, date, LiveOptions], pd.DataFrame]


def yfinance_bars(
    instrument: Instrument, start: date, end: date, live: LiveOptions
) -> pd.DataFrame:
    live.throttle.wait()
    return yahoo.fetch_bars(instrument, start, end)


def ccxt_bars(instrument: Instrument, start: date, end: date, live: LiveOptions) -> pd.DataFrame:
    return crypto.fetch_bars(instrument, start, end, list(live.exchanges), live.throttle)


def akshare_bars(instrument: Instrument, start: date, end: date, live: LiveOptions) -> pd.DataFrame:
    return akshare_indices.fetch_bars(instrument, start, end, live.throttle)


BAR_FEEDS: dict[str, BarFeed] = {
    "yfinance": yfinance_bars,
    "ccxt": ccxt_bars,
    "akshare": akshare_bars,
}


def bar_feed(market: Market) -> BarFeed:
    """The live adapter of the market's feed, or an error naming the feeds there are."""
    try:
        return BAR_FEEDS[market.feed]
    except KeyError:
        raise NotImplementedError(
            f"markets.csv: market {market.market!r} names feed {market.feed!r}, which has no live "
            f"adapter; registered feeds: {', '.join(sorted(BAR_FEEDS))} (market_intel/feeds/bars.py)"
        ) from None
