"""DefiLlama feed: parsers on recorded-shape bodies, and the client through a fake transport.

The network is replaced at the lowest seam, the requests adapter (``tests/transports/http``), so
the client's own code (status handling, retries, JSON decoding) runs for real; a guard refuses
any other connection.
"""

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests

from market_intel.feeds import (
    MAX_RETRY_AFTER,
    FeedError,
    RefusedError,
    SchemaDriftError,
    Throttle,
    retry_after_seconds,
)
from market_intel.feeds import defillama as dl
from tests.transports.failures import RETRIED, Failure
from tests.transports.http import Answer, FakeHTTP, json_answer

FIXTURES = Path(__file__).parent / "fixtures" / "defillama"
REFERENCE_TOTAL = (
    "api-samples/defillama/stablecoincharts_all_total_usd_DERIVED_2025-04-01_2026-09-15.csv"
)
AAVE_URL = "https://api.llama.fi/protocol/aave-v3"
LIDO_URL = "https://api.llama.fi/protocol/lido"
EIGEN_URL = "https://api.llama.fi/protocol/eigenlayer"
UNISWAP_URL = "https://api.llama.fi/protocol/uniswap-v3"
USDT_URL = f"{dl.STABLECOIN_CHART_URL}?stablecoin=1"
USDC_URL = f"{dl.STABLECOIN_CHART_URL}?stablecoin=2"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def utc_seconds(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def ok(body) -> Answer:
    return json_answer(body)


def status(code: int, headers: dict | None = None, body: bytes = b"") -> Answer:
    return Answer(code, body, headers or {})


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
    """A request not answered by a FakeHTTP fails here (conftest also refuses sockets)."""

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to reach the network")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)


@pytest.fixture
def throttle() -> CountingThrottle:
    return CountingThrottle()


def client(routes: dict, throttle: CountingThrottle | None = None):
    """A feed session answered by a FakeHTTP; ``fake.waits_seen`` is the throttle's wait count
    at each request (a wait must come before every request)."""
    fake = FakeHTTP(routes)
    fake.waits_seen = []
    if throttle is not None:
        fake.on_send = lambda request: fake.waits_seen.append(throttle.waits)
    session = dl.new_session()
    session.mount("https://", fake)
    return session, fake


def protocol_item(name: str, category: str, tvl: float, **extra) -> dict:
    """A ``/protocols`` item in DefiLlama's layout: Aave V3's, renamed."""
    slug = name.lower().replace(" ", "-")
    item = dict(load("protocols.json")[1], name=name, slug=slug, category=category, tvl=tvl)
    return {**item, **extra}


def history_of(name: str, category: str) -> dict:
    """A ``/protocol/{slug}`` body in DefiLlama's layout: Aave V3's history, renamed."""
    return dict(load("protocol_aave-v3.json"), name=name, category=category)


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


def test_parse_protocols_missing_category_skips_it_with_a_warning_naming_it(caplog):
    body = load("protocols.json")
    del body[1]["category"]

    frame = dl.parse_protocols(body, date(2026, 3, 22))

    assert "Aave V3" not in set(frame["protocol"]) and len(frame) == len(body) - 1
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "[defillama] Aave V3: schema drift" in message
    assert "expected columns ['category', 'name', 'slug', 'tvl']" in message
    assert "'category'" not in message.split("found")[1]


def test_parse_protocols_every_item_drifted_is_schema_drift():
    body = [{k: v for k, v in item.items() if k != "category"} for item in load("protocols.json")]

    with pytest.raises(SchemaDriftError, match=r"\[defillama\] Binance CEX: schema drift"):
        dl.parse_protocols(body, date(2026, 3, 22))


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
    routes = {AAVE_URL: [status(404, body=b'{"message":"Protocol not found"}')]}
    session, fake = client(routes)

    with pytest.raises(FeedError, match=rf"\[defillama\] Aave V3: HTTP 404 from {AAVE_URL}"):
        dl.get_json(session, AAVE_URL, "Aave V3", throttle)

    assert fake.urls == [AAVE_URL] and throttle.sleeps == []


def test_answer_that_is_not_json_is_a_feed_error(throttle):
    session, fake = client({dl.PROTOCOLS_URL: [status(200, body=b"<html>maintenance</html>")]})

    with pytest.raises(FeedError, match=rf"answer from {dl.PROTOCOLS_URL} is not JSON"):
        dl.get_json(session, dl.PROTOCOLS_URL, "protocols", throttle)

    assert len(fake.sent) == 4  # a maintenance page may go away: retried first


def test_without_a_session_the_feed_makes_its_own(monkeypatch, throttle):
    fake = FakeHTTP({dl.STABLECOIN_CHART_URL: [ok(load("stablecoincharts_all.json"))]})
    fake.install(monkeypatch)

    frame = dl.fetch_stablecoin_supply([], date(2026, 3, 20), date(2026, 3, 21), throttle)

    assert frame["circulating_usd"].tolist() == [313.68e9]
    assert fake.sent[0].headers["User-Agent"] == dl.USER_AGENT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12", 12.0),
        ("Sun, 22 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 22 Mar 2026 11:59:00 GMT", 0.0),
        ("86400", MAX_RETRY_AFTER),
        ("soon", 0.0),
        (None, 0.0),
    ],
)
def test_retry_after_header_forms(value, seconds):
    now = datetime(2026, 3, 22, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds(value, now=now) == seconds


# --- what enters the category sums -----------------------------------------------------------

DOUBLE_COUNTED_ENTRIES = [
    protocol_item("Hyperliquid L1", "Chain", 9.1e10),
    protocol_item("ether.fi Stake", "Liquid Restaking", 8.2e10),
    protocol_item("Yearn Finance", "Yield Aggregator", 7.3e10, doublecounted=True),
]


def test_chain_liquid_restaking_and_double_counted_entries_never_enter_the_top_n(throttle):
    listing = load("protocols.json") + DOUBLE_COUNTED_ENTRIES
    routes = {
        dl.PROTOCOLS_URL: [ok(listing)],
        AAVE_URL: [ok(load("protocol_aave-v3.json"))],
        LIDO_URL: [ok(load("protocol_lido.json"))],
    }
    session, fake = client(routes)

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    # Larger than Aave V3, all three are left out: the top 2 are still Aave V3 and Lido.
    assert fake.urls == [dl.PROTOCOLS_URL, AAVE_URL, LIDO_URL]
    assert set(frame["category"]) == {"Lending", "Liquid Staking"}
    ranked, _ = dl._protocol_listing(listing)
    assert dl.ranked_protocols(ranked)["protocol"].tolist() == [
        "Aave V3",
        "Lido",
        "EigenLayer",
        "Uniswap V3",
        "Anchor",
    ]


def test_excluded_categories_are_configurable_and_double_counted_flags_always_apply(throttle):
    listing = load("protocols.json") + DOUBLE_COUNTED_ENTRIES
    chain_url = "https://api.llama.fi/protocol/hyperliquid-l1"
    routes = {
        dl.PROTOCOLS_URL: [ok(listing)],
        chain_url: [ok(history_of("Hyperliquid L1", "Chain"))],
        "https://api.llama.fi/protocol/ether.fi-stake": [
            ok(history_of("ether.fi Stake", "Liquid Restaking"))
        ],
    }
    session, fake = client(routes)

    frame = dl.fetch_protocol_tvl(
        date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session, excluded_categories={"CEX"}
    )

    assert fake.urls[1:] == [chain_url, "https://api.llama.fi/protocol/ether.fi-stake"]
    assert set(frame["category"]) == {"Chain", "Liquid Restaking"}


# --- one bad item is skipped, named --------------------------------------------------------


def top_two(aave: Answer, lido: Answer) -> dict:
    return {dl.PROTOCOLS_URL: [ok(load("protocols.json"))], AAVE_URL: [aave], LIDO_URL: [lido]}


def warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_protocol_history_missing_a_key_is_skipped_and_named(throttle, caplog):
    aave = load("protocol_aave-v3.json")
    del aave["category"]
    session, _ = client(top_two(ok(aave), ok(load("protocol_lido.json"))))

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    assert set(frame["protocol"]) == {"Lido"} and len(frame) == 3
    (note,) = frame.attrs["unavailable"]
    assert "[defillama] Aave V3: schema drift" in note and "'category'" in note
    assert "Aave V3: schema drift" in warnings(caplog)


def test_protocol_not_found_is_skipped_and_named(throttle):
    missing = status(404, body=b'{"message":"Protocol not found"}')
    session, fake = client(top_two(missing, ok(load("protocol_lido.json"))))

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    assert set(frame["protocol"]) == {"Lido"}
    body = '\'{"message":"Protocol not found"}\''
    assert frame.attrs["unavailable"] == [
        f"skipped [defillama] Aave V3: HTTP 404 from {AAVE_URL}: {body}"
    ]
    assert fake.urls == [dl.PROTOCOLS_URL, AAVE_URL, LIDO_URL] and throttle.sleeps == []


def test_protocol_with_an_empty_tvl_list_is_no_data_named(throttle, caplog):
    lido = dict(load("protocol_lido.json"), tvl=[])
    session, _ = client(top_two(ok(load("protocol_aave-v3.json")), ok(lido)))

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    assert set(frame["protocol"]) == {"Aave V3"}
    assert frame.attrs["unavailable"] == ["Lido: no TVL points (tvl: [])"]
    assert "Lido: DefiLlama has no TVL points for it (tvl: [])" in warnings(caplog)


def test_protocols_without_points_in_the_window_are_listed(throttle):
    session, _ = client(top_two(ok(load("protocol_aave-v3.json")), ok(load("protocol_lido.json"))))

    frame = dl.fetch_protocol_tvl(date(2025, 1, 1), date(2025, 2, 1), throttle, 2, session)

    assert frame.empty and list(frame.columns) == dl.PROTOCOL_FRAME_COLUMNS
    assert frame.attrs["unavailable"] == [
        "Aave V3: no TVL points from 2025-01-01 to 2025-02-01 (end excluded)",
        "Lido: no TVL points from 2025-01-01 to 2025-02-01 (end excluded)",
    ]


def test_what_is_unavailable_survives_the_rename_the_raw_asset_does(throttle):
    lido = dict(load("protocol_lido.json"), tvl=[])
    session, _ = client(top_two(ok(load("protocol_aave-v3.json")), ok(lido)))

    frame = dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    renamed = frame.rename(columns={"date": "session_date"})
    assert renamed.attrs["unavailable"] == ["Lido: no TVL points (tvl: [])"]


def test_refusal_of_a_protocol_history_fails_the_call_at_once(throttle):
    refused = status(451, body=b"<html>Unavailable For Legal Reasons</html>")
    session, fake = client(top_two(ok(load("protocol_aave-v3.json")), refused))

    with pytest.raises(RefusedError, match=rf"\[defillama\] Lido: HTTP 451 from {LIDO_URL}"):
        dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)

    assert fake.urls == [dl.PROTOCOLS_URL, AAVE_URL, LIDO_URL] and throttle.sleeps == []


def test_histories_failing_in_a_row_fail_the_call_without_asking_the_rest(throttle):
    routes = {
        dl.PROTOCOLS_URL: [ok(load("protocols.json"))],
        **{url: [status(502)] for url in (AAVE_URL, LIDO_URL, EIGEN_URL, UNISWAP_URL)},
    }
    session, fake = client(routes)

    with pytest.raises(FeedError, match="3 protocol histories failed in a row"):
        dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 4, session)

    assert UNISWAP_URL not in fake.urls and len(fake.sent) == 1 + 3 * 4


def test_every_protocol_failing_fails_the_call(throttle):
    missing = status(404, body=b"{}")
    session, _ = client(top_two(missing, missing))

    with pytest.raises(FeedError, match="every one of the top 2 protocols failed"):
        dl.fetch_protocol_tvl(date(2026, 3, 18), date(2026, 3, 22), throttle, 2, session)


def test_stablecoin_list_item_missing_a_key_or_with_a_bad_id_is_skipped(caplog):
    body = load("stablecoins.json")
    body["peggedAssets"] += [{"name": "Broken", "symbol": "BRK"}, {"id": "x", "symbol": "BAD"}]

    ids = dl.parse_stablecoin_list(body)

    assert ids == {"USDT": 1, "USDC": 2, "DAI": 5, "USDe": 146, "EURC": 50}
    assert "BRK: schema drift" in warnings(caplog)
    assert "BAD: stablecoin id 'x' is not a number" in warnings(caplog)


# --- every failure kind ----------------------------------------------------------------------

REFUSED = {Failure.REFUSED_451: 451, Failure.REFUSED_403: 403}


@pytest.mark.parametrize("failure", list(RETRIED), ids=str)
def test_transient_failure_kind_is_retried(throttle, failure):
    body = load("stablecoins.json")
    session, fake = client({dl.STABLECOINS_URL: [failure, ok(body)]})

    assert dl.get_json(session, dl.STABLECOINS_URL, "stablecoins", throttle) == body
    assert len(fake.sent) == 2 and throttle.sleeps == RETRIED[failure]


@pytest.mark.parametrize("failure", list(RETRIED), ids=str)
def test_transient_failure_kind_that_persists_is_a_clear_error(throttle, failure):
    session, fake = client({dl.STABLECOINS_URL: [failure, failure, failure, failure, ok({})]})

    with pytest.raises(FeedError, match=r"^\[defillama\] stablecoins: gave up after 4 attempts"):
        dl.get_json(session, dl.STABLECOINS_URL, "stablecoins", throttle)

    assert len(fake.sent) == 4


@pytest.mark.parametrize("failure", list(REFUSED), ids=str)
def test_refusal_kind_is_a_clear_error_at_once(throttle, failure):
    session, fake = client({dl.STABLECOINS_URL: [failure, ok({})]})

    with pytest.raises(RefusedError) as caught:
        dl.get_json(session, dl.STABLECOINS_URL, "stablecoins", throttle)

    message = str(caught.value)
    assert message.startswith(f"[defillama] stablecoins: HTTP {REFUSED[failure]} from ")
    assert dl.STABLECOINS_URL in message and "refuses this address" in message
    assert len(fake.sent) == 1 and throttle.sleeps == []
