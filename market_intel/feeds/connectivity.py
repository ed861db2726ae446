"""Can this machine reach the live sources? One cheap request per host, all at once, in seconds.

``FEEDS`` is the one table of which hosts each raw feed talks to, primary sources first and
fallbacks after (ccxt venues come from the exchange chain, their hosts from ccxt's own
``urls['api']``). ``probe`` knocks on every host once, concurrently: DNS, TCP connect and, for
HTTP hosts, TLS and a ``HEAD /``, with a short timeout. Any HTTP answer proves the host is there
(``HEAD /`` on an API host often answers 403 or 404), except 451, a refusal of this region for
every path. A feed none of whose hosts answered cannot fetch anything: the live run fails it at
once, naming each host and what it answered, instead of retrying for minutes
(docs/operations.md, "Doctor and fail-fast").
"""

import errno
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

PROBE_TIMEOUT = 4.0  # seconds for each of connect and answer
PROBE_DEADLINE = 10.0  # seconds for the whole probe, even if a DNS lookup hangs
USER_AGENT = f"market-intel/0.1 (connectivity probe; python-requests/{requests.__version__})"
REGION_REFUSED = 451
# Which of a ccxt exchange's ``urls['api']`` entries serves public spot data, in order.
CCXT_PUBLIC_API_KEYS = ("public", "spot", "rest")


@dataclass(frozen=True)
class Endpoint:
    """One host a source talks to, and how it is spoken to: ``https``, ``http`` or raw ``tcp``."""

    host: str
    port: int = 443
    scheme: str = "https"

    def __str__(self) -> str:
        default = {"https": 443, "http": 80}.get(self.scheme)
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Source:
    """A provider behind a feed (``yahoo``, ``ccxt:okx``, ``sina``...) and the hosts it uses."""

    name: str
    endpoints: tuple[Endpoint, ...]
    problem: str | None = None  # why it has no endpoints (e.g. an unknown ccxt exchange id)


@dataclass(frozen=True)
class Feed:
    """A raw table fed over the network: its primary sources, then the fallbacks it tries."""

    table: str
    market: str
    library: str
    primary: tuple[Source, ...]
    fallbacks: tuple[Source, ...] = ()

    @property
    def sources(self) -> tuple[Source, ...]:
        return self.primary + self.fallbacks


def https(host: str) -> Endpoint:
    return Endpoint(host)


def http(host: str) -> Endpoint:
    return Endpoint(host, 80, "http")


YAHOO = Source(
    "yahoo",
    # chart history, crumb, and the cookie yfinance fetches first
    (https("query2.finance.yahoo.com"), https("query1.finance.yahoo.com"), https("fc.yahoo.com")),
)
SINA = Source(
    "sina",
    # index history (klc_kl.js), the whole-market spot table
    (https("finance.sina.com.cn"), http("vip.stock.finance.sina.com.cn")),
)
EASTMONEY = Source(
    "eastmoney",
    # history (kline), the A-share spot table, the Hong Kong index-code list
    (
        https("push2his.eastmoney.com"),
        https("82.push2.eastmoney.com"),
        https("15.push2.eastmoney.com"),
    ),
)
LEGULEGU = Source("legulegu", (https("legulegu.com"),))  # stock_market_activity_legu
SSE = Source("sse", (https("query.sse.com.cn"),))  # stock_sse_deal_daily, the SSE code list
SZSE = Source("szse", (http("www.szse.cn"),))  # stock_szse_summary, the SZSE code list
# baostock's own protocol over TCP (baostock.common.contants.BAOSTOCK_SERVER_IP and _PORT)
BAOSTOCK = Source("baostock", (Endpoint("public-api.baostock.com", 10030, "tcp"),))
DEFILLAMA_TVL = Source("defillama", (https("api.llama.fi"),))
DEFILLAMA_STABLECOINS = Source("defillama-stablecoins", (https("stablecoins.llama.fi"),))

# The raw tables fed over the network, by market; ccxt's sources come from the exchange chain.
FEEDS = (
    Feed("us_bars", "us", "yfinance", (YAHOO,)),
    Feed("hk_bars", "hk", "akshare", (SINA,), (EASTMONEY,)),
    Feed("cn_bars", "cn", "akshare", (SINA,), (EASTMONEY,)),
    Feed("cn_breadth", "cn", "akshare", (LEGULEGU, SSE, SZSE), (SINA, EASTMONEY)),
    Feed("cn_stock_bars", "cn", "baostock", (BAOSTOCK,), (EASTMONEY,)),
    Feed("defi_protocol_tvl", "defi", "defillama", (DEFILLAMA_TVL,)),
    Feed("stablecoin_supply", "defi", "defillama", (DEFILLAMA_STABLECOINS,)),
)


def exchange_chain(setting: str) -> list[str]:
    """The ccxt venues of ``MARKET_INTEL_CCXT_EXCHANGES`` (comma-separated), in order."""
    return [name.strip() for name in setting.split(",") if name.strip()]


def ccxt_source(exchange_id: str) -> Source:
    """A ccxt venue with the hosts of its public API, as ccxt itself knows them."""
    from market_intel.feeds.crypto import make_exchange

    try:
        exchange = make_exchange(exchange_id)
    except Exception as error:  # noqa: BLE001 - ccxt.NotSupported, or a venue that cannot start
        return Source(f"ccxt:{exchange_id}", (), f"{type(error).__name__}: {error}")
    api = exchange.urls.get("api")
    if isinstance(api, dict):
        api = next((api[key] for key in CCXT_PUBLIC_API_KEYS if key in api), api)
    hosts = [urlsplit(exchange.implode_hostname(url)).hostname for url in _urls(api)]
    return Source(
        f"ccxt:{exchange_id}", tuple(https(host) for host in dict.fromkeys(hosts) if host)
    )


def _urls(value: object) -> list[str]:
    """Every URL string in a ccxt ``urls`` entry (a string, or dicts of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [url for item in value.values() for url in _urls(item)]
    return []


def live_feeds(exchanges: Sequence[str]) -> tuple[Feed, ...]:
    """Every networked feed, the crypto one over ``exchanges`` (the first is its primary)."""
    venues = tuple(ccxt_source(name) for name in exchanges)
    crypto = Feed("crypto_bars", "crypto", "ccxt", venues[:1], venues[1:])
    return (crypto, *FEEDS)


@dataclass(frozen=True)
class HostHealth:
    """What one host answered the probe: ``latency`` is seconds to the answer, if one came."""

    endpoint: Endpoint
    reachable: bool
    latency: float | None
    answer: str


def probe_endpoint(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT) -> HostHealth:
    """One cheap request: a TCP connect, or TLS and ``HEAD /`` over HTTP (proxies honoured)."""
    started = time.monotonic()
    try:
        if endpoint.scheme == "tcp":
            with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
                return HostHealth(endpoint, True, time.monotonic() - started, "TCP connected")
        url = f"{endpoint.scheme}://{endpoint}/"
        with requests.head(
            url,
            timeout=(timeout, timeout),
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as response:
            status = response.status_code
    except Exception as error:  # noqa: BLE001 - whatever failed, the host did not answer
        return HostHealth(endpoint, False, None, describe_error(error))
    latency = time.monotonic() - started
    if status == REGION_REFUSED:
        return HostHealth(endpoint, False, latency, f"HTTP {status} (refused in this region)")
    return HostHealth(endpoint, True, latency, f"HTTP {status}")


def describe_error(error: BaseException) -> str:
    """A short cause from the exception chain: DNS failure, refused, unreachable, timeout, TLS."""
    chain = _chain(error)
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return f"DNS failure ({cause.strerror or cause})"
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route ({cause.strerror or cause})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or cause})"
    for cause in chain:
        if isinstance(cause, TimeoutError | requests.Timeout):
            return "timeout"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
    return " ".join(f"{type(error).__name__}: {error}".split())[:200]


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception behind it (causes, contexts, urllib3's ``reason``)."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        behind = (current.__cause__, current.__context__, reason)
        pending.extend(item for item in behind if isinstance(item, BaseException))
    return seen


def probe(
    endpoints: Iterable[Endpoint],
    timeout: float = PROBE_TIMEOUT,
    deadline: float = PROBE_DEADLINE,
) -> dict[Endpoint, HostHealth]:
    """Probe every endpoint once, concurrently; a host with no answer by ``deadline`` is a
    timeout. Threads are daemons, so a hung DNS lookup cannot hold the process either."""
    unique = list(dict.fromkeys(endpoints))
    results: dict[Endpoint, HostHealth] = {}

    def run(endpoint: Endpoint) -> None:
        results[endpoint] = probe_endpoint(endpoint, timeout)

    threads = [threading.Thread(target=run, args=(e,), daemon=True) for e in unique]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - (time.monotonic() - started)))
    no_answer = f"timeout (no answer within {deadline:.0f} s)"
    return {e: results.get(e) or HostHealth(e, False, None, no_answer) for e in unique}


@dataclass(frozen=True)
class Health:
    """The probe of every networked feed's hosts, and what it means for each feed."""

    feeds: tuple[Feed, ...]
    hosts: dict[Endpoint, HostHealth]
    seconds: float

    def of(self, source: Source) -> list[HostHealth]:
        return [self.hosts[endpoint] for endpoint in source.endpoints]

    def source_up(self, source: Source) -> bool:
        return any(host.reachable for host in self.of(source))

    def feed_up(self, feed: Feed) -> bool:
        return any(self.source_up(source) for source in feed.sources)

    def feed(self, table: str) -> Feed | None:
        return next((feed for feed in self.feeds if feed.table == table), None)

    @property
    def sources(self) -> list[Source]:
        return list(dict.fromkeys(source for feed in self.feeds for source in feed.sources))

    @property
    def all_down(self) -> bool:
        return not any(self.feed_up(feed) for feed in self.feeds)

    def tables_of(self, source: Source) -> str:
        """The raw tables a source feeds, comma-separated."""
        return ", ".join(feed.table for feed in self.feeds if source in feed.sources)

    def source_answers(self, source: Source) -> str:
        """What the source's hosts answered, ``host, host: answer; host: answer``."""
        by_answer: dict[str, list[str]] = {}
        for host in self.of(source):
            by_answer.setdefault(host.answer, []).append(str(host.endpoint))
        answers = [f"{', '.join(hosts)}: {answer}" for answer, hosts in by_answer.items()]
        return "; ".join(answers) or source.problem or "no host configured"

    def rows(self) -> list[dict[str, object]]:
        """One row per source and host: what a ``raw.source_health`` table records."""
        return [
            {
                "source": source.name,
                "host": host.endpoint.host,
                "port": host.endpoint.port,
                "reachable": host.reachable,
                "latency_ms": None if host.latency is None else round(host.latency * 1000, 1),
                "answer": host.answer,
                "feeds": self.tables_of(source),
            }
            for source in self.sources
            for host in self.of(source)
        ]

    def unreachable_cause(self, table: str) -> str | None:
        """One line naming each source of a feed none of whose hosts answered, else None."""
        feed = self.feed(table)
        if feed is None or self.feed_up(feed):
            return None
        answers = "; ".join(f"{s.name} ({self.source_answers(s)})" for s in feed.sources)
        return f"[{feed.library}] {feed.table}: no source reachable, nothing fetched: {answers}"

    def outage_report(self) -> str:
        """Every live source unreachable: one line per source, with what each host answered."""
        header = (
            f"every live source is unreachable (probe of {len(self.hosts)} hosts took "
            f"{self.seconds:.1f} s); nothing was fetched or written:"
        )
        lines = [
            f"  {source.name} ({self.tables_of(source)}): {self.source_answers(source)}"
            for source in self.sources
        ]
        return "\n".join([header, *lines])


def check_feeds(
    feeds: Sequence[Feed], timeout: float = PROBE_TIMEOUT, deadline: float = PROBE_DEADLINE
) -> Health:
    """Probe every host of ``feeds`` once (hosts shared by several feeds only once)."""
    started = time.monotonic()
    endpoints = [e for feed in feeds for source in feed.sources for e in source.endpoints]
    hosts = probe(endpoints, timeout, deadline)
    return Health(tuple(feeds), hosts, time.monotonic() - started)
