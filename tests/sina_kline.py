"""Sina's JS-encoded daily klines, written the way akshare's decoder (``hk_js_decode`` in
akshare/stock/cons.py, run in a V8) reads them, so tests serve Sina a body, not a frame.

The decoder reads a bit stream from a base-64 alphabet, least significant bit first: a 12-bit
format number (1479 is the daily OHLCV format), a 6-bit check (63), then the precision, the day
before the first bar (days after 1990-12-19, signed), two width bases, and per bar a control
word, optional controls (field widths, weekdays skipped) and five fields: open minus the
previous close, high minus open, open minus low, close minus open, and the change in volume.
Dates step over weekends by themselves; holidays are steps of more than one weekday.
"""

from datetime import date, timedelta

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
EPOCH = date(1990, 12, 19)
DAILY_FORMAT, CHECK = 1479, 63
BASE = 7  # both width bases; a bar's widths are 3 x (base + the 3-bit control)
PRICE_WIDTH, VOLUME_WIDTH = 10, 14  # in units of 3 bits: 30-bit prices, 42-bit volume changes
SET_WIDTHS, SKIP_DAYS, CONTROLS = 63, 0, 32


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, width: int) -> None:
        """``value`` in ``width`` bits, two's complement, least significant bit first."""
        value &= (1 << width) - 1
        self.bits += [(value >> position) & 1 for position in range(width)]

    def text(self) -> str:
        assert len(self.bits) % 6 == 0, "every bar of this format fills whole characters"
        chunks = (self.bits[i : i + 6] for i in range(0, len(self.bits), 6))
        return "".join(ALPHABET[sum(bit << n for n, bit in enumerate(chunk))] for chunk in chunks)


def weekdays_after(first: date, last: date) -> int:
    """Weekdays in ``(first, last]``: the steps the decoder takes from one bar to the next."""
    return sum((first + timedelta(days=n)).weekday() < 5 for n in range(1, (last - first).days + 1))


def encode(bars: list[tuple[date, float, float, float, float, int]], precision: int = 3) -> str:
    """The encoded string for ``(date, open, high, low, close, volume)`` bars, oldest first."""
    out = BitWriter()
    out.put(DAILY_FORMAT, 12)
    out.put(CHECK, 6)
    out.put(precision, 6)
    day_before = bars[0][0] - timedelta(days=1)
    while day_before.weekday() >= 5:
        day_before -= timedelta(days=1)
    out.put((day_before - EPOCH).days + 1, 18)
    out.put(BASE, 3)
    out.put(BASE, 3)
    scale, close, volume = 10**precision, 0, 0
    for n, (day, open_, high, low, close_, volume_) in enumerate(bars):
        steps = weekdays_after(day_before, day)
        if n == 0:  # set the field widths for every bar
            out.put(CONTROLS, 6)
            out.put(SET_WIDTHS, 6)
            out.put(PRICE_WIDTH - BASE, 3)
            out.put(VOLUME_WIDTH - BASE, 3)
            assert steps == 1
        elif steps > 1:  # a holiday: skip weekdays
            out.put(CONTROLS, 6)
            out.put(SKIP_DAYS, 6)
            out.put(steps, 6)
        else:
            out.put(0, 6)
        o, h, low_, c = (round(price * scale) for price in (open_, high, low, close_))
        for value in (o - close, h - o, o - low_, c - o):
            out.put(value, 3 * PRICE_WIDTH)
        out.put(volume_ - volume, 3 * VOLUME_WIDTH)
        close, volume, day_before = c, volume_, day
    return out.text()


def body(bars: list[tuple[date, float, float, float, float, int]]) -> str:
    """The JS file Sina serves: one variable holding the encoded string."""
    return f'var KLC_KL="{encode(bars)}";\n'
