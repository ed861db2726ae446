"""DefiLlama feed: parsers on recorded-shape bodies, and the client through a fake transport.

The network is replaced at the lowest seam, the requests adapter, so the client's own code
(status handling, retries, JSON decoding) runs for real; a guard refuses any other connection.
"""

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
import urllib3

from assets.feeds import FeedError, SchemaDriftError, Throttle
from assets.feeds import defillama as dl

FIXTURES = Path(__file__).parent / "fixtures" / "defillama"
REFERENCE_TOTAL = (
    "api-samples/defillama/stablecoincharts_all_total_usd_DERIVED_2025-04-01_2026-09-15.csv"
)
AAVE_URL = "https://api.llama.fi/protocol/aave-v3"
LIDO_URL = "https://api.llama.fi/protocol/lido"
USDT_URL = f"{dl.STABLECOIN_CHART_URL}?stablecoin=1"
USDC_URL = f"{dl.STABLECOIN_CHART_URL}?stablecoin=2"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def utc_seconds(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def ok(body) -> tuple[int, bytes, dict]:
    return 200, json.dumps(body).encode(), {"Content-Type": "application/json"}


def status(code: int, headers: dict | None = None, body: bytes = b"") -> tuple[int, bytes, dict]:
    return code, body, headers or {}


class FakeTransport(requests.adapters.HTTPAdapter):
    """Scripted answers per URL (the last step repeats), built into responses by requests."""

    def __init__(self, routes: dict, throttle: "CountingThrottle | None" = None):
        super().__init__()
        self.routes = {url: list(steps) for url, steps in routes.items()}
        self.throttle = throttle
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list = []
        self.waits_seen: list[int] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        self.timeouts.append(timeout)
        if self.throttle is not None:
            self.waits_seen.append(self.throttle.waits)
        steps = self.routes.get(request.url)
        assert steps, f"unexpected request {request.url}"
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, BaseException):
            raise step
        code, body, headers = step
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), status=code, headers=headers, preload_content=False
        )
        return self.build_response(request, raw)

    @property
    def urls(self) -> list[str]:
        return [request.url for request in self.sent]


class CountingThrottle(Throttle):
    """No pacing, but counts waits and records every sleep (backoff goes through it too)."""

    def __init__(self):
        self.sleeps: list[float] = []
        super().__init__(0, sleep=self.sleeps.append)
        self.waits = 0

    def wait(self) -> None:
        self.waits += 1
        super().wait()


@pytest.fixture(autouse=True)
def only_scripted_requests(monkeypatch):
    """A request not answered by a FakeTransport fails here (conftest also refuses sockets)."""

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to reach the network")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)


@pytest.fixture
def throttle() -> CountingThrottle:
    return CountingThrottle()


def client(routes: dict, throttle: CountingThrottle | None = None):
    fake = FakeTransport(routes, throttle)
    session = dl.new_session()
    session.mount("https://", fake)
    return session, fake


# --- parsers -----------------------------------------------------------------------------


def test_parse_protocols_is_current_tvl_with_category_for_as_of_only():
    frame = dl.parse_protocols(load("protocols.json"), date(2026, 3, 22))

    assert list(frame.columns) == dl.PROTOCOL_COLUMNS
    assert set(frame["date"]) == {date(2026, 3, 22)}  # no row derived from change_1d
    assert frame["protocol"].tolist()[:3] == ["Binance CEX", "Aave V3", "Lido"]
    aave = frame.set_index("protocol").loc["Aave V3"]
    assert (aave["category"], aave["tvl_usd"]) == ("Lending", 27034617725.26)
    assert frame.set_index("protocol").loc["Anchor", "tvl_usd"] == 0.0


def test_parse_protocols_null_tvl_is_no_data():
    body = load("protocols.json")
    body[-1]["tvl"] = None

    frame = dl.parse_protocols(body, date(2026, 3, 22))

    assert "Anchor" not in set(frame["protocol"]) and len(frame) == len(body) - 1


def test_parse_protocols_missing_category_is_schema_drift_naming_the_protocol():
    body = load("protocols.json")
    del body[1]["category"]

    with pytest.raises(SchemaDriftError) as caught:
        dl.parse_protocols(body, date(2026, 3, 22))

    message = str(caught.value)
    assert message.startswith("[defillama] Aave V3: schema drift")
    assert "expected columns ['category', 'name', 'slug', 'tvl']" in message
    assert "'category'" not in message.split("found")[1]


def test_parse_protocols_error_object_instead_of_list_is_schema_drift():
    with pytest.raises(SchemaDriftError, match=r"protocols: .*found \['message'\]"):
        dl.parse_protocols({"message": "internal error"}, date(2026, 3, 22))


def test_parse_protocol_history_window_is_half_open_in_utc_days():
    frame = dl.parse_protocol_history(
        load("protocol_aave-v3.json"), date(2026, 3, 16), date(2026, 3, 22)
    )

    assert list(frame.columns) == dl.PROTOCOL_COLUMNS
    assert frame["date"].tolist() == [date(2026, 3, d) for d in range(16, 22)]
    assert set(frame["protocol"]) == {"Aave V3"} and set(frame["category"]) == {"Lending"}
    assert frame.set_index("date").loc[date(2026, 3, 20), "tvl_usd"] == 27021598704.19


def test_parse_protocol_history_latest_point_of_a_day_wins():
    body = load("protocol_aave-v3.json")

    frame = dl.parse_protocol_history(body, date(2026, 3, 22), date(2026, 3, 23))

    # 2026-03-22 has a midnight point and the current one (14:05 UTC): the current one is kept,
    # so today's row agrees with /protocols.
    assert frame["tvl_usd"].tolist() == [27034617725.26]


def test_parse_protocol_history_leaves_a_missing_day_missing():
    frame = dl.parse_protocol_history(
        load("protocol_lido.json"), date(2026, 3, 18), date(2026, 3, 21)
    )

    assert frame["date"].tolist() == [date(2026, 3, 18), date(2026, 3, 20)]
    assert set(frame["category"]) == {"Liquid Staking"}


def test_unix_seconds_are_read_as_utc_days_both_as_numbers_and_strings():
    midnight = utc_seconds(date(2026, 3, 20))
    history = {
        "name": "P",
        "category": "Dexs",
        "tvl": [
            {"date": midnight - 1, "totalLiquidityUSD": 1.0},
            {"date": midnight, "totalLiquidityUSD": 2.0},
        ],
    }
    chart = [
        {"date": str(midnight - 1), "totalCirculatingUSD": {"peggedUSD": 1.0}},
        {"date": str(midnight), "totalCirculatingUSD": {"peggedUSD": 2.0}},
    ]
    window = (date(2026, 3, 19), date(2026, 3, 21))

    tvl = dl.parse_protocol_history(history, *window)
    supply = dl.parse_stablecoin_chart(chart, "X", *window)

    expected = [date(2026, 3, 19), date(2026, 3, 20)]
    assert tvl["date"].tolist() == expected and supply["date"].tolist() == expected
    assert supply["circulating_usd"].tolist() == [1.0, 2.0]


def test_unreadable_date_is_an_error_not_an_empty_answer():
    chart = [{"date": "2026-03-20", "totalCirculatingUSD": {"peggedUSD": 1.0}}]

    with pytest.raises(FeedError, match=r"\[defillama\] USDT: unreadable date '2026-03-20'"):
        dl.parse_stablecoin_chart(chart, "USDT", date(2026, 3, 1), date(2026, 4, 1))


@pytest.mark.parametrize(
    ("mutate", "missing"),
    [
        (lambda body: body.pop("tvl"), "tvl"),
        (lambda body: body.pop("category"), "category"),
        (lambda body: body["tvl"][3].pop("totalLiquidityUSD"), "totalLiquidityUSD"),
    ],
)
def test_parse_protocol_history_schema_drift_names_protocol_and_keys(mutate, missing):
    body = load("protocol_aave-v3.json")
    mutate(body)

    with pytest.raises(SchemaDriftError, match=r"\[defillama\] Aave V3: schema drift") as caught:
        dl.parse_protocol_history(body, date(2026, 3, 1), date(2026, 4, 1))

    expected, found = str(caught.value).split("expected columns ")[1].split(", found ")
    assert f"'{missing}'" in expected and f"'{missing}'" not in found


def test_parse_stablecoin_list_maps_symbols_to_ids():
    ids = dl.parse_stablecoin_list(load("stablecoins.json"))

    assert ids == {"USDT": 1, "USDC": 2, "DAI": 5, "USDe": 146, "EURC": 50}


def test_parse_stablecoin_list_shared_symbol_goes_to_the_largest_coin():
    body = load("stablecoins.json")
    body["peggedAssets"].append({"id": "999", "symbol": "USDT", "circulating": {"peggedUSD": 1e6}})

    assert dl.parse_stablecoin_list(body)["USDT"] == 1


@pytest.mark.parametrize(
    ("body", "entity"),
    [
        ({"chains": []}, "stablecoins"),
        ({"peggedAssets": [{"symbol": "USDT", "name": "Tether"}]}, "USDT"),
    ],
)
def test_parse_stablecoin_list_schema_drift(body, entity):
    with pytest.raises(SchemaDriftError, match=rf"\[defillama\] {entity}: schema drift"):
        dl.parse_stablecoin_list(body)


def test_parse_stablecoin_chart_reads_circulating_usd_in_the_window():
    frame = dl.parse_stablecoin_chart(
        load("stablecoincharts_usdt.json"), "USDT", date(2026, 3, 17), date(2026, 3, 21)
    )

    assert list(frame.columns) == dl.STABLECOIN_COLUMNS
    assert frame["date"].tolist() == [date(2026, 3, d) for d in range(17, 21)]
    assert set(frame["symbol"]) == {"USDT"}
    # totalCirculatingUSD (valued in USD), not totalCirculating (units of the peg).
    assert frame["circulating_usd"].iloc[-1] == 184111525582.33


def test_parse_stablecoin_chart_total_takes_the_usd_peg_only():
    frame = dl.parse_stablecoin_chart(
        load("stablecoincharts_all.json"), dl.TOTAL, date(2026, 3, 20), date(2026, 3, 21)
    )

    assert frame["circulating_usd"].tolist() == [313.68e9]


@pytest.mark.parametrize(
    ("point", "expected", "found"),
    [
        ({"date": "1773964800", "totalCirculating": {"peggedUSD": 1.0}}, "totalCirculatingUSD", ""),
        (
            {"date": "1773964800", "totalCirculatingUSD": {"peggedEUR": 1.0}},
            "peggedUSD",
            "peggedEUR",
        ),
    ],
)
def test_parse_stablecoin_chart_schema_drift_names_symbol_and_keys(point, expected, found):
    with pytest.raises(SchemaDriftError) as caught:
        dl.parse_stablecoin_chart([point], "USDC", date(2026, 3, 1), date(2026, 4, 1))

    message = str(caught.value)
    assert message.startswith("[defillama] USDC: schema drift")
    assert f"'{expected}'" in message.split(", found ")[0]
    assert found in message.split(", found ")[1]


def test_parse_stablecoin_chart_empty_day_is_no_data():
    chart = load("stablecoincharts_usdc.json")
    chart[0]["totalCirculatingUSD"] = {}

    frame = dl.parse_stablecoin_chart(chart, "USDC", date(2026, 3, 16), date(2026, 3, 18))

    assert frame["date"].tolist() == [date(2026, 3, 17)]


@pytest.mark.parametrize(
    ("parse", "columns"),
    [
        (lambda: dl.parse_protocols([], date(2026, 3, 22)), dl.PROTOCOL_COLUMNS),
        (lambda: dl.parse_protocol_history({}, date(2026, 3, 1), date(2026, 4, 1)), None),
        (
            lambda: dl.parse_protocol_history(
                {"name": "P", "category": "Dexs", "tvl": []}, date(2026, 3, 1), date(2026, 4, 1)
            ),
            dl.PROTOCOL_COLUMNS,
        ),
        (
            lambda: dl.parse_protocol_history(
                load("protocol_aave-v3.json"), date(2025, 1, 1), date(2025, 2, 1)
            ),
            dl.PROTOCOL_COLUMNS,
        ),
        (
            lambda: dl.parse_stablecoin_chart([], "USDT", date(2026, 3, 1), date(2026, 4, 1)),
            dl.STABLECOIN_COLUMNS,
        ),
    ],
)
def test_empty_answers_are_empty_frames(parse, columns):
    frame = parse()

    assert frame.empty
    assert list(frame.columns) == (columns or dl.PROTOCOL_COLUMNS)


@pytest.mark.parametrize("body", [{}, {"peggedAssets": []}])
def test_empty_stablecoin_list_is_no_ids(body):
    assert dl.parse_stablecoin_list(body) == {}


def test_reference_total_series_round_trips_through_the_client(reference_data, throttle):
    path = reference_data / REFERENCE_TOTAL
    if not path.exists():
        pytest.skip(f"reference data not present: {path}")
    reference = pd.read_csv(path, parse_dates=["date"])
    body = [
        {
            "date": str(utc_seconds(day.date())),
            "totalCirculating": {"peggedUSD": value},
            "totalCirculatingUSD": {"peggedUSD": value},
        }
        for day, value in zip(reference["date"], reference["total_circulating_usd"], strict=True)
    ]
    session, fake = client({dl.STABLECOIN_CHART_URL: [ok(body)]})

    frame = dl.fetch_stablecoin_supply([], date(2025, 4, 1), date(2026, 9, 16), throttle, session)

    assert fake.urls == [dl.STABLECOIN_CHART_URL]
    assert frame["date"].tolist() == reference["date"].dt.date.tolist()
    assert frame["circulating_usd"].tolist() == reference["total_circulating_usd"].tolist()
    on_0320 = frame.set_index("date").loc[date(2026, 3, 20), "circulating_usd"]
    assert on_0320 == pytest.approx(313.68e9, rel=1e-4)


# --- the client ------------------------------------------------------------------------------


def test_fetch_protocol_tvl_ranks_then_fetches_each_history(throttle):
    routes = {
        dl.PROTOCOLS_URL: [ok(load("protocols.json"))],
        AAVE_URL: [ok(load("protocol_aave-v3.json"))],
        LIDO_URL: [ok(load("protocol_lido.json"))],
    }
    session, fake = client(routes, throttle)

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    assert fake.urls == [dl.PROTOCOLS_URL, AAVE_URL, LIDO_URL]  # the CEX is not ranked
    assert fake.waits_seen == [1, 2, 3]  # throttle.wait() before each request
    assert fake.timeouts == [dl.TIMEOUT] * 3
    assert {r.headers["User-Agent"] for r in fake.sent} == {dl.USER_AGENT}
    assert list(frame.columns) == dl.PROTOCOL_FRAME_COLUMNS
    assert frame.groupby("protocol")["date"].apply(list).to_dict() == {
        "Aave V3": [date(2026, 3, d) for d in (18, 19, 20, 21)],
        "Lido": [date(2026, 3, d) for d in (18, 20, 21)],
    }
    assert set(frame["source"]) == {"defillama"} and not frame["is_fallback"].any()
    assert frame["fetched_at"].dtype.kind == "M" and frame["fetched_at"].dt.tz is None
    assert throttle.sleeps == []


def test_fetch_protocol_tvl_empty_listing_is_no_data(throttle):
    session, fake = client({dl.PROTOCOLS_URL: [ok([])]})

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, session=session)

    assert frame.empty and list(frame.columns) == dl.PROTOCOL_FRAME_COLUMNS
    assert fake.urls == [dl.PROTOCOLS_URL]


def test_empty_window_asks_nothing(throttle):
    session, fake = client({})
    day = date(2026, 3, 22)

    protocols = dl.fetch_protocol_tvl(day, day, throttle, session=session)
    supply = dl.fetch_stablecoin_supply(["USDT"], day, day, throttle, session=session)

    assert protocols.empty and supply.empty and fake.sent == []
    assert list(supply.columns) == dl.STABLECOIN_FRAME_COLUMNS


def test_fetch_stablecoin_supply_symbols_plus_total(throttle):
    routes = {
        dl.STABLECOINS_URL: [ok(load("stablecoins.json"))],
        USDT_URL: [ok(load("stablecoincharts_usdt.json"))],
        USDC_URL: [ok(load("stablecoincharts_usdc.json"))],
        dl.STABLECOIN_CHART_URL: [ok(load("stablecoincharts_all.json"))],
    }
    session, fake = client(routes, throttle)

    frame = dl.fetch_stablecoin_supply(
        list(dl.DEFAULT_STABLECOINS), date(2026, 3, 19), date(2026, 3, 22), throttle, session
    )

    assert fake.urls == [dl.STABLECOINS_URL, USDT_URL, USDC_URL, dl.STABLECOIN_CHART_URL]
    assert fake.waits_seen == [1, 2, 3, 4]
    assert list(frame.columns) == dl.STABLECOIN_FRAME_COLUMNS
    assert frame.groupby("symbol").size().to_dict() == {"TOTAL": 3, "USDC": 3, "USDT": 3}
    assert set(frame["date"]) == {date(2026, 3, d) for d in (19, 20, 21)}
    total = frame[frame["symbol"] == dl.TOTAL].set_index("date")["circulating_usd"]
    assert total[date(2026, 3, 20)] == 313.68e9


def test_fetch_stablecoin_supply_total_alone_is_one_request(throttle):
    session, fake = client({dl.STABLECOIN_CHART_URL: [ok(load("stablecoincharts_all.json"))]})

    frame = dl.fetch_stablecoin_supply(
        [dl.TOTAL], date(2026, 3, 16), date(2026, 3, 23), throttle, session
    )

    assert fake.urls == [dl.STABLECOIN_CHART_URL] and len(frame) == 7


def test_fetch_stablecoin_supply_unknown_symbol_is_a_feed_error(throttle):
    session, fake = client({dl.STABLECOINS_URL: [ok(load("stablecoins.json"))]})

    with pytest.raises(FeedError, match=r"\[defillama\] USDTT: not among the 5 stablecoins"):
        dl.fetch_stablecoin_supply(
            ["USDTT"], date(2026, 3, 19), date(2026, 3, 22), throttle, session
        )

    assert fake.urls == [dl.STABLECOINS_URL]


def test_fetch_stablecoin_supply_empty_list_is_no_data_for_symbols(throttle):
    routes = {
        dl.STABLECOINS_URL: [ok({"peggedAssets": []})],
        dl.STABLECOIN_CHART_URL: [ok(load("stablecoincharts_all.json"))],
    }
    session, fake = client(routes)

    frame = dl.fetch_stablecoin_supply(
        ["USDT"], date(2026, 3, 20), date(2026, 3, 21), throttle, session
    )

    assert fake.urls == [dl.STABLECOINS_URL, dl.STABLECOIN_CHART_URL]
    assert frame["symbol"].tolist() == [dl.TOTAL]


@pytest.mark.parametrize(
    ("code", "retry_after", "sleeps"),
    [
        (429, "7", [7.0]),  # the server's wait, longer than the first backoff
        (429, "1", [2.0]),  # never shorter than the backoff
        (429, None, [2.0]),
        (503, "5", [5.0]),
    ],
)
def test_rate_limit_then_success_honours_retry_after(throttle, code, retry_after, sleeps):
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = load("stablecoins.json")
    session, fake = client({dl.STABLECOINS_URL: [status(code, headers), ok(body)]})

    answer = dl.get_json(session, dl.STABLECOINS_URL, "stablecoins", throttle)

    assert answer == body
    assert len(fake.sent) == 2 and throttle.waits == 2
    assert throttle.sleeps == sleeps


def test_timeout_is_retried(throttle):
    routes = {dl.PROTOCOLS_URL: [requests.ReadTimeout("read timed out"), ok([])]}
    session, fake = client(routes)

    assert dl.get_json(session, dl.PROTOCOLS_URL, "protocols", throttle) == []
    assert len(fake.sent) == 2 and throttle.sleeps == [2.0]


def test_server_error_exhausting_retries_is_a_feed_error_with_the_url(throttle):
    session, fake = client({dl.PROTOCOLS_URL: [status(500)]})

    with pytest.raises(FeedError) as caught:
        dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, session=session)

    message = str(caught.value)
    assert message.startswith("[defillama] protocols: gave up after 4 attempts")
    assert f"HTTP 500 from {dl.PROTOCOLS_URL}" in message
    assert len(fake.sent) == 4 and throttle.sleeps == [2.0, 4.0, 8.0]


def test_not_found_is_a_feed_error_with_url_and_status_without_retrying(throttle):
    routes = {
        dl.PROTOCOLS_URL: [ok(load("protocols.json"))],
        AAVE_URL: [status(404, body=b'{"message":"Protocol not found"}')],
    }
    session, fake = client(routes)

    with pytest.raises(FeedError, match=rf"\[defillama\] Aave V3: HTTP 404 from {AAVE_URL}"):
        dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, session=session)

    assert fake.urls == [dl.PROTOCOLS_URL, AAVE_URL] and throttle.sleeps == []


def test_answer_that_is_not_json_is_a_feed_error(throttle):
    session, _ = client({dl.PROTOCOLS_URL: [status(200, body=b"<html>maintenance</html>")]})

    with pytest.raises(FeedError, match=rf"answer from {dl.PROTOCOLS_URL} is not JSON"):
        dl.get_json(session, dl.PROTOCOLS_URL, "protocols", throttle)


def test_without_a_session_the_feed_makes_its_own(monkeypatch, throttle):
    fake = FakeTransport({dl.STABLECOIN_CHART_URL: [ok(load("stablecoincharts_all.json"))]})
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter, "send", lambda self, request, **kw: fake.send(request, **kw)
    )

    frame = dl.fetch_stablecoin_supply([], date(2026, 3, 20), date(2026, 3, 21), throttle)

    assert frame["circulating_usd"].tolist() == [313.68e9]
    assert fake.sent[0].headers["User-Agent"] == dl.USER_AGENT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12", 12.0),
        ("Sun, 22 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 22 Mar 2026 11:59:00 GMT", 0.0),
        ("86400", dl.MAX_RETRY_AFTER),
        ("soon", 0.0),
        (None, 0.0),
    ],
)
def test_retry_after_header_forms(value, seconds):
    now = datetime(2026, 3, 22, 12, 0, 0, tzinfo=UTC)

    assert dl.retry_after_seconds(value, now=now) == seconds
