"""The source resource: live adapters routed per feed, one failing instrument not sinking its
market, breadth snapshots only when they describe a completed session, resumable stock bars."""

import logging
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from assets.feeds import FeedError, bar_frame
from assets.storage import ReportWindow
from assets.universe import instruments, markets
from pipelines import resources
from pipelines.resources import MarketSource, latest_completed_session


def source(mode: str = "live", **overrides: object) -> MarketSource:
    settings = {
        "mode": mode,
        "replay_dir": "unused",
        "ccxt_exchanges": "binance, okx,,kraken",
        "requests_per_minute": 0,
        "lookback_days": 10,
    }
    return MarketSource(**{**settings, **overrides})


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

    monkeypatch.setattr(resources.crypto, "fetch_bars", fake_crypto)
    monkeypatch.setattr(resources.akshare_indices, "fetch_bars", fake_akshare)
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

    monkeypatch.setattr(resources.akshare_indices, "fetch_bars", flaky)
    batch = source().fetch_bars(
        markets()["hk"], instruments("hk"), date(2026, 3, 1), date(2026, 3, 22)
    )
    assert sorted(batch.frame["instrument_id"]) == ["hk/HSCEI", "hk/HSI"]
    assert any("hk/HSTECH" in line and "both sources failed" in line for line in batch.unavailable)


def test_a_market_whose_every_instrument_fails_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(instrument, start, end, throttle):
        raise FeedError("akshare", instrument.instrument_id, "down")

    monkeypatch.setattr(resources.akshare_indices, "fetch_bars", down)
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


def test_live_breadth_snapshot_only_for_the_latest_completed_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = []

    def snapshot(session_date, throttle):
        asked.append(session_date)
        return pd.DataFrame(
            {
                "session_date": [session_date],
                "advancers": [662],
                "decliners": [4705],
                "unchanged": [114],
                "turnover_cny": [2286.86e9],
                "source": ["akshare:x"],
                "is_fallback": [False],
                "fetched_at": [pd.Timestamp("2026-03-21")],
            }
        )

    monkeypatch.setattr(resources.akshare_breadth, "fetch_breadth_snapshot", snapshot)
    saturday = datetime(2026, 3, 21, 12, tzinfo=UTC)
    batch = source().fetch_breadth(date(2026, 3, 1), date(2026, 3, 21), now=saturday)
    assert asked == [date(2026, 3, 20)]
    assert batch.frame["market"].tolist() == ["cn"]
    past = source().fetch_breadth(date(2025, 3, 1), date(2025, 3, 21), now=saturday)
    assert asked == [date(2026, 3, 20)] and past.frame.empty
    assert "history comes from stock bars" in past.unavailable[0]


def test_live_stock_bars_are_for_backfills_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def universe(codes, start, end, throttle, already_done, sink, log):
        seen.update(start=start, end=end, done=set(already_done))
        sink(
            "600000",
            pd.DataFrame(
                {
                    "session_date": [start],
                    "close": [10.0],
                    "previous_close": [9.9],
                    "volume": [1.0],
                    "turnover_cny": [10.0],
                }
            ),
        )
        return 1

    monkeypatch.setattr(resources.akshare_breadth, "fetch_stock_codes", lambda t: ["600000"])
    monkeypatch.setattr(resources.akshare_breadth, "fetch_universe_history", universe)
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
    assert frame["source"].tolist() == ["akshare:stock_zh_a_hist"]


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
