"""Regenerate the demo data in sample_data/demo (deterministic: same output on every run).

The last two sessions of each anchored instrument are real closes (facts, see README.md); every
earlier session is synthetic: a seeded random walk backwards from the first real close, on the
instrument's own exchange calendar. Run: ``python sample_data/generate_demo.py``.
"""

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from market_intel.calendars import sessions
from market_intel.universe import instruments, markets

DEMO_DIR = Path(__file__).resolve().parent / "demo"
SESSIONS = 300
EQUITY_LAST, CRYPTO_LAST = date(2026, 3, 20), date(2026, 3, 21)

# (close on the session before the last, close on the last session); real unless marked synthetic.
ANCHORS = {
    "us/GSPC": (6606.49, 6506.48),
    "us/IXIC": (22090.69, 21647.61),
    "us/DJI": (46021.43, 45577.47),
    "us/IWM": (234.02, 231.15),  # synthetic
    "us/QQQ": (538.71, 528.40),  # synthetic
    "hk/HSI": (25500.58, 25277.32),
    "hk/HSCEI": (8695.88, 8574.07),
    "hk/HSTECH": (4996.28, 4872.38),
    "cn/sh000001": (4006.55, 3957.05),
    "cn/sz399001": (13901.57, 13866.20),
    "cn/sz399006": (3309.10, 3352.10),
    "cn/sh000016": (2961.37, 2929.84),  # synthetic
    "crypto/BTC-USDT": (70510.73, 68918.12),
    "crypto/ETH-USDT": (2146.22, 2084.87),
}
DAILY_VOLATILITY = {"equity_index": 0.011, "etf": 0.013, "crypto": 0.03}
TYPICAL_VOLUME = {"us": 4e9, "hk": 3e9, "cn": 4e10, "crypto": 2e4}


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))


def synthetic_bars(
    instrument_id: str, session_dates: list[date], volatility: float, volume: float
) -> pd.DataFrame:
    """A random walk ending on the anchors: closes backwards, then open/high/low around them."""
    rng = rng_for(instrument_id)
    before_last, last = ANCHORS[instrument_id]
    closes = [last, before_last]
    for step in rng.normal(0.0004, volatility, len(session_dates) - 2):
        closes.append(closes[-1] / (1 + step))
    closes = np.array(closes[::-1])
    previous = np.concatenate([[closes[0] * (1 - rng.normal(0, volatility))], closes[:-1]])
    opens = previous * (1 + rng.normal(0, volatility / 4, len(closes)))
    wicks = np.abs(rng.normal(0, volatility / 2, (2, len(closes))))
    return pd.DataFrame(
        {
            "date": [d.isoformat() for d in session_dates],
            "open": opens.round(2),
            "high": (np.maximum(opens, closes) * (1 + wicks[0])).round(2),
            "low": (np.minimum(opens, closes) * (1 - wicks[1])).round(2),
            "close": closes.round(2),
            "volume": (volume * rng.lognormal(0, 0.25, len(closes))).round(0),
        }
    )


# A-share breadth on 2026-03-20: 662 of 5,481 stocks up and 2,286.86 billion CNY turnover are
# real; the split of the other 4,819 into decliners and unchanged is synthetic.
BREADTH_LAST = {"advancers": 662, "decliners": 4705, "unchanged": 114, "turnover_cny": 2286.86e9}
STOCK_SESSIONS = 2
# Stablecoin supply: TOTAL on 2026-03-20 is real (313.68 bn USD); the rest is synthetic.
STABLECOINS_LAST = {"TOTAL": 313.68e9, "USDT": 184.6e9, "USDC": 79.2e9}
PROTOCOLS = [
    ("Aave", "Lending", 26e9),
    ("Lido", "Liquid Staking", 22e9),
    ("EigenLayer", "Restaking", 11e9),
    ("Sky", "CDP", 7.5e9),
    ("Ethena", "Basis Trading", 6e9),
    ("Uniswap", "Dexs", 5e9),
    ("Morpho", "Lending", 4.5e9),
    ("Pendle", "Yield", 4e9),
    ("Spark Savings", "Yield", 3.2e9),
    ("Hyperliquid", "Derivatives", 2.5e9),
    ("Jito", "Liquid Staking", 2.2e9),
    ("Curve", "Dexs", 2e9),
    ("Compound", "Lending", 1.8e9),
    ("Ondo", "RWA", 1.5e9),
    ("BlackRock BUIDL", "RWA", 2.4e9),
    ("Reservoir", "CDP", 0.45e9),
    ("BackedFi", "RWA", 0.12e9),
    ("Frankencoin", "CDP", 0.05e9),
    ("DoubleZero SOL", "Liquid Staking", 0.3e9),
    ("Free Protocol", "Bridge", 0.2e9),
    ("Across", "Bridge", 0.15e9),
    ("Yearn", "Yield", 0.5e9),
    ("GMX", "Derivatives", 0.4e9),
    ("Rocket Pool", "Liquid Staking", 1.9e9),
]


def write_csv(frame: pd.DataFrame, name: str) -> None:
    path = DEMO_DIR / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    print(f"{path.relative_to(DEMO_DIR)}: {len(frame)} rows")


def walk_back(rng: np.random.Generator, last: float, days: int, volatility: float) -> np.ndarray:
    """A positive series of ``days`` values ending exactly on ``last``."""
    steps = rng.normal(0.0005, volatility, days - 1)
    values = [last]
    for step in steps:
        values.append(values[-1] / (1 + step))
    return np.array(values[::-1])


def breadth(session_dates: list[date]) -> None:
    """Market breadth per session, and per-stock bars for the last sessions that add up to it."""
    rng = rng_for("cn/breadth")
    total = sum(v for k, v in BREADTH_LAST.items() if k != "turnover_cny")
    up_share = np.clip(rng.beta(5, 5, len(session_dates)), 0.05, 0.95)
    unchanged = rng.integers(60, 180, len(session_dates))
    advancers = (up_share * (total - unchanged)).round().astype(int)
    turnover = walk_back(rng, BREADTH_LAST["turnover_cny"], len(session_dates), 0.12)
    frame = pd.DataFrame(
        {
            "date": [d.isoformat() for d in session_dates],
            "advancers": advancers,
            "decliners": total - unchanged - advancers,
            "unchanged": unchanged,
            "turnover_cny": turnover.round(0),
        }
    )
    frame.iloc[-1, 1:] = [BREADTH_LAST[k] for k in ("advancers", "decliners", "unchanged")] + [
        BREADTH_LAST["turnover_cny"]
    ]
    write_csv(frame, "cn/breadth")
    stock_rows = []
    codes = [
        f"{prefix}{n:05d}"
        for prefix, count in (("6", 2300), ("0", 1500), ("3", 1681))
        for n in range(count)
    ]
    for day, row in zip(session_dates[-STOCK_SESSIONS:], frame.tail(STOCK_SESSIONS).itertuples()):
        moves = np.concatenate(
            [
                rng.uniform(0.001, 0.1, row.advancers),
                -rng.uniform(0.001, 0.1, row.decliners),
                np.zeros(row.unchanged),
            ]
        )
        rng.shuffle(moves)
        previous = rng.uniform(3, 80, len(codes)).round(2)
        close = (previous * (1 + moves)).round(2)
        close[moves > 0] = np.maximum(close[moves > 0], previous[moves > 0] + 0.01)
        close[moves < 0] = np.minimum(close[moves < 0], previous[moves < 0] - 0.01)
        weights = rng.lognormal(0, 1, len(codes))
        turnover_split = np.floor(row.turnover_cny * weights / weights.sum())
        turnover_split[0] += row.turnover_cny - turnover_split.sum()
        stock_rows.append(
            pd.DataFrame(
                {
                    "date": day.isoformat(),
                    "stock_code": codes,
                    "close": close,
                    "previous_close": previous,
                    "volume": (turnover_split / close).round(0),
                    "turnover_cny": turnover_split,
                }
            )
        )
    write_csv(pd.concat(stock_rows, ignore_index=True), "cn/stock_bars")


def defi(days: list[date]) -> None:
    """Protocol TVL with categories, and stablecoin supply, per UTC day (all but TOTAL synthetic)."""
    rows = []
    for protocol, category, last in PROTOCOLS:
        tvl = walk_back(rng_for(protocol), last, len(days), 0.025)
        rows.append(
            pd.DataFrame(
                {
                    "date": [d.isoformat() for d in days],
                    "protocol": protocol,
                    "category": category,
                    "tvl_usd": tvl.round(0),
                }
            )
        )
    write_csv(pd.concat(rows, ignore_index=True), "defi/protocols")
    coins = []
    for symbol, last in STABLECOINS_LAST.items():
        supply = walk_back(rng_for(symbol), last, len(days) - 1, 0.002)
        supply = np.append(supply, supply[-1] * (1 + rng_for(symbol + "+").normal(0, 0.002)))
        coins.append(
            pd.DataFrame(
                {
                    "date": [d.isoformat() for d in days],
                    "symbol": symbol,
                    "circulating_usd": supply.round(0),
                }
            )
        )
    write_csv(pd.concat(coins, ignore_index=True), "defi/stablecoins")


def main() -> None:
    for code, market in markets().items():
        last = CRYPTO_LAST if code == "crypto" else EQUITY_LAST
        calendar = sessions(
            market.calendar, last - timedelta(days=SESSIONS * 2), last + timedelta(1)
        )
        session_dates = list(calendar["session_date"])[-SESSIONS:]
        for instrument in instruments(code):
            frame = synthetic_bars(
                instrument.instrument_id,
                session_dates,
                DAILY_VOLATILITY[instrument.asset_class],
                TYPICAL_VOLUME[code],
            )
            path = DEMO_DIR / f"{instrument.instrument_id}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            print(f"{path.relative_to(DEMO_DIR)}: {len(frame)} sessions to {session_dates[-1]}")
        if code == "cn":
            breadth(session_dates)
    defi([CRYPTO_LAST - timedelta(days=n) for n in range(SESSIONS - 1, -1, -1)])


if __name__ == "__main__":
    main()
