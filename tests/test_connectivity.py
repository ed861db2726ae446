"""The connectivity probe against loopback servers (answering 200 or 451, refusing, hanging),
DNS failures and unroutable addresses at the socket seam; and a live run with no route to the
feeds: one probe, one failed step naming every source, no retries, nothing written."""

import errno
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dagster import AssetKey, DagsterEventType

from market_intel.feeds import connectivity, defillama
from market_intel.feeds.connectivity import Endpoint, Feed, Health, HostHealth, Source
from market_intel.settings import DEFAULTS
from tests.conftest import LOOPBACK, Pipeline

DEMO_DATE, NEXT_DATE = "2026-03-22", "2026-03-23"
DNS_FAILURE = "DNS failure (Name or service not known)"


class NoRoute:
    """This machine with no route to the feeds, at the socket seam: a name's lookup fails as
    it does here (``EAI_NONAME``) unless ``resolve`` sends it to a loopback port; a connect to
    an address off this machine is unreachable. Every lookup and connect is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.lookups: list[str] = []
        self.connects: list[tuple] = []
        self.resolve: dict[str, tuple[str, int]] = {}
        lookup, connect = socket.getaddrinfo, socket.socket.connect

        def getaddrinfo(host, port, *args, **kwargs):
            if host in LOOPBACK:
                return lookup(host, port, *args, **kwargs)
            self.lookups.append(host)
            if host in self.resolve:
                return lookup(*self.resolve[host], *args, **kwargs)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        def unreachable(sock: socket.socket, address: object) -> None:
            if isinstance(address, tuple) and address[0] not in LOOPBACK:
                self.connects.append(address)
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", unreachable)


@pytest.fixture
def no_route(monkeypatch: pytest.MonkeyPatch) -> NoRoute:
    return NoRoute(monkeypatch)


def answering(status: int) -> Iterator[int]:
    """A loopback HTTP server answering ``status`` to everything; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def ok_port() -> Iterator[int]:
    yield from answering(200)


@pytest.fixture
def refused_451_port() -> Iterator[int]:
    yield from answering(451)


@pytest.fixture
def hanging_port() -> Iterator[int]:
    yield from hanging()


def hanging() -> Iterator[int]:
    """A loopback server that accepts connections and never says a word; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    yield listener.getsockname()[1]
    stop.set()
    holder.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_each_kind_of_answer_is_told_apart(
    ok_port: int, refused_451_port: int, hanging_port: int, closed_port: int
) -> None:
    endpoints = {
        "ok": Endpoint("127.0.0.1", ok_port, "http"),
        "451": Endpoint("127.0.0.1", refused_451_port, "http"),
        "refused": Endpoint("127.0.0.1", closed_port, "http"),
        "hangs": Endpoint("127.0.0.1", hanging_port, "http"),
        "tls": Endpoint("127.0.0.1", ok_port, "https"),  # TLS spoken to a plain HTTP server
        "tcp": Endpoint("127.0.0.1", ok_port, "tcp"),
        "tcp refused": Endpoint("127.0.0.1", closed_port, "tcp"),
    }
    hosts = connectivity.probe(endpoints.values(), timeout=0.5, deadline=5)
    seen = {name: hosts[endpoint] for name, endpoint in endpoints.items()}
    assert {name: (h.reachable, h.answer) for name, h in seen.items() if name != "tls"} == {
        "ok": (True, "HTTP 200"),
        "451": (False, "HTTP 451 (refused in this region)"),
        "refused": (False, "connection refused"),
        "hangs": (False, "timeout"),
        "tcp": (True, "TCP connected"),
        "tcp refused": (False, "connection refused"),
    }
    assert not seen["tls"].reachable
    assert seen["tls"].answer.startswith("TLS error")
    assert seen["ok"].latency is not None and seen["ok"].latency < 0.5
    assert seen["refused"].latency is None


def test_dns_failure_and_no_route_at_the_socket_seam(no_route: NoRoute) -> None:
    no_route.resolve["unroutable.example"] = ("192.0.2.1", 443)  # TEST-NET-1: no route
    endpoints = [
        Endpoint("feeds.invalid"),
        Endpoint("unroutable.example"),
        Endpoint("unroutable.example", 10030, "tcp"),
    ]
    hosts = connectivity.probe(endpoints, timeout=0.5)
    assert [(h.reachable, h.answer) for h in hosts.values()] == [
        (False, DNS_FAILURE),
        (False, "no route (Network is unreachable)"),
        (False, "no route (Network is unreachable)"),
    ]
    assert no_route.connects == [("192.0.2.1", 443), ("192.0.2.1", 443)]


def test_the_probe_is_bounded_when_every_host_and_even_dns_hang(
    monkeypatch: pytest.MonkeyPatch, hanging_port: int
) -> None:
    """Twenty hosts that never answer, and a DNS lookup that never returns: all are timeouts
    once the deadline has passed, not one timeout after another."""
    released = threading.Event()
    lookup = socket.getaddrinfo

    def hanging_hosts(host, port, *args, **kwargs):
        if host == "stuck.dns":
            released.wait()
        return lookup("127.0.0.1", hanging_port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging_hosts)
    endpoints = [Endpoint(f"host{n}.example", 80, "http") for n in range(20)]
    endpoints += [Endpoint("stuck.dns")]
    started = time.monotonic()
    try:
        hosts = connectivity.probe(endpoints, timeout=0.3, deadline=1.0)
    finally:
        released.set()
    assert time.monotonic() - started < 3.0
    assert [h.answer for h in hosts.values()] == ["timeout"] * 20 + [
        "timeout (no answer within 1 s)"
    ]
    assert not any(h.reachable for h in hosts.values())


def test_ccxt_venues_are_probed_at_the_hosts_ccxt_calls() -> None:
    """Hosts come from each exchange's ``urls['api']`` (its public spot entry), not a list."""
    feeds = connectivity.live_feeds(["binance", "okx", "kraken", "nosuchvenue"])
    crypto = next(feed for feed in feeds if feed.table == "crypto_bars")
    assert [s.name for s in crypto.primary] == ["ccxt:binance"]
    assert {s.name: [str(e) for e in s.endpoints] for s in crypto.sources} == {
        "ccxt:binance": ["api.binance.com"],
        "ccxt:okx": ["www.okx.com"],
        "ccxt:kraken": ["api.kraken.com"],
        "ccxt:nosuchvenue": [],
    }
    assert "not a ccxt exchange id" in crypto.fallbacks[-1].problem
    assert {feed.table for feed in feeds} == {
        "crypto_bars",
        "us_bars",
        "hk_bars",
        "cn_bars",
        "cn_breadth",
        "cn_stock_bars",
        "defi_protocol_tvl",
        "stablecoin_supply",
    }


def health_of(feeds: tuple[Feed, ...], up: set[str]) -> Health:
    """A probe where only the hosts in ``up`` answered."""
    endpoints = {e for feed in feeds for source in feed.sources for e in source.endpoints}
    return Health(
        feeds,
        {
            e: HostHealth(e, True, 0.01, "HTTP 200")
            if e.host in up
            else HostHealth(e, False, None, DNS_FAILURE)
            for e in endpoints
        },
        0.1,
    )


PRIMARY = Source("primary", (Endpoint("a.example"), Endpoint("b.example")))
FALLBACK = Source("fallback", (Endpoint("c.example", 10030, "tcp"),))
FEED = Feed("x_bars", "x", "lib", (PRIMARY,), (FALLBACK,))
OTHER = Feed("y_bars", "y", "lib", (Source("other", (Endpoint("d.example"),)),))


def test_a_feed_is_down_only_when_none_of_its_hosts_answered() -> None:
    assert health_of((FEED, OTHER), {"c.example"}).unreachable_cause("x_bars") is None
    assert health_of((FEED, OTHER), {"b.example"}).unreachable_cause("x_bars") is None
    health = health_of((FEED, OTHER), {"d.example"})
    assert health.unreachable_cause("x_bars") == (
        f"[lib] x_bars: no source reachable, nothing fetched: primary (a.example, b.example: "
        f"{DNS_FAILURE}); fallback (c.example:10030: {DNS_FAILURE})"
    )
    assert health.unreachable_cause("market_sessions") is None  # not a networked feed
    assert not health.all_down


def test_every_source_down_is_one_line_per_source() -> None:
    health = health_of((FEED, OTHER), set())
    assert health.all_down
    assert health.outage_report().splitlines()[1:] == [
        f"  primary (x_bars): a.example, b.example: {DNS_FAILURE}",
        f"  fallback (x_bars): c.example:10030: {DNS_FAILURE}",
        f"  other (y_bars): d.example: {DNS_FAILURE}",
    ]


# --- live runs ------------------------------------------------------------------------------


def live_hosts() -> Counter:
    feeds = connectivity.live_feeds(
        connectivity.exchange_chain(DEFAULTS["MARKET_INTEL_CCXT_EXCHANGES"])
    )
    return Counter(
        {e.host: 1 for feed in feeds for source in feed.sources for e in source.endpoints}
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``time.sleep`` of the test, still slept: a retry backoff would show here."""
    slept: list[float] = []
    sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: slept.append(seconds) or sleep(seconds))
    return slept


def snapshot(pipeline: Pipeline) -> dict[str, bytes]:
    files = [pipeline.db, *sorted(pipeline.reports.iterdir())]
    return {path.name: path.read_bytes() for path in files}


def failed_steps(result) -> dict[str, str]:
    """Each failed step's message, without the exception's type (``...Failure: ``)."""
    return {
        event.step_key: event.event_specific_data.error.message.split("Failure: ", 1)[-1].strip()
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    }


def test_a_live_run_with_no_route_fails_at_the_probe_and_changes_nothing(
    demo_copy: Pipeline, no_route: NoRoute, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Demo first (a copy of the session's demo run of DEMO_DATE), then the next date live with
    no route: the probe's step fails naming every source and its answer; each host was looked up
    once (the probe), no feed retried or slept, and the database and the reports are
    byte-identical."""
    pipeline = demo_copy
    assert sorted(p.name for p in pipeline.reports.iterdir()) == [
        f"{DEMO_DATE}.{suffix}" for suffix in ("html", "json", "md")
    ] + ["feed.xml", "index.html", "index.json"]
    before = snapshot(pipeline)
    monkeypatch.setenv("MARKET_INTEL_SOURCE", "live")
    result = pipeline.run(NEXT_DATE, raise_on_error=False)
    assert not result.success
    (step, message), *others = failed_steps(result).items()
    assert step == "raw__source_health" and others == []
    lines = message.splitlines()
    assert lines[0].startswith("every live source is unreachable")
    sources = [line.split(" (")[0].strip() for line in lines[1:] if line.startswith("  ")]
    assert sources == [
        "ccxt:binance",
        "ccxt:okx",
        "ccxt:kraken",
        "yahoo",
        "sina",
        "eastmoney",
        "legulegu",
        "sse",
        "szse",
        "baostock",
        "defillama",
        "defillama-stablecoins",
    ]
    assert all(line.endswith(DNS_FAILURE) for line in lines[1:] if line.startswith("  "))
    assert Counter(no_route.lookups) == live_hosts()
    assert no_route.connects == []
    assert not [seconds for seconds in sleeps if seconds >= 1]
    assert snapshot(pipeline) == before


def test_a_feed_with_no_host_up_writes_nothing_at_once_and_the_others_go_on(
    pipeline: Pipeline, no_route: NoRoute, ok_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only baostock's host answers: the probe succeeds and is recorded; raw/us_bars asks Yahoo
    nothing more and writes nothing, with one line naming Yahoo's hosts and their answers; its
    step does not fail, so the facts and the quality gate still run for the other markets."""
    no_route.resolve["public-api.baostock.com"] = ("127.0.0.1", ok_port)
    monkeypatch.setenv("MARKET_INTEL_SOURCE", "live")
    selection = [AssetKey(["raw", "source_health"]), AssetKey(["raw", "us_bars"])]
    result = pipeline.run(NEXT_DATE, selection=selection, raise_on_error=False)
    assert failed_steps(result) == {}
    (materialization,) = [
        event.event_specific_data.materialization
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and event.event_specific_data.materialization.asset_key == AssetKey(["raw", "us_bars"])
    ]
    assert materialization.metadata["failed"].value == (
        "[yfinance] us_bars: no source reachable, nothing fetched: yahoo "
        f"(query2.finance.yahoo.com, query1.finance.yahoo.com, fc.yahoo.com: {DNS_FAILURE})"
    )
    assert materialization.metadata["rows_replaced"].value == 0
    assert pipeline.query("SELECT count(*) FROM raw.us_bars") == [(0,)]
    assert Counter(no_route.lookups) == live_hosts()
    recorded = pipeline.query(
        "SELECT source, host, port, reachable, answer FROM raw.source_health "
        "WHERE source IN ('baostock', 'yahoo') ORDER BY ALL"
    )
    assert recorded == [
        ("baostock", "public-api.baostock.com", 10030, True, "TCP connected"),
        ("yahoo", "fc.yahoo.com", 443, False, DNS_FAILURE),
        ("yahoo", "query1.finance.yahoo.com", 443, False, DNS_FAILURE),
        ("yahoo", "query2.finance.yahoo.com", 443, False, DNS_FAILURE),
    ]
    assert not Path(pipeline.reports).exists()


def test_baostock_is_probed_where_baostock_connects() -> None:
    constants = pytest.importorskip("baostock.common.contants")
    (endpoint,) = connectivity.BAOSTOCK.endpoints
    assert (endpoint.host, endpoint.port, endpoint.scheme) == (
        constants.BAOSTOCK_SERVER_IP,
        constants.BAOSTOCK_SERVER_PORT,
        "tcp",
    )


def test_defillama_is_probed_at_the_hosts_its_feed_calls() -> None:
    feeds = {feed.table: feed for feed in connectivity.FEEDS}
    probed = {
        table: {e.host for s in feeds[table].sources for e in s.endpoints}
        for table in ("defi_protocol_tvl", "stablecoin_supply")
    }
    assert probed == {
        "defi_protocol_tvl": {urlsplit(defillama.PROTOCOLS_URL).hostname},
        "stablecoin_supply": {urlsplit(defillama.STABLECOIN_CHART_URL).hostname},
    }
