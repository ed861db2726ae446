"""Yahoo Finance as yfinance 1.7 reaches it through curl_cffi, answered at
``curl_cffi.requests.Session.request`` so yfinance's own cookie, crumb, consent, retry and chart
parsing code runs on every answer.

What it serves, the way Yahoo is publicly reported to:

- ``https://fc.yahoo.com``: a 404 page that sets the ``A3`` cookie (yfinance's "basic" strategy);
- ``https://query1|2.finance.yahoo.com/v1/test/getcrumb``: the crumb, as plain text;
- ``https://guce.yahoo.com/consent``: outside the EU, a page with no consent form, so yfinance's
  "csrf" strategy finds no token and gives up;
- ``.../v8/finance/chart/<symbol>``: the symbol's recorded chart body, cut to the asked range
  (``period1 <= timestamp < period2``; ``range=1d``: the latest bar). A range without bars
  answers Yahoo's empty layout (no ``timestamp``, an empty quote);
- a symbol without a chart: Yahoo's 404 "No data found, symbol may be delisted" (and no quote);
- with ``eu=True``, chart requests without the consent cookie land on consent.yahoo.com's form
  (as after Yahoo's redirect); posting it sets the cookie and lands on the original URL.

``failures`` are served, in order, to the next chart requests for bars (those with ``period1``);
yfinance repeats a request once itself on HTTP >= 400, so a status failure meant for one attempt
is listed twice.
"""

import copy
import json
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.cookiejar import Cookie
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from curl_cffi import requests as curl_requests
from curl_cffi.requests import exceptions as curl_errors
from curl_cffi.requests.headers import Headers

from tests.transports.failures import RETRY_AFTER_SECONDS, Failure

CRUMB = "Qx7LmR2ZkT0"  # illustrative: Yahoo's crumbs are 11 characters like this one
CONSENT_COOKIE = "GUCS"
CONSENT_URL = "https://consent.yahoo.com/v2/collectConsent?sessionId=3_cc-session_5b1c7d2e"
CONSENT_FORM = """<!DOCTYPE html><html><body><form method="post" action="">
<input type="hidden" name="csrfToken" value="tok-8f2e">
<input type="hidden" name="sessionId" value="3_cc-session_5b1c7d2e">
<input type="hidden" name="originalDoneUrl" value="{done}">
<input type="hidden" name="namespace" value="yahoo">
<button type="submit" name="agree" value="agree">Accept all</button>
</form></body></html>"""
CURL_DETAILS = "See https://curl.se/libcurl/c/libcurl-errors.html first for more details."


class FakeYahoo:
    def __init__(self, charts: Mapping[str, dict], eu: bool = False):
        self.charts = dict(charts)
        self.eu = eu
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str, dict]] = []  # method, url, params or form data

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeYahoo":
        def request(session, method, url, params=None, data=None, **kwargs):
            return self.answer(session, method, url, dict(params or {}), dict(data or {}))

        monkeypatch.setattr(curl_requests.Session, "request", request)
        return self

    def bars_requests(self) -> list[dict]:
        """The params of every chart request for bars (the time-zone probe left out)."""
        return [p for _, url, p in self.requests if "/v8/finance/chart/" in url and "period1" in p]

    def answer(self, session, method: str, url: str, params: dict, data: dict):
        self.requests.append((method, url, params or data))
        parts = urlsplit(url)
        if parts.hostname == "fc.yahoo.com":
            _set_cookie(session, "A3", "d=AQABBKx&S=AQAAAk", ".yahoo.com")
            return _response(url, 404, b"<html><body>Not Found</body></html>", "text/html")
        if parts.path == "/v1/test/getcrumb":
            return _response(url, 200, CRUMB.encode(), "text/plain;charset=utf-8")
        if parts.hostname == "guce.yahoo.com":
            return _response("https://www.yahoo.com/", 200, b"<html>Yahoo</html>", "text/html")
        if parts.hostname == "consent.yahoo.com" and method == "POST":
            _set_cookie(session, CONSENT_COOKIE, "X=consented", ".yahoo.com")
            done = urlsplit(data["originalDoneUrl"])
            query = {key: values[0] for key, values in parse_qs(done.query).items()}
            return self.chart(f"{done.scheme}://{done.netloc}{done.path}", query)
        if parts.path.startswith(("/v10/finance/quoteSummary/", "/v7/finance/quote")):
            return self.quote(url, parts.path)
        assert "/v8/finance/chart/" in parts.path, f"unexpected request {method} {url}"
        if urlsplit(url).path.rsplit("/", 1)[-1] not in self.charts:
            return _response(url, 404, not_found(), "application/json;charset=utf-8")
        if self.eu and session.cookies.get(CONSENT_COOKIE) is None:
            form = CONSENT_FORM.format(done=f"{url}?{urlencode(params)}")
            return _response(CONSENT_URL, 200, form.encode(), "text/html; charset=utf-8")
        if "period1" in params and self.failures:
            return self.fail(self.failures.pop(0), url, params)
        return self.chart(url, params)

    def quote(self, url: str, path: str):
        """yfinance asks for a ticker's info when the chart gave no time zone (an unknown
        symbol): Yahoo knows no quote for it either."""
        if path.startswith("/v7/"):
            body = {"quoteResponse": {"result": [], "error": None}}
            return _response(url, 200, json.dumps(body).encode(), "application/json")
        symbol = path.rsplit("/", 1)[-1]
        error = {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}
        body = {"quoteSummary": {"result": None, "error": error}}
        return _response(url, 404, json.dumps(body).encode(), "application/json")

    def chart(self, url: str, params: dict):
        symbol = urlsplit(url).path.rsplit("/", 1)[-1]
        body = chart_window(self.charts[symbol], params)
        full_url = f"{url}?{urlencode(params)}"
        return _response(full_url, 200, json.dumps(body).encode(), "application/json;charset=utf-8")

    def fail(self, failure: Failure, url: str, params: dict):
        good = self.chart(url, params)
        full_url = good.url
        if failure is Failure.TIMEOUT:
            message = "Operation timed out after 10002 milliseconds with 0 bytes received"
            raise curl_errors.Timeout(
                f"Failed to perform, curl: (28) {message}. {CURL_DETAILS}", 28
            )
        if failure is Failure.RESET:
            message = "Recv failure: Connection reset by peer"
            raise curl_errors.ConnectionError(
                f"Failed to perform, curl: (56) {message}. {CURL_DETAILS}", 56
            )
        if failure is Failure.TRUNCATED:
            left = len(good.content) // 2
            raise curl_errors.IncompleteRead(
                f"Failed to perform, curl: (18) transfer closed with {left} bytes remaining to "
                f"read. {CURL_DETAILS}",
                18,
            )
        if failure is Failure.GARBLED:
            cut = good.content[: len(good.content) // 2]
            return _response(full_url, 200, cut, "application/json;charset=utf-8")
        return FAILURE_ANSWERS[failure](full_url)


def _html(title: str) -> bytes:
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body></body></html>".encode()


def _chart_error(code: str, description: str) -> bytes:
    return json.dumps(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}
    ).encode()


FAILURE_ANSWERS = {
    Failure.RATE_LIMITED: lambda url: _response(url, 429, b"Edge: Too Many Requests", "text/plain"),
    Failure.RATE_LIMITED_RETRY_AFTER: lambda url: _response(
        url,
        429,
        b"Edge: Too Many Requests",
        "text/plain",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    ),
    Failure.REFUSED_451: lambda url: _response(
        url, 451, _html("Unavailable For Legal Reasons"), "text/html"
    ),
    Failure.REFUSED_403: lambda url: _response(url, 403, _html("403 Forbidden"), "text/html"),
    Failure.SERVER_ERROR: lambda url: _response(
        url,
        500,
        _chart_error(
            "Internal Server Error", "Internal error occurred while processing the request"
        ),
        "application/json;charset=utf-8",
    ),
    Failure.HTML: lambda url: _response(
        url, 200, _html("Yahoo Finance - Will be right back..."), "text/html; charset=utf-8"
    ),
}


def not_found() -> bytes:
    """Yahoo's chart answer for a symbol it does not know (served with HTTP 404)."""
    return _chart_error("Not Found", "No data found, symbol may be delisted")


def chart_window(body: dict, params: dict) -> dict:
    """``body`` cut to the bars a request asks for, in Yahoo's layout."""
    result = copy.deepcopy(body["chart"]["result"][0])
    stamps = result.get("timestamp") or []
    if "period1" in params:
        first, end = int(params["period1"]), int(params["period2"])
        keep = [i for i, stamp in enumerate(stamps) if first <= stamp < end]
    else:
        keep = [len(stamps) - 1] if stamps else []
    if not keep:
        result.pop("timestamp", None)
        result["indicators"] = {"quote": [{}]}
    else:
        result["timestamp"] = [stamps[i] for i in keep]
        for series in result["indicators"].values():
            for block in series:
                for name, values in block.items():
                    block[name] = [values[i] for i in keep]
    return {"chart": {"result": [result], "error": None}}


def _response(url: str, status: int, body: bytes, content_type: str, headers=None):
    """A curl_cffi response as ``Session.request`` returns it after the transfer."""
    response = curl_requests.Response()
    response.url = url
    response.status_code = status
    response.reason = HTTPStatus(status).phrase
    response.ok = status < 400
    response.content = body
    response.headers = Headers({"content-type": content_type, **(headers or {})})
    return response


def _set_cookie(session, name: str, value: str, domain: str) -> None:
    """What curl does with a ``Set-Cookie`` header: the cookie, with its expiry, in the jar."""
    session.cookies.jar.set_cookie(
        Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=domain,
            domain_specified=True,
            domain_initial_dot=domain.startswith("."),
            path="/",
            path_specified=True,
            secure=True,
            expires=int(time.time()) + 365 * 86_400,
            discard=False,
            comment=None,
            comment_url=None,
            rest={"SameSite": "None"},
        )
    )
