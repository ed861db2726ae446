"""The chaos table (issue 11, item 7): every failure kind real networks give, against every live
feed, through the code a raw asset runs (``assets.raw``: the live feed through ``MarketSource``,
then ``fetch_or_failure`` and ``storage.write_window`` into DuckDB). Each library's network is
replaced at its lowest seam by the fakes of ``tests/transports`` (requests' adapters and
``Session.send``, curl_cffi's ``Session.request``, the adapter of ccxt's session, a loopback
baostock server), so each library's own error handling and parsing meet the failure.

A cell materializes one partition with every source answering, then the next partition with
the kind served to the feed's primary source, and asserts the table's outcome:

- **retried**: the primary answered the retry, after one backoff sleep (2 s, or the 7 s
  ``Retry-After``): two attempts. The session's rows record the primary.
- **fell back**: the rows the kind hit record the fallback source and ``is_fallback`` (or, for
  the code lists, which rows do not record, the fallback list was asked); no retry.
- **no data**: nothing written for what was hit, each one listed in ``unavailable``.
- **clear error**: nothing written; ``failed`` names the feed, what failed (each instrument, or
  the list every row comes from) and the date range.
- **kept**: a partial answer is written as far as it goes; what it lacks is listed unavailable,
  or is history the table already holds.

In every cell the earlier partition's rows stay byte-identical (the whole database file when
nothing is written), the failure was served as scripted, and no wait is real: the throttle and
the retry backoff sleep through a recorder (only baostock's socket timeout takes its 0.3 s).

How a kind reaches a source: a transient kind (timeout to body cut short) is a blip, served to
one attempt of the first entity's first request, then the source recovers; a refusal (451,
403), an empty and a partial answer are what the primary answers to every request. baostock
speaks its own TCP protocol, so no HTTP status or page reaches it ("n/a"); the feed's HTTP
requests (the exchanges' code lists) meet those kinds in the ``cn_stock_bars:codes`` column.
One live pipeline run at the end shows a feed refused everywhere staying in its market: the
other feeds' rows land, dbt and the quality gate run, and the gate blocks the report.
"""

import copy
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yfinance as yf
from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterEventType,
    DagsterInstance,
    build_asset_context,
)
from dagster_duckdb import DuckDBResource
from yfinance.data import SingletonMeta, YfData

from assets import raw
from market_intel import sources
from market_intel.feeds import connectivity, crypto, yahoo
from market_intel.feeds import defillama as dl
from market_intel.feeds.connectivity import HostHealth
from market_intel.sources import RawSource
from market_intel.storage import RAW_TABLES
from market_intel.universe import instruments
from pipelines.resources import MarketSource
from tests.baostock_server import BaostockServer, kdata_answer
from tests.conftest import Pipeline
from tests.transports.akshare import (
    CLIST,
    INSTRUMENTS,
    KLINE,
    LEGU,
    SINA_URL,
    SSE_CODE_LIST,
    SSE_DEAL,
    SZSE_REPORT,
    RecordingThrottle,
    Reply,
    Transport,
    baostock_answer,
    baostock_server,
    chaos_baostock_answers,
    clear_akshare_caches,
    legu_page,
    load,
    serve_all_baostock,
    serve_code_lists,
    serve_eastmoney_indices,
    serve_exchanges,
    serve_sina,
    sina_bars,
    spot_em,
    spot_sina,
    xlsx,
)
from tests.transports.failures import RETRY_AFTER_SECONDS, Failure
from tests.transports.http import FakeHTTP, json_answer
from tests.transports.venues import HOSTS, OKX, Binance, Kraken, Venues
from tests.transports.yahoo import FakeYahoo


class Data(StrEnum):
    """Answers that are well formed but hold less than was asked."""

    EMPTY = "empty answer"
    PARTIAL = "partial answer"


class Outcome(StrEnum):
    RETRIED = "retried"
    FELL_BACK = "fell back"
    NO_DATA = "no data"
    ERROR = "clear error"
    KEPT = "kept"
    NA = "n/a"


R, F, N, E, K, X = Outcome  # one letter per outcome keeps the table scannable

FEEDS = (
    "us_bars",  # yfinance, no fallback
    "crypto_bars",  # ccxt: binance -> okx -> kraken
    "hk_bars",  # akshare: Sina -> Eastmoney
    "cn_bars",  # akshare: Sina -> Eastmoney
    "cn_breadth:counts",  # legulegu -> Sina spot table -> Eastmoney spot table
    "cn_breadth:turnover",  # SSE and SZSE daily summaries, no fallback
    "cn_stock_bars:codes",  # the exchanges' code lists -> Eastmoney spot table
    "cn_stock_bars:bars",  # baostock -> Eastmoney per-stock history
    "defi_protocol_tvl",  # DefiLlama, no fallback
    "stablecoin_supply",  # DefiLlama, no fallback
)
# failure kind -> outcome in each column: R retried, F fell back, N no data, E clear error,
# K kept, X n/a. akshare's Sina, legulegu and exchange functions do not check the HTTP status: a
# 429, 5xx or refusal reaches their parser as a page, which falls back instead of being retried
# (docs/feeds-akshare.md); the exchanges' turnover has no fallback, so that figure is listed
# unavailable and the next run asks again.
CHAOS = {
    #                                  us crypto hk cn counts turnover codes bars tvl stable
    Failure.TIMEOUT:                  (R, R,     R, R, R,     R,       R,    R,   R,  R),
    Failure.RESET:                    (R, R,     R, R, R,     R,       R,    R,   R,  R),
    Failure.RATE_LIMITED:             (R, R,     F, F, F,     N,       F,    X,   R,  R),
    Failure.RATE_LIMITED_RETRY_AFTER: (R, R,     F, F, F,     N,       F,    X,   R,  R),
    Failure.REFUSED_451:              (E, F,     F, F, F,     N,       F,    X,   E,  E),
    Failure.REFUSED_403:              (E, F,     F, F, F,     N,       F,    X,   E,  E),
    Failure.SERVER_ERROR:             (R, R,     F, F, F,     N,       F,    X,   R,  R),
    Failure.HTML:                     (R, R,     F, F, F,     N,       F,    X,   R,  R),
    Failure.TRUNCATED:                (R, R,     R, R, R,     R,       R,    R,   R,  R),
    Failure.GARBLED:                  (R, R,     F, F, F,     N,       F,    R,   R,  R),
    Data.EMPTY:                       (N, F,     F, F, F,     N,       F,    N,   N,  N),
    Data.PARTIAL:                     (K, K,     F, F, F,     K,       K,    X,   K,  K),
}  # fmt: skip
PERSISTENT = {Failure.REFUSED_451, Failure.REFUSED_403, Data.EMPTY, Data.PARTIAL}

EARLIER, NEXT = "2026-03-20", "2026-03-21"  # report dates: NEXT owns the session of 2026-03-20
SESSION = date(2026, 3, 20)
NEXT_RANGE = ("2026-03-19..2026-03-21", "from 2026-03-19 to 2026-03-21")  # one lookback day
SATURDAY_NOON = datetime(2026, 3, 21, 12, tzinfo=UTC)  # Friday's A-share session is the latest
SOURCE = {
    "mode": "live",
    "replay_dir": ".",
    "ccxt_exchanges": "binance,okx,kraken",
    "requests_per_minute": 0,
    "lookback_days": 1,
    "stablecoins": "USDT,USDC",
    "defi_top_protocols": 2,
}

YAHOO_FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
DEFILLAMA_FIXTURES = Path(__file__).parent / "fixtures" / "defillama"
GSPC_CHART = json.loads((YAHOO_FIXTURES / "chart_GSPC_2026-03-16_2026-03-20.json").read_text())
EMPTY_CHART = json.loads((YAHOO_FIXTURES / "chart_GSPC_empty.json").read_text())


def llama(name: str):
    return json.loads((DEFILLAMA_FIXTURES / name).read_text())


# --- the world: every live source, answered at its lowest seam -------------------------------


@dataclass
class World:
    """The fakes of every live source, installed for the test, and the one throttle every
    feed gets from ``RawSource`` (its sleeps are the backoff and pacing waits)."""

    yahoo: FakeYahoo
    venues: Venues
    akshare: Transport
    llama: FakeHTTP
    throttle: RecordingThrottle
    db: Path
    baostock: BaostockServer
    monkeypatch: pytest.MonkeyPatch
    instance: DagsterInstance

    def materialize(self, asset: AssetsDefinition, partition: str) -> dict:
        """The asset's own code for one partition, as a run executes it."""
        resources = {
            "duckdb": DuckDBResource(database=str(self.db)),
            "source": MarketSource(**SOURCE),
        }
        with build_asset_context(
            partition_key=partition, resources=resources, instance=self.instance
        ) as context:
            metadata = asset(context).metadata
        return {name: getattr(value, "value", value) for name, value in metadata.items()}


def yahoo_charts(chart: dict) -> dict[str, dict]:
    """``chart`` for every US instrument, under each one's symbol (values illustrative)."""
    charts = {}
    for instrument in instruments("us"):
        body = copy.deepcopy(chart)
        body["chart"]["result"][0]["meta"]["symbol"] = instrument.live_symbol
        charts[instrument.live_symbol] = body
    return charts


def last_bar_only(chart: dict) -> dict:
    """A Yahoo chart whose history starts at its last bar."""
    body = copy.deepcopy(chart)
    result = body["chart"]["result"][0]
    result["timestamp"] = result["timestamp"][-1:]
    for series in result["indicators"].values():
        for block in series:
            for name, values in block.items():
                block[name] = values[-1:]
    return body


def defillama_routes() -> dict[str, list]:
    """DefiLlama's answers; the protocols without a recorded history get Aave V3's, renamed."""
    routes = {
        dl.PROTOCOLS_URL: [json_answer(llama("protocols.json"))],
        dl.STABLECOINS_URL: [json_answer(llama("stablecoins.json"))],
        f"{dl.STABLECOIN_CHART_URL}?stablecoin=1": [
            json_answer(llama("stablecoincharts_usdt.json"))
        ],
        f"{dl.STABLECOIN_CHART_URL}?stablecoin=2": [
            json_answer(llama("stablecoincharts_usdc.json"))
        ],
        dl.STABLECOIN_CHART_URL: [json_answer(llama("stablecoincharts_all.json"))],
    }
    recorded = {"aave-v3": "protocol_aave-v3.json", "lido": "protocol_lido.json"}
    for item in llama("protocols.json"):
        slug = item["slug"]
        body = llama(recorded.get(slug, "protocol_aave-v3.json"))
        if slug not in recorded:
            body.update(name=item["name"], category=item["category"])
        routes[dl.PROTOCOL_URL.format(slug=slug)] = [json_answer(body)]
    return routes


def serve_akshare(transport: Transport) -> None:
    """Every akshare source answering: index histories (Sina; Eastmoney as the fallback), the
    legulegu page, the spot tables, the exchanges' summaries and code lists, Eastmoney's
    per-stock history. The SSE 50 (sh000016) has no recording: it is served the SSE
    Composite's bars, illustrative values."""
    for symbol in INSTRUMENTS:
        if symbol != "sh000016":
            serve_sina(transport, symbol)
    serve_sina(transport, "sh000016", sina_bars("sh000001"))
    serve_eastmoney_indices(transport)
    em_sh000001 = load("em_index_kline.json")["stock_zh_index_daily_em"]["sh000001"]
    transport.route(KLINE, "secid=1.000016", answer=em_sh000001)
    transport.route(LEGU, answer=legu_page())
    spot_sina(transport)
    spot_em(transport)
    serve_exchanges(transport)
    serve_code_lists(transport)
    for code, body in load("em_a_hist.json")["bodies"].items():
        transport.route(KLINE, f"secid={'1' if code.startswith('6') else '0'}.{code}", answer=body)


def reachable(endpoint, timeout: float = 0.0) -> HostHealth:
    return HostHealth(endpoint, True, 0.001, "HTTP 200")


@pytest.fixture(scope="module")
def baostock() -> Iterator[BaostockServer]:
    """One loopback baostock server for the module (stopping one takes half a second)."""
    with pytest.MonkeyPatch.context() as monkeypatch, baostock_server(monkeypatch) as server:
        server.server.handle_error = lambda request, address: None  # a peer gone, quietly
        yield server


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    """One ephemeral Dagster instance for the asset invocations (each costs 0.15 s to make)."""
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    instance: DagsterInstance,
    baostock: BaostockServer,
) -> Iterator[World]:
    # The run's connectivity probe finds every host up (conftest refuses real connections).
    monkeypatch.setattr(connectivity, "probe_endpoint", reachable)
    monkeypatch.setattr(sources, "_HEALTH_OF_RUN", {})
    throttle = RecordingThrottle()
    monkeypatch.setattr(RawSource, "throttle", lambda self: throttle)
    # yfinance keeps its session, cookie, crumb and answers process-wide: start from none.
    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    monkeypatch.delitem(SingletonMeta._instances, YfData, raising=False)
    YfData.cache_get.cache_clear()
    yahoo.yahoo_session.cache_clear()
    site = FakeYahoo(yahoo_charts(GSPC_CHART)).install(monkeypatch)
    monkeypatch.setattr(yahoo, "fetch_bars", partial(yahoo.fetch_bars, sleep=throttle.sleep))
    venues = Venues()
    venues["binance"] = Binance(fail_path="/klines")
    venues["okx"], venues["kraken"] = OKX(), Kraken()
    # ccxt's clients as the feed builds them, minus ccxt's real-time rate-limit sleeps.
    fetch = partial(crypto.fetch_bars, exchange_factory=venues.client, sleep=throttle.sleep)
    monkeypatch.setattr(crypto, "fetch_bars", fetch)
    defillama = FakeHTTP(defillama_routes()).install(monkeypatch)
    akshare = Transport(passthrough={"api.llama.fi", "stablecoins.llama.fi", *HOSTS.values()})
    serve_akshare(akshare.install(monkeypatch))
    serve_all_baostock(baostock)
    clear_akshare_caches()
    db = tmp_path / "market_intel.duckdb"
    yield World(site, venues, akshare, defillama, throttle, db, baostock, monkeypatch, instance)
    clear_akshare_caches()


# --- each column: its asset, primary and fallback, and how each kind reaches it --------------


@dataclass(frozen=True)
class Stage:
    """One column of the table. ``inject`` serves a kind to the feed's primary source.
    ``entities`` are the rows (by the table's entity key) a run writes for the session; a blip
    hits ``first``, or every entity when they all come from one list, which errors and notes
    call ``listing``. ``fallback`` is the ``source`` rows record when the fallback served, or
    None when rows do not say (``fell_back`` then tells from the requests)."""

    table: str
    asset: AssetsDefinition
    feed: str
    primary: frozenset[str]
    fallback: str | None
    entities: frozenset[str]
    first: str | None
    inject: Callable[["World", Failure | Data], None]
    served: Callable[["World"], bool]
    fell_back: Callable[["World"], bool] = lambda world: True
    partial_missing: frozenset[str] = frozenset()
    lists_missing: bool = True  # False: the answer is the universe, what it omits is unknown
    listing: str | None = None
    empty_note: frozenset[str] | None = None  # what the notes of an empty answer name

    def hit(self, kind: Failure | Data) -> frozenset[str]:
        if kind in PERSISTENT or self.first is None:
            return self.entities
        return frozenset({self.first})

    def named(self, kind: Failure | Data, outcome: Outcome) -> frozenset[str]:
        """What the error or the unavailable notes name: the entities hit, or the list they
        all come from when that is what failed or all the notes can name."""
        if outcome is Outcome.ERROR and self.listing:
            return frozenset({self.listing})
        if kind is Data.EMPTY and self.empty_note:
            return self.empty_note
        return self.hit(kind)


def asset_of(table: str) -> AssetsDefinition:
    return next(a for a in raw.raw_assets if a.key == raw.raw_key(table))


# cn_breadth as the raw asset builds it, on a Saturday after Friday's session: the production
# asset reads the real clock, which decides whether the latest session's counts are taken.
CN_BREADTH_ON_SATURDAY = raw.build_raw_asset(
    "cn_breadth",
    "cn",
    {"akshare"},
    "cn_breadth on 2026-03-21 at noon UTC",
    lambda source, start, end: source.fetch_breadth(
        start, end, now=SATURDAY_NOON, live_from=start + timedelta(days=source.lookback_days)
    ),
)
HTTP_STATUSES = {
    Failure.RATE_LIMITED,
    Failure.RATE_LIMITED_RETRY_AFTER,
    Failure.SERVER_ERROR,
    Failure.REFUSED_451,
    Failure.REFUSED_403,
}


def inject_yahoo(world: World, kind: Failure | Data) -> None:
    if kind is Data.EMPTY:
        world.yahoo.charts = yahoo_charts(EMPTY_CHART)
    elif kind is Data.PARTIAL:
        world.yahoo.charts = yahoo_charts(last_bar_only(GSPC_CHART))
    else:  # yfinance asks twice on an HTTP status before an attempt fails
        per_attempt = 2 if kind in HTTP_STATUSES else 1
        attempts = len(instruments("us")) if kind in PERSISTENT else 1
        world.yahoo.failures = [kind] * (per_attempt * attempts)


def inject_binance(world: World, kind: Failure | Data) -> None:
    binance = world.venues["binance"]
    if kind is Data.EMPTY:
        binance.klines = []
    elif kind is Data.PARTIAL:
        midnight = datetime(SESSION.year, SESSION.month, SESSION.day, tzinfo=UTC)
        binance.klines = [row for row in binance.klines if row[0] >= midnight.timestamp() * 1000]
    else:
        binance.failures += [kind] * (len(instruments("crypto")) if kind in PERSISTENT else 1)


def inject_sina(market: str) -> Callable[[World, Failure | Data], None]:
    def inject(world: World, kind: Failure | Data) -> None:
        symbols = [i.live_symbol for i in instruments(market)]
        if kind is Data.EMPTY:
            for symbol in symbols:
                world.akshare.route(SINA_URL[market].format(symbol), answer=Reply(200, ""))
        elif kind is Data.PARTIAL:  # histories starting at the session
            for symbol in symbols:
                recorded = "sh000001" if symbol == "sh000016" else symbol
                serve_sina(world.akshare, symbol, sina_bars(recorded)[-1:])
        elif kind in PERSISTENT:
            world.akshare.fail("finance.sina.com.cn", failures=[kind] * len(symbols))
        else:
            world.akshare.fail(SINA_URL[market].format(symbols[0]), failures=[kind])

    return inject


def inject_legu(world: World, kind: Failure | Data) -> None:
    if kind is Data.EMPTY:
        world.akshare.route(LEGU, answer=Reply(200, ""))
    elif kind is Data.PARTIAL:  # the counts table without its 平盘 (unchanged) cell
        world.akshare.route(LEGU, answer=legu_page().replace("<td>平盘</td>", ""))
    else:
        world.akshare.fail(LEGU, failures=[kind])


def inject_exchanges(world: World, kind: Failure | Data) -> None:
    recorded = load("exchange_summaries.json")
    sse, szse = recorded["stock_sse_deal_daily"], recorded["stock_szse_summary"]
    if kind is Data.EMPTY:
        world.akshare.route(SSE_DEAL, answer=dict(sse, result=[]))
        world.akshare.route(SZSE_REPORT, "1803_sczm", answer=xlsx(szse["columns"], []))
    elif kind is Data.PARTIAL:  # SSE's boards without the all-stocks product: they are added up
        world.akshare.route(SSE_DEAL, answer=dict(sse, result=sse["result"][:3]))
    elif kind in PERSISTENT:
        world.akshare.fail(SSE_DEAL, failures=[kind])
        world.akshare.fail(SZSE_REPORT, "1803_sczm", failures=[kind])
    else:
        world.akshare.fail(SSE_DEAL, failures=[kind])


def inject_code_lists(world: World, kind: Failure | Data) -> None:
    if kind is Data.EMPTY:
        world.akshare.route(SSE_CODE_LIST, answer={"result": []})
    elif kind is Data.PARTIAL:  # the main-board list without its last stock
        board = load("exchange_summaries.json")["stock_info_sh_name_code"]["主板A股"]
        partial_board = dict(board, result=board["result"][:-1])
        world.akshare.route(SSE_CODE_LIST, "STOCK_TYPE=1", answer=partial_board)
    else:
        world.akshare.fail(SSE_CODE_LIST, failures=[kind])


def inject_baostock(world: World, kind: Failure | Data) -> None:
    server = world.baostock
    fields = load("baostock_history.json")["fields"]
    if kind is Data.EMPTY:
        for code in load("baostock_history.json")["records"]:
            server.answer(code, lambda request: kdata_answer(request, fields, []))
        return
    if kind is Failure.TIMEOUT:  # the client's real wait: the server stays silent for longer
        world.monkeypatch.setattr("market_intel.feeds.baostock_history.SOCKET_TIMEOUT", 0.3)
    code = min(TRADED_ON_SESSION)
    failing = chaos_baostock_answers(code, silent_for=1.0)[kind]
    server.answer(code, failing, baostock_answer(code))


def inject_protocols(world: World, kind: Failure | Data) -> None:
    if kind is Data.EMPTY:
        world.llama.routes[dl.PROTOCOLS_URL] = [json_answer([])]
    elif kind is Data.PARTIAL:  # Aave V3's item without its category
        listing = llama("protocols.json")
        del listing[1]["category"]
        world.llama.routes[dl.PROTOCOLS_URL] = [json_answer(listing)]
    else:
        world.llama.failures["api.llama.fi"] = [kind]


def inject_stablecoins(world: World, kind: Failure | Data) -> None:
    if kind is Data.EMPTY:
        world.llama.routes[dl.STABLECOINS_URL] = [json_answer({"peggedAssets": []})]
        world.llama.routes[dl.STABLECOIN_CHART_URL] = [json_answer([])]
    elif kind is Data.PARTIAL:  # USDC's item without its id
        listing = llama("stablecoins.json")
        del listing["peggedAssets"][1]["id"]
        world.llama.routes[dl.STABLECOINS_URL] = [json_answer(listing)]
    else:
        world.llama.failures["stablecoins.llama.fi"] = [kind]


def akshare_served(world: World) -> bool:
    return all(not pending for _, pending in world.akshare.failures)


def baostock_served(world: World) -> bool:
    """Each stock's scripted answers are down to the last one, which repeats."""
    return all(len(queue) == 1 for queue in world.baostock.answers.values())


def asked_eastmoney_spot(world: World) -> bool:
    return any(CLIST in url and "fs=m%3A0" in url for url in world.akshare.urls)


def ids(market: str) -> frozenset[str]:
    return frozenset(i.instrument_id for i in instruments(market))


TRADED_ON_SESSION = frozenset(
    code
    for code, records in load("baostock_history.json")["records"].items()
    if any(row[0] == SESSION.isoformat() and row[-1] == "1" for row in records)
)
SINA_PRIMARY = {"hk": "stock_hk_index_daily_sina", "cn": "stock_zh_index_daily"}
BAOSTOCK = frozenset({"baostock:query_history_k_data_plus"})

STAGES = {
    "us_bars": Stage(
        table="us_bars",
        asset=asset_of("us_bars"),
        feed="yfinance",
        primary=frozenset({"yfinance"}),
        fallback=None,
        entities=ids("us"),
        first="us/GSPC",
        inject=inject_yahoo,
        served=lambda world: world.yahoo.failures == [],
    ),
    "crypto_bars": Stage(
        table="crypto_bars",
        asset=asset_of("crypto_bars"),
        feed="ccxt",
        primary=frozenset({"ccxt:binance"}),
        fallback="ccxt:okx",
        entities=ids("crypto"),
        first="crypto/BTC-USDT",
        inject=inject_binance,
        served=lambda world: world.venues["binance"].failures == [],
    ),
    **{
        f"{market}_bars": Stage(
            table=f"{market}_bars",
            asset=asset_of(f"{market}_bars"),
            feed="akshare",
            primary=frozenset({f"akshare:{SINA_PRIMARY[market]}"}),
            fallback=f"akshare:{SINA_PRIMARY[market].removesuffix('_sina')}_em",
            entities=ids(market),
            first=instruments(market)[0].instrument_id,
            inject=inject_sina(market),
            served=akshare_served,
        )
        for market in ("hk", "cn")
    },
    "cn_breadth:counts": Stage(
        table="cn_breadth",
        asset=CN_BREADTH_ON_SATURDAY,
        feed="akshare",
        primary=frozenset({"akshare:stock_market_activity_legu"}),
        fallback="akshare:stock_zh_a_spot",
        entities=frozenset({"cn"}),
        first="cn",
        inject=inject_legu,
        served=akshare_served,
    ),
    "cn_breadth:turnover": Stage(
        table="cn_breadth",
        asset=CN_BREADTH_ON_SATURDAY,
        feed="akshare",
        primary=frozenset({"akshare:stock_sse_deal_daily", "akshare:stock_szse_summary"}),
        fallback=None,
        entities=frozenset({"sse", "szse"}),
        first="sse",
        inject=inject_exchanges,
        served=akshare_served,
    ),
    "cn_stock_bars:codes": Stage(
        table="cn_stock_bars",
        asset=asset_of("cn_stock_bars"),
        feed="akshare",
        primary=BAOSTOCK,
        fallback=None,
        entities=TRADED_ON_SESSION,
        first=None,
        inject=inject_code_lists,
        served=akshare_served,
        fell_back=asked_eastmoney_spot,
        partial_missing=frozenset({"600036"}),
        lists_missing=False,
    ),
    "cn_stock_bars:bars": Stage(
        table="cn_stock_bars",
        asset=asset_of("cn_stock_bars"),
        feed="baostock",
        primary=BAOSTOCK,
        fallback="akshare:stock_zh_a_hist",
        entities=TRADED_ON_SESSION,
        first=min(TRADED_ON_SESSION),
        inject=inject_baostock,
        served=baostock_served,
    ),
    "defi_protocol_tvl": Stage(
        table="defi_protocol_tvl",
        asset=asset_of("defi_protocol_tvl"),
        feed="defillama",
        primary=frozenset({"defillama"}),
        fallback=None,
        entities=frozenset({"Aave V3", "Lido"}),
        first=None,
        inject=inject_protocols,
        served=lambda world: not world.llama.failures.get("api.llama.fi"),
        partial_missing=frozenset({"Aave V3"}),
        listing="protocols",
        empty_note=frozenset({"protocols"}),
    ),
    "stablecoin_supply": Stage(
        table="stablecoin_supply",
        asset=asset_of("stablecoin_supply"),
        feed="defillama",
        primary=frozenset({"defillama"}),
        fallback=None,
        entities=frozenset({"USDT", "USDC", "TOTAL"}),
        first=None,
        inject=inject_stablecoins,
        served=lambda world: not world.llama.failures.get("stablecoins.llama.fi"),
        partial_missing=frozenset({"USDC"}),
        listing="stablecoins",
    ),
}


# --- the database, before and after ----------------------------------------------------------


def table_rows(db: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()


def session_rows(db: Path, table: str, entities: frozenset[str]) -> pd.DataFrame:
    """The rows of ``entities`` for the session NEXT owns, by entity."""
    entity = RAW_TABLES[table].entity
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT * FROM raw.{table} WHERE session_date = ?", [SESSION]
        ).fetchdf()
    return rows[rows[entity].isin(entities)].set_index(entity)


def file_digest(db: Path) -> str:
    """The database file's bytes once every change is in it."""
    with duckdb.connect(str(db)) as conn:
        conn.execute("CHECKPOINT")
    return hashlib.sha256(db.read_bytes()).hexdigest()


# The earlier partition of each asset, written once by the asset itself, copied into each cell.
EARLIER_DATABASES: dict[AssetKey, Path] = {}


def with_earlier_partition(world: World, stage: Stage, tmp_path_factory) -> None:
    if stage.asset.key not in EARLIER_DATABASES:
        world.materialize(stage.asset, EARLIER)
        kept = tmp_path_factory.mktemp("earlier") / world.db.name
        shutil.copy(world.db, kept)
        EARLIER_DATABASES[stage.asset.key] = kept
    shutil.copy(EARLIER_DATABASES[stage.asset.key], world.db)


CELLS = [
    pytest.param(kind, feed, id=f"{feed}-{kind}")
    for kind, outcomes in CHAOS.items()
    for feed, outcome in zip(FEEDS, outcomes, strict=True)
    if outcome is not Outcome.NA
]


def test_the_table_has_every_kind_and_every_feed() -> None:
    """Every failure kind of issue 11, item 4, against every column; n/a only where baostock's
    protocol cannot carry the kind."""
    assert list(CHAOS) == [*Failure, *Data] and set(STAGES) == set(FEEDS)
    not_applicable = {
        (kind, feed)
        for kind, outcomes in CHAOS.items()
        for feed, outcome in zip(FEEDS, outcomes, strict=True)
        if outcome is Outcome.NA
    }
    assert not_applicable == {(kind, "cn_stock_bars:bars") for kind in HTTP_STATUSES} | {
        (Failure.HTML, "cn_stock_bars:bars"),
        (Data.PARTIAL, "cn_stock_bars:bars"),  # one session a stock: an answer is whole or empty
    }


@pytest.mark.parametrize(("kind", "feed"), CELLS)
def test_chaos_cell(
    world: World, kind: Failure | Data, feed: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stage, expected = STAGES[feed], CHAOS[kind][FEEDS.index(feed)]
    with_earlier_partition(world, stage, tmp_path_factory)
    earlier, digest = table_rows(world.db, stage.table), file_digest(world.db)
    assert earlier and all(row[1] < SESSION for row in earlier)
    clear_akshare_caches()  # a new run asks for the code lists again

    stage.inject(world, kind)
    metadata = world.materialize(stage.asset, NEXT)

    held = {row[0] for row in earlier}  # a new entity may gain history; held rows never change
    after = table_rows(world.db, stage.table)
    assert [row for row in after if row[1] < SESSION and row[0] in held] == earlier
    assert stage.served(world), "the failure was not served as scripted"
    assert ("failed" in metadata) is (expected is Outcome.ERROR), metadata.get("failed")
    rows = session_rows(world.db, stage.table, stage.entities)
    hit, named = stage.hit(kind), stage.named(kind, expected)
    unavailable = " | ".join(metadata.get("unavailable") or [])
    sleeps = world.throttle.sleeps
    if expected is Outcome.RETRIED:
        assert sleeps == [RETRY_AFTER_SECONDS if kind is Failure.RATE_LIMITED_RETRY_AFTER else 2.0]
        assert set(rows.index) == stage.entities
        assert set(rows["source"]) <= stage.primary and not rows["is_fallback"].any()
    elif expected is Outcome.FELL_BACK:
        assert sleeps == [] and set(rows.index) == stage.entities
        if stage.fallback is None:
            assert stage.fell_back(world)
        else:
            assert set(rows.loc[sorted(hit), "source"]) == {stage.fallback}
            assert rows.loc[sorted(hit), "is_fallback"].all()
        others = rows.drop(index=sorted(hit))
        assert set(others["source"]) <= stage.primary and not others["is_fallback"].any()
    elif expected is Outcome.NO_DATA:
        assert sleeps == [] and set(rows.index) == stage.entities - hit
        if stage.table != "cn_stock_bars":  # a stock without bars is saved as done, not listed
            assert all(name in unavailable for name in named), unavailable
        if hit == stage.entities and stage.table not in ("cn_breadth", "cn_stock_bars"):
            assert file_digest(world.db) == digest
    elif expected is Outcome.ERROR:
        assert sleeps == [] and rows.empty and file_digest(world.db) == digest
        failed = metadata["failed"]
        assert failed.startswith(f"[{stage.feed}] "), failed
        assert all(name in failed for name in named), failed
        assert any(days in failed for days in NEXT_RANGE), failed
    elif expected is Outcome.KEPT:
        assert sleeps == [] and set(rows.index) == stage.entities - stage.partial_missing
        assert set(rows["source"]) <= stage.primary and not rows["is_fallback"].any()
        if stage.lists_missing:
            assert all(name in unavailable for name in stage.partial_missing), unavailable


# --- one live run: a feed refused everywhere stays in its market -----------------------------


def step_failures(result) -> dict[str, str]:
    return {
        event.step_key: event.event_specific_data.error.message
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    }


def materializations(result) -> dict[AssetKey, dict]:
    return {
        event.asset_key: {
            name: getattr(value, "value", value)
            for name, value in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }


LIVE_TABLES = [table for table in RAW_TABLES if table != "market_sessions"]


def test_a_live_run_with_yahoo_refused_publishes_the_other_feeds_and_runs_the_gate(
    world: World, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The earlier partition's raw feeds live; then the whole pipeline live for the next one,
    with Yahoo refusing every request (HTTP 403): raw/us_bars writes nothing and says why,
    every other feed lands the session, dbt builds the facts, the quality gate runs its
    checks and blocks the report over the US market, and no earlier row changes."""
    monkeypatch.setenv("MARKET_INTEL_SOURCE", "live")
    monkeypatch.setenv("MARKET_INTEL_LOOKBACK_DAYS", str(SOURCE["lookback_days"]))
    first = pipeline.run(EARLIER, selection=[asset.key for asset in raw.raw_assets])
    assert first.success
    earlier = {
        table: pipeline.query(f"SELECT * FROM raw.{table} ORDER BY ALL") for table in LIVE_TABLES
    }
    assert all(earlier.values())
    clear_akshare_caches()
    inject_yahoo(world, Failure.REFUSED_403)

    result = pipeline.run(NEXT, raise_on_error=False)

    failures = step_failures(result)
    assert set(failures) == {"market_intelligence_report"}, failures
    blocked = failures["market_intelligence_report"]
    assert f"Report {NEXT} blocked by the quality gate: [ERROR] US is stale" in blocked
    done = materializations(result)
    us = done[raw.raw_key("us_bars")]
    assert us["rows_replaced"] == 0
    assert us["failed"].startswith("[yfinance] us: every instrument failed from 2026-03-19")
    assert all(instrument_id in us["failed"] for instrument_id in ids("us"))
    assert "HTTP 403" in us["failed"]
    for table in LIVE_TABLES:
        after = pipeline.query(f"SELECT * FROM raw.{table} ORDER BY ALL")
        held = {row[0] for row in earlier[table]}
        assert [row for row in after if row[1] < SESSION and row[0] in held] == earlier[table]
        landed = {row for row in after if row[1] == SESSION}
        assert bool(landed) is (table != "us_bars"), table
    assert any(key.path[0] != "raw" and key.path[-1].startswith("fct_") for key in done)
    checks = [
        e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert any(not e.event_specific_data.passed for e in checks)
    assert world.throttle.sleeps == []
