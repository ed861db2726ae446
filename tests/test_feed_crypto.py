"""ccxt: its real Binance, OKX and Kraken request building, market loading, HTTP error mapping,
JSON decoding and candle parsing over recorded-format bodies, with the network replaced below
``Exchange.fetch`` (the requests adapter of each client's session, ``tests/transports/venues``),
then our pager, fallback chain and parser over what ccxt returned."""

import csv
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from market_intel.feeds import BAR_FRAME_COLUMNS, FeedError, SchemaDriftError, Throttle, crypto
from market_intel.universe import Instrument, instruments
from tests.transports.failures import RETRIED, Failure
from tests.transports.venues import OKX, Binance, Kraken, Venues, read_json

BTC = next(i for i in instruments("crypto") if i.instrument_id == "crypto/BTC-USDT")
ETH = next(i for i in instruments("crypto") if i.instrument_id == "crypto/ETH-USDT")
NOW = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)  # the 2026-03-22 candle is still open
MS_2026_03_17 = 1773705600000
DAY_MS = 86_400_000
BINANCE_INFO = read_json("binance_exchangeInfo_spot_min.json")
LAST_WEEK = [date(2026, 3, day) for day in range(17, 22)]


@pytest.fixture
def venues() -> Venues:
    """Venues by ccxt id; every HTTP request ccxt makes is answered by the venue it is sent to."""
    return Venues()


class CountingThrottle(Throttle):
    def __init__(self) -> None:
        super().__init__(per_minute=0)
        self.waits = 0

    def wait(self) -> None:
        self.waits += 1


def no_sleep_expected(seconds: float) -> None:
    raise AssertionError(f"unexpected retry sleep of {seconds}s")


def fetch(
    venues: Venues | None = None,
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
        exchange_factory=(venues or Venues()).client,
        sleep=sleep,
    )


def candle(day: str, close: float, hour: int = 0) -> list:
    opened = datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)
    return [int(opened.timestamp() * 1000), close, close, close, close, 1.0]


def ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def binance_klines(history: list[date], close: Callable[[date], float]) -> list[list]:
    """Binance kline rows (ms open time, then prices and volume as strings) for ``history``."""
    return [
        [int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)]
        + [str(close(d))] * 4
        + ["1.0"]
        for d in history
    ]


def kraken_rows(history: list[date], close: Callable[[date], float]) -> list[list]:
    """Kraken OHLC rows (seconds, o, h, l, c, vwap, volume as strings, count) for ``history``."""
    return [
        [int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())]
        + [str(close(d))] * 5
        + ["2.0", 10]
        for d in history
    ]


def okx_rows(history: list[date], close: Callable[[date], float]) -> list[list]:
    """OKX candle rows (ms as a string, o, h, l, c, vol, volCcy, volCcyQuote, confirm)."""
    return [
        [str(int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000))]
        + [str(close(d))] * 4
        + ["3.0", "9.0", "9.0", "1"]
        for d in history
    ]


# --- Binance ------------------------------------------------------------------------------


def test_binance_klines_become_utc_day_bars(venues: Venues) -> None:
    venues["binance"] = Binance()
    rows = fetch(venues)
    assert list(rows.columns) == BAR_FRAME_COLUMNS
    # 2026-03-22's candle is still open at NOW: only the five completed UTC days remain.
    assert rows["session_date"].tolist() == LAST_WEEK
    friday = rows.set_index("session_date").loc[date(2026, 3, 20)]
    assert (friday["open"], friday["close"], friday["volume"]) == (69930.01, 70510.73, 18121.16745)
    assert rows["close"].iloc[-1] == 68918.12
    assert set(rows["instrument_id"]) == {"crypto/BTC-USDT"}
    assert set(rows["source"]) == {"ccxt:binance"} and not rows["is_fallback"].any()
    # Spot markets only (one exchangeInfo), then one page of daily klines from the start day.
    assert venues.paths("binance") == ["/api/v3/exchangeInfo", "/api/v3/klines"]
    assert venues.queries("binance", "/klines") == [
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


def test_pages_advance_past_the_last_candle_until_the_range_is_covered(venues: Venues) -> None:
    venues["binance"] = Binance(page_cap=2)
    throttle = CountingThrottle()
    rows = fetch(venues, throttle=throttle)
    assert len(rows) == 5
    starts = [int(q["startTime"]) for q in venues.queries("binance", "/klines")]
    assert starts == [MS_2026_03_17 + n * DAY_MS for n in (0, 2, 4)]
    assert throttle.waits == 3  # one wait before every page


def test_pages_stop_at_an_empty_page(venues: Venues) -> None:
    venues["binance"] = Binance(page_cap=2)
    rows = fetch(venues, end=date(2026, 4, 1), now=datetime(2026, 4, 2, tzinfo=UTC))
    assert len(rows) == 6
    starts = [int(q["startTime"]) for q in venues.queries("binance", "/klines")]
    assert starts == [MS_2026_03_17 + n * DAY_MS for n in (0, 2, 4, 6)]  # the last one is empty


# --- OKX and Kraken through ccxt's own parsing ----------------------------------------------


def test_okx_candles_become_utc_day_bars(venues: Venues) -> None:
    venues["okx"] = OKX()
    rows = fetch(venues, exchanges=("okx",))
    assert rows["session_date"].tolist() == LAST_WEEK
    recorded = read_json("okx_candles_BTC-USDT_1Dutc_2026-03-17_2026-03-22.json")["data"]
    friday = next(row for row in recorded if row[0] == "1773964800000")
    bar = rows.set_index("session_date").loc[date(2026, 3, 20)]
    # ccxt reads OKX's base-currency volume (``vol``), not the quote-currency ones.
    assert [bar["open"], bar["close"], bar["volume"]] == [
        float(v) for v in (friday[1], friday[4], friday[5])
    ]
    assert set(rows["source"]) == {"ccxt:okx"} and not rows["is_fallback"].any()
    markets, candles = venues.paths("okx")
    # ccxt takes /history-candles once ``since`` is 1439 days before its (real) clock.
    assert markets == "/api/v5/public/instruments"
    assert candles in ("/api/v5/market/candles", "/api/v5/market/history-candles")
    (page,) = venues.queries("okx", "candles")
    # A 300-day window in UTC days ("1Dutc", not Hong Kong's "1D") opening at the start day.
    assert page == {
        "instId": "BTC-USDT",
        "bar": "1Dutc",
        "limit": "300",
        "before": str(MS_2026_03_17 - 1),
        "after": str(MS_2026_03_17 + 300 * DAY_MS),
    }


def test_okx_old_ranges_come_from_history_candles_and_empty_windows_are_skipped(
    venues: Venues,
) -> None:
    # Listed 2019-06-01; the range opens 2018-01-01: its first 300-day window is empty.
    listed = days(date(2019, 6, 1), date(2020, 2, 29))
    venues["okx"] = OKX(candles=okx_rows(listed, lambda d: float(d.toordinal())))
    rows = fetch(
        venues,
        exchanges=("okx",),
        start=date(2018, 1, 1),
        end=date(2020, 3, 1),
        now=datetime(2020, 3, 1, 12, tzinfo=UTC),
    )
    assert rows["session_date"].tolist() == listed
    assert rows["close"].tolist() == [float(d.toordinal()) for d in listed]
    assert set(venues.paths("okx")[1:]) == {"/api/v5/market/history-candles"}
    afters = [int(q["after"]) for q in venues.queries("okx", "candles")]
    assert afters == [
        ms(date(2018, 1, 1)) + 300 * DAY_MS,
        ms(date(2018, 10, 28)) + 300 * DAY_MS,
        ms(date(2019, 8, 24)) + 300 * DAY_MS,
    ]


def test_kraken_ohlc_becomes_utc_day_bars(venues: Venues) -> None:
    venues["kraken"] = Kraken()
    rows = fetch(venues, exchanges=("kraken",))
    assert rows["session_date"].tolist() == LAST_WEEK
    recorded = read_json("kraken_OHLC_XBTUSDT_1440_2026-03-17_2026-03-22.json")
    friday = next(r for r in recorded["result"]["XBTUSDT"] if r[0] == 1773964800)
    bar = rows.set_index("session_date").loc[date(2026, 3, 20)]
    # ccxt reads Kraken's volume (index 6), not its vwap (index 5).
    assert [bar["open"], bar["close"], bar["volume"]] == [
        float(v) for v in (friday[1], friday[4], friday[6])
    ]
    assert set(rows["source"]) == {"ccxt:kraken"}
    assert venues.paths("kraken") == ["/0/public/Assets", "/0/public/AssetPairs", "/0/public/OHLC"]
    # Kraken's ``since`` is exclusive and in seconds: ccxt asks from one day before the start.
    assert venues.queries("kraken", "/OHLC") == [
        {"pair": "XBTUSDT", "interval": "1440", "since": str(MS_2026_03_17 // 1000 - 86_400)}
    ]


def test_eth_is_read_from_each_venue_under_its_own_pair_id(venues: Venues) -> None:
    eth_klines = binance_klines(LAST_WEEK, lambda d: 2000.0 + d.day)
    venues["binance"] = Binance(klines=eth_klines)
    venues["okx"] = OKX(candles=okx_rows(LAST_WEEK, lambda d: 2100.0 + d.day))
    venues["kraken"] = Kraken(ohlc=kraken_rows(LAST_WEEK, lambda d: 2200.0 + d.day), pair="ETHUSDT")
    closes = {
        venue: fetch(venues, exchanges=(venue,), instrument=ETH)["close"].tolist()
        for venue in ("binance", "okx", "kraken")
    }
    assert closes == {
        venue: [base + day for day in range(17, 22)]
        for venue, base in (("binance", 2000.0), ("okx", 2100.0), ("kraken", 2200.0))
    }
    assert venues.queries("binance", "/klines")[0]["symbol"] == "ETHUSDT"
    assert venues.queries("okx", "candles")[0]["instId"] == "ETH-USDT"


# --- Kraken's 720-candle depth -------------------------------------------------------------


KRAKEN_NOW = datetime(2026, 3, 22, 12, tzinfo=UTC)
KRAKEN_FIRST = date(2026, 3, 22) - timedelta(days=719)  # 720 candles, the last one still open


def test_kraken_depth_is_its_latest_720_candles() -> None:
    assert crypto.earliest_servable("kraken", KRAKEN_NOW) == KRAKEN_FIRST == date(2024, 4, 2)
    assert crypto.earliest_servable("binance", KRAKEN_NOW) is None


def test_range_older_than_kraken_keeps_goes_to_the_next_venue_for_the_missing_part(
    venues: Venues,
) -> None:
    history = days(date(2023, 1, 1), date(2026, 3, 22))
    venues["kraken"] = Kraken(ohlc=kraken_rows(history, lambda d: 1.0))
    venues["binance"] = Binance(klines=binance_klines(history, lambda d: 2.0))
    rows = fetch(venues, ("kraken", "binance"), start=date(2023, 6, 1), now=KRAKEN_NOW)
    assert rows["session_date"].tolist() == days(date(2023, 6, 1), date(2026, 3, 21))
    by_source = rows.groupby("source")["session_date"].agg(["min", "max", "count"])
    assert by_source.loc["ccxt:kraken"].tolist() == [KRAKEN_FIRST, date(2026, 3, 21), 719]
    assert by_source.loc["ccxt:binance"].tolist() == [
        date(2023, 6, 1),
        KRAKEN_FIRST - timedelta(days=1),
        (KRAKEN_FIRST - date(2023, 6, 1)).days,
    ]
    assert not rows[rows["source"] == "ccxt:kraken"]["is_fallback"].any()
    assert rows[rows["source"] == "ccxt:binance"]["is_fallback"].all()
    assert set(rows[rows["source"] == "ccxt:kraken"]["close"]) == {1.0}
    # Kraken is asked only from the first day it keeps; Binance only for the part before it.
    (asked,) = venues.queries("kraken", "/OHLC")
    assert int(asked["since"]) == ms(KRAKEN_FIRST) // 1000 - 86_400
    assert int(venues.queries("binance", "/klines")[0]["startTime"]) == ms(date(2023, 6, 1))
    assert rows.attrs["unavailable"] == []


def test_missing_part_no_later_venue_serves_is_listed_and_logged(
    venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    history = days(date(2023, 1, 1), date(2026, 3, 22))
    venues["kraken"] = Kraken(ohlc=kraken_rows(history, lambda d: 1.0))
    rows = fetch(venues, ("kraken",), start=date(2023, 6, 1), now=KRAKEN_NOW)
    assert rows["session_date"].min() == KRAKEN_FIRST and len(rows) == 719
    (unavailable,) = rows.attrs["unavailable"]
    assert unavailable.startswith(f"crypto/BTC-USDT: 2023-06-01..{KRAKEN_FIRST} (end excluded)")
    assert unavailable in caplog.text


def test_range_entirely_older_than_kraken_keeps_asks_kraken_nothing(venues: Venues) -> None:
    venues["kraken"] = Kraken()
    with pytest.raises(FeedError, match="kraken: keeps only its latest 720 daily candles"):
        fetch(venues, ("kraken",), start=date(2023, 1, 1), end=date(2023, 2, 1), now=KRAKEN_NOW)
    assert venues.urls("kraken") == []


# --- fallback chain ------------------------------------------------------------------------


def test_fallback_when_the_first_venue_refuses_the_region(
    venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    venues["binance"] = Binance(failures=[Failure.REFUSED_451])
    venues["binanceus"] = Binance()
    rows = fetch(venues, exchanges=("binance", "binanceus"))
    assert len(rows) == 5 and rows["close"].iloc[-1] == 68918.12
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()
    assert len(venues.urls("binance")) == 1  # a refusal is not retried
    assert "binance did not serve" in caplog.text and "restricted location" in caplog.text


def test_fallback_when_the_first_venue_does_not_list_the_pair(venues: Venues) -> None:
    eth_only = dict(
        BINANCE_INFO, symbols=[s for s in BINANCE_INFO["symbols"] if s["symbol"] == "ETHUSDT"]
    )
    venues["binance"] = Binance(info=eth_only)
    venues["binanceus"] = Binance()
    rows = fetch(venues, exchanges=("binance", "binanceus"))
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()
    assert venues.queries("binance", "/klines") == []


def test_venue_without_candles_hands_over_to_the_next(
    venues: Venues, caplog: pytest.LogCaptureFixture
) -> None:
    venues["binance"] = Binance(klines=[])
    venues["okx"] = OKX()
    rows = fetch(venues, exchanges=("binance", "okx"))
    assert rows["session_date"].tolist() == LAST_WEEK
    assert set(rows["source"]) == {"ccxt:okx"} and rows["is_fallback"].all()
    assert len(venues.queries("binance", "/klines")) == 1
    assert "binance did not serve" in caplog.text and "no candles" in caplog.text


def test_every_venue_without_candles_is_no_data(venues: Venues) -> None:
    venues["binance"] = Binance(klines=[])
    venues["okx"] = OKX(candles=[])
    rows = fetch(venues, exchanges=("binance", "okx"))
    assert rows.empty and list(rows.columns) == BAR_FRAME_COLUMNS
    assert venues.queries("okx", "candles")


@pytest.mark.parametrize("failure", [Failure.TIMEOUT, Failure.RATE_LIMITED], ids=str)
def test_transient_failure_is_retried_with_backoff(venues: Venues, failure: Failure) -> None:
    venues["binance"] = Binance(failures=[failure])
    sleeps: list[float] = []
    rows = fetch(venues, sleep=sleeps.append)
    assert sleeps == [2.0]
    assert len(rows) == 5 and set(rows["source"]) == {"ccxt:binance"}
    assert not rows["is_fallback"].any()


def test_venue_that_keeps_timing_out_hands_over_after_the_retries(venues: Venues) -> None:
    venues["binance"] = Binance(failures=[Failure.TIMEOUT] * 4)
    venues["binanceus"] = Binance()
    sleeps: list[float] = []
    rows = fetch(venues, exchanges=("binance", "binanceus"), sleep=sleeps.append)
    assert sleeps == [2.0, 4.0, 8.0]
    assert set(rows["source"]) == {"ccxt:binanceus"} and rows["is_fallback"].all()


def test_every_venue_failing_names_feed_instrument_range_and_reasons(venues: Venues) -> None:
    venues["binance"] = Binance(failures=[Failure.REFUSED_451])
    venues["binanceus"] = Binance(failures=[Failure.SERVER_ERROR] * 4)
    with pytest.raises(FeedError) as error:
        fetch(venues, exchanges=("binance", "binanceus", "binanse"), sleep=lambda s: None)
    message = str(error.value)
    assert message.startswith("[ccxt] crypto/BTC-USDT: no exchange served BTC/USDT")
    assert "2026-03-17..2026-03-23" in message
    assert "binance: ExchangeNotAvailable" in message and "restricted location" in message
    assert "binanceus: gave up after 4 attempts: binanceus: ExchangeNotAvailable" in message
    assert " 502 Bad Gateway" in message
    assert "binanse: NotSupported" in message


def test_no_exchange_configured_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match="no exchange configured"):
        fetch(exchanges=())


def test_empty_answer_is_no_data(venues: Venues) -> None:
    venues["binance"] = Binance(klines=[])
    rows = fetch(venues)
    assert rows.empty and list(rows.columns) == BAR_FRAME_COLUMNS
    assert len(venues.queries("binance", "/klines")) == 1


def test_range_without_completed_candles_asks_nothing(venues: Venues) -> None:
    venues["binance"] = Binance()
    rows = fetch(venues, start=date(2026, 3, 22), end=date(2026, 3, 25))
    assert rows.empty and venues.urls("binance") == []


# --- every failure kind, on every venue ----------------------------------------------------

FELL_BACK = (Failure.REFUSED_451, Failure.REFUSED_403)


VENUES = {"binance": Binance, "okx": OKX, "kraken": Kraken}
REQUEST_PATHS = {
    "binance": {"markets": "/exchangeInfo", "candles": "/klines"},
    "okx": {"markets": "/instruments", "candles": "/candles"},
    "kraken": {"markets": "/AssetPairs", "candles": "/OHLC"},
}


@pytest.mark.parametrize("failure", list(Failure), ids=str)
@pytest.mark.parametrize("venue", list(VENUES))
@pytest.mark.parametrize("request_hit", ["markets", "candles"])
def test_each_failure_kind_is_retried_or_falls_back(
    venues: Venues, venue: str, failure: Failure, request_hit: str
) -> None:
    """A failure served to the venue's markets request or to its candle request: a transient
    one is retried (waiting the server's Retry-After when it sends one) and the venue serves; a
    refusal hands over to the next venue at once."""
    venues[venue] = VENUES[venue](failures=[failure], fail_path=REQUEST_PATHS[venue][request_hit])
    venues["binanceus"] = Binance()
    sleeps: list[float] = []
    rows = fetch(venues, exchanges=(venue, "binanceus"), sleep=sleeps.append)
    assert rows["session_date"].tolist() == LAST_WEEK
    if failure in FELL_BACK:
        assert sleeps == [] and set(rows["source"]) == {"ccxt:binanceus"}
        assert rows["is_fallback"].all()
    else:
        assert sleeps == RETRIED[failure] and set(rows["source"]) == {f"ccxt:{venue}"}
        assert not rows["is_fallback"].any()
    assert venues[venue].failures == []  # the failure was served


# --- schema drift and odd venues -----------------------------------------------------------


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

    markets: ClassVar[dict] = {"BTC/USDT": {}}

    def __init__(self, exchange_id: str, rows: list[list]):
        self.id, self.rows, self.calls = exchange_id, rows, 0

    def load_markets(self, reload: bool = False) -> dict:
        return self.markets

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


def test_default_clients_are_served_by_the_installed_fake(
    venues: Venues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project's own factory (crypto.make_exchange, rate limiter on) builds the clients: the
    # installed fake answers every requests session, as a cross-feed test needs.
    venues["binance"] = Binance(failures=[Failure.REFUSED_451])
    venues["okx"] = OKX()
    venues.install(monkeypatch)
    rows = crypto.fetch_bars(
        BTC, date(2026, 3, 17), date(2026, 3, 23), ["binance", "okx"], Throttle(0), NOW
    )
    assert set(rows["source"]) == {"ccxt:okx"} and len(rows) == 5


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
    reference_data: Path, venues: Venues, instrument: Instrument
) -> None:
    body_file, csv_file = RECORDED_KLINES[instrument.instrument_id]
    body = json.loads((reference_data / "api-samples" / "binance" / body_file).read_text())
    venues["binance"] = Binance(klines=body, page_cap=300)
    captured = datetime(2026, 7, 10, 18, 0, tzinfo=UTC)  # its last candle was still open
    rows = fetch(
        venues,
        start=date(2023, 10, 15),
        end=date(2026, 7, 11),
        now=captured,
        instrument=instrument,
    )
    assert len(rows) == len(body) - 1 == 999
    assert rows["session_date"].iloc[0] == date(2023, 10, 15)
    assert rows["session_date"].iloc[-1] == date(2026, 7, 9)
    assert rows["close"].tolist() == [float(row[4]) for row in body[:-1]]
    closes = reference_closes(reference_data / csv_file)
    assert all(closes[d] == c for d, c in zip(rows["session_date"], rows["close"], strict=True))
    assert len(venues.queries("binance", "/klines")) == 4  # 300-row pages


def test_ten_year_backfill_pages_through_the_whole_history(
    reference_data: Path, venues: Venues
) -> None:
    with (reference_data / "btc_usdt_binance.csv").open(newline="") as handle:
        history = list(csv.DictReader(handle))
    fields = ("open", "high", "low", "close", "volume")
    klines = [  # the CSV's real values in Binance's kline layout: ms open time, strings
        [int(datetime.fromisoformat(r["date"]).replace(tzinfo=UTC).timestamp() * 1000)]
        + [r[name] for name in fields]
        for r in history
    ]
    venues["binance"] = Binance(klines=klines)
    rows = fetch(venues, start=date(2016, 1, 1), end=date(2026, 3, 23))
    completed = [r for r in history if r["date"] < "2026-03-22"]
    assert len(rows) == len(completed)
    assert rows["session_date"].iloc[0] == date(2017, 8, 17)
    assert rows.set_index("session_date")["close"][date(2026, 3, 20)] == 70510.73
    assert len(venues.queries("binance", "/klines")) == 4  # 1000-candle pages
