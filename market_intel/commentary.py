"""Optional LLM commentary: a short narrative written from the report's JSON facts.

Only runs when an OpenAI-compatible endpoint is configured (``MARKET_INTEL_LLM_BASE_URL``). A
narrative is kept only if every number it cites is one of the JSON's numbers, because a
fluent paragraph with one invented figure is worse than no paragraph. Any failure (HTTP error,
timeout, malformed answer, unsupported number) logs a warning and yields ``None``: the report is
complete without commentary. The API key is sent as a Bearer token and never logged.
See docs/commentary.md.
"""

import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

log = logging.getLogger("market_intel.commentary")

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Keys left out of what the model sees: the rendered prose (it restates the facts) and any
# commentary already present (the model must not build on an earlier narrative).
EXCLUDED_KEYS = ("sections", "commentary")

SYSTEM_PROMPT = (
    "You are a cross-market analyst writing the commentary of a daily Market Intelligence "
    "Report. The user sends the report's facts as JSON. Use only those facts: add nothing from "
    "memory, the news or outside knowledge. Cite every figure exactly as it appears in the JSON: "
    "returns are in per cent (-1.51 means -1.51%), spreads in basis points, money in its "
    "currency's units (you may write large amounts in billions or millions, e.g. 2286860000000 "
    "as 2,286.86 billion). Do not compute new figures: no sums, differences, averages, counts, "
    "ratios or conversions. Name the session date a figure belongs to, and say so when a market "
    "is stale or closed. The JSON decides every judgement once: call a divergence extreme only "
    "where its extreme is true, a stablecoin day an inflow or outflow only as its flow says "
    "(of the figure supply_change_usd names), and say markets moved with or against each other "
    "only as crypto_vs_equities.relation says; compare sessions of different dates only by "
    "naming both dates. Write 120 to 200 words of plain text in one or two paragraphs, without "
    "headings, lists or Markdown. Do not give investment advice, recommendations or forecasts."
)

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
# Dates are context, not figures: ISO (2026-03-20, 2026/03/20) and written (March 20, 2026;
# 20th March). Month names are matched case-sensitively so that "may" stays a verb.
_DATE = re.compile(
    r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}\b"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}(?:,?\s+\d{{4}})?\b"
)
_NUMBER = re.compile(
    r"""
    (?<![\w.])                                  # not the tail of a word, id or other number
    (?P<sign>[-+\u2212])?
    (?P<currency>(?:US|HK)?\$|[\u00a5\u20ac\u00a3])?
    (?P<sign_after_currency>[-+\u2212])?
    (?P<integer>\d{1,3}(?:,\d{3})+(?!\d)|\d+)
    (?:\.(?P<decimals>\d+))?
    (?P<unit>
        \s?%
      | \s(?:per\s?cent|percent|percentage\ points?)\b | \s?pp\b
      | \s?(?:bps|bp)\b | \sbasis\ points?\b
      | \s?(?P<scale_word>trillion|billion|million|thousand|tn|bn|mn)\b
      | \s?(?P<scale_letter>[tbmk])\b
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SCALES = {
    "trillion": 12,
    "tn": 12,
    "t": 12,
    "billion": 9,
    "bn": 9,
    "b": 9,
    "million": 6,
    "mn": 6,
    "m": 6,
    "thousand": 3,
    "k": 3,
}
_MONEY_KEY = re.compile(r"(?:^|_)(?:usd|cny)(?:$|_)", re.IGNORECASE)
_JSON_STRING_NUMBER = re.compile(r"[-\u2212]?\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass(frozen=True)
class CommentarySettings:
    """Where the narrative comes from: an OpenAI-compatible endpoint, configured only through
    the environment so that the key never sits in code, configuration files or run metadata."""

    base_url: str
    api_key: str | None
    model: str = DEFAULT_MODEL
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "CommentarySettings | None":
        """Settings from ``MARKET_INTEL_LLM_*``, or None when no endpoint is configured."""
        base_url = environ.get("MARKET_INTEL_LLM_BASE_URL", "").strip()
        if not base_url:
            return None
        timeout = environ.get("MARKET_INTEL_LLM_TIMEOUT_SECONDS", "").strip()
        try:
            timeout_seconds = float(timeout) if timeout else DEFAULT_TIMEOUT_SECONDS
        except ValueError:
            timeout_seconds = math.nan
        if not timeout_seconds > 0 or math.isinf(timeout_seconds):
            log.warning(
                "MARKET_INTEL_LLM_TIMEOUT_SECONDS=%r is not a positive number; using %s",
                timeout,
                DEFAULT_TIMEOUT_SECONDS,
            )
            timeout_seconds = DEFAULT_TIMEOUT_SECONDS
        return cls(
            base_url=base_url,
            api_key=environ.get("MARKET_INTEL_LLM_API_KEY", "").strip() or None,
            model=environ.get("MARKET_INTEL_LLM_MODEL", "").strip() or DEFAULT_MODEL,
            timeout_seconds=timeout_seconds,
        )

    def __repr__(self) -> str:
        key = None if self.api_key is None else "***"
        return (
            f"CommentarySettings(base_url={_redact_url(self.base_url)!r}, api_key={key!r}, "
            f"model={self.model!r}, timeout_seconds={self.timeout_seconds!r})"
        )

    @property
    def endpoint(self) -> str:
        """The chat-completions URL (``base_url`` already ends in ``/v1`` or similar); a query
        string such as an Azure-style ``?api-version=`` is kept."""
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))


@dataclass(frozen=True)
class _Citation:
    text: str  # as written
    value: Decimal  # as written, before any scale (2,286.86 billion -> 2286.86)
    places: int  # decimals written: the precision a JSON number must match at
    signed: bool  # an explicit sign must match; without one the magnitude is compared
    exponent: int  # 9 for billions, ...; 0 when unscaled


def _citations(text: str) -> Iterator[_Citation]:
    text = _DATE.sub(lambda m: " " * len(m.group()), text)
    for match in _NUMBER.finditer(text):
        end = match.end()
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            continue  # a label such as 24h, 60d, 3rd or 5x: a name or rank, not a figure
        sign = match["sign"] or match["sign_after_currency"]
        integer, decimals, unit = match["integer"], match["decimals"] or "", match["unit"]
        if (
            not (sign or match["currency"] or decimals or unit)
            and len(integer) == 4
            and 1900 <= int(integer) <= 2099
        ):
            continue  # a bare year
        scale = (match["scale_word"] or match["scale_letter"] or "").lower()
        value = Decimal(integer.replace(",", "") + ("." + decimals if decimals else ""))
        yield _Citation(
            text=match.group().strip(),
            value=-value if sign in ("-", "\u2212") else value,
            places=len(decimals),
            signed=sign is not None,
            exponent=_SCALES.get(scale, 0),
        )


def cited_numbers(text: str) -> list[str]:
    """The figures a narrative cites, as written ("-1.51%", "254 bps", "$68,918",
    "2,286.86 billion"): what has to be checked against the JSON. Dates, bare years and labels
    such as "60d" or "3rd" are not figures."""
    return [citation.text for citation in _citations(text)]


def _json_numbers(node: Any, money: bool = False) -> Iterator[tuple[Decimal, bool]]:
    """Every number in the JSON with whether it is a USD/CNY amount: numeric values, and the
    numbers inside strings and keys (a name such as "S&P 500", an id, "correlation_60d")."""
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, int | float):
        if math.isfinite(node):
            yield Decimal(str(node)), money
    elif isinstance(node, str):
        for found in _JSON_STRING_NUMBER.findall(_DATE.sub(" ", node)):
            yield Decimal(found.replace(",", "").replace("\u2212", "-")), False
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _json_numbers(str(key))
            yield from _json_numbers(value, money or bool(_MONEY_KEY.search(str(key))))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _json_numbers(item, money)


def _supported(citation: _Citation, numbers: list[tuple[Decimal, bool]]) -> bool:
    tolerance = Decimal(1).scaleb(-citation.places) / 2
    for number, money in numbers:
        if citation.exponent:
            if not money:
                continue  # billions, millions... are a display of money amounts only
            number = number.scaleb(-citation.exponent)
        if not citation.signed:
            number = abs(number)
        if abs(number - citation.value) <= tolerance:
            return True
    return False


def unsupported_numbers(text: str, facts: dict) -> list[str]:
    """The cited figures that match none of the JSON's numbers, as written.

    A citation matches a JSON number equal to it at the precision it is written (-1.5% matches
    -1.51), by magnitude unless it carries a sign ("fell 1.51%" matches -1.51, "+1.51%" does
    not), and, when scaled ("2,286.86 billion", "$48M"), only against USD/CNY amounts.
    """
    numbers = list(_json_numbers(facts))
    return [c.text for c in _citations(text) if not _supported(c, numbers)]


def _redact_url(url: str) -> str:
    """The URL without credentials or query string, safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _redact(text: str, settings: CommentarySettings) -> str:
    if settings.api_key:
        text = text.replace(settings.api_key, "***")
    return text.replace(settings.base_url, _redact_url(settings.base_url))


def _completion_text(response: requests.Response) -> tuple[str, str | None]:
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    if not isinstance(content, str) or not content.strip():
        raise ValueError("the completion has no text")
    model = body.get("model")
    return content.strip(), model if isinstance(model, str) and model else None


def write_commentary(
    report: dict,
    settings: CommentarySettings | None,
    session: requests.Session | None = None,
) -> dict | None:
    """``{"text", "model"}`` for the report, or None: without settings (no request is made), on
    any failure, or when the narrative cites a number the JSON does not hold. Never raises for
    the endpoint's faults, so that the report publishes with or without commentary."""
    if settings is None:
        return None
    facts = {key: value for key, value in report.items() if key not in EXCLUDED_KEYS}
    payload = {
        "model": settings.model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
        ],
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    endpoint = _redact_url(settings.endpoint)
    http = session or requests.Session()
    try:
        response = http.post(
            settings.endpoint, json=payload, headers=headers, timeout=settings.timeout_seconds
        )
    except requests.Timeout:
        log.warning(
            "LLM commentary skipped: %s did not answer within %ss",
            endpoint,
            settings.timeout_seconds,
        )
        return None
    except requests.RequestException as error:
        # The exception's text may hold the full URL; its type is enough to act on.
        log.warning(
            "LLM commentary skipped: request to %s failed (%s)", endpoint, type(error).__name__
        )
        return None
    finally:
        if session is None:
            http.close()
    if not response.ok:
        log.warning(
            "LLM commentary skipped: HTTP %s from %s: %s",
            response.status_code,
            endpoint,
            _redact(response.text, settings)[:300],
        )
        return None
    try:
        text, served_model = _completion_text(response)
    except (ValueError, LookupError, TypeError, AttributeError) as error:
        log.warning(
            "LLM commentary skipped: %s did not return a chat completion (%s: %s)",
            endpoint,
            type(error).__name__,
            _redact(str(error), settings)[:200],
        )
        return None
    unsupported = unsupported_numbers(text, facts)
    if unsupported:
        log.warning(
            "LLM commentary dropped: it cites numbers not in the report's JSON: %s",
            ", ".join(unsupported),
        )
        return None
    return {"text": text, "model": served_model or settings.model}
