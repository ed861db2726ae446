"""The failure kinds real networks give, shared by every fake transport (issue 11, item 4).

Empty and partial answers are not here: they are data, and each fake takes them as its bodies.
"""

from enum import StrEnum


class Failure(StrEnum):
    TIMEOUT = "timeout"
    RESET = "connection reset"
    RATE_LIMITED = "HTTP 429"
    RATE_LIMITED_RETRY_AFTER = "HTTP 429 with Retry-After"
    REFUSED_451 = "HTTP 451"
    REFUSED_403 = "HTTP 403"
    SERVER_ERROR = "HTTP 5xx"
    HTML = "HTML instead of JSON"
    TRUNCATED = "body cut off in transfer"
    GARBLED = "JSON cut short"


RETRY_AFTER_SECONDS = 7  # what RATE_LIMITED_RETRY_AFTER asks for: longer than the first backoff
