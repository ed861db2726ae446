"""The source resource: live adapters routed per feed, one failing instrument not sinking its
market, breadth as dated snapshots and per-session exchange turnover, typed empty frames for no
data, per-stock bars for past windows (also while a session runs), resumable."""

import logging
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from market_intel import sources
from market_intel.calendars import last_closed_session, latest_completed_session
from market_intel.feeds import FeedError, akshare_indices, bar_frame
from market_intel.feeds import crypto as feeds_crypto
from market_intel.sources import RawSource
from market_intel.storage import ReportWindow, empty_frame
from market_intel.universe import instruments, markets


def source(mode: str = "live", **overrides: object) -> RawSource:
    settings = {
        "mode": mode,
        "replay_dir": "unused",
        "ccxt_exchanges": "binance, okx,,kraken",
        "requests_per_minute": 0,
        "lookback_days": 10,
    }
    return RawSource(**{**settings, **overrides})


def bars(instrument_id: str, closes: dict[str, float], source_name: str) -> pd.DataFrame:
    frame = pd.DataFrame({"session_date": list(closes), "close": list(closes.values())})
    return bar_frame(instrument_id, frame, source_name)


def test_live_bars_are_routed_to_each_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_crypto(instrument, start, end, exchanges, throttle):
        calls.append(("ccxt", instrument.instrument_id, tuple(exchanges)))
        return bars(instrument.instrument_id, {"2026-03-21": 68918.12}, "ccxt:okx")

    def fake_akshare(instrument, start, end, throttle):
        calls.append(("akshare", instrument.instrument_id))
        return bars(instrument.instrument_id, {"2026-03-20": 1.0}, "akshare:stock_zh_index_daily")

    monkeypatch.setattr(feeds_crypto, "fetch_bars", fake_crypto)
    monkeypatch.setattr(akshare_indices, "fetch_bars", fake_akshare)
    live = source()
    crypto = live.fetch_bars(
        markets()["crypto"], instruments("crypto"), date(2026, 3, 1), date(2026, 3, 22)
    )
    hk = live.fetch_bars(markets()["hk"], instruments("hk"), date(2026, 3, 1), date(2026, 3, 22))
    assert ("ccxt", "crypto/BTC-USDT", ("binance", "okx", "kraken")) in calls
    assert set(crypto.frame["source"]) == {"ccxt:okx"}
    assert sorted(hk.frame["instrument_id"]) == ["hk/HSCEI", "hk/HSI", "hk/HSTECH"]


def test_one_failing_instrument_leaves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def flaky(instrument, start, end, throttle):
        if instrument.instrument_id == "hk/HSTECH":
            raise FeedError("akshare", "hk/HSTECH", "both sources failed")
        return bars(instrument.instrument_id, {"2026-03-20": 1.0}, "akshare:x")

    monkeypatch.setattr(akshare_indices, "fetch_bars", flaky)
    batch = source().fetch_bars(
        markets()["hk"], instruments("hk"), date(2026, 3, 1), date(2026, 3, 22)
    )
    assert sorted(batch.frame["instrument_id"]) == ["hk/HSCEI", "hk/HSI"]
    assert any("hk/HSTECH" in line and "both sources failed" in line for line in batch.unavailable)


def test_a_market_whose_every_instrument_fails_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(instrument, start, end, throttle):
        raise FeedError("akshare", instrument.instrument_id, "down")

    monkeypatch.setattr(akshare_indices, "fetch_bars", down)
    with pytest.raises(FeedError, match=r"\[akshare\] hk: every instrument failed"):
        source().fetch_bars(markets()["hk"], instruments("hk"), date(2026, 3, 1), date(2026, 3, 22))


def test_unknown_source_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="MARKET_INTEL_SOURCE='lvie'"):
        source(mode="lvie").fetch_bars(
            markets()["us"], instruments("us"), date(2026, 3, 1), date(2026, 3, 2)
        )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-20 08:00", date(2026, 3, 20)),  # after the 15:00 Shanghai close
        ("2026-03-20 03:00", None),  # the session is running
        ("2026-03-21 12:00", date(2026, 3, 20)),  # Saturday: Friday is the latest
        ("2026-03-22 23:00", date(2026, 3, 20)),  # Monday 07:00 Shanghai, before the pre-open
        ("2026-03-23 01:20", None),  # Monday's pre-open auction has begun
    ],
)
def test_latest_completed_a_share_session(now: str, expected: date | None) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert latest_completed_session("cn", moment) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-20 08:00", date(2026, 3, 20)),
        ("2026-03-20 03:00", date(2026, 3, 19)),  # Friday's session runs: Thursday closed last
        ("2026-03-23 01:20", date(2026, 3, 20)),  # Monday's pre-open auction has begun
    ],
)
def test_last_closed_a_share_session_ignores_a_session_in_progress(
    now: str, expected: date
) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert last_closed_session("cn", moment) == expected


class LiveBreadth:
    """Stands in for the two breadth fetches of ``akshare_breadth``, recording what was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sessions: list[date] = []
        self.snapshots: list[date | None] = []
        monkeypatch.setattr(sources.akshare_breadth, "fetch_breadth_snapshot", self.snapshot)
        monkeypatch.setattr(sources.akshare_breadth, "fetch_exchange_turnover", self.turnover)

    def snapshot(self, throttle, undated_session):
        self.snapshots.append(undated_session)
        return pd.DataFrame(
            {
                "session_date": [date(2026, 3, 20)],
                "advancers": [662],
                "decliners": [4705],
                "unchanged": [114],
                "turnover_cny": [None],
                "source": ["akshare:stock_market_activity_legu"],
                "is_fallback": [False],
                "fetched_at": [pd.Timestamp("2026-03-21")],
            }
        )

    def turnover(self, sessions, throttle, log):
        self.sessions += sessions
        rows = pd.DataFrame(
            {
                "market": ["sse", "szse"] * len(sessions),
                "session_date": [day for day in sessions for _ in range(2)],
                "turnover_cny": [9648.63e8, 13219.48e8] * len(sessions),
                "source": ["akshare:stock_sse_deal_daily", "akshare:stock_szse_summary"]
                * len(sessions),
                "is_fallback": False,
                "fetched_at": pd.Timestamp("2026-03-21"),
            }
        )
        return rows, []


def test_live_breadth_turnover_per_owned_session_and_counts_of_the_latest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = LiveBreadth(monkeypatch)
    saturday = datetime(2026, 3, 21, 12, tzinfo=UTC)
    batch = source().fetch_breadth(
        date(2025, 3, 1), date(2026, 3, 21), now=saturday, live_from=date(2026, 3, 19)
    )
    assert live.sessions == [date(2026, 3, 19), date(2026, 3, 20)]
    assert live.snapshots == [date(2026, 3, 20)]  # no session runs: the spot tables may help
    frame = batch.frame
    assert list(frame.columns) == list(empty_frame("cn_breadth").columns)
    assert sorted(zip(frame["market"], frame["session_date"])) == [
        ("cn", date(2026, 3, 20)),
        ("sse", date(2026, 3, 19)),
        ("sse", date(2026, 3, 20)),
        ("szse", date(2026, 3, 19)),
        ("szse", date(2026, 3, 20)),
    ]
    assert str(frame["advancers"].dtype) == "Int64"


def test_live_breadth_of_a_past_window_is_turnover_only(monkeypatch: pytest.MonkeyPatch) -> None:
    live = LiveBreadth(monkeypatch)
    saturday = datetime(2026, 3, 21, 12, tzinfo=UTC)
    past = source().fetch_breadth(date(2025, 3, 3), date(2025, 3, 8), now=saturday)
    assert live.snapshots == [] and set(past.frame["market"]) == {"sse", "szse"}
    assert len(live.sessions) == 5
    assert any("past counts come from stock bars" in line for line in past.unavailable)


def test_live_breadth_during_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    live = LiveBreadth(monkeypatch)
    friday_morning = datetime(2026, 3, 20, 3, tzinfo=UTC)  # 11:00 in Shanghai
    source().fetch_breadth(date(2026, 3, 19), date(2026, 3, 21), now=friday_morning)
    assert live.sessions == [date(2026, 3, 19)]  # Friday has not closed
    assert live.snapshots == [None]  # only a dated source may answer now


def test_live_breadth_with_every_source_down_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*args):
        raise FeedError("akshare", "cn/breadth", "down")

    monkeypatch.setattr(sources.akshare_breadth, "fetch_breadth_snapshot", down)
    monkeypatch.setattr(sources.akshare_breadth, "fetch_exchange_turnover", down)
    with pytest.raises(FeedError, match="every breadth source failed"):
        source().fetch_breadth(
            date(2026, 3, 19), date(2026, 3, 21), now=datetime(2026, 3, 21, 12, tzinfo=UTC)
        )


def test_no_data_is_the_tables_typed_empty_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sources.akshare_breadth, "fetch_exchange_turnover", lambda *args: (pd.DataFrame(), [])
    )
    sunday = datetime(2026, 3, 22, 12, tzinfo=UTC)
    batch = source().fetch_breadth(date(2025, 3, 8), date(2025, 3, 10), now=sunday)  # a weekend
    assert batch.frame.empty
    expected = empty_frame("cn_breadth")
    assert batch.frame.dtypes.to_dict() == expected.dtypes.to_dict()


def universe_stand_in(monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {}

    def universe(codes, start, end, throttle, already_done, sink, log):
        seen.update(start=start, end=end, done=set(already_done))
        sink(
            "600000",
            pd.DataFrame(
                {
                    "stock_code": ["600000"],
                    "session_date": [start],
                    "close": [10.0],
                    "previous_close": [9.9],
                    "volume": [1.0],
                    "turnover_cny": [10.0],
                    "source": ["baostock:query_history_k_data_plus"],
                    "is_fallback": [False],
                    "fetched_at": [pd.Timestamp("2026-03-21")],
                }
            ),
        )
        return 1

    monkeypatch.setattr(sources.akshare_breadth, "fetch_stock_codes", lambda t: ["600000"])
    monkeypatch.setattr(sources.akshare_breadth, "fetch_universe_history", universe)
    return seen


def test_live_stock_bars_are_for_backfills_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = universe_stand_in(monkeypatch)
    saved = []
    log = logging.getLogger("test")
    saturday = datetime(2026, 3, 21, 12, tzinfo=UTC)
    today = ReportWindow(date(2026, 3, 21), date(2026, 3, 22))
    assert source().fetch_stock_bars(today, set(), lambda c, f: saved.append(c), log, saturday) == 0
    history = ReportWindow(date(2025, 3, 4), date(2025, 3, 8))
    assert (
        source().fetch_stock_bars(
            history, {"000001"}, lambda c, f: saved.append((c, f)), log, saturday
        )
        == 1
    )
    assert seen == {"start": date(2025, 3, 3), "end": date(2025, 3, 7), "done": {"000001"}}
    codes, frame = saved[0]
    assert codes == ["600000"] and frame["stock_code"].tolist() == ["600000"]
    assert frame["source"].tolist() == ["baostock:query_history_k_data_plus"]


def test_a_past_window_is_fetched_while_a_session_is_in_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = universe_stand_in(monkeypatch)
    monday_session = datetime(2026, 3, 23, 3, tzinfo=UTC)  # 11:00 in Shanghai, market open
    past = ReportWindow(date(2026, 3, 16), date(2026, 3, 21))  # sessions 2026-03-15..19
    saved = []
    fetched = source().fetch_stock_bars(
        past, set(), lambda c, f: saved.append(c), logging.getLogger("test"), monday_session
    )
    assert fetched == 1 and saved == [["600000"]]
    assert (seen["start"], seen["end"]) == (date(2026, 3, 15), date(2026, 3, 20))
    latest = ReportWindow(date(2026, 3, 16), date(2026, 3, 22))  # reaches Friday, last closed
    seen.clear()
    assert (
        source().fetch_stock_bars(
            latest, set(), lambda c, f: None, logging.getLogger("test"), monday_session
        )
        == 0
    )
    assert seen == {}


def test_stock_bars_resume_where_the_last_run_stopped(pipeline) -> None:
    from assets.raw import raw_key

    selection = [raw_key("cn_stock_bars")]
    first = pipeline.run("2026-03-21", selection=selection)
    assert first.success
    metadata = first.asset_materializations_for_node("raw__cn_stock_bars")[0].metadata
    assert metadata["stocks_fetched"].value == 5481
    again = pipeline.run("2026-03-21", selection=selection)
    metadata = again.asset_materializations_for_node("raw__cn_stock_bars")[0].metadata
    assert (metadata["stocks_fetched"].value, metadata["stocks_resumed"].value) == (0, 5481)
    rows = pipeline.query("SELECT count(*), count(DISTINCT stock_code) FROM raw.cn_stock_bars")
    assert rows == [(10962, 5481)]
