"""``make doctor`` offline (no route at the socket seam), with every host hanging, and with a
primary venue refusing the region while a fallback serves; real requests run through each
library's own transport (ccxt's ``Exchange.fetch``, requests' ``HTTPAdapter.send``)."""

import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import ccxt
import pytest
import requests

from market_intel.feeds import connectivity, doctor
from market_intel.feeds.connectivity import Health, HostHealth
from tests.test_connectivity import DNS_FAILURE, NoRoute, hanging, live_hosts

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = date(2026, 3, 22)
CHAIN = "binance,okx,kraken"


@pytest.fixture
def no_route(monkeypatch: pytest.MonkeyPatch) -> NoRoute:
    return NoRoute(monkeypatch)


@pytest.fixture
def hanging_port() -> Iterator[int]:
    yield from hanging()


def table(output: str) -> list[dict[str, str]]:
    """The doctor's table as rows of cells, cut at the header's column positions."""
    header, *lines = output.split("\n\n")[0].splitlines()
    starts = [header.index(column) for column in doctor.COLUMNS]
    bounds = list(zip(starts, [*starts[1:], None]))
    return [
        {name: line[a:b].strip() for name, (a, b) in zip(doctor.COLUMNS, bounds)} for line in lines
    ]


def test_offline_every_source_is_unreachable_within_seconds(
    no_route: NoRoute, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MARKET_INTEL_CCXT_EXCHANGES", CHAIN)
    started = time.monotonic()
    code = doctor.main([])
    seconds = time.monotonic() - started
    output = capsys.readouterr().out
    rows = table(output)
    feeds = connectivity.live_feeds(CHAIN.split(","))
    assert [(row["feed"], row["source"]) for row in rows] == [
        (feed.table, source.name) for feed in feeds for source in feed.sources
    ]
    assert {(row["reachable"], row["rows"], row["newest"], row["answer"]) for row in rows} == {
        ("no", "-", "-", DNS_FAILURE)
    }
    assert [row["fallback used"] for row in rows if row["fallback used"]] == ["none"] * len(feeds)
    down = output.split("primary sources down")[1].splitlines()[1:]
    assert [line.split(" (")[0].strip() for line in down] == [
        source.name for feed in feeds for source in feed.primary
    ]
    assert code == 1
    assert seconds < 30
    assert Counter(no_route.lookups) == live_hosts()  # the probe only: no real request tried


def test_every_host_hanging_still_ends_within_the_deadlines(
    no_route: NoRoute, hanging_port: int
) -> None:
    """Every name leads to a server that accepts and never answers: the HTTP hosts time out
    in the probe; baostock's bare TCP connect succeeds, so its real request is tried and is
    cut off by the check deadline (or fails at once where baostock is not installed)."""
    for host in live_hosts():
        no_route.resolve[host] = ("127.0.0.1", hanging_port)
    out = io.StringIO()
    started = time.monotonic()
    code = doctor.run(
        CHAIN.split(","), out, timeout=0.3, probe_deadline=1.0, check_deadline=1.0, today=TODAY
    )
    assert time.monotonic() - started < 8
    rows = {row["source"]: row for row in table(out.getvalue())}
    baostock = rows.pop("baostock")
    # a timeout of the host's request, or of the probe's deadline on a busy machine
    assert {(row["reachable"], row["answer"][:7]) for row in rows.values()} == {("no", "timeout")}
    assert baostock["reachable"] == "yes" and baostock["rows"] == "-"
    assert code == 1


def binance_api(calls: list[str]):
    """``Exchange.fetch`` answering like a Binance-API venue from the recorded bodies."""
    info = (FIXTURES / "ccxt" / "binance_exchangeInfo_spot_min.json").read_text()
    klines = json.loads(
        (FIXTURES / "ccxt" / "binance_klines_BTCUSDT_1d_2026-03-17_2026-03-22.json").read_text()
    )

    def fetch(self, url, method="GET", headers=None, body=None):
        calls.append(url)
        path = urlparse(url).path
        if path.endswith("/exchangeInfo"):
            return self.parse_json(info)
        assert path.endswith("/klines"), url
        limit = int(parse_qs(urlparse(url).query)["limit"][0])
        return self.parse_json(json.dumps(klines[-limit:]))

    return fetch


def probed(feeds: tuple[connectivity.Feed, ...], answers: dict[str, str]) -> Health:
    """A probe where the hosts in ``answers`` answered that HTTP status line; others no DNS."""
    endpoints = {e for feed in feeds for source in feed.sources for e in source.endpoints}
    return Health(
        feeds,
        {
            e: HostHealth(e, answers[e.host] == "HTTP 200", 0.02, answers[e.host])
            if e.host in answers
            else HostHealth(e, False, None, DNS_FAILURE)
            for e in endpoints
        },
        0.1,
    )


def test_a_fallback_venue_serves_when_the_primary_refuses_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ccxt.Exchange, "fetch", binance_api(calls))
    feeds = connectivity.live_feeds(["binance", "binanceus"])
    health = probed(
        feeds,
        {"api.binance.com": "HTTP 451 (refused in this region)", "api.binance.us": "HTTP 200"},
    )
    out = io.StringIO()
    code = doctor.report(doctor.examine(health, TODAY), 0.1, out)
    crypto = [row for row in table(out.getvalue()) if row["feed"] == "crypto_bars"]
    assert crypto == [
        {
            "feed": "crypto_bars",
            "source": "ccxt:binance",
            "role": "primary",
            "host": "api.binance.com",
            "reachable": "no",
            "latency": "-",
            "rows": "-",
            "newest": "-",
            "fallback used": "yes: ccxt:binanceus",
            "answer": "HTTP 451 (refused in this region)",
        },
        {
            "feed": "crypto_bars",
            "source": "ccxt:binanceus",
            "role": "fallback",
            "host": "api.binance.us",
            "reachable": "yes",
            "latency": "20 ms",
            "rows": "3",
            "newest": "2026-03-22",
            "fallback used": "",
            "answer": "ok (HTTP 200)",
        },
    ]
    assert {urlparse(url).hostname for url in calls} == {"api.binance.us"}
    assert code == 1  # a primary is down, even though the feed is served


def test_every_primary_answering_exits_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ccxt.Exchange, "fetch", binance_api([]))
    crypto = connectivity.live_feeds(["binance"])[:1]
    out = io.StringIO()
    code = doctor.report(
        doctor.examine(probed(crypto, {"api.binance.com": "HTTP 200"}), TODAY), 0.1, out
    )
    assert table(out.getvalue())[0]["fallback used"] == "no"
    assert "every primary source answered" in out.getvalue()
    assert code == 0


def test_the_defillama_check_reads_a_real_stablecoin_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One small real request through requests' transport: USDT's daily supply series."""
    body = (FIXTURES / "defillama" / "stablecoincharts_usdt.json").read_bytes()
    asked = []

    def send(self, request, **kwargs):
        asked.append(request.url)
        response = requests.Response()
        response.status_code, response._content, response.url = 200, body, request.url
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    dates = doctor.CHECKS[("stablecoin_supply", "defillama-stablecoins")](TODAY)
    assert asked == ["https://stablecoins.llama.fi/stablecoincharts/all?stablecoin=1"]
    assert (len(dates), max(dates)) == (len(json.loads(body)), date(2026, 3, 22))


def test_the_legulegu_check_reads_the_page_with_the_feeds_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """akshare's own scraping of the recorded page, then the breadth feed's parser."""
    page = (FIXTURES / "akshare" / "legu_market_activity.html").read_bytes()
    asked = []

    def send(session, request, **kwargs):
        asked.append(request.url)
        response = requests.Response()
        response.status_code, response._content, response.url = 200, page, request.url
        response.encoding = "utf-8"
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    assert doctor.CHECKS[("cn_breadth", "legulegu")](TODAY) == [date(2026, 3, 20)]
    assert asked == ["https://legulegu.com/stockdata/market-activity"]
