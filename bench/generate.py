"""Deterministic replay data for the benchmarks: the whole universe over any range of dates.

Every instrument of ``dbt_project/seeds/instruments.csv`` gets one bar per session of its own
exchange calendar. Where ``../shared/reference-data`` has the instrument's real series, its real
closes (and OHLCV where the source has them) are used on every session they cover; the sessions
they miss are filled in: a random walk back from the first real close, forward from the last,
and a bridge (a random walk pinned at both ends) across gaps, all in log price with seeded
generators. Instruments without a real series are random walks. Beside the bars, as in
``sample_data/demo``: ``cn/breadth.csv`` (every A-share session), ``cn/stock_bars.csv`` (the
per-stock bars of the last sessions, adding up to their breadth), ``defi/protocols.csv`` and
``defi/stablecoins.csv`` (every UTC day, the demo's protocols and coins).

Same arguments, same bytes: ``python -m bench.generate OUT --start 2014-11-01 --end 2025-12-31``.
"""

import argparse
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from market_intel.calendars import sessions
from market_intel.settings import DEMO_DATA_DIR, PROJECT_ROOT, SEEDS_DIR
from market_intel.universe import Instrument, instruments, markets

REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "reference-data"
# The real series of ../shared/reference-data/SOURCES.md, best first: where two cover a
# session, the first one's row is used (OHLCV before close-only).
REFERENCE_FILES = {
    "us/GSPC": ["sp500_GSPC.csv"],
    "us/IXIC": ["nasdaq_composite_IXIC.csv"],
    "us/DJI": ["dow_jones_DJI.csv"],
    "hk/HSI": ["hsi_HSI.csv", "hsi_HSI_close_only.csv"],
    "hk/HSCEI": ["hscei_HSCE.csv"],
    "hk/HSTECH": ["hstech_HSTECH.csv", "hstech_HSTECH_close_only.csv"],
    "cn/sh000001": ["sse_composite_000001.SH.csv", "sse_composite_000001.SH_close_only.csv"],
    "cn/sz399001": ["szse_component_399001.SZ.csv", "szse_component_399001.SZ_close_only.csv"],
    "cn/sz399006": ["chinext_399006.SZ.csv", "chinext_399006.SZ_close_only.csv"],
    "crypto/BTC-USDT": ["btc_usdt_binance.csv"],
    "crypto/ETH-USDT": ["eth_usdt_binance.csv"],
}
DAILY_VOLATILITY = {"equity_index": 0.011, "etf": 0.013, "crypto": 0.03}
TYPICAL_VOLUME = {"us": 4e9, "hk": 3e9, "cn": 4e10, "crypto": 2e4}
BAR_HEADER = ["date", "open", "high", "low", "close", "volume"]
STOCK_CODES = [
    f"{prefix}{n:05d}"
    for prefix, count in (("6", 2300), ("0", 1500), ("3", 1681))
    for n in range(count)
]


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))


@dataclass
class Summary:
    """What a generation wrote: rows per file, and how many bars are real, per instrument."""

    rows: dict[str, int] = field(default_factory=dict)
    real_bars: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, frame: pd.DataFrame) -> None:
        self.rows[name] = len(frame)


def write(out: Path, name: str, frame: pd.DataFrame, summary: Summary) -> None:
    path = out / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    summary.add(name, frame)


def real_bars(instrument_id: str, reference: Path | None) -> pd.DataFrame:
    """The instrument's real bars by date (best source first), empty without reference data."""
    frames = []
    for name in REFERENCE_FILES.get(instrument_id, []) if reference else []:
        path = reference / name
        if path.exists():
            frame = pd.read_csv(path, dtype={"date": str}).reindex(columns=BAR_HEADER)
            frames.append(frame.dropna(subset=["close"]))
    if not frames:
        return pd.DataFrame(columns=BAR_HEADER)
    combined = pd.concat(frames, ignore_index=True).drop_duplicates("date", keep="first")
    combined["date"] = pd.to_datetime(combined["date"]).dt.date
    return combined.set_index("date").sort_index()


def fill_log_prices(
    known: np.ndarray, rng: np.random.Generator, volatility: float, level: float
) -> np.ndarray:
    """Log prices for every session: ``known`` where finite, random walks and bridges elsewhere."""
    logs = np.array(known, dtype=float)
    n = len(logs)
    index = np.flatnonzero(np.isfinite(logs))
    steps = rng.normal(0.0003, volatility, n)
    if index.size == 0:
        return np.log(level) + np.cumsum(steps) - steps.sum()
    first, last = index[0], index[-1]
    # Back from the first real close, forward from the last.
    logs[:first] = logs[first] - np.cumsum(steps[:first][::-1])[::-1]
    logs[last + 1 :] = logs[last] + np.cumsum(steps[last + 1 :])
    # Bridges across gaps: a walk pinned at both real closes.
    for left, right in itertools.pairwise(index):
        if right - left < 2:
            continue
        walk = np.cumsum(steps[left + 1 : right + 1])
        t = np.arange(1, right - left + 1) / (right - left)
        line = logs[left] + t * (logs[right] - logs[left])
        logs[left + 1 : right] = (line + walk - t * walk[-1])[:-1]
    return logs


def instrument_bars(
    instrument: Instrument, session_dates: list[date], reference: Path | None, summary: Summary
) -> pd.DataFrame:
    """Bars on every session: real rows where the reference has them, generated ones elsewhere."""
    market = instrument.market
    volatility = DAILY_VOLATILITY.get(instrument.asset_class, 0.015)
    rng = rng_for(f"bench/{instrument.instrument_id}")
    real = real_bars(instrument.instrument_id, reference).reindex(session_dates)
    is_real = real["close"].notna().to_numpy()
    summary.real_bars[instrument.instrument_id] = int(is_real.sum())
    closes = np.exp(
        fill_log_prices(
            np.log(real["close"].to_numpy(dtype=float)),
            rng,
            volatility,
            demo_level(instrument.instrument_id),
        )
    )
    previous = np.concatenate([[closes[0]], closes[:-1]])
    opens = previous * (1 + rng.normal(0, volatility / 4, len(closes)))
    wicks = np.abs(rng.normal(0, volatility / 2, (2, len(closes))))
    real_volume = real["volume"].dropna()
    volume = float(real_volume.median()) if len(real_volume) else TYPICAL_VOLUME.get(market, 1e6)
    generated = pd.DataFrame(
        {
            "open": opens.round(4),
            "high": (np.maximum(opens, closes) * (1 + wicks[0])).round(4),
            "low": (np.minimum(opens, closes) * (1 - wicks[1])).round(4),
            "close": closes.round(4),
            "volume": (volume * rng.lognormal(0, 0.25, len(closes))).round(0),
        },
        index=real.index,
    )
    # Real rows as the source has them (close-only rows keep empty open/high/low/volume).
    bars = generated.copy()
    bars.loc[is_real] = real.loc[is_real, list(generated.columns)].to_numpy()
    bars.insert(0, "date", [d.isoformat() for d in session_dates])
    return bars.reset_index(drop=True)


def demo_level(instrument_id: str) -> float:
    """A plausible price level for a generated series: the demo's first close, else 100."""
    path = DEMO_DATA_DIR / f"{instrument_id}.csv"
    if path.exists():
        return float(pd.read_csv(path, nrows=1)["close"].iloc[0])
    return 100.0


def breadth(out: Path, session_dates: list[date], stock_sessions: int, summary: Summary) -> None:
    """Breadth on every A-share session, and per-stock bars of the last ones that add up to it."""
    rng = rng_for("bench/cn/breadth")
    total = len(STOCK_CODES)
    n = len(session_dates)
    unchanged = rng.integers(60, 180, n)
    advancers = (np.clip(rng.beta(5, 5, n), 0.05, 0.95) * (total - unchanged)).round().astype(int)
    turnover = 1.2e12 * np.exp(np.cumsum(rng.normal(0.0004, 0.08, n)) * 0.25)
    frame = pd.DataFrame(
        {
            "date": [d.isoformat() for d in session_dates],
            "advancers": advancers,
            "decliners": total - unchanged - advancers,
            "unchanged": unchanged,
            "turnover_cny": turnover.round(0),
        }
    )
    write(out, "cn/breadth", frame, summary)
    stock_rows = []
    for row in frame.tail(stock_sessions).itertuples():
        moves = np.concatenate(
            [
                rng.uniform(0.001, 0.1, row.advancers),
                -rng.uniform(0.001, 0.1, row.decliners),
                np.zeros(row.unchanged),
            ]
        )
        rng.shuffle(moves)
        previous = rng.uniform(3, 80, total).round(2)
        close = (previous * (1 + moves)).round(2)
        close[moves > 0] = np.maximum(close[moves > 0], previous[moves > 0] + 0.01)
        close[moves < 0] = np.minimum(close[moves < 0], previous[moves < 0] - 0.01)
        weights = rng.lognormal(0, 1, total)
        split = np.floor(row.turnover_cny * weights / weights.sum())
        split[0] += row.turnover_cny - split.sum()
        stock_rows.append(
            pd.DataFrame(
                {
                    "date": row.date,
                    "stock_code": STOCK_CODES,
                    "close": close,
                    "previous_close": previous,
                    "volume": (split / close).round(0),
                    "turnover_cny": split,
                }
            )
        )
    write(out, "cn/stock_bars", pd.concat(stock_rows, ignore_index=True), summary)


def defi(out: Path, days: list[date], summary: Summary) -> None:
    """Protocol TVL and stablecoin supply per UTC day, for the demo's protocols and coins."""
    stamps = [d.isoformat() for d in days]
    demo = pd.read_csv(DEMO_DATA_DIR / "defi" / "protocols.csv")
    rows = []
    for (protocol, category), group in demo.groupby(["protocol", "category"], sort=True):
        walk = np.cumsum(rng_for(f"bench/{protocol}").normal(0.0008, 0.025, len(days)))
        tvl = float(group["tvl_usd"].iloc[-1]) * np.exp(walk - walk[-1])
        rows.append(
            pd.DataFrame(
                {
                    "date": stamps,
                    "protocol": protocol,
                    "category": category,
                    "tvl_usd": tvl.round(0),
                }
            )
        )
    write(out, "defi/protocols", pd.concat(rows, ignore_index=True), summary)
    coins = pd.read_csv(DEMO_DATA_DIR / "defi" / "stablecoins.csv")
    supply = []
    for symbol, group in coins.groupby("symbol", sort=True):
        walk = np.cumsum(rng_for(f"bench/{symbol}").normal(0.0006, 0.004, len(days)))
        values = float(group["circulating_usd"].iloc[-1]) * np.exp(walk - walk[-1])
        supply.append(
            pd.DataFrame({"date": stamps, "symbol": symbol, "circulating_usd": values.round(0)})
        )
    write(out, "defi/stablecoins", pd.concat(supply, ignore_index=True), summary)


def generate(
    out: Path,
    start: date,
    end: date,
    reference: Path | None = REFERENCE_DATA,
    stock_sessions: int = 2,
) -> Summary:
    """Replay files under ``out`` for sessions ``start..end`` (inclusive)."""
    reference = reference if reference and reference.is_dir() else None
    summary = Summary()
    for code, market in markets().items():
        calendar = sessions(market.calendar, start, end + timedelta(days=1))
        session_dates = list(calendar["session_date"])
        for instrument in instruments(code):
            frame = instrument_bars(instrument, session_dates, reference, summary)
            write(out, instrument.instrument_id, frame, summary)
        if code == "cn":
            breadth(out, session_dates, stock_sessions, summary)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    defi(out, days, summary)
    return summary


def unconfirmed_moves(out: Path) -> list[str]:
    """Daily moves in the generated files beyond the gate's bounds and not in its confirmed list
    (the seeds ``return_bounds.csv`` and ``confirmed_moves.csv``): the quality gate blocks every
    run that covers them."""
    bounds = dict(pd.read_csv(SEEDS_DIR / "return_bounds.csv").itertuples(index=False))
    moves_seed = pd.read_csv(SEEDS_DIR / "confirmed_moves.csv", dtype=str)
    confirmed = set(zip(moves_seed["instrument_id"], moves_seed["session_date"], strict=True))
    moves = []
    for instrument in instruments():
        path = out / f"{instrument.instrument_id}.csv"
        bound = bounds.get(instrument.asset_class)
        if bound is None or not path.exists():
            continue
        frame = pd.read_csv(path, dtype={"date": str})
        change = 100 * frame["close"].pct_change()
        for row in frame[change.abs() > bound].itertuples():
            if (instrument.instrument_id, row.date) not in confirmed:
                moves.append(
                    f"{{instrument_id: {instrument.instrument_id}, session_date: {row.date}}}"
                    f"  # {change[row.Index]:+.2f}%"
                )
    return moves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--no-reference", action="store_true", help="generated series only")
    parser.add_argument("--stock-sessions", type=int, default=2)
    args = parser.parse_args()
    reference = None if args.no_reference else REFERENCE_DATA
    summary = generate(args.out, args.start, args.end, reference, args.stock_sessions)
    for name, rows in summary.rows.items():
        real = summary.real_bars.get(name)
        print(f"{name}: {rows} rows" + (f" ({real} real)" if real is not None else ""))
    for move in unconfirmed_moves(args.out):
        print(f"beyond the gate's return bounds, not confirmed: {move}")


if __name__ == "__main__":
    main()
