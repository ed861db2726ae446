"""A-share market breadth (advancers, decliners, unchanged) and turnover through akshare.

Live days count one whole-market spot table: Eastmoney ``stock_zh_a_spot_em``, Sina
``stock_zh_a_spot`` as the fallback. No free source keeps breadth history, so backfills rebuild it
from every stock's daily history (``stock_zh_a_hist``): ~5,500 requests to Eastmoney, which bans
an address after a few dozen quick calls, hence one throttled, resumable request per stock.
"""

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from assets.feeds import FeedError, SchemaDriftError, Throttle, require_columns
from assets.feeds.akshare_indices import (
    EM_LOT,
    FEED,
    call_with_retries,
    first_answer,
    in_range,
    ymd,
)
from assets.progress import Progress

BREADTH_ID = "cn/breadth"
UNIVERSE_ID = "cn/a-share-universe"
BREADTH_COLUMNS = ["session_date", "advancers", "decliners", "unchanged", "turnover_cny"]
STOCK_BAR_COLUMNS = [
    "stock_code",
    "session_date",
    "close",
    "previous_close",
    "volume",
    "turnover_cny",
]

SPOT_COLUMNS = ("代码", "最新价", "涨跌幅", "成交量", "成交额")
HISTORY_COLUMNS = ("日期", "收盘", "成交量", "成交额", "涨跌额")
SPOT_FUNCTIONS = ("stock_zh_a_spot_em", "stock_zh_a_spot")
CODE_SOURCES = (("stock_info_a_code_name", "code"), ("stock_zh_a_spot_em", "代码"))

HISTORY_TIMEOUT = 15.0  # seconds; without one, a stalled Eastmoney socket hangs the backfill
PROGRESS_EVERY = 100  # stocks between progress lines
MAX_CONSECUTIVE_FAILURES = 10  # that many stocks failing in a row means a ban or an outage


def parse_spot_snapshot(frame: pd.DataFrame, session_date: date) -> pd.DataFrame:
    """One BREADTH_COLUMNS row from a whole-market spot table (Eastmoney or Sina layout).

    A stock counts only if it traded (a price and a volume above zero): suspended stocks show
    no price on Eastmoney and a zero price on Sina. 涨跌幅 > 0 is up, < 0 down, == 0 unchanged;
    成交额 (CNY) of the traded stocks is summed.
    """
    if frame.empty:
        return pd.DataFrame(columns=BREADTH_COLUMNS)
    require_columns(frame, SPOT_COLUMNS, FEED, BREADTH_ID)
    numbers = frame[list(SPOT_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    traded = numbers[(numbers["最新价"] > 0) & (numbers["成交量"] > 0)]
    change = traded["涨跌幅"]
    return pd.DataFrame(
        {
            "session_date": [session_date],
            "advancers": [int((change > 0).sum())],
            "decliners": [int((change < 0).sum())],
            "unchanged": [int((change == 0).sum())],
            "turnover_cny": [float(traded["成交额"].sum())],
        }
    )


def parse_stock_codes(frame: pd.DataFrame, column: str) -> list[str]:
    """Sorted six-digit A-share codes from a code list or spot table column."""
    if frame.empty:
        return []
    require_columns(frame, [column], FEED, UNIVERSE_ID)
    codes = frame[column].astype(str).str.strip().str.zfill(6)
    return sorted(set(codes[codes.str.fullmatch(r"\d{6}")]))


def parse_stock_history(frame: pd.DataFrame, stock_code: str) -> pd.DataFrame:
    """STOCK_BAR_COLUMNS from ``stock_zh_a_hist`` (unadjusted).

    ``previous_close`` is 收盘 - 涨跌额: the exchange's reference price, already adjusted on
    ex-dividend days, which is what "up" and "down" are measured against. Volume comes in lots
    and is turned into shares; 成交额 is in CNY.
    """
    if frame.empty:
        return pd.DataFrame(columns=STOCK_BAR_COLUMNS)
    require_columns(frame, HISTORY_COLUMNS, FEED, f"cn/{stock_code}")
    close = pd.to_numeric(frame["收盘"], errors="coerce").astype("float64")
    change = pd.to_numeric(frame["涨跌额"], errors="coerce").astype("float64")
    bars = pd.DataFrame(
        {
            "stock_code": stock_code,
            "session_date": pd.to_datetime(frame["日期"], errors="coerce").dt.date,
            "close": close,
            "previous_close": (close - change).round(4),
            "volume": pd.to_numeric(frame["成交量"], errors="coerce").astype("float64") * EM_LOT,
            "turnover_cny": pd.to_numeric(frame["成交额"], errors="coerce").astype("float64"),
        }
    )
    return bars.dropna(subset=["session_date", "close"]).reset_index(drop=True)


def fetch_breadth_snapshot(session_date: date, throttle: Throttle) -> pd.DataFrame:
    """Breadth and turnover of ``session_date`` from the live spot table, with its provenance.

    The spot table carries no date: call it after the close (15:00 Asia/Shanghai) of
    ``session_date`` and before the next session's pre-open, or the counts belong to another day.
    """

    def from_spot(function: str) -> Callable[[], tuple[pd.DataFrame, bool]]:
        def fetch() -> tuple[pd.DataFrame, bool]:
            import akshare as ak

            raw = call_with_retries(
                lambda: getattr(ak, function)(), instrument=BREADTH_ID, throttle=throttle
            )
            row = parse_spot_snapshot(raw, session_date)
            return row, not row.empty

        return fetch

    function, is_fallback, row = first_answer(
        [(function, from_spot(function)) for function in SPOT_FUNCTIONS],
        instrument=BREADTH_ID,
        what=f"spot snapshot for {session_date}",
    )
    return row.assign(
        source=f"{FEED}:{function}",
        is_fallback=is_fallback,
        fetched_at=datetime.now(UTC).replace(tzinfo=None),
    )


def fetch_stock_codes(throttle: Throttle) -> list[str]:
    """The whole A-share universe (Shanghai, Shenzhen, Beijing), ~5,500 codes.

    The exchanges' own lists come first: they cost three hosts a few requests, where the
    Eastmoney spot table costs ~55 paged requests to the host the backfill needs afterwards.
    """

    def from_list(function: str, column: str) -> Callable[[], tuple[pd.DataFrame, bool]]:
        def fetch() -> tuple[pd.DataFrame, bool]:
            import akshare as ak

            raw = call_with_retries(
                lambda: getattr(ak, function)(), instrument=UNIVERSE_ID, throttle=throttle
            )
            codes = parse_stock_codes(raw, column)
            return pd.DataFrame({"stock_code": codes}), bool(codes)

        return fetch

    _, _, codes = first_answer(
        [(function, from_list(function, column)) for function, column in CODE_SOURCES],
        instrument=UNIVERSE_ID,
        what="A-share code list",
    )
    if codes.empty:
        raise FeedError(FEED, UNIVERSE_ID, "every code list answered empty")
    return list(codes["stock_code"])


def _stock_history(code: str, start: date, end: date, throttle: Throttle) -> pd.DataFrame:
    """One stock's unadjusted daily bars in ``[start, end)``."""
    import akshare as ak

    raw = call_with_retries(
        lambda: ak.stock_zh_a_hist(
            symbol=code,
            period="daily",
            start_date=ymd(start),
            end_date=ymd(end - timedelta(days=1)),
            adjust="",
            timeout=HISTORY_TIMEOUT,
        ),
        instrument=f"cn/{code}",
        throttle=throttle,
    )
    return in_range(parse_stock_history(raw, code), start, end)


def fetch_universe_history(
    codes: list[str],
    start: date,
    end: date,
    throttle: Throttle,
    already_done: set[str],
    sink: Callable[[str, pd.DataFrame], None],
    log: logging.Logger,
) -> int:
    """Per-stock history for a backfill, resumable: returns how many stocks were fetched.

    Codes in ``already_done`` are skipped and ``sink(code, bars)`` runs after every stock (also
    with no bars, so a stock not listed in the range is not asked again), so a re-run continues
    where the last one stopped. A stock failing after retries is logged and left for the
    re-run; schema drift, or ``MAX_CONSECUTIVE_FAILURES`` stocks failing in a row (a ban or an
    outage), stops the run with a ``FeedError`` instead of burning through the list.
    """
    unique = list(dict.fromkeys(codes))
    pending = [code for code in unique if code not in already_done]
    total, fetched, failed, failed_in_a_row = len(pending), 0, 0, 0
    progress = Progress(log, "A-share history", "stocks", total, PROGRESS_EVERY)
    log.info(
        "A-share history %s..%s: %d stocks to fetch, %d already done",
        start,
        end,
        total,
        len(unique) - total,
    )
    for code in pending:
        try:
            bars = _stock_history(code, start, end, throttle)
        except SchemaDriftError:
            raise
        except Exception as error:
            failed, failed_in_a_row = failed + 1, failed_in_a_row + 1
            log.error("A-share history: %s failed, left for a re-run: %s", code, error)
            if failed_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                raise FeedError(
                    FEED,
                    UNIVERSE_ID,
                    f"{failed_in_a_row} stocks failed in a row (last {code}): source down or "
                    f"this address banned; {fetched} stocks saved, a re-run continues",
                ) from error
        else:
            sink(code, bars)
            fetched, failed_in_a_row = fetched + 1, 0
        progress.step(f"{failed} failed")
    return fetched
