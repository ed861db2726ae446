"""LLM commentary against a local OpenAI-compatible stub: accepted only when every number it
cites is in the report's JSON, skipped with a warning on any failure, the key never logged."""

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from market_intel.commentary import (
    CommentarySettings,
    cited_numbers,
    unsupported_numbers,
    write_commentary,
)

API_KEY = "sk-test-0123456789-SECRET"

# A small report modelled on docs/report-json.md (figures of report date 2026-03-22).
REPORT = {
    "report_date": "2026-03-22",
    "as_of_date": "2026-03-21",
    "markets": [
        {
            "market": "us",
            "name": "US equities",
            "status": "ok",
            "session_date": "2026-03-20",
            "instruments": [
                {"id": "us/GSPC", "name": "S&P 500", "close": 6506.48, "return_pct": -1.51},
                {
                    "id": "us/IXIC",
                    "name": "Nasdaq Composite",
                    "close": 21647.61,
                    "return_pct": -2.01,
                },
            ],
        },
        {
            "market": "cn",
            "name": "A-shares",
            "status": "ok",
            "session_date": "2026-03-20",
            "instruments": [
                {
                    "id": "cn/sh000001",
                    "name": "SSE Composite",
                    "close": 3957.05,
                    "return_pct": -1.24,
                },
                {"id": "cn/sz399006", "name": "ChiNext", "close": 3304.17, "return_pct": 1.3},
            ],
        },
        {
            "market": "crypto",
            "name": "Crypto",
            "status": "ok",
            "session_date": "2026-03-21",
            "instruments": [
                {"id": "crypto/BTC-USDT", "name": "Bitcoin", "close": 68918.12, "return_pct": -2.63}
            ],
        },
    ],
    "divergences": [
        {
            "left": "cn/sz399006",
            "right": "cn/sh000001",
            "left_return_pct": 1.3,
            "right_return_pct": -1.24,
            "spread_bps": 254,
            "zscore": 2.41,
            "percentile": 97.6,
            "correlation_60d": 0.83,
        }
    ],
    "breadth": {"advancers": 313, "decliners": 2011, "turnover_cny": 2286860000000},
    "stablecoins": {
        "coins": [{"symbol": "USDC", "circulating_usd": 79120000000, "change_usd": -209000000}]
    },
    "checks": [{"name": "raw:fresh_us", "severity": "ERROR", "passed": True}],
    "sections": [
        {"id": "key", "title": "Key Insight", "blocks": [{"type": "paragraph", "text": "7777"}]}
    ],
    "commentary": {"text": "an earlier narrative", "model": "old"},
}

FAITHFUL = (
    "On 2026-03-20 the S&P 500 fell 1.51% and the Nasdaq Composite returned -2.01%, while in "
    "Shanghai the SSE Composite lost 1.24% as ChiNext rose +1.30%, a 254 bps spread with a "
    "z-score of 2.41 (60-day correlation 0.83). Breadth was weak, 313 advancers against 2,011 "
    "decliners, on turnover of 2,286.86 billion CNY. Bitcoin closed at $68,918.12 on March 21. "
    "USDC supply shrank by $209M."
)
INVENTED = FAITHFUL.replace("Bitcoin closed at $68,918.12", "ETH fell -3.41% and Bitcoin closed")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides conftest's guard: loopback (the stub) is allowed, any other host is refused."""
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            raise RuntimeError(f"a test tried to connect to {host!r}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


@dataclass
class Stub:
    """What the stub answers (set by the test) and what it received."""

    status: int = 200
    body: str = ""
    delay: float = 0.0
    requests: list[dict] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def answer(self, content: str, model: str = "stub-model-1") -> None:
        """Answer with a chat completion whose message is ``content``."""
        self.body = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    def settings(self, timeout_seconds: float = 2.0) -> CommentarySettings:
        return CommentarySettings(
            base_url=self.base_url,
            api_key=API_KEY,
            model="gpt-4o-mini",
            timeout_seconds=timeout_seconds,
        )


@pytest.fixture
def stub() -> Iterator[Stub]:
    """An OpenAI-compatible server on 127.0.0.1 (free port) in a thread, stopped after the test."""
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            state.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            if state.delay:
                state.release.wait(state.delay)
            payload = state.body.encode()
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()  # joins the handler threads
        thread.join(timeout=5)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy variables, so that requests reach the local stub."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def warnings_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_without_settings_nothing_is_requested(stub: Stub, http: requests.Session) -> None:
    assert write_commentary(REPORT, None, session=http) is None
    assert stub.requests == []
    assert CommentarySettings.from_env({}) is None
    assert CommentarySettings.from_env({"MARKET_INTEL_LLM_BASE_URL": "  "}) is None


def test_settings_from_env() -> None:
    settings = CommentarySettings.from_env(
        {"MARKET_INTEL_LLM_BASE_URL": "http://localhost:8000/v1/", "MARKET_INTEL_LLM_API_KEY": ""}
    )
    assert settings == CommentarySettings("http://localhost:8000/v1/", None, "gpt-4o-mini", 30.0)
    assert settings.endpoint == "http://localhost:8000/v1/chat/completions"
    azure = CommentarySettings("https://u:p@llm.example/v1?api-version=2", None)
    assert azure.endpoint == "https://u:p@llm.example/v1/chat/completions?api-version=2"
    assert "u:p" not in repr(azure) and "api-version" not in repr(azure)
    settings = CommentarySettings.from_env(
        {
            "MARKET_INTEL_LLM_BASE_URL": "http://localhost:8000/v1",
            "MARKET_INTEL_LLM_API_KEY": API_KEY,
            "MARKET_INTEL_LLM_MODEL": "llama3",
            "MARKET_INTEL_LLM_TIMEOUT_SECONDS": "90",
        }
    )
    assert (settings.api_key, settings.model, settings.timeout_seconds) == (API_KEY, "llama3", 90)


def test_faithful_narrative_is_accepted(
    stub: Stub, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    stub.answer(FAITHFUL)
    with caplog.at_level(logging.DEBUG):
        commentary = write_commentary(REPORT, stub.settings(), session=http)
    assert commentary == {"text": FAITHFUL, "model": "stub-model-1"}
    assert warnings_text(caplog) == ""
    (request,) = stub.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "gpt-4o-mini"
    system, user = request["body"]["messages"]
    assert system["role"] == "system" and "only" in system["content"]
    facts = json.loads(user["content"])
    assert facts["markets"] == REPORT["markets"]
    assert facts["breadth"]["turnover_cny"] == 2286860000000
    assert "sections" not in facts and "commentary" not in facts


def test_narrative_with_an_invented_number_is_dropped(
    stub: Stub, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    stub.answer(INVENTED)
    assert write_commentary(REPORT, stub.settings(), session=http) is None
    warning = warnings_text(caplog)
    assert "-3.41%" in warning
    assert "1.51" not in warning  # only the unsupported numbers are named


@pytest.mark.parametrize(
    "status, body", [(500, '{"error": "overloaded"}'), (200, "not json"), (200, '{"choices": []}')]
)
def test_http_error_or_bad_answer_gives_none_with_a_warning(
    stub: Stub, http: requests.Session, caplog: pytest.LogCaptureFixture, status: int, body: str
) -> None:
    stub.status, stub.body = status, body
    assert write_commentary(REPORT, stub.settings(), session=http) is None
    assert "LLM commentary skipped" in warnings_text(caplog)


def test_timeout_gives_none_with_a_warning(
    stub: Stub, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    stub.answer(FAITHFUL)
    stub.delay = 3.0  # released when the test ends
    assert write_commentary(REPORT, stub.settings(timeout_seconds=0.2), session=http) is None
    assert "did not answer within 0.2s" in warnings_text(caplog)


def test_api_key_reaches_the_endpoint_but_never_the_logs(
    stub: Stub, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    settings = stub.settings()
    assert API_KEY not in repr(settings) and API_KEY not in str(settings)
    # An error body echoing the key, as some gateways do, must be redacted in the warning.
    stub.status, stub.body = 401, json.dumps({"error": f"invalid key {API_KEY}"})
    with caplog.at_level(logging.DEBUG):
        assert write_commentary(REPORT, settings, session=http) is None
        stub.status = 200
        stub.answer(INVENTED)
        assert write_commentary(REPORT, settings, session=http) is None
    assert [r["headers"]["Authorization"] for r in stub.requests] == [f"Bearer {API_KEY}"] * 2
    assert "invalid key ***" in caplog.text
    assert API_KEY not in caplog.text
    assert all(API_KEY not in repr(record.args) for record in caplog.records)


def test_unreachable_endpoint_gives_none_with_a_warning(
    http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = CommentarySettings(f"http://user:{API_KEY}@127.0.0.1:{port}/v1", API_KEY)
    assert write_commentary(REPORT, settings, session=http) is None
    assert "request to http://127.0.0.1:" in warnings_text(caplog)
    assert API_KEY not in caplog.text and API_KEY not in repr(settings)


def test_cited_numbers_as_written() -> None:
    text = (
        "On 2026-03-20 (March 20, 2026; 20th March) the S&P fell 1.51% and Nasdaq -2.01%, "
        "a 254 bps gap; BTC at $68,918 (+0.5%), turnover ¥2,286.86 billion, USDC -$209M, "
        "correlation 0.83 in 2026, the 3rd day, 24h volume, 60d window."
    )
    assert cited_numbers(text) == [
        "1.51%",
        "-2.01%",
        "254 bps",
        "$68,918",
        "+0.5%",
        "¥2,286.86 billion",
        "-$209M",
        "0.83",
    ]
    assert cited_numbers("first, second and third; 2026/03/20; Sept. 5") == []


FACTS = {k: v for k, v in REPORT.items() if k not in ("sections", "commentary")}


@pytest.mark.parametrize(
    "text",
    [
        "-1.51%",  # per cent as written
        "fell 1.51%",  # magnitude of -1.51
        "-1.5%",  # at the precision written
        "+1.30%",  # sign matches 1.3
        "254 bps",
        "254bp",
        "6,506.48",  # thousands separators
        "$68,918.12",
        "$68,918",
        "2,286.86 billion",  # CNY amount in billions
        "2.29 trillion",
        "$79.12bn",
        "$209M",
        "-$209 million",
        "S&P 500",  # a number inside a name in the JSON
        "60-day correlation",  # the window of correlation_60d
        "0.83",
    ],
)
def test_supported_numbers(text: str) -> None:
    assert unsupported_numbers(text, FACTS) == []


@pytest.mark.parametrize(
    "text, unsupported",
    [
        ("ETH fell -3.41%", ["-3.41%"]),
        ("the S&P rose +1.51%", ["+1.51%"]),  # an explicit sign must match
        ("-1.512%", ["-1.512%"]),  # more precision than the JSON holds
        ("-1.52%", ["-1.52%"]),
        ("BTC at $68,900", ["$68,900"]),
        ("254 bps and 255 bps", ["255 bps"]),
        ("2,286.87 billion", ["2,286.87 billion"]),
        ("6.51 thousand", ["6.51 thousand"]),  # scales apply to USD/CNY amounts only
        ("a 30-day low", ["30"]),
        ("7777", ["7777"]),  # only in "sections", which are not facts
    ],
)
def test_unsupported_numbers(text: str, unsupported: list[str]) -> None:
    assert unsupported_numbers(text, FACTS) == unsupported


def test_dates_and_years_are_not_checked() -> None:
    assert unsupported_numbers("On 2026-03-20, March 20 and 21st March 2026 in 2025", FACTS) == []
