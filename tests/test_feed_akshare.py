"""akshare feeds: akshare's own parsing over recorded Eastmoney and Sina-spot bodies (the network
replaced at ``requests.Session.send``), recorded frames for Sina's JS-encoded index histories
(the akshare function replaced), then our parsers and the fallback, retry and resume logic."""

import json
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

import akshare as ak
import pandas as pd
import pytest
import requests
from akshare.index import index_stock_hk

from assets.feeds import (
    BAR_COLUMNS,
    BAR_FRAME_COLUMNS,
    FeedError,
    SchemaDriftError,
    Throttle,
    akshare_breadth,
    akshare_indices,
)
from assets.universe import instruments

FIXTURES = Path(__file__).parent / "fixtures" / "akshare"
INSTRUMENTS = {i.live_symbol: i for i in (*instruments("hk"), *instruments("cn"))}
KLINE = "push2his.eastmoney.com/api/qt/stock/kline/get"
CLIST = "push2.eastmoney.com/api/qt/clist/get"

# Official closes of 2026-03-19 and 2026-03-20 (reference-data, SOURCES.md).
CLOSES = {
    "HSI": (25500.58, 25277.32),
    "HSCEI": (8695.88, 8574.07),
    "HSTECH": (4996.28, 4872.38),
    "sh000001": (4006.55, 3957.05),
    "sz399001": (13901.57, 13866.20),
    "sz399006": (3309.10, 3352.10),
}
SINA_FUNCTION = {"hk": "stock_hk_index_daily_sina", "cn": "stock_zh_index_daily"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def recorded_frame(spec: dict) -> pd.DataFrame:
    """A frame as akshare returned it: listed columns, ``date`` cells as ``datetime.date``."""
    frame = pd.DataFrame(spec["data"], columns=spec["columns"])
    for column, dtype in spec["dtypes"].items():
        if dtype == "date":
            frame[column] = pd.to_datetime(frame[column]).dt.date
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def sina_history(symbol: str) -> pd.DataFrame:
    function = SINA_FUNCTION[INSTRUMENTS[symbol].market]
    return recorded_frame(load("sina_index_daily.json")[function][symbol])


def closes(bars: pd.DataFrame) -> dict[str, float]:
    return {d.isoformat(): round(c, 2) for d, c in zip(bars["session_date"], bars["close"])}


class RecordingThrottle(Throttle):
    """Never waits; counts ``wait()`` calls and records the retry backoff sleeps."""

    def __init__(self) -> None:
        self.waits, self.sleeps = 0, []
        super().__init__(per_minute=0, sleep=self.sleeps.append)

    def wait(self) -> None:
        self.waits += 1
        super().wait()


class Transport:
    """Stands in for the network at ``requests.Session.send``: answers by URL fragments.

    An answer is a JSON-able body, a text body, an exception to raise, or a list of those
    served one per request. Every URL asked for is recorded; an unknown URL fails the test.
    """

    def __init__(self) -> None:
        self.routes: list[tuple[tuple[str, ...], object]] = []
        self.urls: list[str] = []

    def route(self, *fragments: str, answer: object) -> None:
        self.routes.insert(0, (fragments, answer))

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        self.urls.append(request.url)
        for fragments, answer in self.routes:
            if all(fragment in request.url for fragment in fragments):
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if isinstance(answer, BaseException):
                    raise answer
                response = requests.Response()
                response.status_code, response.url, response.request = 200, request.url, request
                text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                response._content, response.encoding = text.encode("utf-8"), "utf-8"
                return response
        raise AssertionError(f"unexpected request {request.url}")


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Transport:
    fake = Transport()
    monkeypatch.setattr(requests.Session, "send", lambda session, request, **kw: fake.send(request))
    return fake


@pytest.fixture
def throttle() -> RecordingThrottle:
    return RecordingThrottle()


def replace(monkeypatch: pytest.MonkeyPatch, function: str, answer: Callable) -> None:
    """Replace one akshare function (for Sina's JS-encoded answers, which we cannot forge)."""
    monkeypatch.setattr(ak, function, answer)


def answers(*items: object) -> Callable:
    """An akshare stand-in answering ``items`` in turn (raising the exceptions among them)."""
    queue = list(items)

    def call(**kwargs: object) -> object:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise item
        return item

    return call


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


# --- index parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", sorted(CLOSES))
def test_sina_parser_gives_official_closes(symbol: str) -> None:
    frame = sina_history(symbol)
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    bars = akshare_indices.parse_sina_daily(frame, INSTRUMENTS[symbol].instrument_id)
    assert list(bars.columns) == BAR_COLUMNS
    assert (closes(bars)["2026-03-19"], closes(bars)["2026-03-20"]) == CLOSES[symbol]
    assert bars["volume"].dtype == "float64"


@pytest.mark.parametrize("symbol", ["sh000001", "sz399001", "sz399006"])
def test_eastmoney_a_share_index_through_akshare(transport: Transport, symbol: str) -> None:
    body = load("em_index_kline.json")["stock_zh_index_daily_em"][symbol]
    secid = f"secid={'1' if symbol.startswith('sh') else '0'}.{symbol[2:]}"
    transport.route(KLINE, secid, answer=body)

    frame = ak.stock_zh_index_daily_em(symbol=symbol, start_date="20260318", end_date="20260320")
    assert list(frame.columns) == ["date", "open", "close", "high", "low", "volume", "amount"]
    assert frame["close"].dtype == "float64" and pd.api.types.is_string_dtype(frame["date"])
    assert "beg=20260318" in transport.urls[0] and "end=20260320" in transport.urls[0]

    bars = akshare_indices.parse_em_cn_daily(frame, INSTRUMENTS[symbol].instrument_id)
    assert (closes(bars)["2026-03-19"], closes(bars)["2026-03-20"]) == CLOSES[symbol]
    sina = akshare_indices.parse_sina_daily(sina_history(symbol), symbol)
    assert list(bars["volume"]) == list(sina["volume"])  # both in shares


@pytest.fixture
def hk_code_lookup():
    """akshare caches Eastmoney's HK index code lookup; each test starts without it."""
    index_stock_hk._symbol_code_dict.cache_clear()
    yield
    index_stock_hk._symbol_code_dict.cache_clear()


@pytest.mark.parametrize("symbol", ["HSI", "HSCEI", "HSTECH"])
def test_eastmoney_hk_index_through_akshare(
    transport: Transport, hk_code_lookup: None, symbol: str
) -> None:
    recorded = load("em_index_kline.json")
    transport.route(CLIST, "m%3A124", answer=recorded["stock_hk_index_spot_em"])
    transport.route(
        KLINE, f"secid=124.{symbol}", answer=recorded["stock_hk_index_daily_em"][symbol]
    )

    frame = ak.stock_hk_index_daily_em(symbol=symbol)
    assert list(frame.columns) == ["date", "open", "high", "low", "latest"]

    bars = akshare_indices.parse_em_hk_daily(frame, INSTRUMENTS[symbol].instrument_id)
    assert (closes(bars)["2026-03-19"], closes(bars)["2026-03-20"]) == CLOSES[symbol]
    assert bars["volume"].isna().all()


def test_closes_agree_with_reference_data(reference_data: Path) -> None:
    for symbol, name in [("HSI", "hsi_HSI.csv"), ("sh000001", "sse_composite_000001.SH.csv")]:
        reference = pd.read_csv(reference_data / name).set_index("date")["close"]
        for day, close in closes(
            akshare_indices.parse_sina_daily(sina_history(symbol), symbol)
        ).items():
            assert close == pytest.approx(reference[day], abs=0.01)


def test_schema_drift_names_feed_instrument_and_columns() -> None:
    drifted = sina_history("HSI").rename(columns={"close": "收盘价"})
    with pytest.raises(SchemaDriftError) as error:
        akshare_indices.parse_sina_daily(drifted, "hk/HSI")
    message = str(error.value)
    assert message.startswith("[akshare] hk/HSI: schema drift")
    assert "expected columns ['close', 'date'" in message and "'收盘价'" in message


@pytest.mark.parametrize(
    "parse",
    [
        akshare_indices.parse_sina_daily,
        akshare_indices.parse_em_hk_daily,
        akshare_indices.parse_em_cn_daily,
    ],
)
def test_empty_frame_is_no_data(parse: Callable) -> None:
    bars = parse(pd.DataFrame(), "hk/HSI")
    assert bars.empty and list(bars.columns) == BAR_COLUMNS


# --- fetch_bars: primary, fallback, retries ------------------------------------------------------


def test_fetch_bars_from_primary(
    monkeypatch: pytest.MonkeyPatch, throttle: RecordingThrottle
) -> None:
    replace(monkeypatch, "stock_hk_index_daily_sina", answers(sina_history("HSTECH")))
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSTECH"], date(2026, 3, 19), date(2026, 3, 20), throttle
    )
    assert list(rows.columns) == BAR_FRAME_COLUMNS
    assert closes(rows) == {"2026-03-19": 4996.28}  # end is exclusive
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_sina"}
    assert not rows["is_fallback"].any() and set(rows["instrument_id"]) == {"hk/HSTECH"}
    assert throttle.waits == 1


def test_primary_failing_falls_back_to_eastmoney(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    replace(monkeypatch, "stock_zh_index_daily", answers(ValueError("garbled JS")))
    body = load("em_index_kline.json")["stock_zh_index_daily_em"]["sz399006"]
    transport.route(KLINE, "secid=0.399006", answer=body)

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sz399006"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert closes(rows) == {"2026-03-19": 3309.10, "2026-03-20": 3352.10}
    assert set(rows["source"]) == {"akshare:stock_zh_index_daily_em"}
    assert rows["is_fallback"].all()
    assert throttle.sleeps == [] and throttle.waits == 2  # not transient: no retry


def test_primary_schema_drift_falls_back(
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
    throttle: RecordingThrottle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drifted = sina_history("sh000001").rename(columns={"volume": "成交量"})
    replace(monkeypatch, "stock_zh_index_daily", answers(drifted))
    body = load("em_index_kline.json")["stock_zh_index_daily_em"]["sh000001"]
    transport.route(KLINE, "secid=1.000001", answer=body)

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sh000001"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert rows["is_fallback"].all()
    assert "schema drift" in caplog.text and "'成交量'" in caplog.text


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (requests.Timeout("read timed out"), True),
        (requests.ConnectionError("RemoteDisconnected"), True),
        (http_error(429), True),
        (http_error(503), True),
        (http_error(404), False),
        (KeyError("data"), False),
    ],
)
def test_which_errors_are_transient(error: Exception, transient: bool) -> None:
    assert akshare_indices.is_transient(error) is transient


def test_transient_errors_are_retried_with_backoff(
    monkeypatch: pytest.MonkeyPatch, throttle: RecordingThrottle
) -> None:
    flaky = answers(requests.Timeout("timed out"), http_error(503), sina_history("HSI"))
    replace(monkeypatch, "stock_hk_index_daily_sina", flaky)
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSI"], date(2026, 3, 18), date(2026, 3, 21), throttle
    )
    assert closes(rows)["2026-03-20"] == 25277.32
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_sina"}
    assert throttle.sleeps == [2.0, 4.0] and throttle.waits == 3


def test_both_failing_names_feed_instrument_range_and_both_reasons(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    replace(monkeypatch, "stock_zh_index_daily", answers(requests.ConnectionError("reset")))
    transport.route(KLINE, answer=requests.ConnectionError("banned"))
    with pytest.raises(FeedError) as error:
        akshare_indices.fetch_bars(
            INSTRUMENTS["sh000016"], date(2026, 3, 19), date(2026, 3, 21), throttle
        )
    message = str(error.value)
    assert message.startswith("[akshare] cn/sh000016: daily bars 2026-03-19..2026-03-21")
    assert "stock_zh_index_daily: " in message and "reset" in message
    assert "stock_zh_index_daily_em: " in message and "banned" in message
    assert "secid=1.000016" in transport.urls[0]
    assert throttle.sleeps == [2.0, 4.0, 8.0] * 2 and throttle.waits == 8


def test_empty_range_is_no_data(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    replace(monkeypatch, "stock_zh_index_daily", answers(sina_history("sz399001")))
    empty = load("em_index_kline.json")["stock_zh_index_daily_em"]["sz399001"]
    empty["data"]["klines"] = []
    transport.route(KLINE, answer=empty)

    rows = akshare_indices.fetch_bars(  # a weekend
        INSTRUMENTS["sz399001"], date(2026, 3, 21), date(2026, 3, 23), throttle
    )
    assert rows.empty and list(rows.columns) == BAR_FRAME_COLUMNS
    assert len(transport.urls) == 1  # the fallback was asked, and had nothing either


def test_fallback_reaching_further_back_wins(
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
    throttle: RecordingThrottle,
    hk_code_lookup: None,
) -> None:
    short = sina_history("HSI").iloc[1:]  # Sina's history starts a day later than asked
    replace(monkeypatch, "stock_hk_index_daily_sina", answers(short))
    recorded = load("em_index_kline.json")
    transport.route(CLIST, answer=recorded["stock_hk_index_spot_em"])
    transport.route(KLINE, "secid=124.HSI", answer=recorded["stock_hk_index_daily_em"]["HSI"])

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSI"], date(2026, 3, 18), date(2026, 3, 21), throttle
    )
    assert list(closes(rows)) == ["2026-03-18", "2026-03-19", "2026-03-20"]
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_em"} and rows["is_fallback"].all()


# --- breadth -------------------------------------------------------------------------------------

# The recorded spot tables: 9 stocks traded (3 up, 5 down, 1 unchanged), 1 suspended.
TRADED_TURNOVER = 37_877_450_000.0


def spot_em(transport: Transport) -> None:
    transport.route(CLIST, "fs=m%3A0", answer=load("em_a_spot.json")["body"])


def spot_sina(transport: Transport) -> None:
    recorded = load("sina_a_spot.json")
    transport.route("getHQNodeStockCount", answer=recorded["count"])
    transport.route("getHQNodeData", answer=recorded["pages"])


@pytest.mark.parametrize(
    ("function", "serve"), [("stock_zh_a_spot_em", spot_em), ("stock_zh_a_spot", spot_sina)]
)
def test_spot_table_through_akshare_to_breadth(
    transport: Transport, function: str, serve: Callable
) -> None:
    serve(transport)
    frame = getattr(ak, function)()
    assert set(akshare_breadth.SPOT_COLUMNS) <= set(frame.columns) and len(frame) == 10
    assert frame["涨跌幅"].dtype == "float64" and frame["成交额"].dtype == "float64"

    row = akshare_breadth.parse_spot_snapshot(frame, date(2026, 3, 20))
    assert list(row.columns) == akshare_breadth.BREADTH_COLUMNS
    assert row.iloc[0].to_dict() == {
        "session_date": date(2026, 3, 20),
        "advancers": 3,
        "decliners": 5,
        "unchanged": 1,
        "turnover_cny": TRADED_TURNOVER,
    }


def test_spot_snapshot_drift_and_empty() -> None:
    with pytest.raises(SchemaDriftError, match=r"\[akshare\] cn/breadth: .*'涨跌幅'"):
        akshare_breadth.parse_spot_snapshot(pd.DataFrame({"代码": ["600519"]}), date(2026, 3, 20))
    empty = akshare_breadth.parse_spot_snapshot(pd.DataFrame(), date(2026, 3, 20))
    assert empty.empty and list(empty.columns) == akshare_breadth.BREADTH_COLUMNS


def test_breadth_snapshot_primary_then_sina_fallback(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    spot_em(transport)
    row = akshare_breadth.fetch_breadth_snapshot(date(2026, 3, 20), throttle)
    assert list(row.columns) == [
        *akshare_breadth.BREADTH_COLUMNS,
        "source",
        "is_fallback",
        "fetched_at",
    ]
    assert (row["source"].iloc[0], bool(row["is_fallback"].iloc[0])) == (
        "akshare:stock_zh_a_spot_em",
        False,
    )

    transport.route(CLIST, answer={"rc": 102, "data": None})  # Eastmoney refuses the list
    spot_sina(transport)
    row = akshare_breadth.fetch_breadth_snapshot(date(2026, 3, 20), throttle)
    assert (row["source"].iloc[0], bool(row["is_fallback"].iloc[0])) == (
        "akshare:stock_zh_a_spot",
        True,
    )
    assert (row["advancers"].iloc[0], row["turnover_cny"].iloc[0]) == (3, TRADED_TURNOVER)


def test_stock_codes_from_exchange_lists_then_spot_table(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    code_list = recorded_frame(load("stock_info_a_code_name.json"))
    replace(monkeypatch, "stock_info_a_code_name", answers(code_list))
    codes = akshare_breadth.fetch_stock_codes(throttle)
    assert len(codes) == 10 and codes == sorted(codes) and codes[0] == "000001"

    replace(monkeypatch, "stock_info_a_code_name", answers(ValueError("szse.cn changed its xlsx")))
    spot_em(transport)
    assert akshare_breadth.fetch_stock_codes(throttle) == codes


def test_stock_history_through_akshare(transport: Transport) -> None:
    transport.route(KLINE, "secid=1.600519", answer=load("em_a_hist.json")["bodies"]["600519"])
    frame = ak.stock_zh_a_hist(symbol="600519", start_date="20260319", end_date="20260320")
    assert list(frame.columns)[:4] == ["日期", "股票代码", "开盘", "收盘"]

    bars = akshare_breadth.parse_stock_history(frame, "600519")
    assert list(bars.columns) == akshare_breadth.STOCK_BAR_COLUMNS
    last = bars.iloc[-1].to_dict()
    assert last == {
        "stock_code": "600519",
        "session_date": date(2026, 3, 20),
        "close": 1436.60,
        "previous_close": 1450.00,
        "volume": 3_211_000.0,
        "turnover_cny": 4_617_000_000.0,
    }
    with pytest.raises(SchemaDriftError, match="cn/600519"):
        akshare_breadth.parse_stock_history(frame.drop(columns=["涨跌额"]), "600519")
    assert akshare_breadth.parse_stock_history(pd.DataFrame(), "600519").empty


def test_universe_history_resumes_and_survives_a_failing_stock(
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
    throttle: RecordingThrottle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(akshare_breadth, "PROGRESS_EVERY", 2)
    bodies = load("em_a_hist.json")["bodies"]
    for code, body in bodies.items():
        transport.route(KLINE, f"secid={1 if code.startswith('6') else 0}.{code}", answer=body)
    transport.route(KLINE, "secid=0.000002", answer=requests.ConnectionError("reset by peer"))
    codes = ["600519", "000001", "000002", "688981", "300750"]
    saved: dict[str, pd.DataFrame] = {}
    log = logging.getLogger("test.akshare.universe")
    caplog.set_level(logging.INFO, logger=log.name)
    start, end = date(2026, 3, 19), date(2026, 3, 21)

    fetched = akshare_breadth.fetch_universe_history(
        codes, start, end, throttle, set(), saved.__setitem__, log
    )
    assert fetched == 4 and set(saved) == {"600519", "000001", "688981", "300750"}
    assert saved["688981"].empty  # no bars in range: saved as done all the same
    assert len(saved["300750"]) == 2 and set(saved["300750"]["stock_code"]) == {"300750"}
    assert throttle.sleeps == [2.0, 4.0, 8.0]  # the failing stock was retried, then skipped
    assert any("000002 failed" in line for line in caplog.messages)
    assert any("2/5 stocks" in line for line in caplog.messages)
    assert any("5/5 stocks" in line for line in caplog.messages)

    transport.route(KLINE, "secid=0.000002", answer=bodies["000002"])
    transport.urls.clear()
    fetched = akshare_breadth.fetch_universe_history(
        codes, start, end, throttle, set(saved), saved.__setitem__, log
    )
    assert fetched == 1 and len(transport.urls) == 1 and "secid=0.000002" in transport.urls[0]
    assert set(saved) == set(codes)


def test_universe_history_stops_when_every_stock_fails(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    monkeypatch.setattr(akshare_breadth, "MAX_CONSECUTIVE_FAILURES", 2)
    transport.route(KLINE, answer=requests.ConnectionError("banned"))
    saved: dict[str, pd.DataFrame] = {}
    with pytest.raises(FeedError, match="2 stocks failed in a row"):
        akshare_breadth.fetch_universe_history(
            ["600519", "000001", "300750"],
            date(2026, 3, 19),
            date(2026, 3, 21),
            throttle,
            set(),
            saved.__setitem__,
            logging.getLogger("test.akshare.universe"),
        )
    assert saved == {} and len(transport.urls) == 8


def test_universe_history_stops_on_schema_drift(
    monkeypatch: pytest.MonkeyPatch, throttle: RecordingThrottle
) -> None:
    replace(monkeypatch, "stock_zh_a_hist", answers(pd.DataFrame({"date": [date(2026, 3, 20)]})))
    with pytest.raises(SchemaDriftError, match="cn/600519"):
        akshare_breadth.fetch_universe_history(
            ["600519", "000001"],
            date(2026, 3, 19),
            date(2026, 3, 21),
            throttle,
            set(),
            lambda code, bars: None,
            logging.getLogger("test.akshare.universe"),
        )
