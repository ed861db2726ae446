"""The replay format (design.md): one CSV per instrument, ``<replay_dir>/<instrument-id>.csv``.

``demo`` mode is this same reader over the sample data shipped in ``sample_data/demo``.
"""

from pathlib import Path

import pandas as pd

from market_intel.feeds import BAR_COLUMNS, SchemaDriftError

REQUIRED_COLUMNS = ("date", "close")
# Read as text: stock codes keep their leading zeros (000001), names stay names.
TEXT_COLUMNS = {name: str for name in ("date", "stock_code", "protocol", "category", "symbol")}


def replay_path(replay_dir: Path, name: str) -> Path:
    """The file of an instrument id (``us/GSPC`` -> ``us/GSPC.csv``) or feed (``cn/breadth``)."""
    return Path(replay_dir) / f"{name}.csv"


def read_csv(path: Path, required: tuple[str, ...], feed: str, instrument: str) -> pd.DataFrame:
    """A replay CSV with its required columns checked; empty optional cells become NaN."""
    frame = pd.read_csv(path, dtype=TEXT_COLUMNS)
    if not set(required) <= set(frame.columns):
        raise SchemaDriftError(feed, instrument, required, frame.columns)
    return frame


def parse_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Bars from a replay CSV: ``date`` becomes ``session_date``; missing OHLV columns are NaN."""
    bars = frame.rename(columns={"date": "session_date"}).reindex(columns=BAR_COLUMNS)
    bars["session_date"] = pd.to_datetime(bars["session_date"], format="ISO8601").dt.date
    return bars


def read_bars(replay_dir: Path, instrument_id: str, feed: str) -> pd.DataFrame | None:
    """The instrument's bars, or ``None`` when the replay provides no file for it."""
    path = replay_path(replay_dir, instrument_id)
    if not path.exists():
        return None
    return parse_bars(read_csv(path, REQUIRED_COLUMNS, feed, instrument_id))
