"""DeFi protocol TVL and stablecoin supply through DefiLlama's free public HTTP API.

Endpoints (no key, JSON): ``api.llama.fi/protocols`` (every protocol's current TVL and category),
``api.llama.fi/protocol/{slug}`` (one protocol's daily TVL history), ``stablecoins.llama.fi/
stablecoins`` (the stablecoin list with ids) and ``stablecoins.llama.fi/stablecoincharts/all``
(daily circulating supply, of one coin with ``?stablecoin={id}`` or of all coins without it).
Timestamps are unix seconds (integers for TVL, strings for stablecoins); a point's date is its
UTC day. When a day has several points (typically today: its midnight point and the latest
hourly one) the latest wins. See docs/feeds-defillama.md for history depth and failure behaviour.
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests

from assets.feeds import FeedError, RetryableError, SchemaDriftError, Throttle, with_retries

log = logging.getLogger("market_intel.feeds.defillama")

FEED = "defillama"
PROTOCOL_COLUMNS = ["date", "protocol", "category", "tvl_usd"]
STABLECOIN_COLUMNS = ["date", "symbol", "circulating_usd"]
STAMP_COLUMNS = ["source", "is_fallback", "fetched_at"]
PROTOCOL_FRAME_COLUMNS = [*PROTOCOL_COLUMNS, *STAMP_COLUMNS]
STABLECOIN_FRAME_COLUMNS = [*STABLECOIN_COLUMNS, *STAMP_COLUMNS]

PROTOCOLS_URL = "https://api.llama.fi/protocols"
PROTOCOL_URL = "https://api.llama.fi/protocol/{slug}"
STABLECOINS_URL = "https://stablecoins.llama.fi/stablecoins"
STABLECOIN_CHART_URL = "https://stablecoins.llama.fi/stablecoincharts/all"

TOTAL = "TOTAL"
DEFAULT_STABLECOINS = ("USDT", "USDC")
# Exchange reserves are not DeFi TVL (DefiLlama's own DeFi total leaves them out), and the few
# largest CEXes would otherwise crowd protocols out of the top N.
EXCLUDED_CATEGORIES = frozenset({"CEX"})

USER_AGENT = f"market-intel/0.1 ({FEED} feed; python-requests/{requests.__version__})"
TIMEOUT = (10.0, 60.0)  # connect, read: /protocols and big protocol histories are megabytes
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is capped: the run should fail, not hang

PROTOCOL_KEYS = ("name", "slug", "category", "tvl")
HISTORY_KEYS = ("name", "category", "tvl")
TVL_POINT_KEYS = ("date", "totalLiquidityUSD")
LIST_KEYS = ("peggedAssets",)
ASSET_KEYS = ("id", "symbol")
CHART_POINT_KEYS = ("date", "totalCirculatingUSD")
PEG = "peggedUSD"


def new_session() -> requests.Session:
    """The one HTTP client of a fetch, naming the project so the provider can tell who calls."""
    session = requests.Session()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


@contextmanager
def _client(session: requests.Session | None) -> Iterator[requests.Session]:
    """The caller's session untouched, or a new one closed afterwards."""
    if session is not None:
        yield session
        return
    with new_session() as owned:
        yield owned


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date), 0 when absent."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def get_json(session: requests.Session, url: str, entity: str, throttle: Throttle) -> Any:
    """GET ``url`` as JSON, paced by ``throttle`` and retried on timeouts, 429 and 5xx.

    Backoff is ``with_retries``' exponential one, stretched to the server's ``Retry-After``
    when it sends one; every wait goes through ``throttle.sleep`` so one clock governs pacing.
    Other 4xx and non-JSON answers raise ``FeedError`` at once: retrying cannot fix them.
    """
    retry_after = 0.0

    def call() -> Any:
        nonlocal retry_after
        retry_after = 0.0
        throttle.wait()
        try:
            response = session.get(url, timeout=TIMEOUT)
        except (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            raise RetryableError(f"{type(error).__name__} from {url}: {error}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise RetryableError(f"HTTP {status} from {url}")
        if status >= 400:
            raise FeedError(FEED, entity, f"HTTP {status} from {url}: {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError as error:
            raise FeedError(FEED, entity, f"answer from {url} is not JSON: {error}") from error

    def pause(delay: float) -> None:
        throttle.sleep(max(delay, retry_after))

    return with_retries(call, feed=FEED, instrument=entity, sleep=pause)


def _require(record: Any, expected: Iterable[str], entity: str) -> dict:
    """``record`` itself when it is an object holding every expected key, else schema drift."""
    expected = tuple(expected)
    if not isinstance(record, dict):
        raise SchemaDriftError(FEED, entity, expected, [type(record).__name__])
    if not set(expected) <= record.keys():
        raise SchemaDriftError(FEED, entity, expected, record.keys())
    return record


def _items(body: Any, entity: str) -> list:
    """The elements of a JSON array answer; anything else is schema drift."""
    if not isinstance(body, list):
        found = body.keys() if isinstance(body, dict) else [type(body).__name__]
        raise SchemaDriftError(FEED, entity, ["<JSON array>"], found)
    return body


def _empty(columns: list[str]) -> pd.DataFrame:
    """A frame with no rows and the right columns; the last (the figure) is float."""
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    return frame.astype({columns[-1]: "float64"})


def _daily(stamps: list, values: list, start: date, end: date, entity: str) -> pd.DataFrame:
    """(date, value) per UTC day of unix-second stamps, ``start <= date < end``.

    The latest point of a day wins and a null value is no data; an unreadable stamp is an error,
    since silently dropping it would turn a format change into an empty answer.
    """
    stamp = pd.to_numeric(pd.Series(stamps, dtype="object"), errors="coerce")
    if stamp.isna().any():
        bad = next(s for s, n in zip(stamps, stamp.isna(), strict=True) if n)
        raise FeedError(FEED, entity, f"unreadable date {bad!r}: expected unix seconds")
    value = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").astype("float64")
    frame = pd.DataFrame({"stamp": stamp, "value": value}).dropna()
    frame["date"] = pd.to_datetime(frame["stamp"], unit="s", utc=True).dt.date
    frame = frame.sort_values("stamp", kind="stable").drop_duplicates("date", keep="last")
    frame = frame[(frame["date"] >= start) & (frame["date"] < end)]
    return frame[["date", "value"]].reset_index(drop=True)


def _entity(item: Any, keys: tuple[str, ...], fallback: str) -> str:
    """The name to put in an error about ``item``: its first present key, else its position."""
    if isinstance(item, dict):
        for key in keys:
            if item.get(key):
                return str(item[key])
    return fallback


def _protocol_listing(body: Any) -> pd.DataFrame:
    """``/protocols`` as protocol, slug, category, tvl_usd, largest TVL first (null TVL dropped)."""
    if not body:
        return _empty(["protocol", "slug", "category", "tvl_usd"])
    records = [
        _require(item, PROTOCOL_KEYS, _entity(item, ("name", "slug"), f"protocols[{i}]"))
        for i, item in enumerate(_items(body, "protocols"))
    ]
    listing = pd.DataFrame(
        {
            "protocol": [r["name"] for r in records],
            "slug": [r["slug"] for r in records],
            "category": [r["category"] for r in records],
            "tvl_usd": pd.to_numeric(
                pd.Series([r["tvl"] for r in records], dtype="object"), errors="coerce"
            ),
        }
    ).astype({"tvl_usd": "float64"})
    listing = listing.dropna(subset=["tvl_usd"])
    listing = listing.sort_values(["tvl_usd", "protocol"], ascending=[False, True], kind="stable")
    return listing.reset_index(drop=True)


def parse_protocols(body: list[dict], as_of: date) -> pd.DataFrame:
    """Every protocol's current TVL and category from ``/protocols``, dated ``as_of``.

    ``change_1d`` is deliberately not turned into a previous-day row: it is a rolling 24-hour
    change, not a UTC-day close, and the true previous day is in the protocol's history.
    """
    listing = _protocol_listing(body)
    listing.insert(0, "date", pd.Series([as_of] * len(listing), dtype="object"))
    return listing[PROTOCOL_COLUMNS]


def parse_protocol_history(body: dict, start: date, end: date) -> pd.DataFrame:
    """Daily TVL of one protocol from ``/protocol/{slug}``, ``start <= date < end``."""
    if not body:
        return _empty(PROTOCOL_COLUMNS)
    name = _entity(body, ("name", "slug"), "protocol")
    _require(body, HISTORY_KEYS, name)
    points = [_require(p, TVL_POINT_KEYS, name) for p in _items(body["tvl"], name)]
    daily = _daily(
        [p["date"] for p in points], [p["totalLiquidityUSD"] for p in points], start, end, name
    )
    if daily.empty:
        return _empty(PROTOCOL_COLUMNS)
    daily["protocol"] = body["name"]
    daily["category"] = body["category"]
    return daily.rename(columns={"value": "tvl_usd"})[PROTOCOL_COLUMNS]


def parse_stablecoin_chart(body: list[dict], symbol: str, start: date, end: date) -> pd.DataFrame:
    """Daily circulating USD (``totalCirculatingUSD.peggedUSD``), ``start <= date < end``.

    A day with an empty ``totalCirculatingUSD`` is no data; one holding other pegs only (a
    non-USD coin, or a renamed key) is schema drift.
    """
    if not body:
        return _empty(STABLECOIN_COLUMNS)
    stamps, values = [], []
    for point in _items(body, symbol):
        circulating = _require(point, CHART_POINT_KEYS, symbol)["totalCirculatingUSD"]
        if circulating == {}:
            continue
        stamps.append(point["date"])
        values.append(_require(circulating, (PEG,), symbol)[PEG])
    daily = _daily(stamps, values, start, end, symbol)
    if daily.empty:
        return _empty(STABLECOIN_COLUMNS)
    daily["symbol"] = symbol
    return daily.rename(columns={"value": "circulating_usd"})[STABLECOIN_COLUMNS]


def parse_stablecoin_list(body: dict) -> dict[str, int]:
    """Symbol -> DefiLlama id from ``/stablecoins``; a shared symbol goes to the largest coin."""
    if not body:
        return {}
    assets = _items(_require(body, LIST_KEYS, "stablecoins")["peggedAssets"], "stablecoins")
    best: dict[str, tuple[float, int]] = {}
    for i, asset in enumerate(assets):
        symbol = _entity(asset, ("symbol", "name"), f"stablecoins[{i}]")
        _require(asset, ASSET_KEYS, symbol)
        try:
            ident = int(asset["id"])
        except (TypeError, ValueError) as error:
            raise FeedError(
                FEED, symbol, f"stablecoin id {asset['id']!r} is not a number"
            ) from error
        circulating = asset.get("circulating")
        size = sum(
            float(v)
            for v in (circulating.values() if isinstance(circulating, dict) else [])
            if isinstance(v, int | float)
        )
        if asset["symbol"] not in best or size > best[asset["symbol"]][0]:
            best[asset["symbol"]] = (size, ident)
    return {symbol: ident for symbol, (_, ident) in best.items()}


def _stamp(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Parsed frames as one raw table: plus source, is_fallback and fetched_at (naive UTC)."""
    frames = [frame for frame in frames if not frame.empty]
    frame = pd.concat(frames, ignore_index=True) if frames else _empty(columns)
    frame["source"] = FEED
    frame["is_fallback"] = False
    frame["fetched_at"] = datetime.now(UTC).replace(tzinfo=None)
    return frame[[*columns, *STAMP_COLUMNS]].sort_values(columns[:2]).reset_index(drop=True)


def fetch_protocol_tvl(
    start: date,
    end: date,
    throttle: Throttle,
    top_n: int = 50,
    session: requests.Session | None = None,
) -> pd.DataFrame:
    """Daily TVL, ``start <= date < end`` (UTC days), of today's ``top_n`` protocols by TVL.

    ``/protocols`` ranks them (CEXes left out), then each one's ``/protocol/{slug}`` history
    gives the window, which is how backfills get history: 1 + ``top_n`` requests per call.
    The name and category are the history's, i.e. today's (DefiLlama keeps no past category).
    Any failing protocol fails the call: a silently missing protocol would skew category sums.
    """
    if start >= end:
        return _stamp([], PROTOCOL_COLUMNS)
    with _client(session) as http:
        listing = _protocol_listing(get_json(http, PROTOCOLS_URL, "protocols", throttle))
        top = listing[~listing["category"].isin(EXCLUDED_CATEGORIES)].head(top_n)
        frames = [
            parse_protocol_history(
                get_json(http, PROTOCOL_URL.format(slug=quote(slug, safe="")), name, throttle),
                start,
                end,
            )
            for name, slug in zip(top["protocol"], top["slug"], strict=True)
        ]
    return _stamp(frames, PROTOCOL_COLUMNS)


def fetch_stablecoin_supply(
    symbols: list[str],
    start: date,
    end: date,
    throttle: Throttle,
    session: requests.Session | None = None,
) -> pd.DataFrame:
    """Daily circulating USD, ``start <= date < end``, of each symbol plus ``TOTAL``.

    ``TOTAL`` (all USD-pegged stablecoins) costs one request; the symbols cost the list call
    plus one chart each. A symbol DefiLlama does not list raises ``FeedError`` (a typo must not
    pass as no data); an empty list is no data for the symbols.
    """
    if start >= end:
        return _stamp([], STABLECOIN_COLUMNS)
    wanted = list(dict.fromkeys([*symbols, TOTAL]))
    frames = []
    with _client(session) as http:
        ids: dict[str, int] = {}
        if wanted != [TOTAL]:
            ids = parse_stablecoin_list(get_json(http, STABLECOINS_URL, "stablecoins", throttle))
        for symbol in wanted:
            if symbol == TOTAL:
                url = STABLECOIN_CHART_URL
            elif symbol in ids:
                url = f"{STABLECOIN_CHART_URL}?stablecoin={ids[symbol]}"
            elif not ids:
                log.warning("[%s] %s: empty stablecoin list, no data", FEED, symbol)
                continue
            else:
                raise FeedError(FEED, symbol, f"not among the {len(ids)} stablecoins listed")
            body = get_json(http, url, symbol, throttle)
            frames.append(parse_stablecoin_chart(body, symbol, start, end))
    return _stamp(frames, STABLECOIN_COLUMNS)
