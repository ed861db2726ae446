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

# The waits of a feed that retries a kind once and then is served: the first backoff (2 s), or the
# longer Retry-After the answer asks for. Refusals and empty answers are not retried.
RETRIED: dict[Failure, list[float]] = {
    Failure.TIMEOUT: [2.0],
    Failure.RESET: [2.0],
    Failure.RATE_LIMITED: [2.0],
    Failure.RATE_LIMITED_RETRY_AFTER: [float(RETRY_AFTER_SECONDS)],
    Failure.SERVER_ERROR: [2.0],
    Failure.HTML: [2.0],
    Failure.TRUNCATED: [2.0],
    Failure.GARBLED: [2.0],
}
