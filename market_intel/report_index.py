"""Around the reports (docs/report.md, "Around the reports"): the index of every report date
(``index.html`` for readers, ``index.json`` for programs) and an Atom feed of the latest
published reports (``feed.xml``), all in the reports folder.

Pure functions over the reports folder and the run's outcome, no Dagster. A date is published
when its ``R.json`` exists; a blocked date writes no report, so ``index.json`` is also the
record of blocked dates and their one-line cause, kept from run to run until a run publishes
the date. Every file is rewritten whole and atomically; the reports themselves are never
touched. Same folder and outcome, same bytes: dates, never the wall clock, date the feed.
"""

import json
import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from html import escape
from pathlib import Path
from typing import Any

from market_intel.delivery_content import headline
from market_intel.reporting import report_title

INDEX_HTML = "index.html"
INDEX_JSON = "index.json"
FEED_XML = "feed.xml"
# The feed carries the latest FEED_ENTRIES published reports, newest first.
FEED_ENTRIES = 30
FEED_TITLE = "Market Intelligence Report"
# Atom ids (RFC 4151 tag URIs): stable per date whatever the folder or the server.
FEED_ID = "tag:market-intel,2026:reports"
ENTRY_ID = "tag:market-intel,2026:report/{report_date}"
SUFFIXES = ("html", "md", "json")
PUBLISHED, BLOCKED = "published", "blocked"
# Characters XML 1.0 cannot carry even escaped (control characters from a hostile feed).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REPORT_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.json")


def report_file(report_date: str, suffix: str) -> str:
    """A report's file name in the reports folder, which is also its relative URL."""
    return f"{report_date}.{suffix}"


def neighbour_dates(report_date: str) -> tuple[str, str]:
    """The calendar days before and after a report date (a report exists for every day the
    gate passes)."""
    day = date.fromisoformat(report_date)
    return (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class IndexEntry:
    """One report date of the index. ``cause``: why the latest run of the date was blocked
    (for a published date: a run after the one that wrote its files), else empty."""

    report_date: str
    status: str
    title: str
    headline: str
    cause: str
    files: tuple[str, ...]


def blocked_cause(reasons: list[str]) -> str:
    """The gate's first finding on one line, with how many more there are."""
    lines = [line for reason in reasons for line in str(reason).splitlines() if line.strip()]
    if not lines:
        return "blocked"
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return _one_line(lines[0]) + more


def read_index(directory: Path) -> dict[str, dict[str, Any]]:
    """The entries of the folder's previous ``index.json`` by date; none when absent or
    unreadable (it is rebuilt from the reports, less the causes of earlier blocked dates)."""
    try:
        entries = json.loads((directory / INDEX_JSON).read_text(encoding="utf-8"))["reports"]
        return {entry["report_date"]: entry for entry in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def index_summary(report: dict[str, Any]) -> dict[str, str]:
    """What the index keeps of a report written in this run (a range run holds one per date,
    not the whole reports)."""
    day = str(report["report_date"])
    return {
        "report_date": day,
        "title": report.get("title") or report_title(day, "live"),
        "headline": headline(report),
    }


def published_entry(report: dict[str, Any], files: tuple[str, ...], cause: str) -> IndexEntry:
    """The entry of a published date, from its report or its ``index_summary``."""
    day = str(report["report_date"])
    title = report.get("title") or report_title(day, "live")
    return IndexEntry(day, PUBLISHED, _one_line(title), headline(report), cause, files)


def index_entries(
    directory: Path, published: dict[str, dict[str, Any]], blocked: dict[str, str]
) -> list[IndexEntry]:
    """Every report date of the folder, oldest first. ``published``: the reports this run
    wrote (or their ``index_summary``), by date; ``blocked``: this run's blocked dates and their cause. A date with a
    report file is published; the others are the blocked dates of this run and earlier ones."""
    names = {path.name for path in directory.iterdir()} if directory.is_dir() else set()
    previous = read_index(directory)
    entries = {}
    for day in sorted(m.group(1) for m in map(_REPORT_NAME.fullmatch, names) if m):
        files = tuple(report_file(day, s) for s in SUFFIXES if report_file(day, s) in names)
        earlier = previous.get(day, {})
        cause = blocked.get(day) or ("" if day in published else earlier.get("cause", ""))
        if day in published:
            entries[day] = published_entry(published[day], files, cause)
        elif earlier.get("status") == PUBLISHED and earlier.get("headline"):
            title = earlier.get("title") or report_title(day, "live")
            entries[day] = IndexEntry(day, PUBLISHED, title, earlier["headline"], cause, files)
        else:
            report = json.loads((directory / report_file(day, "json")).read_text("utf-8"))
            entries[day] = published_entry(report, files, cause)
    earlier_blocked = {
        day: entry.get("cause", "")
        for day, entry in previous.items()
        if entry.get("status") == BLOCKED
    }
    for day, cause in {**earlier_blocked, **blocked}.items():
        if day not in entries:
            entries[day] = IndexEntry(day, BLOCKED, report_title(day, "live"), "", cause, ())
    return [entries[day] for day in sorted(entries)]


def render_index_json(entries: list[IndexEntry]) -> str:
    """index.json: every report date, oldest first, for programs (and the next run)."""
    reports = [{**asdict(entry), "files": list(entry.files)} for entry in entries]
    return json.dumps({"reports": reports}, indent=2, ensure_ascii=False) + "\n"


_INDEX_CSS = (
    ":root{color-scheme:light dark}"
    "body{margin:0 auto;max-width:60rem;padding:1rem;"
    'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}'
    "table{border-collapse:collapse;width:100%}"
    "th,td{padding:.4rem .6rem;text-align:left;vertical-align:top;"
    "border-bottom:1px solid #d1d9e0}"
    "td.date{white-space:nowrap}.blocked{color:#c5221f}.files a{margin-right:.5rem}"
)


def _index_row(entry: IndexEntry) -> str:
    day = _h(entry.report_date)
    if entry.status == PUBLISHED:
        status = "published"
        text = _h(entry.headline)
        if entry.cause:
            text += f'<br><span class="blocked">Latest run blocked: {_h(entry.cause)}</span>'
    else:
        status = '<span class="blocked">blocked</span>'
        text = f'<span class="blocked">{_h(entry.cause)}</span>'
    links = "".join(
        f'<a href="{_h(name)}">{_h(name.rsplit(".", 1)[1])}</a>' for name in entry.files
    )
    date_cell = f'<a href="{_h(report_file(entry.report_date, "html"))}">{day}</a>'
    if report_file(entry.report_date, "html") not in entry.files:
        date_cell = day
    return (
        f'<tr id="r{day}"><td class="date">{date_cell}</td><td>{status}</td>'
        f'<td>{text}</td><td class="files">{links}</td></tr>'
    )


def render_index_html(entries: list[IndexEntry]) -> str:
    """index.html: every report date, newest first, published with its headline or blocked
    with its cause, and links to its files. Self-contained, no script."""
    rows = [_index_row(entry) for entry in reversed(entries)]
    published = sum(entry.status == PUBLISHED for entry in entries)
    summary = f"{published} published, {len(entries) - published} blocked."
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{FEED_TITLE}: all reports</title>",
            f'<link rel="alternate" type="application/atom+xml" href="{FEED_XML}">',
            f"<style>{_INDEX_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{FEED_TITLE}: all reports</h1>",
            f'<p>{summary} For programs: <a href="{INDEX_JSON}">{INDEX_JSON}</a>. '
            + f'Feed: <a href="{FEED_XML}">{FEED_XML}</a>.</p>',
            "<table><thead><tr><th>Report date</th><th>Status</th><th>Headline or cause</th>"
            + "<th>Files</th></tr></thead><tbody>",
            *rows,
            "</tbody></table>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _atom_time(report_date: str) -> str:
    """An entry's time: the start of its report date in UTC, never the wall clock."""
    return f"{report_date}T00:00:00Z"


def _url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/{name}" if base_url else name


def render_feed(entries: list[IndexEntry], limit: int = FEED_ENTRIES, base_url: str = "") -> str:
    """feed.xml: the latest ``limit`` published reports, newest first, as Atom. Links are
    relative to the feed (in the reports folder) unless ``base_url`` says where it is served."""
    latest = [entry for entry in entries if entry.status == PUBLISHED][::-1][:limit]
    updated = _atom_time(latest[0].report_date if latest else "1970-01-01")
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"  <id>{FEED_ID}</id>",
        f"  <title>{FEED_TITLE}</title>",
        f"  <updated>{updated}</updated>",
        "  <author><name>market-intel</name></author>",
        f'  <link rel="self" href="{_x(_url(base_url, FEED_XML))}"/>',
        f'  <link rel="alternate" type="text/html" href="{_x(_url(base_url, INDEX_HTML))}"/>',
    ]
    for entry in latest:
        day = entry.report_date
        html_url = _url(base_url, report_file(day, "html"))
        lines += [
            "  <entry>",
            f"    <id>{_x(ENTRY_ID.format(report_date=day))}</id>",
            f"    <title>{_x(entry.title)}</title>",
            f"    <updated>{_x(_atom_time(day))}</updated>",
            f'    <link rel="alternate" type="text/html" href="{_x(html_url)}"/>',
            f"    <summary>{_x(entry.headline)}</summary>",
            "  </entry>",
        ]
    lines.append("</feed>")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> Path:
    """Write beside, then rename: a reader never sees half a file, a failure leaves the old."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def update_index(
    directory: Path,
    published: dict[str, dict[str, Any]],
    blocked: dict[str, str],
    base_url: str = "",
    feed_entries: int = FEED_ENTRIES,
) -> dict[str, Path]:
    """Rewrite index.json, index.html and feed.xml after a run; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = index_entries(directory, published, blocked)
    return {
        "index_json": write_atomic(directory / INDEX_JSON, render_index_json(entries)),
        "index_html": write_atomic(directory / INDEX_HTML, render_index_html(entries)),
        "feed": write_atomic(directory / FEED_XML, render_feed(entries, feed_entries, base_url)),
    }


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", _NOT_XML.sub("", str(text))).strip()


def _h(text: Any) -> str:
    return escape(_one_line(text), quote=True)


def _x(text: Any) -> str:
    """Text for XML content or attributes: escaped, and without characters XML forbids."""
    return escape(_NOT_XML.sub("", str(text)), quote=True)
