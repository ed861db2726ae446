"""Per-stock A-share daily bars from baostock, the free source built for bulk history.

baostock speaks its own TCP protocol to one server (``public-api.baostock.com:10030``): a login,
then one request per stock that answers the whole range (paged by 2,000 rows). It does not ban
addresses the way Eastmoney does. Its client reports failures as error codes, prints instead of
raising, and waits forever on a dead socket, so ``Session`` adds what a backfill needs: a
timeout on the socket, end-of-stream raised instead of read in a loop, error codes turned into
exceptions (network codes retryable), and a fresh login after a network failure.
docs/feeds-akshare.md has the depth, units and failure behaviour.
"""

import contextlib
import io
import socket
from datetime import date, timedelta
from typing import Self

import pandas as pd

from market_intel.feeds import FeedError, RetryableError, require_columns

FEED = "baostock"
FUNCTION = "query_history_k_data_plus"
FIELDS = ("date", "code", "close", "preclose", "volume", "amount", "tradestatus")
UNADJUSTED = "3"
SOCKET_TIMEOUT = 30.0  # seconds for connect, send and every receive
NETWORK_ERROR_PREFIX = "10002"  # baostock's 1000200x codes: socket, connect, send, receive
NOT_LOGGED_IN = "10001001"
STOCK_BAR_COLUMNS = [
    "stock_code",
    "session_date",
    "close",
    "previous_close",
    "volume",
    "turnover_cny",
]


def baostock_code(stock_code: str) -> str:
    """``sh.600519`` / ``sz.000001``: baostock's code for a six-digit SSE or SZSE code."""
    return f"{'sh' if stock_code.startswith('6') else 'sz'}.{stock_code}"


def parse_daily_bars(frame: pd.DataFrame, stock_code: str) -> pd.DataFrame:
    """STOCK_BAR_COLUMNS from baostock's unadjusted daily rows (all cells are strings).

    Suspended days (``tradestatus`` 0) are rows with no trade: dropped, as in the live
    snapshot. ``preclose`` is the reference price the day's change is measured against;
    volume is in shares and ``amount`` in CNY.
    """
    if frame.empty:
        return pd.DataFrame(columns=STOCK_BAR_COLUMNS)
    require_columns(frame, FIELDS, FEED, f"cn/{stock_code}")
    traded = frame[frame["tradestatus"].astype(str).str.strip() == "1"]

    def number(column: str) -> pd.Series:
        return pd.to_numeric(traded[column], errors="coerce").astype("float64")

    bars = pd.DataFrame(
        {
            "stock_code": stock_code,
            "session_date": pd.to_datetime(traded["date"], errors="coerce").dt.date,
            "close": number("close"),
            "previous_close": number("preclose"),
            "volume": number("volume"),
            "turnover_cny": number("amount"),
        }
    )
    return bars.dropna(subset=["session_date", "close"]).reset_index(drop=True)


class EndOfStreamGuard:
    """The socket baostock is handed: an empty read (the server closed the connection) raises,
    where baostock's receive loop would otherwise spin on it forever."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def recv(self, size: int) -> bytes:
        chunk = self.sock.recv(size)
        if not chunk:
            raise ConnectionResetError("baostock server closed the connection mid-answer")
        return chunk

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """New sockets get ``seconds`` as timeout while the block runs (baostock sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class Session:
    """One baostock login for a backfill: ``daily_bars`` per stock, ``close`` at the end."""

    def __init__(self) -> None:
        self.logged_in = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def daily_bars(self, stock_code: str, start: date, end: date) -> pd.DataFrame:
        """The stock's unadjusted daily rows in ``[start, end)`` as baostock returns them."""
        import baostock as bs

        instrument = f"cn/{stock_code}"
        self._login(instrument)
        result, printed = self._quietly(
            bs.query_history_k_data_plus,
            baostock_code(stock_code),
            ",".join(FIELDS),
            start_date=start.isoformat(),
            end_date=(end - timedelta(days=1)).isoformat(),
            frequency="d",
            adjustflag=UNADJUSTED,
        )
        self._check(result, instrument, f"{FUNCTION} {start}..{end}", printed)
        rows, printed = self._quietly(self._all_rows, result)
        self._check(result, instrument, f"{FUNCTION} {start}..{end} (next page)", printed)
        return pd.DataFrame(rows, columns=result.fields if rows else list(FIELDS))

    def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        if not self.logged_in:
            return
        import baostock as bs

        self.logged_in = False
        with contextlib.suppress(Exception):
            self._quietly(bs.logout)

    def _login(self, instrument: str) -> None:
        import baostock as bs
        from baostock.common import context

        if self.logged_in:
            return
        with socket_timeout(SOCKET_TIMEOUT):
            result, printed = self._quietly(bs.login)
        self._check(result, instrument, "login", printed)
        context.default_socket = EndOfStreamGuard(context.default_socket)
        self.logged_in = True

    def _check(self, result: object, instrument: str, what: str, printed: str) -> None:
        """Raise on a baostock error code; a network failure also ends this login."""
        code = getattr(result, "error_code", None)
        if code == "0":
            return
        message = f"{what}: error {code} {getattr(result, 'error_msg', '')} {printed}".strip()
        if code is None or code.startswith(NETWORK_ERROR_PREFIX) or code == NOT_LOGGED_IN:
            self._drop_connection()
            raise RetryableError(f"[{FEED}] {instrument}: {message}")
        raise FeedError(FEED, instrument, message)

    def _drop_connection(self) -> None:
        """Forget a broken login: the next call connects and logs in again."""
        from baostock.common import context

        self.logged_in = False
        with contextlib.suppress(Exception):
            context.default_socket.close()

    @staticmethod
    def _all_rows(result) -> list[list[str]]:
        """Every row, following baostock's pages (its ``get_data`` uses a removed pandas API)."""
        rows = []
        while result.error_code == "0" and result.next():
            rows.append(result.get_row_data())
        return rows

    @staticmethod
    def _quietly(function, *args, **kwargs):
        """Call a baostock function, keeping what it prints for the error message."""
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = function(*args, **kwargs)
        return result, " ".join(printed.getvalue().split())
