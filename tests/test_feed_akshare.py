"""akshare and baostock feeds at their lowest seams: akshare's own parsing over recorded bodies
(the network replaced at ``requests.Session.send``; Sina's index histories served JS-encoded
and decoded by akshare's V8 decoder), baostock's own client over a loopback server speaking its
wire protocol; then our parsers, and the fallback, retry, failure and resume logic."""

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import akshare as ak
import pandas as pd
import pytest
import requests

from market_intel.feeds import (
    BAR_COLUMNS,
    BAR_FRAME_COLUMNS,
    FeedError,
    SchemaDriftError,
    akshare_breadth,
    akshare_indices,
    baostock_history,
)
from tests import sina_kline
from tests.baostock_server import BaostockServer, kdata_answer, kdata_error
from tests.transports.akshare import (
    CLIST,
    INSTRUMENTS,
    KLINE,
    LEGU,
    SINA_FUNCTION,
    SINA_URL,
    SSE_DEAL,
    SZSE_REPORT,
    RecordingThrottle,
    Reply,
    Transport,
    baostock_answer,
    baostock_server,
    clear_akshare_caches,
    legu_page,
    load,
    serve_all_baostock,
    serve_code_lists,
    serve_exchanges,
    serve_sina,
    sina_bars,
    spot_em,
    spot_sina,
)

# Official closes of 2026-03-19 and 2026-03-20 (reference-data, SOURCES.md).
CLOSES = {
    "HSI": (25500.58, 25277.32),
    "HSCEI": (8695.88, 8574.07),
    "HSTECH": (4996.28, 4872.38),
    "sh000001": (4006.55, 3957.05),
    "sz399001": (13901.57, 13866.20),
    "sz399006": (3309.10, 3352.10),
}
FRIDAY = date(2026, 3, 20)


def closes(bars: pd.DataFrame) -> dict[str, float]:
    return {d.isoformat(): round(c, 2) for d, c in zip(bars["session_date"], bars["close"])}


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Transport:
    return Transport().install(monkeypatch)


@pytest.fixture
def throttle() -> RecordingThrottle:
    return RecordingThrottle()


@pytest.fixture
def baostock(monkeypatch: pytest.MonkeyPatch) -> Iterator[BaostockServer]:
    with baostock_server(monkeypatch) as server:
        yield server


@pytest.fixture(autouse=True)
def akshare_caches() -> Iterator[None]:
    clear_akshare_caches()
    yield
    clear_akshare_caches()


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


# --- Sina index histories, JS-encoded ------------------------------------------------------------


def sina_history(transport: Transport, symbol: str) -> pd.DataFrame:
    """The frame akshare's own Sina function makes of the served body."""
    serve_sina(transport, symbol)
    return getattr(ak, SINA_FUNCTION[INSTRUMENTS[symbol].market])(symbol=symbol)


def unknown_sina_format() -> str:
    """A body in a kline format akshare's decoder does not know: it decodes to no rows."""
    out = sina_kline.BitWriter()
    out.put(999, 12)
    out.put(sina_kline.CHECK, 6)
    return f'var KLC_KL="{out.text()}";'


@pytest.mark.parametrize("symbol", sorted(CLOSES))
def test_sina_history_through_akshare_gives_official_closes(
    transport: Transport, symbol: str
) -> None:
    frame = sina_history(transport, symbol)
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert isinstance(frame["date"].iloc[0], date) and frame["close"].dtype == "float64"
    assert frame["volume"].dtype == "int64"
    assert list(frame["volume"]) == [bar[5] for bar in sina_bars(symbol)]
    bars = akshare_indices.parse_sina_daily(frame, INSTRUMENTS[symbol].instrument_id)
    assert list(bars.columns) == BAR_COLUMNS
    assert (closes(bars)["2026-03-19"], closes(bars)["2026-03-20"]) == CLOSES[symbol]
    assert bars["volume"].dtype == "float64"


def test_sina_encoding_steps_over_weekends_and_holidays(transport: Transport) -> None:
    bars = [
        (date(2026, 2, 13), 4000.1, 4010.2, 3990.3, 4005.4, 100),
        (date(2026, 2, 24), 4005.4, 4020.5, 4001.6, 4019.7, 90),  # after Spring Festival
        (date(2026, 2, 25), 4019.7, 4019.7, 3980.8, 3981.9, 250),
    ]
    serve_sina(transport, "sh000001", bars)
    frame = ak.stock_zh_index_daily(symbol="sh000001")
    assert list(frame["date"]) == [bar[0] for bar in bars]
    assert list(frame["low"]) == [3990.3, 4001.6, 3980.8]
    assert list(frame["volume"]) == [100, 90, 250]


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
    sina = akshare_indices.parse_sina_daily(sina_history(transport, symbol), symbol)
    assert list(bars["volume"]) == list(sina["volume"])  # both in shares


@pytest.mark.parametrize("symbol", ["HSI", "HSCEI", "HSTECH"])
def test_eastmoney_hk_index_through_akshare(transport: Transport, symbol: str) -> None:
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


def test_closes_agree_with_reference_data(transport: Transport, reference_data: Path) -> None:
    for symbol, name in [("HSI", "hsi_HSI.csv"), ("sh000001", "sse_composite_000001.SH.csv")]:
        reference = pd.read_csv(reference_data / name).set_index("date")["close"]
        frame = sina_history(transport, symbol)
        for day, close in closes(akshare_indices.parse_sina_daily(frame, symbol)).items():
            assert close == pytest.approx(reference[day], abs=0.01)


def test_schema_drift_names_feed_instrument_and_columns(transport: Transport) -> None:
    drifted = sina_history(transport, "HSI").rename(columns={"close": "收盘价"})
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


def test_fetch_bars_from_primary(transport: Transport, throttle: RecordingThrottle) -> None:
    serve_sina(transport, "HSTECH")
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSTECH"], date(2026, 3, 19), date(2026, 3, 20), throttle
    )
    assert list(rows.columns) == BAR_FRAME_COLUMNS
    assert closes(rows) == {"2026-03-19": 4996.28}  # end is exclusive
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_sina"}
    assert not rows["is_fallback"].any() and set(rows["instrument_id"]) == {"hk/HSTECH"}
    assert throttle.waits == 1


def test_primary_failing_falls_back_to_eastmoney(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    transport.route(SINA_URL["cn"].format("sz399006"), answer="<html>blocked</html>")
    body = load("em_index_kline.json")["stock_zh_index_daily_em"]["sz399006"]
    transport.route(KLINE, "secid=0.399006", answer=body)

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sz399006"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert closes(rows) == {"2026-03-19": 3309.10, "2026-03-20": 3352.10}
    assert set(rows["source"]) == {"akshare:stock_zh_index_daily_em"}
    assert rows["is_fallback"].all()
    assert throttle.sleeps == [] and throttle.waits == 2  # not transient: no retry


def test_primary_in_a_changed_format_falls_back(
    transport: Transport, throttle: RecordingThrottle, caplog: pytest.LogCaptureFixture
) -> None:
    transport.route(SINA_URL["cn"].format("sh000001"), answer=unknown_sina_format())
    body = load("em_index_kline.json")["stock_zh_index_daily_em"]["sh000001"]
    transport.route(KLINE, "secid=1.000001", answer=body)

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sh000001"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert rows["is_fallback"].all()
    assert "unexpected answer (KeyError: 'date')" in caplog.text
    assert "stock_zh_index_daily 2026-03-19..2026-03-21" in caplog.text


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (requests.Timeout("read timed out"), True),
        (requests.ConnectionError("RemoteDisconnected"), True),
        (requests.exceptions.ChunkedEncodingError("connection broken: IncompleteRead"), True),
        (http_error(429), True),
        (http_error(503), True),
        (http_error(403), False),
        (http_error(451), False),
        (http_error(404), False),
        (KeyError("data"), False),
        (json.JSONDecodeError("Expecting value", "<html>", 0), False),
    ],
)
def test_which_errors_are_transient(error: Exception, transient: bool) -> None:
    assert akshare_indices.is_transient(error) is transient


def test_transient_errors_are_retried_with_backoff(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    body = sina_kline.body(sina_bars("HSI"))
    flaky = [requests.Timeout("timed out"), requests.ConnectionError("reset by peer"), body]
    transport.route(SINA_URL["hk"].format("HSI"), answer=flaky)
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSI"], date(2026, 3, 18), date(2026, 3, 21), throttle
    )
    assert closes(rows)["2026-03-20"] == 25277.32
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_sina"}
    assert throttle.sleeps == [2.0, 4.0] and throttle.waits == 3


def test_both_failing_names_feed_instrument_range_and_both_reasons(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    transport.route(SINA_URL["cn"].format("sh000016"), answer=requests.ConnectionError("reset"))
    transport.route(KLINE, answer=requests.ConnectionError("banned"))
    with pytest.raises(FeedError) as error:
        akshare_indices.fetch_bars(
            INSTRUMENTS["sh000016"], date(2026, 3, 19), date(2026, 3, 21), throttle
        )
    message = str(error.value)
    assert message.startswith("[akshare] cn/sh000016: daily bars 2026-03-19..2026-03-21")
    assert "stock_zh_index_daily: " in message and "reset" in message
    assert "stock_zh_index_daily_em: " in message and "banned" in message
    assert "secid=1.000016" in transport.urls[-1]
    assert throttle.sleeps == [2.0, 4.0, 8.0] * 2 and throttle.waits == 8


def test_empty_range_is_no_data(transport: Transport, throttle: RecordingThrottle) -> None:
    serve_sina(transport, "sz399001")
    empty = load("em_index_kline.json")["stock_zh_index_daily_em"]["sz399001"]
    empty["data"]["klines"] = []
    transport.route(KLINE, answer=empty)

    rows = akshare_indices.fetch_bars(  # a weekend
        INSTRUMENTS["sz399001"], date(2026, 3, 21), date(2026, 3, 23), throttle
    )
    assert rows.empty and list(rows.columns) == BAR_FRAME_COLUMNS
    assert sum(KLINE in url for url in transport.urls) == 1  # the fallback had nothing either


def test_fallback_reaching_further_back_wins(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    serve_sina(transport, "HSI", sina_bars("HSI")[1:])  # Sina's history starts a day later
    recorded = load("em_index_kline.json")
    transport.route(CLIST, answer=recorded["stock_hk_index_spot_em"])
    transport.route(KLINE, "secid=124.HSI", answer=recorded["stock_hk_index_daily_em"]["HSI"])

    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["HSI"], date(2026, 3, 18), date(2026, 3, 21), throttle
    )
    assert list(closes(rows)) == ["2026-03-18", "2026-03-19", "2026-03-20"]
    assert set(rows["source"]) == {"akshare:stock_hk_index_daily_em"} and rows["is_fallback"].all()


# --- what real networks do, against the index feed ------------------------------------------------

EM_SZ399006 = "em_index_kline.json"
HTML_PAGE = "<html><body>Access denied</body></html>"


def em_body() -> dict:
    return load(EM_SZ399006)["stock_zh_index_daily_em"]["sz399006"]


def truncated_em_body() -> str:
    text = json.dumps(em_body())
    return text[: len(text) // 2]


def partial_em_body() -> dict:
    body = em_body()
    body["data"]["klines"] = body["data"]["klines"][-1:]  # only the last session
    return body


# failure of the primary (Sina) -> (sleeps before the fallback answered)
PRIMARY_FAILURES = {
    "timeout": (requests.ReadTimeout("read timed out"), [2.0, 4.0, 8.0]),
    "connection reset": (requests.ConnectionError("Connection reset by peer"), [2.0, 4.0, 8.0]),
    "truncated body": (
        requests.exceptions.ChunkedEncodingError("IncompleteRead(512 bytes read)"),
        [2.0, 4.0, 8.0],
    ),
    "429 with Retry-After": (Reply(429, HTML_PAGE, {"Retry-After": "30"}), []),
    "HTML where JS was expected": (Reply(200, HTML_PAGE), []),
    "451 region refused": (Reply(451, HTML_PAGE), []),
    "503": (Reply(503, HTML_PAGE), []),
    "empty body": (Reply(200, ""), []),
}


@pytest.mark.parametrize("kind", sorted(PRIMARY_FAILURES))
def test_a_failing_primary_falls_back(
    transport: Transport, throttle: RecordingThrottle, kind: str
) -> None:
    failure, sleeps = PRIMARY_FAILURES[kind]
    transport.route(SINA_URL["cn"].format("sz399006"), answer=failure)
    transport.route(KLINE, "secid=0.399006", answer=em_body())
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sz399006"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert closes(rows) == {"2026-03-19": 3309.10, "2026-03-20": 3352.10}
    assert rows["is_fallback"].all() and throttle.sleeps == sleeps


# failure of both sources (Sina down, Eastmoney answering this) -> outcome
BOTH_FAILURES = {
    "timeout": (requests.ConnectTimeout("connect timed out"), "gave up after 4 attempts"),
    "429 without Retry-After": (http_error(429), "gave up after 4 attempts"),
    "403 forbidden": (Reply(403, HTML_PAGE), "unexpected answer (JSONDecodeError"),
    "HTML where JSON was expected": (Reply(200, HTML_PAGE), "unexpected answer (JSONDecodeError"),
    "truncated JSON": (Reply(200, truncated_em_body()), "unexpected answer (JSONDecodeError"),
    "data null": (Reply(200, {"rc": 102, "data": None}), "unexpected answer (TypeError"),
}


@pytest.mark.parametrize("kind", sorted(BOTH_FAILURES))
def test_both_sources_failing_is_a_clear_error(
    transport: Transport, throttle: RecordingThrottle, kind: str
) -> None:
    failure, reason = BOTH_FAILURES[kind]
    transport.route(SINA_URL["cn"].format("sz399006"), answer=Reply(200, HTML_PAGE))
    transport.route(KLINE, answer=failure)
    with pytest.raises(FeedError) as error:
        akshare_indices.fetch_bars(
            INSTRUMENTS["sz399006"], date(2026, 3, 19), date(2026, 3, 21), throttle
        )
    message = str(error.value)
    assert message.startswith("[akshare] cn/sz399006: daily bars 2026-03-19..2026-03-21")
    assert reason in message and "stock_zh_index_daily_em 2026-03-19..2026-03-21" in message


def test_retry_after_is_waited_out_before_the_next_try(throttle: RecordingThrottle) -> None:
    response = requests.Response()
    response.status_code, response.headers["Retry-After"] = 429, "30"
    answers = iter([requests.HTTPError("429", response=response), "answer"])

    def call() -> str:
        item = next(answers)
        if isinstance(item, BaseException):
            raise item
        return item

    assert akshare_indices.call_with_retries(call, instrument="cn/x", throttle=throttle) == "answer"
    assert throttle.sleeps == [30.0, 2.0]  # Retry-After, then the backoff


def test_a_partial_answer_is_kept_when_nothing_better_exists(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    serve_sina(transport, "sz399006", sina_bars("sz399006")[-1:])  # starts on 2026-03-20
    transport.route(KLINE, answer=partial_em_body())
    rows = akshare_indices.fetch_bars(
        INSTRUMENTS["sz399006"], date(2026, 3, 19), date(2026, 3, 21), throttle
    )
    assert closes(rows) == {"2026-03-20": 3352.10}


# --- breadth: the latest session's counts ---------------------------------------------------------

# The recorded spot tables: 9 stocks traded (3 up, 5 down, 1 unchanged), 1 suspended.
TRADED_TURNOVER = 37_877_450_000.0


def test_legu_through_akshare_to_a_dated_row(transport: Transport) -> None:
    transport.route(LEGU, answer=legu_page())
    frame = ak.stock_market_activity_legu()
    assert list(frame.columns) == ["item", "value"]
    assert list(frame["item"])[:4] == ["上涨", "涨停", "真实涨停", "st st*涨停"]
    assert list(frame["item"])[-2:] == ["活跃度", "统计日期"]

    statistics, row = akshare_breadth.parse_legu(frame)
    assert statistics == datetime(2026, 3, 20, 15, 0)
    assert list(row.columns) == akshare_breadth.BREADTH_COLUMNS
    assert row.iloc[0][["session_date", "advancers", "decliners", "unchanged"]].to_dict() == {
        "session_date": FRIDAY,
        "advancers": 662,
        "decliners": 4705,
        "unchanged": 114,
    }
    assert row["turnover_cny"].isna().all()  # legulegu publishes no turnover


def test_legu_without_its_counts_is_schema_drift(transport: Transport) -> None:
    transport.route(LEGU, answer=legu_page().replace("平盘", "平"))
    with pytest.raises(SchemaDriftError, match=r"\[akshare\] cn/breadth: .*'平盘'"):
        akshare_breadth.parse_legu(ak.stock_market_activity_legu())


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

    row = akshare_breadth.parse_spot_snapshot(frame, FRIDAY)
    assert list(row.columns) == akshare_breadth.BREADTH_COLUMNS
    assert row.iloc[0].to_dict() == {
        "session_date": FRIDAY,
        "advancers": 3,
        "decliners": 5,
        "unchanged": 1,
        "turnover_cny": TRADED_TURNOVER,
    }


def test_spot_snapshot_drift_and_empty() -> None:
    with pytest.raises(SchemaDriftError, match=r"\[akshare\] cn/breadth: .*'涨跌幅'"):
        akshare_breadth.parse_spot_snapshot(pd.DataFrame({"代码": ["600519"]}), FRIDAY)
    empty = akshare_breadth.parse_spot_snapshot(pd.DataFrame(), FRIDAY)
    assert empty.empty and list(empty.columns) == akshare_breadth.BREADTH_COLUMNS


def test_snapshot_from_legu_then_sina_then_eastmoney(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    transport.route(LEGU, answer=legu_page())
    row = akshare_breadth.fetch_breadth_snapshot(throttle, undated_session=FRIDAY)
    assert list(row.columns) == [*akshare_breadth.BREADTH_COLUMNS, *akshare_breadth.PROVENANCE]
    assert (row["source"].iloc[0], bool(row["is_fallback"].iloc[0])) == (
        "akshare:stock_market_activity_legu",
        False,
    )
    assert row["advancers"].iloc[0] == 662

    transport.route(LEGU, answer=Reply(502, "<html>Bad gateway</html>"))  # no table in it
    spot_sina(transport)
    row = akshare_breadth.fetch_breadth_snapshot(throttle, undated_session=FRIDAY)
    assert (row["source"].iloc[0], bool(row["is_fallback"].iloc[0])) == (
        "akshare:stock_zh_a_spot",
        True,
    )
    assert (row["advancers"].iloc[0], row["turnover_cny"].iloc[0]) == (3, TRADED_TURNOVER)

    transport.route("getHQNodeStockCount", answer=Reply(200, HTML_PAGE))
    spot_em(transport)
    row = akshare_breadth.fetch_breadth_snapshot(throttle, undated_session=FRIDAY)
    assert row["source"].iloc[0] == "akshare:stock_zh_a_spot_em"


def test_intraday_legu_figures_are_not_a_snapshot(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    transport.route(LEGU, answer=legu_page("2026-03-23 10:35:00"))
    row = akshare_breadth.fetch_breadth_snapshot(throttle, undated_session=None)
    assert row.empty and list(row.columns)[:5] == akshare_breadth.BREADTH_COLUMNS
    assert not any("sina" in url or "eastmoney" in url for url in transport.urls)


def test_undated_spot_tables_are_not_asked_without_a_session(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    transport.route(LEGU, answer=requests.ConnectionError("reset"))
    with pytest.raises(FeedError, match="stock_market_activity_legu"):
        akshare_breadth.fetch_breadth_snapshot(throttle, undated_session=None)
    assert all(LEGU in url for url in transport.urls)


# --- turnover: the exchanges' daily summaries -----------------------------------------------------


def test_exchange_summaries_through_akshare(transport: Transport) -> None:
    serve_exchanges(transport)
    sse = ak.stock_sse_deal_daily(date="20260320")
    assert list(sse.columns) == ["单日情况", "股票", "主板A", "主板B", "科创板", "股票回购"]
    assert "SEARCH_DATE=2026-03-20" in transport.urls[-1]
    assert akshare_breadth.parse_sse_turnover(sse, FRIDAY) == pytest.approx(9648.63e8)

    szse = ak.stock_szse_summary(date="20260320")
    assert list(szse.columns) == ["证券类别", "数量", "成交金额", "总市值", "流通市值"]
    assert "txtQueryDate=2026-03-20" in transport.urls[-1]
    assert akshare_breadth.parse_szse_turnover(szse, FRIDAY) == 1_321_947_502_000.0


def test_older_sse_answers_add_up_the_boards() -> None:
    frame = pd.DataFrame(
        {
            "单日情况": ["挂牌数", "成交金额"],
            "股票": [float("nan"), float("nan")],
            "主板A": [1600.0, 4000.5],
            "主板B": [50.0, 2.5],
            "科创板": [300.0, 900.0],
        }
    )
    assert akshare_breadth.parse_sse_turnover(frame, date(2022, 1, 4)) == pytest.approx(4903e8)


def test_turnover_per_session_skips_a_failing_call_with_a_warning(
    transport: Transport, throttle: RecordingThrottle, caplog: pytest.LogCaptureFixture
) -> None:
    serve_exchanges(transport)
    transport.route(SZSE_REPORT, "txtQueryDate=2026-03-19", answer=Reply(451, HTML_PAGE))
    log = logging.getLogger("test.akshare.turnover")
    frame, unavailable = akshare_breadth.fetch_exchange_turnover(
        [date(2026, 3, 19), FRIDAY], throttle, log
    )
    assert list(zip(frame["market"], frame["session_date"], strict=True)) == [
        ("sse", date(2026, 3, 19)),
        ("sse", FRIDAY),
        ("szse", FRIDAY),
    ]
    assert frame["turnover_cny"].tolist() == [pytest.approx(9648.63e8)] * 2 + [1.321947502e12]
    assert set(frame["source"]) == {"akshare:stock_sse_deal_daily", "akshare:stock_szse_summary"}
    assert len(unavailable) == 1 and "cn/szse turnover 2026-03-19" in unavailable[0]
    assert "unavailable: cn/szse turnover on 2026-03-19" in caplog.text


def test_turnover_stops_when_every_call_fails(
    monkeypatch: pytest.MonkeyPatch, transport: Transport, throttle: RecordingThrottle
) -> None:
    monkeypatch.setattr("market_intel.feeds.akshare_breadth.MAX_CONSECUTIVE_FAILURES", 3)
    transport.route(SSE_DEAL, answer=Reply(403, HTML_PAGE))
    transport.route(SZSE_REPORT, answer=Reply(403, HTML_PAGE))
    with pytest.raises(FeedError, match="3 turnover calls failed in a row"):
        akshare_breadth.fetch_exchange_turnover(
            [date(2026, 3, 18), date(2026, 3, 19), FRIDAY],
            throttle,
            logging.getLogger("test.akshare.turnover"),
        )
    assert len(transport.urls) == 3


# --- the per-stock universe and history -----------------------------------------------------------


def test_stock_codes_from_exchange_lists_then_spot_table(
    transport: Transport, throttle: RecordingThrottle
) -> None:
    serve_code_lists(transport)
    frame = ak.stock_info_a_code_name()
    assert list(frame.columns) == ["code", "name"] and "830799" in set(frame["code"])
    codes = akshare_breadth.fetch_stock_codes(throttle)
    assert len(codes) == 10 and codes == sorted(codes) and codes[0] == "000001"
    assert "830799" not in codes  # Beijing: outside the Shanghai and Shenzhen universe

    clear_akshare_caches()  # akshare keeps each list, and the combined one, for the process
    transport.route(SZSE_REPORT, "CATALOGID=1110", answer=Reply(200, HTML_PAGE))
    spot_em(transport)
    assert akshare_breadth.fetch_stock_codes(throttle) == codes


def test_baostock_history_through_its_client(baostock: BaostockServer) -> None:
    serve_all_baostock(baostock)
    with baostock_history.Session() as session:
        raw = session.daily_bars("600519", date(2026, 3, 19), FRIDAY)
        suspended = session.daily_bars("000040", date(2026, 3, 19), date(2026, 3, 21))
    request = baostock.requests[0]
    assert request[4:10] == [
        "sh.600519",
        "date,code,close,preclose,volume,amount,tradestatus",
        "2026-03-19",
        "2026-03-19",
        "d",
        "3",
    ]
    assert (
        list(raw.columns) == list(baostock_history.FIELDS) and raw["close"].iloc[-1] == "1436.6000"
    )

    bars = baostock_history.parse_daily_bars(raw, "600519")
    assert list(bars.columns) == baostock_history.STOCK_BAR_COLUMNS
    assert bars.iloc[-1].to_dict() == {
        "stock_code": "600519",
        "session_date": FRIDAY,
        "close": 1436.60,
        "previous_close": 1450.00,
        "volume": 3_211_000.0,
        "turnover_cny": 4_617_000_000.0,
    }
    assert len(suspended) == 2 and baostock_history.parse_daily_bars(suspended, "000040").empty
    assert baostock.logins == 1


def test_baostock_errors_retry_with_a_new_login_or_fail_clearly(
    baostock: BaostockServer, throttle: RecordingThrottle
) -> None:
    baostock.answer("600519", lambda request: None, baostock_answer("600519"))  # cut short
    baostock.answer("600036", lambda request: kdata_error(request, "10004011", "无效的证券代码"))
    with baostock_history.Session() as session:
        bars = akshare_breadth.stock_history(session, "600519", date(2026, 3, 19), FRIDAY, throttle)
        assert bars["source"].tolist() == ["baostock:query_history_k_data_plus"]
        assert throttle.sleeps == [2.0] and baostock.logins == 2
        with pytest.raises(FeedError, match=r"error 10004011 无效的证券代码"):
            session.daily_bars("600036", date(2026, 3, 19), FRIDAY)


def test_a_silent_baostock_server_times_out_and_is_retried(
    monkeypatch: pytest.MonkeyPatch, baostock: BaostockServer, throttle: RecordingThrottle
) -> None:
    monkeypatch.setattr("market_intel.feeds.baostock_history.SOCKET_TIMEOUT", 0.3)

    def silent(request: list[str]) -> bytes:
        time.sleep(1.0)  # longer than the socket timeout: the client gives up first
        return kdata_answer(request, ["date"], [])

    baostock.answer("600519", silent, baostock_answer("600519"))
    with baostock_history.Session() as session:
        bars = akshare_breadth.stock_history(session, "600519", date(2026, 3, 19), FRIDAY, throttle)
    assert len(bars) == 1 and throttle.sleeps == [2.0] and baostock.logins == 2


def test_stock_history_through_akshare(transport: Transport) -> None:
    transport.route(KLINE, "secid=1.600519", answer=load("em_a_hist.json")["bodies"]["600519"])
    frame = ak.stock_zh_a_hist(symbol="600519", start_date="20260319", end_date="20260320")
    assert list(frame.columns)[:4] == ["日期", "股票代码", "开盘", "收盘"]

    bars = akshare_breadth.parse_stock_history(frame, "600519")
    assert list(bars.columns) == akshare_breadth.STOCK_BAR_COLUMNS
    last = bars.iloc[-1].to_dict()
    assert last == {
        "stock_code": "600519",
        "session_date": FRIDAY,
        "close": 1436.60,
        "previous_close": 1450.00,
        "volume": 3_211_000.0,
        "turnover_cny": 4_617_000_000.0,
    }
    with pytest.raises(SchemaDriftError, match="cn/600519"):
        akshare_breadth.parse_stock_history(frame.drop(columns=["涨跌额"]), "600519")
    assert akshare_breadth.parse_stock_history(pd.DataFrame(), "600519").empty


def test_universe_history_resumes_falls_back_and_survives_a_failing_stock(
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
    baostock: BaostockServer,
    throttle: RecordingThrottle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("market_intel.feeds.akshare_breadth.PROGRESS_EVERY", 2)
    serve_all_baostock(baostock)
    network_error = lambda request: kdata_error(request, "10002007", "网络接收错误。")
    baostock.answer("300750", network_error)  # baostock keeps failing on it
    baostock.answer("000002", network_error)
    bodies = load("em_a_hist.json")["bodies"]
    transport.route(KLINE, "secid=0.300750", answer=bodies["300750"])
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
    assert saved["600519"]["source"].tolist() == ["baostock:query_history_k_data_plus"] * 2
    fallback = saved["300750"]
    assert len(fallback) == 2 and set(fallback["stock_code"]) == {"300750"}
    assert set(fallback["source"]) == {"akshare:stock_zh_a_hist"} and fallback["is_fallback"].all()
    assert any("000002 failed" in line for line in caplog.messages)
    assert any("2/5 stocks" in line for line in caplog.messages)
    assert any("5/5 stocks" in line for line in caplog.messages)

    baostock.answer("000002", baostock_answer("000002"))
    baostock.requests.clear()
    fetched = akshare_breadth.fetch_universe_history(
        codes, start, end, throttle, set(saved), saved.__setitem__, log
    )
    assert fetched == 1 and [request[4] for request in baostock.requests] == ["sz.000002"]
    assert set(saved) == set(codes)


def test_universe_history_stops_when_every_stock_fails(
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
    baostock: BaostockServer,
    throttle: RecordingThrottle,
) -> None:
    monkeypatch.setattr("market_intel.feeds.akshare_breadth.MAX_CONSECUTIVE_FAILURES", 2)
    for code in ("600519", "000001", "300750"):
        baostock.answer(code, lambda request: kdata_error(request, "10002003", "网络连接超时"))
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
    assert saved == {} and len(transport.urls) == 8 and len(baostock.requests) == 8


def test_universe_history_stops_on_schema_drift(
    transport: Transport, baostock: BaostockServer, throttle: RecordingThrottle
) -> None:
    drifted = ["date", "code", "close", "volume", "amount", "tradestatus"]  # no preclose
    baostock.answer("600519", baostock_answer("600519", drifted))
    with pytest.raises(SchemaDriftError, match=r"\[baostock\] cn/600519: .*'preclose'"):
        akshare_breadth.fetch_universe_history(
            ["600519", "000001"],
            date(2026, 3, 19),
            date(2026, 3, 21),
            throttle,
            set(),
            lambda code, bars: None,
            logging.getLogger("test.akshare.universe"),
        )
    assert transport.urls == []  # no fallback: every stock would drift alike
