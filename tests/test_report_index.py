"""Around the reports: index.html/index.json of every report date, the Atom feed, the HTML's
previous/next links, and the demo marked as demo (market_intel/report_index.py,
docs/report.md "Around the reports"). Pure functions over report JSONs written to a temporary
folder, then the session's demo run."""

import importlib.metadata
import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from assets.report import PREVIEW_MAX_BYTES, preview
from market_intel.report_html import render_html
from market_intel.report_index import (
    FEED_ENTRIES,
    INDEX_JSON,
    index_entries,
    index_summary,
    neighbour_dates,
    render_feed,
    update_index,
)
from market_intel.reporting import render_markdown, report_title
from tests.conftest import DEMO_DATE, Pipeline

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = 'Crypto <script>alert(1)</script> & "quotes" ]]> \x01bell\x0b up'


def report(day: str, insight: str = "", source_mode: str = "replay") -> dict[str, Any]:
    """A report JSON as build_report writes it, reduced to what the index and pages read."""
    insight = insight or f"Insight of {day}: S&P 500 -1.51%."
    return {
        "report_date": day,
        "as_of_date": (date.fromisoformat(day) - timedelta(days=1)).isoformat(),
        "title": report_title(day, source_mode),
        "source_mode": source_mode,
        "markets": [],
        "sections": [
            {
                "id": "key_insight",
                "title": "Key Insight",
                "blocks": [{"type": "bullets", "items": [insight, "Second sentence."]}],
            }
        ],
    }


def publish(folder: Path, body: dict[str, Any]) -> dict[str, str]:
    """Write a report's three files as the report asset does; returns its index summary."""
    folder.mkdir(parents=True, exist_ok=True)
    day = body["report_date"]
    (folder / f"{day}.json").write_text(json.dumps(body, indent=2), encoding="utf-8")
    (folder / f"{day}.md").write_text(render_markdown(body), encoding="utf-8")
    (folder / f"{day}.html").write_text(render_html(body), encoding="utf-8")
    return index_summary(body)


class Rows(HTMLParser):
    """index.html's table rows: cells' text and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def index_rows(folder: Path) -> tuple[list[list[str]], list[str]]:
    parser = Rows()
    parser.feed((folder / "index.html").read_text(encoding="utf-8"))
    return [row for row in parser.rows if row], parser.links


def feed_entries(folder: Path) -> list[dict[str, str]]:
    root = ElementTree.fromstring((folder / "feed.xml").read_bytes())
    assert root.tag == f"{ATOM}feed"
    return [
        {
            "id": entry.findtext(f"{ATOM}id"),
            "title": entry.findtext(f"{ATOM}title"),
            "updated": entry.findtext(f"{ATOM}updated"),
            "link": entry.find(f"{ATOM}link").get("href"),
            "summary": entry.findtext(f"{ATOM}summary"),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


def test_index_lists_published_and_blocked_dates_with_links(tmp_path: Path) -> None:
    published = {d: publish(tmp_path, report(d)) for d in ("2026-03-20", "2026-03-22")}
    cause = "[ERROR] US is stale for report 2026-03-21: the calendar (XNYS) expects 2026-03-20"
    update_index(tmp_path, published, {"2026-03-21": cause})

    rows, links = index_rows(tmp_path)
    assert [row[:2] for row in rows] == [
        ["2026-03-22", "published"],
        ["2026-03-21", "blocked"],
        ["2026-03-20", "published"],
    ]
    assert rows[0][2] == "Insight of 2026-03-22: S&P 500 -1.51%"
    assert rows[1][2] == cause and rows[1][3] == ""
    for day in ("2026-03-20", "2026-03-22"):
        for suffix in ("md", "html", "json"):
            assert f"{day}.{suffix}" in links
    assert not any(link.startswith("2026-03-21") for link in links)  # a blocked date: no file
    assert all((tmp_path / link).exists() for link in links)
    recorded = json.loads((tmp_path / INDEX_JSON).read_text())["reports"]
    assert [(r["report_date"], r["status"], r["cause"]) for r in recorded] == [
        ("2026-03-20", "published", ""),
        ("2026-03-21", "blocked", cause),
        ("2026-03-22", "published", ""),
    ]
    assert not list(tmp_path.glob(".*.partial"))


def test_a_blocked_date_is_remembered_until_a_run_publishes_it(tmp_path: Path) -> None:
    update_index(tmp_path, {"2026-03-20": publish(tmp_path, report("2026-03-20"))}, {})
    update_index(tmp_path, {}, {"2026-03-21": "[ERROR] HK is stale"})
    # A later run of another date: the blocked date stays listed, from index.json.
    update_index(tmp_path, {"2026-03-22": publish(tmp_path, report("2026-03-22"))}, {})
    rows, _ = index_rows(tmp_path)
    assert [row[:3] for row in rows][1] == ["2026-03-21", "blocked", "[ERROR] HK is stale"]
    # The date published at last: the cause is gone.
    update_index(tmp_path, {"2026-03-21": publish(tmp_path, report("2026-03-21"))}, {})
    rows, _ = index_rows(tmp_path)
    assert [row[1] for row in rows] == ["published"] * 3
    assert "HK is stale" not in (tmp_path / "index.html").read_text()


def test_a_blocked_run_leaves_an_earlier_report_exactly_as_it_was(tmp_path: Path) -> None:
    update_index(tmp_path, {"2026-03-22": publish(tmp_path, report("2026-03-22"))}, {})
    before = {path.name: path.read_bytes() for path in tmp_path.glob("2026-*")}
    update_index(tmp_path, {}, {"2026-03-22": "[ERROR] US is stale (and 1 more)"})
    assert {path.name: path.read_bytes() for path in tmp_path.glob("2026-*")} == before
    rows, links = index_rows(tmp_path)
    assert rows[0][:2] == ["2026-03-22", "published"]
    assert "Latest run blocked: [ERROR] US is stale (and 1 more)" in rows[0][2]
    assert "2026-03-22.html" in links


def test_the_index_is_rebuilt_from_the_reports_without_index_json(tmp_path: Path) -> None:
    published = {d: publish(tmp_path, report(d)) for d in ("2026-03-20", "2026-03-21")}
    update_index(tmp_path, published, {})
    expected = (tmp_path / "index.html").read_bytes()
    (tmp_path / INDEX_JSON).unlink()
    update_index(tmp_path, {}, {})  # headlines read from each R.json
    assert (tmp_path / "index.html").read_bytes() == expected


def test_hostile_headlines_are_escaped_in_index_and_feed(tmp_path: Path) -> None:
    published = {"2026-03-22": publish(tmp_path, report("2026-03-22", HOSTILE))}
    update_index(tmp_path, published, {"2026-03-21": "[ERROR] <img src=x onerror=alert(1)>"})
    page = (tmp_path / "index.html").read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    rows, _ = index_rows(tmp_path)
    assert rows[0][2] == 'Crypto <script>alert(1)</script> & "quotes" ]]> bell up'
    assert rows[1][2] == "[ERROR] <img src=x onerror=alert(1)>"
    (entry,) = feed_entries(tmp_path)  # parses: control characters dropped, text escaped
    assert entry["summary"] == rows[0][2]


def test_feed_holds_the_latest_reports_newest_first_deterministically(tmp_path: Path) -> None:
    days = [(date(2025, 12, 1) + timedelta(days=i)).isoformat() for i in range(FEED_ENTRIES + 5)]
    published = {d: publish(tmp_path, report(d, source_mode="demo")) for d in reversed(days)}
    blocked = {"2026-01-10": "[ERROR] blocked"}
    update_index(tmp_path, published, blocked)
    entries = feed_entries(tmp_path)
    newest = [d for d in reversed(days) if d not in blocked][:FEED_ENTRIES]
    assert [e["id"] for e in entries] == [f"tag:market-intel,2026:report/{d}" for d in newest]
    assert [e["updated"] for e in entries] == [f"{d}T00:00:00Z" for d in newest]
    assert [e["link"] for e in entries] == [f"{d}.html" for d in newest]
    assert entries[0]["title"] == f"Market Intelligence Report — {newest[0]} (demo data)"
    assert entries[0]["summary"] == f"Insight of {newest[0]}: S&P 500 -1.51%"
    root = ElementTree.fromstring((tmp_path / "feed.xml").read_bytes())
    assert root.findtext(f"{ATOM}updated") == f"{newest[0]}T00:00:00Z"
    # Same folder, same bytes, whichever order the dates were written and indexed in.
    first = (tmp_path / "feed.xml").read_bytes()
    update_index(tmp_path, {}, {})
    assert (tmp_path / "feed.xml").read_bytes() == first
    served = render_feed(index_entries(tmp_path, {}, {}), 2, "https://reports.example/mi/")
    links = [e.get("href") for e in ElementTree.fromstring(served).iter(f"{ATOM}link")]
    assert links == [
        "https://reports.example/mi/feed.xml",
        "https://reports.example/mi/index.html",
        f"https://reports.example/mi/{newest[0]}.html",
        f"https://reports.example/mi/{newest[1]}.html",
    ]


def test_previous_and_next_links_do_not_depend_on_other_reports(tmp_path: Path) -> None:
    assert neighbour_dates("2026-01-01") == ("2025-12-31", "2026-01-02")
    assert neighbour_dates("2028-02-28") == ("2028-02-27", "2028-02-29")
    body = report("2026-03-22")
    alone = publish(tmp_path / "alone", body)
    page = (tmp_path / "alone" / "2026-03-22.html").read_text()
    publish(tmp_path / "crowd", report("2026-03-21"))
    publish(tmp_path / "crowd", body)
    publish(tmp_path / "crowd", report("2026-03-25"))
    assert (tmp_path / "crowd" / "2026-03-22.html").read_text() == page
    hrefs = re.findall(r'<nav class="pager"[^>]*>(.*?)</nav>', page)[0]
    assert re.findall(r'href="([^"]+)"', hrefs) == [
        "2026-03-21.html",
        "index.html",
        "2026-03-23.html",
    ]
    assert alone["headline"] == "Insight of 2026-03-22: S&P 500 -1.51%"


def test_ui_preview_beyond_its_size_is_the_key_insight_and_the_path(tmp_path: Path) -> None:
    body = report("2026-03-22")
    body["sections"].append(
        {"id": "long", "title": "Long", "blocks": [{"type": "paragraph", "text": "x" * 60_000}]}
    )
    markdown = render_markdown(body)
    short = preview(markdown, tmp_path / "2026-03-22.md")
    assert len(short.encode()) < PREVIEW_MAX_BYTES
    assert short.startswith("# Market Intelligence Report — 2026-03-22\n\n## Key Insight")
    assert "Insight of 2026-03-22" in short and "xxxx" not in short
    assert f"`{tmp_path / '2026-03-22.md'}`" in short
    small = render_markdown(report("2026-03-22"))
    assert preview(small, tmp_path / "2026-03-22.md") == small


def test_demo_run_is_marked_demo_and_listed_in_the_index(demo_run: Pipeline) -> None:
    folder = demo_run.reports
    body = json.loads((folder / f"{DEMO_DATE}.json").read_text())
    title = f"Market Intelligence Report — {DEMO_DATE} (demo data)"
    assert (body["title"], body["source_mode"]) == (title, "demo")
    assert body["code_version"] == importlib.metadata.version("market-intel")
    assert body["headline"] and body["headline"] in json.dumps(body["sections"], ensure_ascii=False)
    page = (folder / f"{DEMO_DATE}.html").read_text()
    assert f"<title>{title}</title>" in page
    assert f'<time datetime="{DEMO_DATE}">{DEMO_DATE}</time> (demo data)</h1>' in page
    assert (folder / f"{DEMO_DATE}.md").read_text().splitlines()[0] == f"# {title}"
    rows, links = index_rows(folder)
    assert rows[0][:3] == [DEMO_DATE, "published", body["headline"]]
    assert {f"{DEMO_DATE}.{s}" for s in ("md", "html", "json")} <= set(links)
    (entry,) = feed_entries(folder)
    assert (entry["title"], entry["summary"]) == (title, body["headline"])


def test_a_blocked_date_is_listed_and_the_published_one_kept(demo_copy: Pipeline) -> None:
    """Demo report 2026-03-23 lacks crypto's UTC day 2026-03-22: the gate blocks it at the
    report step, which lists it with the gate's cause and leaves 2026-03-22 as it was."""
    folder = demo_copy.reports
    before = {path.name: path.read_bytes() for path in folder.glob(f"{DEMO_DATE}.*")}

    assert not demo_copy.run("2026-03-23", raise_on_error=False).success

    assert {path.name: path.read_bytes() for path in folder.glob(f"{DEMO_DATE}.*")} == before
    assert not list(folder.glob("2026-03-23.*"))
    recorded = json.loads((folder / INDEX_JSON).read_text())["reports"]
    assert [(r["report_date"], r["status"]) for r in recorded] == [
        (DEMO_DATE, "published"),
        ("2026-03-23", "blocked"),
    ]
    assert recorded[1]["cause"].startswith("[ERROR] Crypto is stale for report 2026-03-23")
    rows, _ = index_rows(folder)
    assert rows[0][:3] == ["2026-03-23", "blocked", recorded[1]["cause"]]
    assert [e["id"] for e in feed_entries(folder)] == [f"tag:market-intel,2026:report/{DEMO_DATE}"]
