"""The guards of tests/conftest.py: no test reaches off this machine, through Python sockets or
curl_cffi (which opens its sockets in C), and no test sends anything a developer configured."""

import os
import socket

import pytest
from curl_cffi import requests as curl_requests
from curl_cffi.requests import exceptions as curl_errors

from tests.transports.yahoo import FakeYahoo


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_curl_cffi_refuses_a_host_off_this_machine() -> None:
    with pytest.raises(RuntimeError, match="through curl_cffi"):
        curl_requests.Session().get("https://query1.finance.yahoo.com/v8/finance/chart/%5EGSPC")


def test_curl_cffi_still_reaches_this_machine() -> None:
    """A loopback request is curl's own business: here a refused connection, as curl says it."""
    with pytest.raises(curl_errors.RequestException, match="(?i)connect"):
        curl_requests.Session().get(f"http://127.0.0.1:{free_loopback_port()}/", timeout=5)


def test_the_yahoo_fake_answers_instead_of_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    site = FakeYahoo({}).install(monkeypatch)
    answer = curl_requests.Session().get("https://query2.finance.yahoo.com/v1/test/getcrumb")
    assert answer.status_code == 200 and site.requests


def test_sockets_refuse_a_host_off_this_machine() -> None:
    with socket.socket() as sock, pytest.raises(RuntimeError, match="network connection"):
        sock.connect(("192.0.2.1", 443))


def test_nothing_a_developer_configured_is_sent() -> None:
    assert os.environ["MARKET_INTEL_NOTIFY_URLS"] == ""
    assert os.environ["MARKET_INTEL_ALERT_URLS"] == ""
    assert "MARKET_INTEL_LLM_BASE_URL" not in os.environ
