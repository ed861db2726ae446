"""requests at its lowest seam: an ``HTTPAdapter`` whose ``send`` answers from a script, built
into real responses by requests itself (status, reason, headers, cookies, content-length checks).

Use it either mounted on one session (``session.mount("https://", fake)``) or installed for every
session of the process (``fake.install(monkeypatch)``), e.g. for clients a library creates itself.
"""

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import requests
import urllib3

from tests.transports.failures import RETRY_AFTER_SECONDS, Failure


@dataclass(frozen=True)
class Answer:
    """One HTTP answer. ``cut_at`` stops the body there although ``Content-Length`` announces
    all of it, which is how a dropped connection mid-body looks to the client."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    cut_at: int | None = None


def json_answer(body: object, status: int = 200, headers: Mapping[str, str] | None = None):
    return Answer(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def text_answer(
    text: str, status: int = 200, content_type: str = "text/html; charset=utf-8", headers=None
) -> Answer:
    return Answer(status, text.encode(), {"Content-Type": content_type, **(headers or {})})


Server = Callable[[requests.PreparedRequest], "Answer | BaseException"]
Step = "Answer | BaseException | Failure | Server"

HTML_PAGE = "<!DOCTYPE html><html><head><title>{title}</title></head><body>{title}</body></html>"


def default_failure_answers(host: str) -> dict[Failure, Answer | BaseException]:
    """What requests sees for each failure kind when the service adds nothing of its own: the
    exceptions urllib3 failures become, and the plain pages proxies and CDNs send."""
    return {
        Failure.TIMEOUT: requests.exceptions.ReadTimeout(
            f"HTTPSConnectionPool(host='{host}', port=443): Read timed out. (read timeout=60.0)"
        ),
        Failure.RESET: requests.exceptions.ConnectionError(
            "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
        ),
        Failure.RATE_LIMITED: text_answer(HTML_PAGE.format(title="429 Too Many Requests"), 429),
        Failure.RATE_LIMITED_RETRY_AFTER: text_answer(
            HTML_PAGE.format(title="429 Too Many Requests"),
            429,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ),
        Failure.REFUSED_451: text_answer(
            HTML_PAGE.format(title="451 Unavailable For Legal Reasons"), 451
        ),
        Failure.REFUSED_403: text_answer(HTML_PAGE.format(title="403 Forbidden"), 403),
        Failure.SERVER_ERROR: text_answer(HTML_PAGE.format(title="502 Bad Gateway"), 502),
        Failure.HTML: text_answer(HTML_PAGE.format(title="Scheduled maintenance"), 200),
    }


def realise(
    failure: Failure, request: requests.PreparedRequest, good: Answer, overrides: Mapping
) -> Answer | BaseException:
    """The answer or exception ``failure`` is for ``request``; ``good`` is what it would have
    been, which the two kinds of cut bodies are cut from."""
    if failure is Failure.TRUNCATED:
        return Answer(good.status, good.body, good.headers, cut_at=len(good.body) // 2)
    if failure is Failure.GARBLED:
        return Answer(good.status, good.body[: len(good.body) // 2], good.headers)
    answers = {**default_failure_answers(urlsplit(request.url).hostname or ""), **overrides}
    return answers[failure]


class FakeHTTP(requests.adapters.HTTPAdapter):
    """Answers by exact URL from ``routes`` (steps in order, the last one repeating), else by
    host from ``servers``. ``failures[host]`` are served to that host's next requests first;
    ``failure_answers[host]`` give a service's own bodies for some kinds (e.g. Binance's 451);
    ``failure_paths[host]`` keeps the failures for the requests whose path contains it."""

    def __init__(
        self,
        routes: Mapping[str, Sequence] | None = None,
        servers: Mapping[str, Server] | None = None,
        failure_answers: Mapping[str, Mapping] | None = None,
    ):
        super().__init__()
        self.routes = {url: list(steps) for url, steps in (routes or {}).items()}
        self.servers = dict(servers or {})
        self.failures: dict[str, list[Failure]] = {}
        self.failure_paths: dict[str, str] = {}  # host -> path part a failure waits for
        self.failure_answers = dict(failure_answers or {})
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list = []
        self.on_send: Callable[[requests.PreparedRequest], None] | None = None

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        self.timeouts.append(timeout)
        if self.on_send is not None:
            self.on_send(request)
        outcome = self._answer(request)
        if isinstance(outcome, BaseException):
            raise outcome
        return self.build_response(request, _raw(outcome))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "FakeHTTP":
        """Answer every requests session of the process (clients a library builds itself)."""
        monkeypatch.setattr(
            requests.adapters.HTTPAdapter,
            "send",
            lambda adapter, request, **kwargs: self.send(request, **kwargs),
        )
        return self

    @property
    def urls(self) -> list[str]:
        return [request.url for request in self.sent]

    def _answer(self, request: requests.PreparedRequest) -> Answer | BaseException:
        host = urlsplit(request.url).hostname or ""
        pending = self.failures.get(host)
        if pending and self.failure_paths.get(host, "") in urlsplit(request.url).path:
            good = self._normal(request, host)
            failure = pending.pop(0)
            if isinstance(good, BaseException):
                return good
            return realise(failure, request, good, self.failure_answers.get(host, {}))
        return self._normal(request, host)

    def _normal(self, request: requests.PreparedRequest, host: str) -> Answer | BaseException:
        steps = self.routes.get(request.url)
        if steps:
            step = steps.pop(0) if len(steps) > 1 else steps[0]
            if isinstance(step, Failure):
                good = next((s for s in reversed(steps) if isinstance(s, Answer)), Answer())
                return realise(step, request, good, self.failure_answers.get(host, {}))
            return step(request) if callable(step) else step
        server = self.servers.get(host)
        assert server is not None, f"unexpected request {request.method} {request.url}"
        return server(request)


def _raw(answer: Answer) -> urllib3.HTTPResponse:
    headers = dict(answer.headers)
    body = answer.body
    if answer.cut_at is not None:
        headers["Content-Length"] = str(len(body))
        body = body[: answer.cut_at]
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""  # e.g. Cloudflare's 520-530 have no standard phrase
    return urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers=headers,
        status=answer.status,
        reason=reason,
        preload_content=False,
    )
