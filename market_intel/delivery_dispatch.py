"""Delivery through Apprise (docs/delivery.md): targets whose secrets stay out of sight, one send
with bounded retries, the rules of what is sent when, and the DuckDB ledger of every attempt.

A target's URL is a secret: it lives in ``Target.url`` (left out of its repr) and goes to Apprise
only. Everything shown, logged or stored names the target by Apprise's privacy form of the URL
(``url(privacy=True)``, built for logs) and Apprise's ``url_id``.
"""

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import apprise
import duckdb
from apprise.utils.parse import parse_urls

from market_intel.delivery_content import (
    Limits,
    alert_line,
    chat_note,
    email_html,
    email_subject,
    note_title,
    report_link,
    shorten,
)

NOTE = "note"
ALERT = "alert"
SENT = "sent"
FAILED = "failed"
BACKFILL_POLICIES = ("latest", "all", "none")
LEDGER = "delivery.report_deliveries"
# Apprise's default body limit, which every e-mail service has and no chat service reaches.
EMAIL_MIN_BODY = 32768
# Room kept for the title where a service counts it against the body (Discord, Telegram).
TITLE_MARGIN = 8
ASSET = apprise.AppriseAsset(app_id="market-intel", app_desc="Market Intelligence Report")


@dataclass(frozen=True)
class Target:
    """One Apprise URL, named by what is safe to show."""

    url: str = field(repr=False)
    label: str
    target_id: str
    plugin: Any = field(repr=False, compare=False, default=None)

    @property
    def service(self) -> str:
        return self.plugin.service_name if self.plugin is not None else "invalid"

    @property
    def is_email(self) -> bool:
        """An e-mail service: HTML is its plugin's first format and its body limit holds a report.

        Apprise has no service category; among its plugins exactly the e-mail ones (SMTP,
        SendGrid, Mailgun, SES, Office 365 ...) answer both (Telegram is HTML but 4096 long).
        The plugin's own formats, not the URL's ``format=``: an e-mail asked for text stays one
        (Apprise then turns the HTML into text for it)."""
        if self.plugin is None:
            return False
        formats = type(self.plugin).notify_format
        first = formats[0] if isinstance(formats, tuple) else formats
        return first == apprise.NotifyFormat.HTML and self.plugin.body_maxlen >= EMAIL_MIN_BODY

    def limits(self, title: str) -> Limits:
        """The body this service takes once Apprise has placed ``title`` (in the body when the
        service has no title field or counts it against the body)."""
        if self.plugin is None:
            return Limits(0)
        chars, lines = self.plugin.body_maxlen, self.plugin.body_max_line_count
        if self.plugin.title_maxlen <= 0 or self.plugin.overflow_amalgamate_title:
            chars -= len(title) + TITLE_MARGIN
            lines = max(lines - 1, 1) if lines else 0
        return Limits(chars, lines)


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    body_format: str = apprise.NotifyFormat.TEXT.value
    attach: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attempt:
    """One call to one target: a row of the ledger."""

    report_date: date
    kind: str
    target: str
    target_id: str
    service: str
    attempt: int
    outcome: str
    message_id: str
    error: str
    attempted_at: datetime


def parse_targets(urls: str) -> list[Target]:
    """The targets of a comma-separated list of Apprise URLs (Apprise's own splitting, so a
    comma inside a URL, e.g. ``to=a@x.org,b@x.org``, stays in it). A value Apprise cannot
    load, or text it would drop, stays a target without a plugin: delivery names it and fails."""
    found = parse_urls(urls)
    rest = urls
    for url in found:
        rest = rest.replace(url, " ", 1)
    if found and re.sub(r"[\s,;]+", "", rest):
        found.append(rest.strip())
    targets = []
    for number, url in enumerate(found, start=1):
        plugin = apprise.Apprise.instantiate(url, asset=ASSET) if "://" in url else None
        if plugin is None:
            targets.append(Target(url, f"target {number} (not a URL Apprise can load)", ""))
            continue
        label = plugin.url(privacy=True)
        targets.append(Target(url, label, plugin.url_id() or "", plugin))
    return targets


def scrub(text: str, target: Target) -> str:
    """``text`` without any piece of the target's URL that its privacy form does not show."""
    shown = unquote(target.label)
    pieces = {p for p in re.split(r"[/:@?&=#,;+\s]+", unquote(target.url)) if len(p) >= 3}
    for piece in sorted((p for p in pieces if p not in shown), key=len, reverse=True):
        text = text.replace(piece, "****")
    return text


def new_message_id(report_date: date, kind: str) -> str:
    """The id a note carries (its last line, or the e-mail's footer) and its ledger rows keep:
    Apprise does not return the services' own message ids."""
    return f"mi-{report_date.isoformat()}-{kind}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ReportFiles:
    """A published report's files (``ReportPublisher`` writes them)."""

    reports_dir: Path
    report_date: date

    def path(self, suffix: str) -> Path:
        return self.reports_dir / f"{self.report_date.isoformat()}.{suffix}"

    @property
    def published(self) -> bool:
        return all(self.path(suffix).exists() for suffix in ("md", "html", "json"))

    def report(self) -> dict[str, Any]:
        return json.loads(self.path("json").read_text(encoding="utf-8"))


def note_message(target: Target, files: ReportFiles, base_url: str, message_id: str) -> Message:
    """E-mail: the HTML report inline, its Markdown attached. Chat: the short note."""
    report = files.report()
    if target.is_email:
        html = email_html(files.path("html").read_text(encoding="utf-8"), message_id)
        return Message(
            email_subject(report),
            html,
            apprise.NotifyFormat.HTML.value,
            (str(files.path("md")),),
        )
    title = note_title(report)
    link = report_link(files.report_date, base_url, str(files.path("html")))
    return Message(title, chat_note(report, link, message_id, target.limits(title)))


def alert_message(target: Target, report_date: date, cause: str, more_blocked: int) -> Message:
    """The alert line; an e-mail has it as its subject too."""
    line = alert_line(report_date, cause, more_blocked)
    if target.is_email:
        return Message(line, line)
    return Message("", shorten(line, target.limits("").chars) if target.plugin else line)


def notify_once(target: Target, message: Message) -> str:
    """Send once: '' when the service accepted it, else Apprise's reason, secrets scrubbed."""
    if target.plugin is None:
        return "not a URL Apprise can load"
    sender = apprise.Apprise(asset=ASSET)
    sender.add(target.plugin)
    attach = apprise.AppriseAttachment(list(message.attach), asset=ASSET) or None
    result = sender.notify(
        body=message.body, title=message.title, body_format=message.body_format, attach=attach
    )
    if result:
        return ""
    reasons = "; ".join(dict.fromkeys(entry.message for entry in result.logs()))
    return scrub(reasons or f"{target.service} did not accept the message", target)


def send(
    target: Target,
    message: Message,
    report_date: date,
    kind: str,
    message_id: str,
    retries: int,
    first_delay: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Attempt]:
    """Up to ``1 + retries`` attempts, waiting ``first_delay`` seconds, doubled after each
    failure; every attempt is returned for the ledger."""
    attempts = []
    for number in range(1, retries + 2):
        error = notify_once(target, message)
        attempts.append(
            Attempt(
                report_date,
                kind,
                target.label,
                target.target_id,
                target.service,
                number,
                FAILED if error else SENT,
                message_id,
                error,
                datetime.now(UTC).replace(tzinfo=None),
            )
        )
        if not error or number > retries:
            break
        sleep(first_delay * 2 ** (number - 1))
    return attempts


def dates_to_deliver(published: list[date], run_dates: int, policy: str) -> list[date]:
    """Which published dates of a run get their note: all of a one-date run; of a range
    (backfill), per ``policy``: ``latest`` (the latest published date), ``all`` or ``none``."""
    if policy not in BACKFILL_POLICIES:
        raise ValueError(
            f"MARKET_INTEL_NOTIFY_BACKFILL={policy!r}: expected one of {BACKFILL_POLICIES}"
        )
    if run_dates <= 1 or policy == "all":
        return sorted(published)
    if policy == "none":
        return []
    return sorted(published)[-1:]


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def ensure_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS delivery")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} ("
        "report_date DATE NOT NULL, kind VARCHAR NOT NULL, target VARCHAR NOT NULL, "
        "target_id VARCHAR NOT NULL, service VARCHAR NOT NULL, attempt INTEGER NOT NULL, "
        "outcome VARCHAR NOT NULL, message_id VARCHAR NOT NULL, error VARCHAR, "
        "run_id VARCHAR, attempted_at TIMESTAMP NOT NULL)"
    )


def sent_before(
    conn: duckdb.DuckDBPyConnection, kind: str, dates: Iterable[date]
) -> set[tuple[date, str, str]]:
    """(date, target, target id) already delivered: a target is the same when both agree."""
    days = sorted(set(dates))
    if not days:
        return set()
    ensure_ledger(conn)
    rows = conn.execute(
        f"SELECT DISTINCT report_date, target, target_id FROM {LEDGER} "
        "WHERE kind = ? AND outcome = ? AND report_date BETWEEN ? AND ?",
        [kind, SENT, days[0], days[-1]],
    ).fetchall()
    return {tuple(row) for row in rows}


def was_sent(done: set[tuple[date, str, str]], report_date: date, target: Target) -> bool:
    return (report_date, target.label, target.target_id) in done


def record(conn: duckdb.DuckDBPyConnection, attempts: list[Attempt], run_id: str) -> None:
    """Append the attempts to the ledger, in one transaction."""
    if not attempts:
        return
    ensure_ledger(conn)
    conn.executemany(
        f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                a.report_date,
                a.kind,
                a.target,
                a.target_id,
                a.service,
                a.attempt,
                a.outcome,
                a.message_id,
                a.error,
                run_id,
                a.attempted_at,
            ]
            for a in attempts
        ],
    )


def history(conn: duckdb.DuckDBPyConnection, dates: Iterable[date], limit: int) -> list[Attempt]:
    """The ledger's latest ``limit`` attempts for ``dates``, newest first, from any run."""
    days = sorted(set(dates))
    if not days:
        return []
    ensure_ledger(conn)
    rows = conn.execute(
        "SELECT report_date, kind, target, target_id, service, attempt, outcome, message_id, "
        f"error, attempted_at FROM {LEDGER} WHERE report_date BETWEEN ? AND ? "
        "ORDER BY attempted_at DESC LIMIT ?",
        [days[0], days[-1], limit],
    ).fetchall()
    return [Attempt(*row) for row in rows]


def failures(attempts: list[Attempt]) -> list[Attempt]:
    """The last attempt of each (date, kind, target) that never got through."""
    last: dict[tuple, Attempt] = {}
    for attempt in attempts:
        last[(attempt.report_date, attempt.kind, attempt.target, attempt.target_id)] = attempt
    return [a for a in last.values() if a.outcome == FAILED]


def attempts_table(attempts: list[Attempt]) -> str:
    """The attempts as a Markdown table, for the UI; targets in their privacy form only."""
    lines = [
        "| date | kind | target | service | attempt | outcome | message id | error | at (UTC) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in attempts:
        cells = [
            a.report_date.isoformat(),
            a.kind,
            a.target,
            a.service,
            str(a.attempt),
            a.outcome,
            a.message_id,
            a.error or "",
            a.attempted_at.isoformat(timespec="seconds"),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
