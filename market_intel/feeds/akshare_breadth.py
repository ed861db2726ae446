"""A-share market breadth (advancers, decliners, unchanged) and turnover, from sources that do
not ban: the one-call, dated legulegu summary for the latest session, the exchanges' own daily
summaries for turnover of any session, and baostock per-stock history for past breadth.

- Counts of the latest session: ``stock_market_activity_legu`` (one call, dated by its
  statistics time); Sina spot, then Eastmoney spot, as fallbacks (undated: only when the latest
  session has closed and the next has not begun).
- Turnover of any session: ``stock_sse_deal_daily`` and ``stock_szse_summary``, one call per
  exchange and session, each dated by the request.
- Past counts: every stock's daily bars (``baostock_history``, Eastmoney ``stock_zh_a_hist`` as
  the per-stock fallback), one throttled, resumable call per stock for a whole range.

Breadth covers the Shanghai and Shenzhen A-shares, as legulegu does; Beijing listings are left
out of the per-stock universe. docs/feeds-akshare.md has depth, units, costs and failures.
"""

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

import pandas as pd

from market_intel.feeds import FeedError, SchemaDriftError, Throttle, require_columns
from market_intel.feeds import baostock_history as baostock
from market_intel.feeds.akshare_indices import (
    EM_LOT,
    FEED,
    call_with_retries,
    first_answer,
    in_range,
    ymd,
)
from market_intel.feeds.baostock_history import STOCK_BAR_COLUMNS
from market_intel.progress import Progress

BREADTH_ID = "cn/breadth"
UNIVERSE_ID = "cn/a-share-universe"
BREADTH_COLUMNS = ["session_date", "advancers", "decliners", "unchanged", "turnover_cny"]
PROVENANCE = ["source", "is_fallback", "fetched_at"]

LEGU_FUNCTION = "stock_market_activity_legu"
LEGU_COUNTS = {"上涨": "advancers", "下跌": "decliners", "平盘": "unchanged"}
LEGU_DATE = "统计日期"
CLOSE_TIME = time(15, 0)  # Shanghai: legulegu's figures are final from the close on
SPOT_FALLBACKS = ("stock_zh_a_spot", "stock_zh_a_spot_em")  # Sina, then Eastmoney
SPOT_COLUMNS = ("代码", "最新价", "涨跌幅", "成交量", "成交额")

SSE_COLUMNS = ("单日情况", "股票", "主板A", "主板B", "科创板")
SSE_UNIT = 1e8  # stock_sse_deal_daily: 成交金额 in 100 million CNY
SZSE_COLUMNS = ("证券类别", "成交金额")  # stock_szse_summary: 成交金额 in CNY

HISTORY_COLUMNS = ("日期", "收盘", "成交量", "成交额", "涨跌额")
CODE_SOURCES = (("stock_info_a_code_name", "code"), ("stock_zh_a_spot_em", "代码"))
SSE_SZSE_A_SHARE = r"(60|68|00|30)\d{4}"  # Shanghai main and STAR, Shenzhen main and ChiNext
BAOSTOCK_SOURCE = f"{baostock.FEED}:{baostock.FUNCTION}"
EASTMONEY_HISTORY = "stock_zh_a_hist"

HISTORY_TIMEOUT = 15.0  # seconds; without one, a stalled Eastmoney socket hangs the backfill
PROGRESS_EVERY = 100  # stocks (or sessions) between progress lines
MAX_CONSECUTIVE_FAILURES = 10  # that many items failing in a row means a ban or an outage


def provenance(frame: pd.DataFrame, source: str, is_fallback: bool) -> pd.DataFrame:
    """The columns every raw row carries: where it came from and when."""
    return frame.assign(
        source=source, is_fallback=is_fallback, fetched_at=datetime.now(UTC).replace(tzinfo=None)
    )


# --- counts of the latest session ----------------------------------------------------------------


def parse_legu(frame: pd.DataFrame) -> tuple[datetime, pd.DataFrame]:
    """legulegu's statistics time (Shanghai) and its counts as one BREADTH_COLUMNS row.

    The frame is akshare's ``item``/``value`` list; 上涨/下跌/平盘 are the counts (suspended
    stocks, 停牌, are in none of them) and 统计日期 (``2026-03-20 15:00:00``) dates them.
    legulegu publishes no turnover.
    """
    require_columns(frame, ["item", "value"], FEED, BREADTH_ID)
    values = dict(zip(frame["item"].astype(str).str.strip(), frame["value"], strict=False))
    wanted = [*LEGU_COUNTS, LEGU_DATE]
    if not set(wanted) <= set(values):
        raise SchemaDriftError(FEED, BREADTH_ID, wanted, values)
    stamp = re.search(
        r"(\d{4}-\d{2}-\d{2})(?:\s+(\d{1,2}:\d{2}(?::\d{2})?))?", str(values[LEGU_DATE])
    )
    if stamp is None:
        raise FeedError(FEED, BREADTH_ID, f"{LEGU_DATE} {values[LEGU_DATE]!r} is not a date")
    statistics = datetime.fromisoformat(f"{stamp.group(1)} {stamp.group(2) or '15:00'}")
    counts = {column: [int(float(values[item]))] for item, column in LEGU_COUNTS.items()}
    row = pd.DataFrame({"session_date": [statistics.date()], **counts, "turnover_cny": [None]})
    return statistics, row.astype({"turnover_cny": "float64"})


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


def _legu(throttle: Throttle) -> tuple[pd.DataFrame, bool]:
    """legulegu's row when its figures are final (taken at or after the close), else none."""
    import akshare as ak

    raw = call_with_retries(
        ak.stock_market_activity_legu, instrument=BREADTH_ID, throttle=throttle, what=LEGU_FUNCTION
    )
    statistics, row = parse_legu(raw)
    if statistics.time() < CLOSE_TIME:
        logging.getLogger(__name__).info(
            "[%s] %s: %s figures of %s are intraday, not final",
            FEED,
            BREADTH_ID,
            LEGU_FUNCTION,
            statistics,
        )
        return row.iloc[0:0], False
    return row, True


def _spot(function: str, session_date: date, throttle: Throttle) -> tuple[pd.DataFrame, bool]:
    import akshare as ak

    raw = call_with_retries(
        getattr(ak, function), instrument=BREADTH_ID, throttle=throttle, what=function
    )
    row = parse_spot_snapshot(raw, session_date)
    return row, not row.empty


def fetch_breadth_snapshot(throttle: Throttle, undated_session: date | None) -> pd.DataFrame:
    """The latest session's counts, dated, with their provenance; no rows if none is final.

    legulegu dates its own figures. The spot tables carry no date, so they are asked only when
    ``undated_session`` says which session a snapshot taken now describes (after its close and
    before the next pre-open); otherwise legulegu is the only source.
    """
    attempts = [(LEGU_FUNCTION, partial(_legu, throttle))]
    if undated_session is not None:
        attempts += [
            (function, partial(_spot, function, undated_session, throttle))
            for function in SPOT_FALLBACKS
        ]
    function, is_fallback, row = first_answer(
        attempts, instrument=BREADTH_ID, what="breadth snapshot of the latest session"
    )
    return provenance(row, f"{FEED}:{function}", is_fallback)


# --- turnover of any session --------------------------------------------------------------------


def parse_sse_turnover(frame: pd.DataFrame, day: date) -> float:
    """Shanghai stock turnover in CNY from ``stock_sse_deal_daily`` (成交金额, 100M CNY).

    The 股票 column (all stocks) exists from 2025; earlier answers have it empty, and the
    boards (主板A, 主板B, 科创板) are added up instead.
    """
    require_columns(frame, SSE_COLUMNS, FEED, f"cn/sse {day}")
    rows = frame[frame["单日情况"].astype(str) == "成交金额"]
    if rows.empty:
        raise SchemaDriftError(FEED, f"cn/sse {day}", ["成交金额"], frame["单日情况"])
    amounts = rows.iloc[0][list(SSE_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    total = amounts["股票"] if pd.notna(amounts["股票"]) else amounts.iloc[1:].sum(min_count=1)
    return float(total) * SSE_UNIT


def parse_szse_turnover(frame: pd.DataFrame, day: date) -> float:
    """Shenzhen stock turnover in CNY from ``stock_szse_summary`` (the 股票 row, CNY). A table
    without rows is no figure for that day (NaN), not a changed layout."""
    require_columns(frame, SZSE_COLUMNS, FEED, f"cn/szse {day}")
    if frame.empty:
        return float("nan")
    rows = frame[frame["证券类别"].astype(str).str.strip() == "股票"]
    if rows.empty:
        raise SchemaDriftError(FEED, f"cn/szse {day}", ["股票"], frame["证券类别"])
    return float(pd.to_numeric(rows.iloc[0]["成交金额"], errors="coerce"))


EXCHANGES = (
    ("sse", "stock_sse_deal_daily", parse_sse_turnover),
    ("szse", "stock_szse_summary", parse_szse_turnover),
)


def _exchange_turnover(
    exchange: str, function: str, parse: Callable, day: date, throttle: Throttle
) -> float:
    import akshare as ak

    instrument = f"cn/{exchange}"
    raw = call_with_retries(
        lambda: getattr(ak, function)(date=ymd(day)),
        instrument=instrument,
        throttle=throttle,
        what=f"{function} {day}",
    )
    value = parse(raw, day)
    if not value > 0:  # NaN or zero: the exchange has no figure for that day (yet)
        raise FeedError(FEED, instrument, f"{function} {day}: no turnover in the answer")
    return value


def fetch_exchange_turnover(
    sessions: list[date], throttle: Throttle, log: logging.Logger
) -> tuple[pd.DataFrame, list[str]]:
    """Each exchange's stock turnover (CNY) per session: rows ``market`` sse/szse, and what failed.

    Two calls a session. One failing call is a warning naming exchange and day, and the rest
    still land; ``MAX_CONSECUTIVE_FAILURES`` in a row (a ban, an outage) end it in a
    ``FeedError``. Long lists log progress and the time left.
    """
    rows, unavailable, in_a_row = [], [], 0
    progress = Progress(log, "A-share turnover", "sessions", len(sessions), PROGRESS_EVERY)
    for day in sessions:
        for exchange, function, parse in EXCHANGES:
            try:
                value = _exchange_turnover(exchange, function, parse, day, throttle)
            except SchemaDriftError:
                raise
            except FeedError as error:
                in_a_row += 1
                log.warning("unavailable: cn/%s turnover on %s: %s", exchange, day, error)
                unavailable.append(f"cn/{exchange} turnover {day}: {error}")
                if in_a_row >= MAX_CONSECUTIVE_FAILURES:
                    raise FeedError(
                        FEED,
                        f"cn/{exchange}",
                        f"{in_a_row} turnover calls failed in a row (last {function} {day})",
                    ) from error
                continue
            in_a_row = 0
            rows.append(
                provenance(
                    pd.DataFrame(
                        {"market": [exchange], "session_date": [day], "turnover_cny": [value]}
                    ),
                    f"{FEED}:{function}",
                    False,
                )
            )
        progress.step(f"{len(unavailable)} calls failed")
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return frame, unavailable


# --- per-stock history for past breadth -----------------------------------------------------------


def parse_stock_codes(frame: pd.DataFrame, column: str) -> list[str]:
    """Sorted six-digit Shanghai and Shenzhen A-share codes from a code list or spot column."""
    if frame.empty:
        return []
    require_columns(frame, [column], FEED, UNIVERSE_ID)
    codes = frame[column].astype(str).str.strip().str.zfill(6)
    return sorted(set(codes[codes.str.fullmatch(SSE_SZSE_A_SHARE)]))


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


def fetch_stock_codes(throttle: Throttle) -> list[str]:
    """The Shanghai and Shenzhen A-share universe, ~5,100 codes.

    The exchanges' own lists come first: they cost three hosts a few requests, where the
    Eastmoney spot table costs ~55 paged requests to the host the fallback needs afterwards.
    """

    def from_list(function: str, column: str) -> Callable[[], tuple[pd.DataFrame, bool]]:
        def fetch() -> tuple[pd.DataFrame, bool]:
            import akshare as ak

            raw = call_with_retries(
                getattr(ak, function), instrument=UNIVERSE_ID, throttle=throttle, what=function
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


def _from_baostock(
    session: baostock.Session, code: str, start: date, end: date, throttle: Throttle
) -> tuple[pd.DataFrame, bool]:
    raw = call_with_retries(
        lambda: session.daily_bars(code, start, end),
        instrument=f"cn/{code}",
        throttle=throttle,
        what=f"{BAOSTOCK_SOURCE} {start}..{end}",
    )
    return in_range(baostock.parse_daily_bars(raw, code), start, end), True


def _from_eastmoney(
    code: str, start: date, end: date, throttle: Throttle
) -> tuple[pd.DataFrame, bool]:
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
        what=f"{EASTMONEY_HISTORY} {start}..{end}",
    )
    return in_range(parse_stock_history(raw, code), start, end), True


def stock_history(
    session: baostock.Session, code: str, start: date, end: date, throttle: Throttle
) -> pd.DataFrame:
    """One stock's unadjusted daily bars in ``[start, end)`` with their provenance: baostock,
    or Eastmoney when baostock fails. Schema drift is raised: every stock would drift alike."""
    source, is_fallback, bars = first_answer(
        [
            (BAOSTOCK_SOURCE, partial(_from_baostock, session, code, start, end, throttle)),
            (
                f"{FEED}:{EASTMONEY_HISTORY}",
                partial(_from_eastmoney, code, start, end, throttle),
            ),
        ],
        instrument=f"cn/{code}",
        what=f"daily bars {start}..{end} (end exclusive)",
        fatal=(SchemaDriftError,),
    )
    return provenance(bars, source, is_fallback)


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
    where the last one stopped. A stock failing on every source is logged and left for the
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
    with baostock.Session() as session:
        for code in pending:
            try:
                bars = stock_history(session, code, start, end, throttle)
            except SchemaDriftError:
                raise
            except FeedError as error:
                failed, failed_in_a_row = failed + 1, failed_in_a_row + 1
                log.error("A-share history: %s failed, left for a re-run: %s", code, error)
                if failed_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                    raise FeedError(
                        FEED,
                        UNIVERSE_ID,
                        f"{failed_in_a_row} stocks failed in a row (last {code}): sources down "
                        f"or this address banned; {fetched} stocks saved, a re-run continues",
                    ) from error
            else:
                sink(code, bars)
                fetched, failed_in_a_row = fetched + 1, 0
            progress.step(f"{failed} failed")
    return fetched
