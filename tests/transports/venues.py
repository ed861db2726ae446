"""ccxt venues: Binance, OKX and Kraken public REST APIs answering like the real ones, below
``Exchange.fetch`` (at the requests adapter of each client's session), so ccxt's own request
building, HTTP error mapping, JSON decoding, market loading and candle parsing all run.

Each venue holds its candles oldest first in its own row layout and serves them with that
venue's paging rules: Binance from ``startTime`` on, OKX strictly between ``before`` and
``after`` newest first, Kraken only its latest 720 whatever ``since`` asks.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
import requests

from market_intel.feeds import crypto
from tests.transports.failures import RETRY_AFTER_SECONDS, Failure
from tests.transports.http import Answer, FakeHTTP, json_answer, text_answer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ccxt"
HOSTS = {
    "binance": "api.binance.com",
    "binanceus": "api.binance.us",
    "okx": "www.okx.com",
    "kraken": "api.kraken.com",
}
KRAKEN_DEPTH = 720  # Kraken's OHLC endpoint: "up to 720 of the most recent entries"


def read_json(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}


@dataclass
class Binance:
    """api.binance.com: ``/api/v3/exchangeInfo`` and ``/api/v3/klines`` (rows opening at or
    after ``startTime``, at most ``limit`` and ``page_cap``)."""

    klines: list[list] = field(
        default_factory=lambda: read_json("binance_klines_BTCUSDT_1d_2026-03-17_2026-03-22.json")
    )
    info: dict = field(default_factory=lambda: read_json("binance_exchangeInfo_spot_min.json"))
    page_cap: int = 1000
    failures: list[Failure] = field(default_factory=list)
    fail_path: str = ""  # failures wait for a request whose path contains this

    def answer(self, request: requests.PreparedRequest) -> Answer:
        path = urlsplit(request.url).path
        if path.endswith("/exchangeInfo"):
            return json_answer(self.info)
        assert path.endswith("/klines"), f"unexpected request {request.method} {request.url}"
        params = query(request)
        since, limit = int(params["startTime"]), int(params["limit"])
        return json_answer([r for r in self.klines if r[0] >= since][: min(limit, self.page_cap)])

    failure_answers: ClassVar[dict] = {
        Failure.REFUSED_451: Answer(
            451,
            (FIXTURES / "binance_451_restricted_location.json").read_bytes(),
            {"Content-Type": "application/json"},
        ),
        Failure.RATE_LIMITED: Answer(
            429,
            (FIXTURES / "binance_429_request_weight.json").read_bytes(),
            {"Content-Type": "application/json"},
        ),
        Failure.RATE_LIMITED_RETRY_AFTER: Answer(
            429,
            (FIXTURES / "binance_429_request_weight.json").read_bytes(),
            {"Content-Type": "application/json", "Retry-After": str(RETRY_AFTER_SECONDS)},
        ),
    }


@dataclass
class OKX:
    """www.okx.com: ``/api/v5/public/instruments`` and ``/api/v5/market/candles`` or
    ``/history-candles`` (rows with ``before < ts < after``, newest first, at most ``limit``)."""

    candles: list[list] = field(
        default_factory=lambda: list(
            reversed(read_json("okx_candles_BTC-USDT_1Dutc_2026-03-17_2026-03-22.json")["data"])
        )
    )
    instruments: dict = field(default_factory=lambda: read_json("okx_instruments_SPOT_min.json"))
    failures: list[Failure] = field(default_factory=list)
    fail_path: str = ""  # failures wait for a request whose path contains this

    def answer(self, request: requests.PreparedRequest) -> Answer:
        path = urlsplit(request.url).path
        params = query(request)
        if path == "/api/v5/public/instruments":
            assert params["instType"] == "SPOT", request.url
            return json_answer(self.instruments)
        assert path in ("/api/v5/market/candles", "/api/v5/market/history-candles"), request.url
        before, after = int(params.get("before", -1)), int(params.get("after", 2**63))
        rows = [r for r in reversed(self.candles) if before < int(r[0]) < after]
        return json_answer({"code": "0", "msg": "", "data": rows[: int(params["limit"])]})

    failure_answers: ClassVar[dict] = {
        Failure.RATE_LIMITED: json_answer({"msg": "Too Many Requests", "code": "50011"}, 429),
        Failure.RATE_LIMITED_RETRY_AFTER: json_answer(
            {"msg": "Too Many Requests", "code": "50011"},
            429,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        ),
        Failure.SERVER_ERROR: json_answer(
            {"msg": "System is busy, please try again later", "code": "50013"}, 503
        ),
    }


@dataclass
class Kraken:
    """api.kraken.com: ``/0/public/Assets``, ``/0/public/AssetPairs`` and ``/0/public/OHLC``
    (rows with ``time > since``, then only the latest 720 of them)."""

    ohlc: list[list] = field(
        default_factory=lambda: read_json("kraken_OHLC_XBTUSDT_1440_2026-03-17_2026-03-22.json")[
            "result"
        ]["XBTUSDT"]
    )
    pair: str = "XBTUSDT"
    assets: dict = field(default_factory=lambda: read_json("kraken_Assets_min.json"))
    pairs: dict = field(default_factory=lambda: read_json("kraken_AssetPairs_min.json"))
    failures: list[Failure] = field(default_factory=list)
    fail_path: str = ""  # failures wait for a request whose path contains this

    def answer(self, request: requests.PreparedRequest) -> Answer:
        path = urlsplit(request.url).path
        if path == "/0/public/Assets":
            return json_answer(self.assets)
        if path == "/0/public/AssetPairs":
            return json_answer(self.pairs)
        assert path == "/0/public/OHLC", f"unexpected request {request.method} {request.url}"
        params = query(request)
        assert (params["pair"], params["interval"]) == (self.pair, "1440"), request.url
        rows = [r for r in self.ohlc if r[0] > int(params.get("since", 0))][-KRAKEN_DEPTH:]
        last = rows[-2][0] if len(rows) > 1 else 0  # the last committed (closed) candle
        return json_answer({"error": [], "result": {self.pair: rows, "last": last}})

    failure_answers: ClassVar[dict] = {
        Failure.RATE_LIMITED: json_answer({"error": ["EGeneral:Too many requests"]}),
        Failure.SERVER_ERROR: text_answer(
            "<html><title>520: Web server is returning an unknown error</title></html>", 520
        ),
    }


Venue = Binance | OKX | Kraken


class Venues:
    """Venues by ccxt id. ``client(id)`` is the production client (``crypto.make_exchange``)
    with this fake mounted on its session and ccxt's real-time rate-limit sleeps off."""

    def __init__(self) -> None:
        self.by_id: dict[str, Venue] = {}
        self.http = FakeHTTP()

    def __setitem__(self, exchange_id: str, venue: Venue) -> None:
        host = HOSTS[exchange_id]
        self.by_id[exchange_id] = venue
        self.http.servers[host] = venue.answer
        self.http.failures[host] = venue.failures
        self.http.failure_answers[host] = venue.failure_answers
        self.http.failure_paths[host] = venue.fail_path

    def __getitem__(self, exchange_id: str) -> Venue:
        return self.by_id[exchange_id]

    def client(self, exchange_id: str) -> ccxt.Exchange:
        exchange = crypto.make_exchange(exchange_id)
        exchange.enableRateLimit = False
        exchange.session.mount("https://", self.http)
        return exchange

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Serve every requests session of the process, for code that builds its own clients."""
        self.http.install(monkeypatch)

    def paths(self, exchange_id: str) -> list[str]:
        return [urlsplit(url).path for url in self.urls(exchange_id)]

    def urls(self, exchange_id: str) -> list[str]:
        host = HOSTS[exchange_id]
        return [url for url in self.http.urls if urlsplit(url).hostname == host]

    def queries(self, exchange_id: str, path_end: str) -> list[dict[str, str]]:
        """The query of each request to ``exchange_id`` whose path ends with ``path_end``."""
        return [
            {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
            for url in self.urls(exchange_id)
            if urlsplit(url).path.endswith(path_end)
        ]
