"""akshare and baostock as the feeds reach them: requests at ``requests.Session.send`` answered by
URL fragments from the recorded bodies in ``tests/fixtures/akshare`` (Sina's index histories
JS-encoded, so akshare's own V8 decoder runs), and baostock's own client over a loopback server
speaking its wire protocol (``tests/baostock_server.py``).

``Transport.fail`` serves the failure kinds of ``failures.Failure`` the way requests raises or
answers them (the same exceptions and error pages as ``tests.transports.http``); a body cut off
in transfer goes through requests' and urllib3's own content-length check.
``chaos_baostock_answers`` gives the kinds baostock's protocol can meet, as its server would
send them.
"""

import contextlib
import io
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import openpyxl
import pytest
import requests

from market_intel.feeds import Throttle
from market_intel.universe import instruments
from tests import sina_kline
from tests.baostock_server import END, BaostockServer, kdata_answer
from tests.transports.failures import Failure
from tests.transports.http import Answer, _raw, default_failure_answers

FIXTURES = Path(__file__).parent.parent / "fixtures" / "akshare"
INSTRUMENTS = {i.live_symbol: i for i in (*instruments("hk"), *instruments("cn"))}
KLINE = "push2his.eastmoney.com/api/qt/stock/kline/get"
CLIST = "push2.eastmoney.com/api/qt/clist/get"
SINA_URL = {
    "hk": "finance.sina.com.cn/stock/hkstock/{}/klc2_kl.js",
    "cn": "finance.sina.com.cn/realstock/company/{}/hisdata/klc_kl.js",
}
SINA_FUNCTION = {"hk": "stock_hk_index_daily_sina", "cn": "stock_zh_index_daily"}
LEGU = "legulegu.com/stockdata/market-activity"
SSE_DEAL = "query.sse.com.cn/commonQuery.do"
SZSE_REPORT = "szse.cn/api/report/ShowReport"
SSE_CODE_LIST = "sseQuery/commonQuery.do"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class Reply:
    """An HTTP answer other than a plain 200: a status, headers, a body (text or bytes)."""

    status: int
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)


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

    An answer is a JSON-able body, a text or bytes body, a ``Reply``, an exception to raise, or
    a list of those served one per request (the last repeats). Every URL asked for is
    recorded; an unknown URL fails the test. Hosts in ``passthrough`` are left to requests'
    adapters, where another fake answers them (a run where every feed is live).
    """

    def __init__(self, passthrough: Iterable[str] = ()) -> None:
        self.routes: list[tuple[tuple[str, ...], object]] = []
        self.failures: list[tuple[tuple[str, ...], list[Failure]]] = []
        self.urls: list[str] = []
        self.passthrough = set(passthrough)

    def route(self, *fragments: str, answer: object) -> None:
        self.routes.insert(0, (fragments, answer))

    def fail(self, *fragments: str, failures: Sequence[Failure]) -> None:
        """Serve ``failures`` in turn to the next requests whose URL holds every fragment,
        before those requests get their routed answer again."""
        self.failures.append((fragments, list(failures)))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "Transport":
        send = requests.Session.send

        def patched(session: requests.Session, request: requests.PreparedRequest, **kwargs):
            if urlsplit(request.url).hostname in self.passthrough:
                return send(session, request, **kwargs)
            return self.send(request)

        monkeypatch.setattr(requests.Session, "send", patched)
        return self

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        self.urls.append(request.url)
        for fragments, pending in self.failures:
            if pending and all(fragment in request.url for fragment in fragments):
                return self._failure(pending.pop(0), request)
        return self._routed(request)

    def _routed(self, request: requests.PreparedRequest) -> requests.Response:
        for fragments, answer in self.routes:
            if all(fragment in request.url for fragment in fragments):
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if isinstance(answer, BaseException):
                    raise answer
                return _response(
                    request, answer if isinstance(answer, Reply) else Reply(200, answer)
                )
        raise AssertionError(f"unexpected request {request.url}")

    def _failure(self, failure: Failure, request: requests.PreparedRequest) -> requests.Response:
        """What requests gives the caller for ``failure``; the two cut bodies are cut from the
        answer the request would have had."""
        if failure in (Failure.TRUNCATED, Failure.GARBLED):
            good = self._routed(request)
            body, headers = good.content, dict(good.headers)
            if failure is Failure.GARBLED:
                return _response(request, Reply(good.status_code, body[: len(body) // 2], headers))
            cut = Answer(good.status_code, body, headers, cut_at=len(body) // 2)
            response = requests.adapters.HTTPAdapter().build_response(request, _raw(cut))
            _ = response.content  # reading the body is what raises, as in Session.send
            raise AssertionError("a cut body must fail requests' content-length check")
        outcome = default_failure_answers(urlsplit(request.url).hostname or "")[failure]
        if isinstance(outcome, BaseException):
            raise outcome
        return _response(request, Reply(outcome.status, outcome.body, dict(outcome.headers)))


def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
    body = reply.body
    if not isinstance(body, str | bytes):
        body = json.dumps(body, ensure_ascii=False)
    response = requests.Response()
    response.status_code, response.url, response.request = reply.status, request.url, request
    response.headers.update(reply.headers)
    response._content = body.encode("utf-8") if isinstance(body, str) else body
    response.encoding = "utf-8"
    return response


def clear_akshare_caches() -> None:
    """akshare caches the HK index lookup and the exchange code lists (each one, and the
    combined A-share list) for the process."""
    from akshare.index import index_stock_hk
    from akshare.stock import stock_info

    for function in (
        index_stock_hk._symbol_code_dict,
        stock_info.stock_info_sh_name_code,
        stock_info.stock_info_sz_name_code,
        stock_info.stock_info_bj_name_code,
        stock_info.stock_info_a_code_name,
    ):
        function.cache_clear()


@contextlib.contextmanager
def baostock_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[BaostockServer]:
    """A baostock server on the loopback; the client is pointed at it, nothing else changes."""
    import baostock.common.contants as constants

    server = BaostockServer()
    monkeypatch.setattr(constants, "BAOSTOCK_SERVER_IP", "127.0.0.1")
    monkeypatch.setattr(constants, "BAOSTOCK_SERVER_PORT", server.port)
    try:
        yield server
    finally:
        server.close()


# --- recorded bodies, served -----------------------------------------------------------------


def sina_bars(symbol: str) -> list[tuple]:
    """The recorded bars of an index as ``(date, open, high, low, close, volume)``."""
    market = INSTRUMENTS[symbol].market
    spec = load("sina_index_daily.json")[SINA_FUNCTION[market]][symbol]
    return [(date.fromisoformat(row[0]), *row[1:]) for row in spec["data"]]


def serve_sina(transport: Transport, symbol: str, bars: list[tuple] | None = None) -> None:
    market = INSTRUMENTS[symbol].market
    url = SINA_URL[market].format(symbol)
    transport.route(url, answer=sina_kline.body(sina_bars(symbol) if bars is None else bars))


def serve_eastmoney_indices(transport: Transport) -> None:
    """Eastmoney's index klines of every recorded index, and its Hong Kong index-code list."""
    recorded = load("em_index_kline.json")
    transport.route(CLIST, "m%3A124", answer=recorded["stock_hk_index_spot_em"])
    for symbol, body in recorded["stock_hk_index_daily_em"].items():
        transport.route(KLINE, f"secid=124.{symbol}", answer=body)
    for symbol, body in recorded["stock_zh_index_daily_em"].items():
        market = "1" if symbol.startswith("sh") else "0"
        transport.route(KLINE, f"secid={market}.{symbol[2:]}", answer=body)


def legu_page(stamp: str = "2026-03-20 15:00:00") -> str:
    page = (FIXTURES / "legu_market_activity.html").read_text(encoding="utf-8")
    return page.replace("2026-03-20 15:00:00", stamp)


def spot_em(transport: Transport) -> None:
    transport.route(CLIST, "fs=m%3A0", answer=load("em_a_spot.json")["body"])


def spot_sina(transport: Transport) -> None:
    recorded = load("sina_a_spot.json")
    transport.route("getHQNodeStockCount", answer=recorded["count"])
    transport.route("getHQNodeData", answer=recorded["pages"])


def xlsx(columns: list[str], rows: list[list[str]]) -> bytes:
    """An xlsx workbook as the exchange's report server sends it: one sheet, a header row."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(columns)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def serve_exchanges(transport: Transport) -> dict:
    recorded = load("exchange_summaries.json")
    transport.route(
        SSE_DEAL, "COMMON_SSE_SJ_GPSJ_CJGK_MRGK_C", answer=recorded["stock_sse_deal_daily"]
    )
    szse = recorded["stock_szse_summary"]
    transport.route(SZSE_REPORT, "CATALOGID=1803_sczm", answer=xlsx(szse["columns"], szse["rows"]))
    return recorded


def serve_code_lists(transport: Transport) -> None:
    recorded = load("exchange_summaries.json")
    lists = recorded["stock_info_sh_name_code"]
    transport.route(SSE_CODE_LIST, "STOCK_TYPE=1", answer=lists["主板A股"])
    transport.route(SSE_CODE_LIST, "STOCK_TYPE=8", answer=lists["科创板"])
    szse = recorded["stock_info_sz_name_code"]
    transport.route(SZSE_REPORT, "CATALOGID=1110", answer=xlsx(szse["columns"], szse["rows"]))
    transport.route("bse.cn/nqxxController/nqxxCnzq.do", answer=recorded["stock_info_bj_name_code"])


def baostock_answer(code: str, fields: list[str] | None = None) -> Callable:
    """The recorded rows of a stock, in ``fields`` (a server answering other fields)."""
    recorded = load("baostock_history.json")
    fields = fields or recorded["fields"]
    position = {name: n for n, name in enumerate(recorded["fields"])}
    rows = [[row[position[name]] for name in fields] for row in recorded["records"][code]]
    return lambda request: kdata_answer(request, fields, rows)


def serve_all_baostock(server: BaostockServer) -> None:
    for code in load("baostock_history.json")["records"]:
        server.answer(code, baostock_answer(code))


# --- baostock's wire, failing ------------------------------------------------------------------

BaostockAnswer = Callable[[list[str]], bytes | None]


def chaos_baostock_answers(code: str, silent_for: float) -> dict[Failure, BaostockAnswer]:
    """What baostock's server sends for each failure kind its TCP protocol can meet, for one
    k-line request of ``code``: silence longer than the client's timeout, the connection
    closed before a word, half an answer then closed, and an answer whose compressed body is
    cut short but ends as a whole one does. HTTP statuses and pages cannot reach it."""
    whole = baostock_answer(code)

    def silent(request: list[str]) -> bytes:
        time.sleep(silent_for)  # the client gave up before: what it gets is never read
        return whole(request)

    def closed(request: list[str]) -> bytes:
        raise ConnectionResetError("the server drops the connection without answering")

    def garbled(request: list[str]) -> bytes:
        answer = whole(request)
        header, packed = answer[:21], answer[21 : -len(END)]
        assert zlib.decompress(packed)  # the header counts the whole compressed body
        return header + packed[: len(packed) // 2] + END

    return {
        Failure.TIMEOUT: silent,
        Failure.RESET: closed,
        Failure.TRUNCATED: lambda request: None,  # the server writes half, then closes
        Failure.GARBLED: garbled,
    }
