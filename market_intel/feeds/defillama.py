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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests

from market_intel.feeds import (
    FeedError,
    RefusedError,
    RetryableError,
    SchemaDriftError,
    Throttle,
    retry_after_seconds,
    with_retries,
)

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
# Categories left out at ingestion, so they never enter the top N or a category sum:
# - CEX: exchange reserves are not DeFi TVL (DefiLlama's DeFi total leaves them out), and the few
#   largest CEXes would otherwise crowd protocols out of the top N;
# - Chain: a chain's own TVL is the sum of the protocols on it, counted again;
# - Liquid Restaking: deposits passed on to restaking protocols (EigenLayer...), whose TVL
#   already holds them.
# Protocols DefiLlama flags ``doublecounted`` (deposits placed in other listed protocols; its site
# leaves them out of its default totals) are left out too.
EXCLUDED_CATEGORIES = frozenset({"CEX", "Chain", "Liquid Restaking"})
DOUBLE_COUNTED_FLAG = "doublecounted"
MAX_FAILURES_IN_A_ROW = 3  # protocol histories failing one after another: the source is down

USER_AGENT = f"market-intel/0.1 ({FEED} feed; python-requests/{requests.__version__})"
TIMEOUT = (10.0, 60.0)  # connect, read: /protocols and big protocol histories are megabytes
REFUSED = frozenset({403, 451})  # an address or region block: retrying cannot help

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


def get_json(session: requests.Session, url: str, entity: str, throttle: Throttle) -> Any:
    """GET ``url`` as JSON, paced by ``throttle`` and retried when the failure is transient.

    Retried: timeouts, dropped connections, bodies cut off in transfer, HTTP 429 and 5xx, and
    answers that are not JSON (a maintenance or proxy page, a cut body), with ``with_retries``'
    exponential backoff stretched to the server's ``Retry-After``; every wait goes through
    ``throttle.sleep`` so one clock governs pacing. HTTP 403/451 raise ``RefusedError`` and
    other 4xx ``FeedError`` at once: retrying cannot fix them.
    """

    def call() -> Any:
        throttle.wait()
        try:
            response = session.get(url, timeout=TIMEOUT)
        except (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as error:
            raise RetryableError(f"{type(error).__name__} from {url}: {error}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            raise RetryableError(f"HTTP {status} from {url}", wait)
        if status in REFUSED:
            raise RefusedError(FEED, entity, _refusal(status, url, response.text))
        if status >= 400:
            raise FeedError(FEED, entity, f"HTTP {status} from {url}: {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError as error:
            raise RetryableError(
                f"answer from {url} is not JSON ({error}): {response.text[:120]!r}"
            ) from error

    return with_retries(call, feed=FEED, instrument=entity, sleep=throttle.sleep)


def _refusal(status: int, url: str, body: str) -> str:
    return (
        f"HTTP {status} from {url}: the API refuses this address (a region or network block; "
        f"try another network or a proxy): {body[:200]!r}"
    )


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


def _good_items(items: list, check: Callable[[int, Any], Any], what: str) -> tuple[list, list]:
    """``check(position, item)`` of each item of a list answer, and a note per item it rejects
    (``FeedError``): one bad item is skipped with a warning naming it. When every item is bad,
    the format has changed: the first rejection is raised."""
    good, skipped, errors = [], [], []
    for position, item in enumerate(items):
        try:
            good.append(check(position, item))
        except FeedError as error:
            errors.append(error)
            skipped.append(f"{what}: skipped {error}")
            log.warning("[%s] %s: skipped %s", FEED, what, error)
    if errors and not good:
        raise errors[0]
    return good, skipped


def _listed_protocol(position: int, item: Any) -> dict:
    return _require(item, PROTOCOL_KEYS, _entity(item, ("name", "slug"), f"protocols[{position}]"))


def _protocol_listing(body: Any) -> tuple[pd.DataFrame, list[str]]:
    """``/protocols`` as protocol, slug, category, tvl_usd, double_counted, largest TVL first
    (null TVL dropped), and a note per item skipped for a missing key."""
    columns = ["protocol", "slug", "category", "tvl_usd", "double_counted"]
    if not body:
        return _empty(columns[:4]).assign(double_counted=pd.Series(dtype=bool)), []
    records, skipped = _good_items(_items(body, "protocols"), _listed_protocol, "/protocols")
    listing = pd.DataFrame(
        {
            "protocol": [r["name"] for r in records],
            "slug": [r["slug"] for r in records],
            "category": [r["category"] for r in records],
            "tvl_usd": pd.to_numeric(
                pd.Series([r["tvl"] for r in records], dtype="object"), errors="coerce"
            ),
            "double_counted": [r.get(DOUBLE_COUNTED_FLAG) is True for r in records],
        }
    ).astype({"tvl_usd": "float64"})
    listing = listing.dropna(subset=["tvl_usd"])
    listing = listing.sort_values(["tvl_usd", "protocol"], ascending=[False, True], kind="stable")
    return listing[columns].reset_index(drop=True), skipped


def ranked_protocols(
    listing: pd.DataFrame, excluded_categories: Iterable[str] = EXCLUDED_CATEGORIES
) -> pd.DataFrame:
    """The listing without what would be counted twice in category sums (or is not DeFi): the
    excluded categories and the protocols DefiLlama flags ``doublecounted``."""
    kept = ~listing["category"].isin(set(excluded_categories)) & ~listing["double_counted"]
    return listing[kept].reset_index(drop=True)


def parse_protocols(body: list[dict], as_of: date) -> pd.DataFrame:
    """Every protocol's current TVL and category from ``/protocols``, dated ``as_of``.

    ``change_1d`` is deliberately not turned into a previous-day row: it is a rolling 24-hour
    change, not a UTC-day close, and the true previous day is in the protocol's history.
    """
    listing, _ = _protocol_listing(body)
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
    """Symbol -> DefiLlama id from ``/stablecoins``; a shared symbol goes to the largest coin.
    An asset missing a key or with a non-numeric id is skipped with a warning naming it."""
    if not body:
        return {}
    items = _items(_require(body, LIST_KEYS, "stablecoins")["peggedAssets"], "stablecoins")
    assets, _ = _good_items(items, _listed_stablecoin, "/stablecoins")
    best: dict[str, tuple[float, int]] = {}
    for symbol, size, ident in assets:
        if symbol not in best or size > best[symbol][0]:
            best[symbol] = (size, ident)
    return {symbol: ident for symbol, (_, ident) in best.items()}


def _listed_symbols(body: Any) -> set[str]:
    """Every symbol a ``/stablecoins`` answer names, its item readable or not."""
    assets = body.get("peggedAssets") if isinstance(body, dict) else None
    if not isinstance(assets, list):
        return set()
    return {asset.get("symbol") for asset in assets if isinstance(asset, dict)}


def _listed_stablecoin(position: int, asset: Any) -> tuple[str, float, int]:
    """(symbol, circulating size, id) of one ``peggedAssets`` item."""
    symbol = _entity(asset, ("symbol", "name"), f"stablecoins[{position}]")
    _require(asset, ASSET_KEYS, symbol)
    try:
        ident = int(asset["id"])
    except (TypeError, ValueError) as error:
        raise FeedError(FEED, symbol, f"stablecoin id {asset['id']!r} is not a number") from error
    circulating = asset.get("circulating")
    size = sum(
        float(v)
        for v in (circulating.values() if isinstance(circulating, dict) else [])
        if isinstance(v, int | float)
    )
    return asset["symbol"], size, ident


def _stamp(
    frames: list[pd.DataFrame], columns: list[str], unavailable: list[str] | None = None
) -> pd.DataFrame:
    """Parsed frames as one raw table: plus source, is_fallback and fetched_at (naive UTC), and
    what could not be provided in ``attrs["unavailable"]``."""
    frames = [frame for frame in frames if not frame.empty]
    frame = pd.concat(frames, ignore_index=True) if frames else _empty(columns)
    frame["source"] = FEED
    frame["is_fallback"] = False
    frame["fetched_at"] = datetime.now(UTC).replace(tzinfo=None)
    frame = frame[[*columns, *STAMP_COLUMNS]].sort_values(columns[:2]).reset_index(drop=True)
    frame.attrs["unavailable"] = list(unavailable or [])
    return frame


@contextmanager
def _naming_days(what: str, start: date, end: date) -> Iterator[None]:
    """A failure leaving a fetch says which days it was for: the requests themselves are undated
    (the listings are today's, a history is a protocol's whole life)."""
    try:
        yield
    except FeedError as error:
        error.args = (f"{error.args[0]}; fetching {what} {start}..{end} (end excluded)",)
        raise


def fetch_protocol_tvl(
    start: date,
    end: date,
    throttle: Throttle,
    top_n: int = 50,
    session: requests.Session | None = None,
    excluded_categories: Iterable[str] = EXCLUDED_CATEGORIES,
) -> pd.DataFrame:
    """Daily TVL, ``start <= date < end`` (UTC days), of today's ``top_n`` protocols by TVL.

    ``/protocols`` ranks them (``ranked_protocols``: no CEX, chain or double-counted entries),
    then each one's ``/protocol/{slug}`` history gives the window, which is how backfills get
    history: 1 + ``top_n`` requests per call. The name and category are the history's, i.e.
    today's (DefiLlama keeps no past category). One protocol that cannot be read (a missing key,
    HTTP 404, retries exhausted) is skipped with a warning naming it; a refusal, every protocol
    failing, or ``MAX_FAILURES_IN_A_ROW`` failing one after another fails the call, naming the
    days asked for. What is missing (skipped items, protocols with no points, a listing with
    nothing to track) is in ``frame.attrs["unavailable"]``.
    """
    if start >= end:
        return _stamp([], PROTOCOL_COLUMNS)
    frames: list[pd.DataFrame] = []
    with _naming_days("daily TVL", start, end), _client(session) as http:
        listing, unavailable = _protocol_listing(
            get_json(http, PROTOCOLS_URL, "protocols", throttle)
        )
        top = ranked_protocols(listing, excluded_categories).head(top_n)
        if top.empty:
            note = f"protocols: /protocols listed no protocol to track ({len(listing)} listed)"
            log.warning("[%s] %s", FEED, note)
            unavailable.append(note)
        in_a_row = 0
        for name, slug in zip(top["protocol"], top["slug"], strict=True):
            url = PROTOCOL_URL.format(slug=quote(slug, safe=""))
            try:
                body = get_json(http, url, name, throttle)
                frame = parse_protocol_history(body, start, end)
            except RefusedError:
                raise
            except FeedError as error:
                in_a_row += 1
                unavailable.append(f"skipped {error}")
                log.warning("skipped %s", error)
                if in_a_row >= MAX_FAILURES_IN_A_ROW:
                    raise FeedError(
                        FEED, "protocols", f"{in_a_row} protocol histories failed in a row"
                    ) from error
                continue
            in_a_row = 0
            if frame.empty:
                unavailable.append(_no_points(name, body, start, end))
            frames.append(frame)
    if len(top) and not frames:
        raise FeedError(
            FEED,
            "protocols",
            f"every one of the top {len(top)} protocols failed for {start}..{end} (end excluded)",
        )
    return _stamp(frames, PROTOCOL_COLUMNS, unavailable)


def _no_points(name: str, body: Any, start: date, end: date) -> str:
    """A protocol that answered without points in the window: said, never dropped silently."""
    if not (isinstance(body, dict) and body.get("tvl")):
        log.warning("[%s] %s: DefiLlama has no TVL points for it (tvl: [])", FEED, name)
        return f"{name}: no TVL points (tvl: [])"
    log.info("[%s] %s: no TVL points from %s to %s", FEED, name, start, end)
    return f"{name}: no TVL points from {start} to {end} (end excluded)"


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
    pass as no data); one whose list item is unreadable is skipped and listed unavailable; an
    empty list is no data for the symbols. Errors name the days asked for.
    """
    if start >= end:
        return _stamp([], STABLECOIN_COLUMNS)
    wanted = list(dict.fromkeys([*symbols, TOTAL]))
    frames, unavailable = [], []
    with _naming_days("stablecoin supply", start, end), _client(session) as http:
        ids: dict[str, int] = {}
        listed: set[str] = set()
        if wanted != [TOTAL]:
            listing = get_json(http, STABLECOINS_URL, "stablecoins", throttle)
            ids, listed = parse_stablecoin_list(listing), _listed_symbols(listing)
        for symbol in wanted:
            if symbol == TOTAL:
                url = STABLECOIN_CHART_URL
            elif symbol in ids:
                url = f"{STABLECOIN_CHART_URL}?stablecoin={ids[symbol]}"
            elif not ids:
                log.warning("[%s] %s: empty stablecoin list, no data", FEED, symbol)
                unavailable.append(f"{symbol}: empty stablecoin list, no data")
                continue
            elif symbol in listed:
                note = f"{symbol}: skipped, its /stablecoins item is unreadable"
                log.warning("[%s] %s", FEED, note)
                unavailable.append(note)
                continue
            else:
                raise FeedError(FEED, symbol, f"not among the {len(ids)} stablecoins listed")
            body = get_json(http, url, symbol, throttle)
            frames.append(parse_stablecoin_chart(body, symbol, start, end))
            if frames[-1].empty:
                unavailable.append(f"{symbol}: no supply points from {start} to {end}")
    return _stamp(frames, STABLECOIN_COLUMNS, unavailable)
