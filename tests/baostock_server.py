"""A baostock server on the loopback, speaking baostock's wire protocol, so tests run the real
client (``baostock.util.socketutil``, ``security.history``) over a real socket.

A request is ``header + body + "\\x01" + crc32 + "\\n"``; the header is the client version, the
message type and the body length, joined by ``\\x01`` (21 characters). An answer is a header, a
body of ``\\x01``-joined fields, and the ``<![CDATA[]]>\\n`` end marker; k-line answers (type
96) carry their body zlib-compressed, its compressed length in the header. Read from
baostock 0.9.4: common/contants.py, util/socketutil.py, security/history.py,
login/loginout.py, data/resultset.py.
"""

import json
import socketserver
import threading
import zlib
from collections.abc import Callable

SPLIT = "\x01"
END = b"<![CDATA[]]>\n"
VERSION = "00.9.40"
LOGIN, LOGIN_ANSWER = "00", "01"
LOGOUT, LOGOUT_ANSWER = "02", "03"
KDATA, KDATA_ANSWER = "95", "96"

Answer = Callable[[list[str]], bytes | None]


def header(message_type: str, length: int) -> str:
    return f"{VERSION}{SPLIT}{message_type}{SPLIT}{length:010d}"


def plain(message_type: str, fields: list[str]) -> bytes:
    body = SPLIT.join(fields)
    return (header(message_type, len(body)) + body).encode("utf-8") + END


def compressed(message_type: str, fields: list[str]) -> bytes:
    packed = zlib.compress((SPLIT.join(fields) + "\n").encode("utf-8"))
    return header(message_type, len(packed)).encode("utf-8") + packed + END


def kdata_answer(request: list[str], fields: list[str], records: list[list[str]]) -> bytes:
    """A query_history_k_data_plus page: the request's paging, code, dates and flags echoed."""
    _, user, page, per_page, code, _, start, end, frequency, adjust = request
    data = json.dumps({"record": records}, ensure_ascii=False)
    return compressed(
        KDATA_ANSWER,
        [
            "0",
            "success",
            "query_history_k_data_plus",
            user,
            page,
            per_page,
            data,
            code,
            ",".join(fields),
            start,
            end,
            frequency,
            adjust,
        ],
    )


def kdata_error(request: list[str], code: str, message: str) -> bytes:
    return compressed(KDATA_ANSWER, [code, message])


class BaostockServer:
    """Answers logins and logouts, and each k-line request with ``answer_for(code)``'s next
    answer: a callable of the request fields returning bytes, or None to drop the connection
    after half an answer (a body cut short)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {}
        self.requests: list[list[str]] = []
        self.logins = 0
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while line := self.rfile.readline():
                    if not outer.serve(line.decode("utf-8"), self.wfile):
                        return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, stock: str, *answers: Answer) -> None:
        """Answers for a stock's requests in turn; the last one repeats."""
        self.answers[stock] = list(answers)

    def serve(self, line: str, out) -> bool:
        message_type = line[8:10]
        fields = line[21:].rstrip("\n").rsplit(SPLIT, 1)[0].split(SPLIT)
        if message_type == LOGIN:
            self.logins += 1
            out.write(plain(LOGIN_ANSWER, ["0", "success", "login", fields[1]]))
            return True
        if message_type == LOGOUT:
            out.write(plain(LOGOUT_ANSWER, ["0", "success", "logout", fields[1]]))
            return True
        assert message_type == KDATA, line
        self.requests.append(fields)
        queue = self.answers[fields[4].split(".")[1]]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        reply = answer(fields)
        if reply is None:
            whole = kdata_answer(fields, ["date"], [])
            out.write(whole[: len(whole) // 2])
            return False  # the handler returns: the server closes the connection
        out.write(reply)
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
