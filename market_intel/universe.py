"""The universe of markets and instruments, read from the dbt seeds so SQL and Python share one list."""

import csv
from dataclasses import dataclass
from functools import cache

from market_intel.settings import SEEDS_DIR


@dataclass(frozen=True)
class Market:
    market: str
    name: str
    calendar: str
    timezone: str
    feed: str
    section_title: str


@dataclass(frozen=True)
class Instrument:
    instrument_id: str
    market: str
    name: str
    short_name: str
    live_symbol: str
    asset_class: str


def _read_seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS_DIR / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def markets() -> dict[str, Market]:
    """Markets by code, in display order."""
    rows = sorted(_read_seed("markets"), key=lambda row: int(row["display_order"]))
    return {
        row["market"]: Market(**{k: v for k, v in row.items() if k != "display_order"})
        for row in rows
    }


@cache
def instruments(market: str | None = None) -> tuple[Instrument, ...]:
    """Instruments of one market (or all), in seed order."""
    rows = [Instrument(**row) for row in _read_seed("instruments")]
    return tuple(row for row in rows if market is None or row.market == market)
