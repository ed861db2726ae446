"""What delivery sends (docs/delivery.md): the e-mail and the chat note of a published report,
and the one-line alert of a blocked date. Pure functions over the report's JSON and files: no
Dagster, no network. Text is plain; Apprise converts it to each service's format.
"""

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from market_intel.report_sections import pct, price

REPORT_TITLE = "Market Intelligence Report {report_date}"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Limits:
    """How much body a service takes: characters, and lines (0: no line limit)."""

    chars: int
    lines: int = 0


def headline(report: dict[str, Any]) -> str:
    """The report's own ``headline`` when its JSON has one, else the first sentence of its key
    insight: the section every report leads with."""
    if report.get("headline"):
        return one_line(str(report["headline"]))
    for block in _section(report, "key_insight").get("blocks", []):
        if block["type"] == "bullets" and block["items"]:
            return one_line(block["items"][0]).rstrip(".")
        if block["type"] == "paragraph" and block["text"]:
            return one_line(block["text"]).rstrip(".")
    return "report published"


def note_title(report: dict[str, Any]) -> str:
    return REPORT_TITLE.format(report_date=report["report_date"])


def email_subject(report: dict[str, Any]) -> str:
    """'Market Intelligence Report 2026-03-22: <headline>'."""
    return f"{note_title(report)}: {headline(report)}"


# The HTML report's links to the neighbouring dates and the index (report_html._pager): relative
# to the reports folder, so they lead nowhere from a mailbox.
PAGER = re.compile(r'<nav class="pager".*?</nav>\n?', re.DOTALL)


def email_html(report_html: str, message_id: str) -> str:
    """The published HTML report without its previous/next links, with one line naming the
    delivery before ``</body>``."""
    report_html = PAGER.sub("", report_html, count=1)
    footer = delivery_footer(message_id)
    position = report_html.lower().rfind("</body>")
    if position < 0:
        return report_html + footer
    return report_html[:position] + footer + report_html[position:]


def delivery_footer(message_id: str) -> str:
    return f'<p class="delivery-ref">Delivered by market-intel, ref {message_id}.</p>\n'


def level_lines(report: dict[str, Any]) -> list[str]:
    """One line per market: its status and session, then each instrument's close and return."""
    lines = []
    for market in report["markets"]:
        where = f"{market['name']} ({market['status']}, {market['session_date'] or 'no session'})"
        moves = ", ".join(
            f"{row.get('short_name') or row['name']} {price(row['close'])} "
            f"({pct(row['return_pct'])})"
            for row in market["instruments"]
        )
        lines.append(f"{where}: {moves}" if moves else where)
    return lines


def insight_lines(report: dict[str, Any]) -> list[str]:
    """The key insight's sentences, as bullets, but the one the headline already says."""
    said = headline(report)
    return [
        f"- {one_line(item)}"
        for block in _section(report, "key_insight").get("blocks", [])
        if block["type"] == "bullets"
        for item in block["items"]
        if one_line(item).rstrip(".") != said
    ]


def report_link(report_date: date, base_url: str, html_path: str) -> str:
    """Where the full report is read: under ``base_url`` when reports are served, else its file."""
    if base_url.strip():
        return f"{base_url.strip().rstrip('/')}/{report_date.isoformat()}.html"
    return html_path


def chat_note(report: dict[str, Any], link: str, message_id: str, limits: Limits) -> str:
    """The chat note: headline, levels, key insight, the delivery's ref and the link to the full
    report, cut to fit the service: the headline and the link always, then as many levels,
    insight and ref lines as fit."""
    groups = [
        ("Levels:", level_lines(report)),
        ("Key insight:", insight_lines(report)),
        ("", [f"ref {message_id}"]),
    ]
    return fit(headline(report), groups, f"Full report: {link}", limits)


def alert_line(report_date: date, cause: str, more_blocked: int = 0) -> str:
    """'report 2026-03-23 blocked: <cause>', one line."""
    line = f"report {report_date.isoformat()} blocked: {one_line(cause)}"
    if more_blocked:
        line += f" (and {more_blocked} more blocked date{'s' if more_blocked > 1 else ''})"
    return line


def fit(head: str, groups: list[tuple[str, list[str]]], footer: str, limits: Limits) -> str:
    """``head``, the groups' rows in order while they fit, and ``footer``, within ``limits``.

    Each group shows its title (if any) and the rows that fit; a group stops at its first row
    that does not fit (a table is never shown with a hole). ``head`` is shortened if even it
    and ``footer`` alone are too long; past that the text is cut at the limit.
    """
    gap = "\n" if limits.lines else "\n\n"
    head = shorten(head, limits.chars - len(footer) - len(gap))
    chosen: list[list[str]] = [[] for _ in groups]

    def render() -> str:
        parts = [head]
        parts += [
            "\n".join([title, *rows] if title else rows)
            for (title, _), rows in zip(groups, chosen)
            if rows
        ]
        return gap.join([*parts, footer])

    def fits(text: str) -> bool:
        return len(text) <= limits.chars and (
            not limits.lines or len(text.split("\n")) <= limits.lines
        )

    for rows, (_, candidates) in zip(chosen, groups):
        for row in candidates:
            rows.append(row)
            if not fits(render()):
                rows.pop()
                break
    return render()[: max(limits.chars, 0)]


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, marked with an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: width - 1].rstrip() + ELLIPSIS if width > 1 else ""


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _section(report: dict[str, Any], section_id: str) -> dict[str, Any]:
    return next((s for s in report.get("sections", []) if s["id"] == section_id), {})
