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

from assets.calendars import sessions
from assets.universe import instruments, markets

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


if __name__ == "__main__":
    main()
