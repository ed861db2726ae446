"""ccxt: its real Binance request building, market loading and kline parsing over recorded bodies,
with the network replaced at the lowest seam (``Exchange.fetch``), then our pager, fallback chain
and parser over what ccxt returned."""

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import ccxt
import pandas as pd
import pytest

from assets.feeds import BAR_FRAME_COLUMNS, FeedError, SchemaDriftError, Throttle, crypto
from assets.universe import Instrument, instruments

FIXTURES = Path(__file__).parent / "fixtures" / "ccxt"
BTC = next(i for i in instruments("crypto") if i.instrument_id == "crypto/BTC-USDT")
ETH = next(i for i in instruments("crypto") if i.instrument_id == "crypto/ETH-USDT")
NOW = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)  # the 2026-03-22 candle is still open
MS_2026_03_17 = 1773705600000
DAY_MS = 86_400_000


def read_json(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


KLINES = read_json("binance_klines_BTCUSDT_1d_2026-03-17_2026-03-22.json")
INFO = read_json("binance_exchangeInfo_spot_min.json")
TIMEOUT = "timeout"
REFUSED_451 = (451, "Unavailable For Legal Reasons", "binance_451_restricted_location.json")
LIMITED_429 = (429, "Too Many Requests", "binance_429_request_weight.json")
DOWN_503 = (503, "Service Unavailable", None)  # an empty body, as from a load balancer


@dataclass
class Venue:
    """One Binance-API venue: its markets, its klines, the most rows it puts in a page, and
    failures (``TIMEOUT`` or an HTTP status with a recorded body) served to its first requests."""

    klines: list[list] = field(default_factory=lambda: KLINES)
    info: dict = field(default_factory=lambda: INFO)
    page_cap: int = 1000
    failures: list = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def kline_queries(self) -> list[dict[str, str]]:
        return [
            {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}
            for url in self.requests
            if urlparse(url).path.endswith("/klines")
        ]


def serve(exchange: ccxt.Exchange, venue: Venue, url: str, method: str) -> object:
    """Answer like api.binance.com: klines open at or after ``startTime``, at most a page."""
    path = urlparse(url).path
    if path.endswith("/exchangeInfo"):
        return exchange.parse_json(json.dumps(venue.info))
    assert path.endswith("/klines"), f"unexpected request {method} {url}"
    query = parse_qs(urlparse(url).query)
    since, limit = int(query["startTime"][0]), int(query["limit"][0])
    page = [row for row in venue.klines if row[0] >= since][: min(limit, venue.page_cap)]
    return exchange.parse_json(json.dumps(page))


def fail(exchange: ccxt.Exchange, failure: object, url: str, method: str) -> None:
    """Raise what ``Exchange.fetch`` raises for a timeout or an HTTP error status, through
    ccxt's own error mapping (the venue's ``handle_errors``, then ``httpExceptions``)."""
    if failure == TIMEOUT:
        raise ccxt.RequestTimeout(f"{exchange.id} {method} {url}")
    status, reason, body_file = failure
    body = (FIXTURES / body_file).read_text().strip() if body_file else ""
    response = exchange.parse_json(body)
    if not exchange.handle_errors(status, reason, url, method, {}, body, response, {}, None):
        exchange.handle_http_status_code(status, reason, url, method, body)
    raise ccxt.ExchangeError(f"{exchange.id} {method} {url}")


@pytest.fixture
def venues(monkeypatch: pytest.MonkeyPatch) -> dict[str, Venue]:
    """Venues by ccxt id; every HTTP request ccxt makes is answered by the venue it is sent to."""
    venues: dict[str, Venue] = {}

    def fake_fetch(self, url, method="GET", headers=None, body=None):
        venue = venues[self.id]
        venue.requests.append(url)
        if venue.failures:
            fail(self, venue.failures.pop(0), url, method)
        return serve(self, venue, url, method)

    monkeypatch.setattr(ccxt.Exchange, "fetch", fake_fetch)
    return venues


class CountingThrottle(Throttle):
    def __init__(self) -> None:
        super().__init__(per_minute=0)
        self.waits = 0

    def wait(self) -> None:
        self.waits += 1


def no_sleep_expected(seconds: float) -> None:
    raise AssertionError(f"unexpected retry sleep of {seconds}s")


def quick_exchange(exchange_id: str) -> ccxt.Exchange:
    """The production client, without ccxt's real-time rate-limit sleeps between test requests."""
    exchange = crypto.make_exchange(exchange_id)
    exchange.enableRateLimit = False
    return exchange


def fetch(
    exchanges: tuple[str, ...] = ("binance",),
    start: date = date(2026, 3, 17),
    end: date = date(2026, 3, 23),
    now: datetime = NOW,
    throttle: Throttle | None = None,
    sleep: Callable[[float], None] = no_sleep_expected,
    instrument: Instrument = BTC,
) -> pd.DataFrame:
    return crypto.fetch_bars(
        instrument,
        start,
        end,
        list(exchanges),
        throttle or Throttle(per_minute=0),
        now,
        exchange_factory=quick_exchange,
        sleep=sleep,
    )


def candle(day: str, close: float, hour: int = 0) -> list:
    opened = datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)
    return [int(opened.timestamp() * 1000), close, close, close, close, 1.0]


def test_binance_klines_become_utc_day_bars(venues: dict[str, Venue]) -> None:
    venues["binance"] = Venue()
    rows = fetch()
    assert list(rows.columns) == BAR_FRAME_COLUMNS
    # 2026-03-22's candle is still open at NOW: only the five completed UTC days remain.
    assert rows["session_date"].tolist() == [date(2026, 3, day) for day in range(17, 22)]
    friday = rows.set_index("session_date").loc[date(2026, 3, 20)]
    assert (friday["open"], friday["close"], friday["volume"]) == (69930.01, 70510.73, 18121.16745)
    assert rows["close"].iloc[-1] == 68918.12
    assert set(rows["instrument_id"]) == {"crypto/BTC-USDT"}
    assert set(rows["source"]) == {"ccxt:binance"} and not rows["is_fallback"].any()
    # Spot markets only (one exchangeInfo), then one page of daily klines from the start day.
    assert [urlparse(url).path for url in venues["binance"].requests] == [
        "/api/v3/exchangeInfo",
        "/api/v3/klines",
    ]
    assert venues["binance"].kline_queries() == [
        {"interval": "1d", "limit": "1000", "symbol": "BTCUSDT", "startTime": str(MS_2026_03_17)}
    ]


@pytest.mark.parametrize(
    ("now", "last_day"),
    [
        (datetime(2026, 3, 22, 12, 0, tzinfo=UTC), "2026-03-21"),
        (datetime(2026, 3, 22, 0, 0, tzinfo=UTC), "2026-03-21"),  # 21st closed at midnight
        (datetime(2026, 3, 22, 7, 0, tzinfo=timezone(timedelta(hours=8))), "2026-03-20"),
        (datetime(2026, 3, 22, 12, 0), "2026-03-21"),  # naive means UTC
    ],
)
def test_candle_of_nows_utc_day_is_dropped(now: datetime, last_day: str) -> None:
    rows = [candle(day, 1.0) for day in ("2026-03-20", "2026-03-21", "2026-03-22")]
    bars = crypto.parse_ohlcv(rows, now, "crypto/BTC-USDT")
    assert bars["session_date"].iloc[-1].isoformat() == last_day


def test_candles_are_dated_by_the_utc_day_they_open() -> None:
    # A venue whose daily candles open at 16:00 UTC (midnight in Hong Kong) still dates by UTC.
    rows = [candle("2026-03-19", 1.0, hour=16), candle("2026-03-20", 2.0, hour=16)]
    bars = crypto.parse_ohlcv(rows, NOW, "crypto/BTC-USDT")
    assert list(bars.columns) == ["session_date", "open", "high", "low", "close", "volume"]
    assert bars["session_date"].tolist() == [date(2026, 3, 19), date(2026, 3, 20)]


def test_duplicate_timestamps_are_kept_once() -> None:
    rows = [candle("2026-03-19", 1.0), candle("2026-03-20", 2.0), candle("2026-03-20", 2.5)]
    bars = crypto.parse_ohlcv(rows, NOW, "crypto/BTC-USDT")
    assert bars["session_date"].tolist() == [date(2026, 3, 19), date(2026, 3, 20)]
    assert bars["close"].tolist() == [1.0, 2.5]


def test_pages_advance_past_the_last_candle_until_the_range_is_covered(
    venues: dict[str, Venue],
) -> None:
    venues["binance"] = Venue(page_cap=2)
    throttle = CountingThrottle()
    rows = fetch(throttle=throttle)
    assert len(rows) == 5
    starts = [int(q["startTime"]) for q in venues["binance"].kline_queries()]
    assert starts == [MS_2026_03_17 + n * DAY_MS for n in (0, 2, 4)]
    assert throttle.waits == 3  # one wait before every page


def test_pages_stop_at_an_empty_page(venues: dict[str, Venue]) -> None:
    venues["binance"] = Venue(page_cap=2)
    rows = fetch(end=date(2026, 4, 1), now=datetime(2026, 4, 2, tzinfo=UTC))
    assert len(rows) == 6
    starts = [int(q["startTime"]) for q in venues["binance"].kline_queries()]
    assert starts == [MS_2026_03_17 + n * DAY_MS for n in (0, 2, 4, 6)]  # the last one is empty


def test_fallback_when_the_first_venue_refuses_the_region(
    venues: dict[str, Venue], caplog: pytest.LogCaptureFixture
) -> None:
    venues["binance"] = Venue(failures=[REFUSED_451])
    venues["binanceus"] = Venue()
    rows = fetch(exchanges=("binance", "binanceus"))
    assert len(rows) == 5 and rows["close"].iloc[-1] == 68918.12
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()
    assert len(venues["binance"].requests) == 1  # a refusal is not retried
    assert "binance did not serve" in caplog.text and "restricted location" in caplog.text


def test_fallback_when_the_first_venue_does_not_list_the_pair(venues: dict[str, Venue]) -> None:
    eth_only = dict(INFO, symbols=[s for s in INFO["symbols"] if s["symbol"] == "ETHUSDT"])
    venues["binance"] = Venue(info=eth_only)
    venues["binanceus"] = Venue()
    rows = fetch(exchanges=("binance", "binanceus"))
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()
    assert venues["binance"].kline_queries() == []


@pytest.mark.parametrize("failure", [TIMEOUT, LIMITED_429], ids=["timeout", "http-429"])
def test_transient_failure_is_retried_with_backoff(
    venues: dict[str, Venue], failure: object
) -> None:
    venues["binance"] = Venue(failures=[failure])
    sleeps: list[float] = []
    rows = fetch(sleep=sleeps.append)
    assert sleeps == [2.0]
    assert len(rows) == 5 and set(rows["source"]) == {"ccxt:binance"}
    assert not rows["is_fallback"].any()


def test_venue_that_keeps_timing_out_hands_over_after_the_retries(
    venues: dict[str, Venue],
) -> None:
    venues["binance"] = Venue(failures=[TIMEOUT] * 4)
    venues["binanceus"] = Venue()
    sleeps: list[float] = []
    rows = fetch(exchanges=("binance", "binanceus"), sleep=sleeps.append)
    assert sleeps == [2.0, 4.0, 8.0]
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()


def test_every_venue_failing_names_feed_instrument_range_and_reasons(
    venues: dict[str, Venue],
) -> None:
    venues["binance"] = Venue(failures=[REFUSED_451])
    venues["binanceus"] = Venue(failures=[DOWN_503])
    with pytest.raises(FeedError) as error:
        fetch(exchanges=("binance", "binanceus", "binanse"))
    message = str(error.value)
    assert message.startswith("[ccxt] crypto/BTC-USDT: no exchange served BTC/USDT")
    assert "2026-03-17..2026-03-23" in message
    assert "binance: ExchangeNotAvailable" in message and "restricted location" in message
    assert "binanceus: ExchangeNotAvailable" in message and " 503 " in message
    assert "binanse: NotSupported" in message


def test_no_exchange_configured_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match="no exchange configured"):
        fetch(exchanges=())


def test_empty_answer_is_no_data(venues: dict[str, Venue]) -> None:
    venues["binance"] = Venue(klines=[])
    rows = fetch()
    assert rows.empty and list(rows.columns) == BAR_FRAME_COLUMNS
    assert len(venues["binance"].kline_queries()) == 1


def test_range_without_completed_candles_asks_nothing(venues: dict[str, Venue]) -> None:
    venues["binance"] = Venue()
    rows = fetch(start=date(2026, 3, 22), end=date(2026, 3, 25))
    assert rows.empty and venues["binance"].requests == []


@pytest.mark.parametrize(
    "row",
    [
        [MS_2026_03_17, 1.0, 2.0, 0.5, 1.5],
        [MS_2026_03_17, 1.0, 2.0, 0.5, 1.5, 10.0, 99.0],
        [MS_2026_03_17, "1.0", "2.0", "0.5", "1.5", "10.0"],
        {"timestamp": MS_2026_03_17, "close": 1.5},
        [None, 1.0, 2.0, 0.5, 1.5, 10.0],
        [MS_2026_03_17, True, 2.0, 0.5, 1.5, 10.0],
    ],
    ids=["5-wide", "7-wide", "strings", "dict", "no-time", "bool"],
)
def test_schema_drift_names_feed_instrument_and_row(row: object) -> None:
    with pytest.raises(SchemaDriftError) as error:
        crypto.parse_ohlcv([candle("2026-03-16", 1.0), row], NOW, "crypto/BTC-USDT")
    message = str(error.value)
    assert message.startswith("[ccxt] crypto/BTC-USDT: schema drift")
    assert "'timestamp'" in message and "row 1:" in message


def test_value_a_venue_does_not_give_is_nan_not_drift() -> None:
    bars = crypto.parse_ohlcv([[MS_2026_03_17, 1.0, 2.0, 0.5, 1.5, None]], NOW, "crypto/BTC-USDT")
    assert bars["close"].tolist() == [1.5] and bars["volume"].isna().all()


class StubExchange:
    """A venue object for behaviour ccxt's real venues never show: drifted or stuck answers."""

    def __init__(self, exchange_id: str, rows: list[list]):
        self.id, self.rows, self.calls = exchange_id, rows, 0

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list]:
        self.calls += 1
        return self.rows


def test_schema_drift_stops_the_chain_instead_of_falling_back() -> None:
    stubs = {
        "first": StubExchange("first", [candle("2026-03-17", 1.0) + [0.0]]),
        "second": StubExchange("second", [candle("2026-03-17", 1.0)]),
    }
    with pytest.raises(SchemaDriftError):
        crypto.fetch_bars(
            BTC,
            date(2026, 3, 17),
            date(2026, 3, 23),
            ["first", "second"],
            Throttle(0),
            NOW,
            exchange_factory=stubs.__getitem__,
        )
    assert stubs["second"].calls == 0


def test_venue_ignoring_since_does_not_page_forever() -> None:
    stuck = StubExchange("stuck", [candle("2026-03-17", 1.0), candle("2026-03-18", 2.0)])
    rows = crypto.fetch_bars(
        BTC,
        date(2026, 3, 17),
        date(2026, 3, 23),
        ["stuck"],
        Throttle(0),
        NOW,
        exchange_factory=lambda exchange_id: stuck,
    )
    assert stuck.calls == 2 and len(rows) == 2


def test_default_client_loads_spot_markets_only_with_rate_limit_on() -> None:
    exchange = crypto.make_exchange("okx")
    assert exchange.enableRateLimit is True
    assert exchange.options["fetchMarkets"]["types"] == ["spot"]


# Real series in ../shared/reference-data (skipped when absent).

RECORDED_KLINES = {
    "crypto/BTC-USDT": ("BTCUSDT_1d.json", "btc_usdt_binance.csv"),
    "crypto/ETH-USDT": ("ETHUSDT_1d.json", "eth_usdt_binance.csv"),
}


def reference_closes(path: Path) -> dict[date, float]:
    with path.open(newline="") as handle:
        return {date.fromisoformat(r["date"]): float(r["close"]) for r in csv.DictReader(handle)}


@pytest.mark.parametrize("instrument", [BTC, ETH], ids=["BTC", "ETH"])
def test_recorded_binance_body_round_trips(
    reference_data: Path, venues: dict[str, Venue], instrument: Instrument
) -> None:
    body_file, csv_file = RECORDED_KLINES[instrument.instrument_id]
    body = json.loads((reference_data / "api-samples" / "binance" / body_file).read_text())
    venues["binance"] = Venue(klines=body, page_cap=300)
    captured = datetime(2026, 7, 10, 18, 0, tzinfo=UTC)  # its last candle was still open
    rows = fetch(
        start=date(2023, 10, 15), end=date(2026, 7, 11), now=captured, instrument=instrument
    )
    assert len(rows) == len(body) - 1 == 999
    assert rows["session_date"].iloc[0] == date(2023, 10, 15)
    assert rows["session_date"].iloc[-1] == date(2026, 7, 9)
    assert rows["close"].tolist() == [float(row[4]) for row in body[:-1]]
    closes = reference_closes(reference_data / csv_file)
    assert all(closes[d] == c for d, c in zip(rows["session_date"], rows["close"], strict=True))
    assert len(venues["binance"].kline_queries()) == 4  # 300-row pages


def test_ten_year_backfill_pages_through_the_whole_history(
    reference_data: Path, venues: dict[str, Venue]
) -> None:
    with (reference_data / "btc_usdt_binance.csv").open(newline="") as handle:
        history = list(csv.DictReader(handle))
    fields = ("open", "high", "low", "close", "volume")
    klines = [  # the CSV's real values in Binance's kline layout: ms open time, strings
        [int(datetime.fromisoformat(r["date"]).replace(tzinfo=UTC).timestamp() * 1000)]
        + [r[name] for name in fields]
        for r in history
    ]
    venues["binance"] = Venue(klines=klines)
    rows = fetch(start=date(2016, 1, 1), end=date(2026, 3, 23))
    completed = [r for r in history if r["date"] < "2026-03-22"]
    assert len(rows) == len(completed)
    assert rows["session_date"].iloc[0] == date(2017, 8, 17)
    assert rows.set_index("session_date")["close"][date(2026, 3, 20)] == 70510.73
    assert len(venues["binance"].kline_queries()) == 4  # 1000-candle pages
