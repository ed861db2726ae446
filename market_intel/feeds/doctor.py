"""``make doctor``: does every live source answer from this machine? Run it before a live run.

First the connectivity probe (``connectivity``: every host at once, seconds), then one small real
request per source whose hosts answered, through the library its feed uses (5 days of ^GSPC,
3 daily candles per ccxt venue, one akshare call per source, one DefiLlama series), all at once
under a deadline. Prints one row per feed and source, and exits 1 when a primary source of any
feed is down (unreachable, failing or answering no rows), 0 otherwise. Offline every row is
unreachable within the probe's deadline: nothing else is tried.

    python -m market_intel.feeds.doctor [--exchanges binance,okx,kraken] [--timeout 4]
"""

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

import pandas as pd
import requests

from market_intel.feeds import connectivity
from market_intel.feeds.connectivity import Feed, Health, Source

CHECK_DEADLINE = 15.0  # seconds for all real requests together, after the probe
CHECK_TIMEOUT = 10.0  # seconds for a request where the library takes a timeout
USER_AGENT = connectivity.USER_AGENT.replace("connectivity probe", "doctor")

Check = Callable[[date], Sequence[date]]  # today -> the dates of the rows the source answered


def _dates(values: object) -> list[date]:
    """Dates of a column or index, unparseable values left out."""
    parsed = pd.to_datetime(pd.Series(list(values), dtype=object), errors="coerce", utc=True)
    return list(parsed.dropna().dt.date)


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def last_a_share_session(today: date) -> date:
    """The latest Shanghai session before ``today``: the exchanges' summaries exist for it."""
    from market_intel import calendars

    sessions = calendars.sessions("XSHG", today - timedelta(days=20), today)
    return sessions["session_date"].iloc[-1]


def yahoo_gspc(today: date) -> list[date]:
    from market_intel.feeds import yahoo

    history = yahoo.fetch_history("^GSPC", today - timedelta(days=8), today + timedelta(days=1))
    return _dates(history.index)


def ccxt_candles(exchange_id: str) -> Check:
    def check(today: date) -> list[date]:
        from market_intel.feeds.crypto import make_exchange

        exchange = make_exchange(exchange_id)
        exchange.timeout = int(CHECK_TIMEOUT * 1000)
        candles = exchange.fetch_ohlcv("BTC/USDT", "1d", limit=3)
        return _dates(pd.to_datetime([row[0] for row in candles], unit="ms", utc=True))

    return check


def akshare_call(function: str, column: str, **arguments: object) -> Check:
    """One akshare function; arguments given as functions of today are computed at call time."""

    def check(today: date) -> list[date]:
        import akshare as ak

        values = {k: v(today) if callable(v) else v for k, v in arguments.items()}
        return _dates(getattr(ak, function)(**values)[column])

    return check


def exchange_summary(function: str) -> Check:
    """``stock_sse_deal_daily`` / ``stock_szse_summary``: undated rows of the session asked."""

    def check(today: date) -> list[date]:
        import akshare as ak

        session = last_a_share_session(today)
        return [session] * len(getattr(ak, function)(date=_ymd(session)))

    return check


def legulegu_activity(today: date) -> list[date]:
    """``stock_market_activity_legu``, read by the feed's own parser: one dated breadth row."""
    import akshare as ak

    from market_intel.feeds.akshare_breadth import parse_legu

    _, row = parse_legu(ak.stock_market_activity_legu())
    return list(row["session_date"])


def baostock_bars(today: date) -> list[date]:
    """A few sessions of one stock through the feed's own baostock session (login, query)."""
    from market_intel.feeds.baostock_history import Session

    with Session() as session:
        bars = session.daily_bars("600000", today - timedelta(days=10), today + timedelta(days=1))
    return _dates(bars["date"])


def json_series(url: str, stamp: str) -> Check:
    """A DefiLlama daily series: a JSON list of points whose ``stamp`` is unix seconds."""

    def check(today: date) -> list[date]:
        response = requests.get(url, timeout=CHECK_TIMEOUT, headers={"User-Agent": USER_AGENT})
        response.raise_for_status()
        seconds = [float(point[stamp]) for point in response.json()]
        return [datetime.fromtimestamp(value, UTC).date() for value in seconds]

    return check


def days_ago(days: int) -> Callable[[date], str]:
    return lambda today: _ymd(today - timedelta(days=days))


# One small real request per (raw table, source); a source without one is probed only.
CHECKS: dict[tuple[str, str], Check] = {
    ("us_bars", "yahoo"): yahoo_gspc,
    ("hk_bars", "sina"): akshare_call("stock_hk_index_daily_sina", "date", symbol="HSI"),
    ("hk_bars", "eastmoney"): akshare_call("stock_hk_index_daily_em", "date", symbol="HSI"),
    ("cn_bars", "sina"): akshare_call("stock_zh_index_daily", "date", symbol="sh000001"),
    ("cn_bars", "eastmoney"): akshare_call(
        "stock_zh_index_daily_em",
        "date",
        symbol="sh000001",
        start_date=days_ago(10),
        end_date=days_ago(0),
    ),
    ("cn_breadth", "legulegu"): legulegu_activity,
    ("cn_breadth", "sse"): exchange_summary("stock_sse_deal_daily"),
    ("cn_breadth", "szse"): exchange_summary("stock_szse_summary"),
    ("cn_stock_bars", "baostock"): baostock_bars,
    ("cn_stock_bars", "eastmoney"): akshare_call(
        "stock_zh_a_hist",
        "日期",
        symbol="600000",
        start_date=days_ago(10),
        end_date=days_ago(0),
        timeout=CHECK_TIMEOUT,
    ),
    ("defi_protocol_tvl", "defillama"): json_series(
        "https://api.llama.fi/v2/historicalChainTvl/Ethereum", "date"
    ),
    ("stablecoin_supply", "defillama-stablecoins"): json_series(
        "https://stablecoins.llama.fi/stablecoincharts/all?stablecoin=1", "date"
    ),
}


def check_of(feed: Feed, source: Source) -> Check | None:
    if source.name.startswith("ccxt:"):
        return ccxt_candles(source.name.removeprefix("ccxt:"))
    return CHECKS.get((feed.table, source.name))


@dataclass(frozen=True)
class Outcome:
    """What one real request gave: row dates, or the error; ``None`` fields when not run."""

    dates: tuple[date, ...] | None = None
    error: str | None = None

    @property
    def ran(self) -> bool:
        return self.dates is not None or self.error is not None

    @property
    def served(self) -> bool:
        return bool(self.dates)


NOT_RUN = Outcome()  # a source without a real request, or with no host up


def run_checks(
    checks: dict[tuple[str, str], Check], today: date, deadline: float = CHECK_DEADLINE
) -> dict[tuple[str, str], Outcome]:
    """Every check at once in daemon threads; one still running at ``deadline`` timed out."""
    outcomes: dict[tuple[str, str], Outcome] = {}

    def run(key: tuple[str, str], check: Check) -> None:
        try:
            outcomes[key] = Outcome(dates=tuple(check(today)))
        except Exception as error:  # noqa: BLE001 - a failing source is what the doctor reports
            outcomes[key] = Outcome(error=connectivity.describe_error(error))

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in checks.items()]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - (time.monotonic() - started)))
    late = Outcome(error=f"timeout (no answer within {deadline:.0f} s)")
    return {key: outcomes.get(key, late) for key in checks}


@dataclass(frozen=True)
class Row:
    feed: Feed
    source: Source
    primary: bool
    reachable: int  # hosts that answered the probe
    latency: float | None
    outcome: Outcome
    answer: str  # short, for the table
    detail: str  # every host's answer when none answered, else the answer

    @property
    def down(self) -> bool:
        """No host answered the probe, or the real request failed or answered no rows."""
        return self.reachable == 0 or (self.outcome.ran and not self.outcome.served)


def diagnose(health: Health, outcomes: dict[tuple[str, str], Outcome]) -> list[tuple[Row, ...]]:
    """The doctor's rows, grouped by feed, primary sources first."""
    return [
        tuple(
            _row(health, feed, source, outcomes.get((feed.table, source.name), NOT_RUN))
            for source in feed.sources
        )
        for feed in health.feeds
    ]


def _row(health: Health, feed: Feed, source: Source, outcome: Outcome) -> Row:
    hosts = health.of(source)
    up = [host for host in hosts if host.reachable]
    if not up:
        answer = "; ".join(dict.fromkeys(host.answer for host in hosts)) or str(source.problem)
    elif outcome.error:
        answer = outcome.error
    elif outcome.served:
        answer = f"ok ({up[0].answer})"
    elif not outcome.ran:
        answer = f"probe only ({up[0].answer})"
    else:
        answer = f"answered no rows ({up[0].answer})"
    latencies = [host.latency for host in up if host.latency is not None]
    return Row(
        feed,
        source,
        source in feed.primary,
        len(up),
        min(latencies, default=None),
        outcome,
        answer,
        answer if up else health.source_answers(source),
    )


def fallback_used(rows: Sequence[Row]) -> str:
    """Which source a feed would take now: ``no`` (a primary), ``yes: <fallback>``, ``none``."""
    serving = next((row for row in rows if not row.down), None)
    if serving is None:
        return "none"
    return "no" if serving.primary else f"yes: {serving.source.name}"


COLUMNS = ("feed", "source", "role", "host", "reachable", "latency", "rows", "newest")
COLUMNS += ("fallback used", "answer")


def table_lines(groups: Sequence[Sequence[Row]]) -> list[str]:
    """The doctor's table, fixed-width; ``fallback used`` is on each feed's first row."""
    cells = [COLUMNS]
    for rows in groups:
        for position, row in enumerate(rows):
            endpoints = [str(endpoint) for endpoint in row.source.endpoints] or ["-"]
            host = endpoints[0] + (f" +{len(endpoints) - 1}" if len(endpoints) > 1 else "")
            dates = row.outcome.dates
            cells.append(
                (
                    row.feed.table,
                    row.source.name,
                    "primary" if row.primary else "fallback",
                    host,
                    _reachable(row.reachable, len(row.source.endpoints)),
                    "-" if row.latency is None else f"{row.latency * 1000:.0f} ms",
                    "-" if dates is None else str(len(dates)),
                    max(dates).isoformat() if dates else "-",
                    fallback_used(rows) if position == 0 else "",
                    row.answer[:70],
                )
            )
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]


def _reachable(up: int, total: int) -> str:
    return "no" if up == 0 else "yes" if up == total else f"{up}/{total}"


def examine(health: Health, today: date, deadline: float = CHECK_DEADLINE) -> list[tuple[Row, ...]]:
    """The real request of every source with a host up, at once; the rows of every feed."""
    checks = {
        (feed.table, source.name): check
        for feed in health.feeds
        for source in feed.sources
        if health.source_up(source) and (check := check_of(feed, source)) is not None
    }
    return diagnose(health, run_checks(checks, today, deadline))


def report(groups: Sequence[Sequence[Row]], seconds: float, out: TextIO) -> int:
    """Print the table and the primary sources down; 1 when there is one, else 0."""
    print("\n".join(table_lines(groups)), file=out)
    down = [row for rows in groups for row in rows if row.primary and row.down]
    if not down:
        print(f"\nevery primary source answered ({seconds:.1f} s)", file=out)
        return 0
    print(f"\nprimary sources down ({seconds:.1f} s):", file=out)
    for row in down:
        print(f"  {row.source.name} ({row.feed.table}): {row.detail}", file=out)
    return 1


def run(
    exchanges: Sequence[str],
    out: TextIO,
    *,
    timeout: float = connectivity.PROBE_TIMEOUT,
    probe_deadline: float = connectivity.PROBE_DEADLINE,
    check_deadline: float = CHECK_DEADLINE,
    today: date | None = None,
) -> int:
    """Probe every host, check what answered, print the table; 1 when a primary is down."""
    started = time.monotonic()
    health = connectivity.check_feeds(connectivity.live_feeds(exchanges), timeout, probe_deadline)
    groups = examine(health, today or datetime.now(UTC).date(), check_deadline)
    return report(groups, time.monotonic() - started, out)


def main(argv: Sequence[str] | None = None) -> int:
    from market_intel import settings  # noqa: F401 - fills in the MARKET_INTEL_* defaults

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--exchanges",
        default=os.environ["MARKET_INTEL_CCXT_EXCHANGES"],
        help="ccxt venues, comma-separated (default: MARKET_INTEL_CCXT_EXCHANGES)",
    )
    parser.add_argument("--timeout", type=float, default=connectivity.PROBE_TIMEOUT)
    args = parser.parse_args(argv)
    return run(connectivity.exchange_chain(args.exchanges), sys.stdout, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
