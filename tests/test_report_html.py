"""The HTML report: a well-formed, self-contained, script-free page rendered from the JSON alone."""

import copy
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from market_intel.report_html import (
    render_html,
    svg_divergence_bands,
    svg_returns_by_market,
    svg_rolling_correlations,
)

SAMPLE = Path(__file__).parent / "fixtures" / "report" / "sample-report.json"
SCRIPT_NAME = "<script>alert(1)</script>"
VOID = {"meta", "link", "br", "hr", "img", "input", "source", "wbr", "area", "col", "base"}


@pytest.fixture
def report() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


class PageWalker(HTMLParser):
    """Asserts every element closes in order, and records headings, notes and SVG titles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.h2: list[str] = []
        self.notes: list[str] = []
        self.svg_titles: list[str] = []
        self._capture: list[str] | None = None
        self._buffer = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.open.append(tag)
        classes = (dict(attrs).get("class") or "").split()
        if tag == "h2":
            self._capture, self._buffer = self.h2, ""
        elif "status-note" in classes:
            self._capture, self._buffer = self.notes, ""
        elif tag == "title" and "svg" in self.open:
            self._capture, self._buffer = self.svg_titles, ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """A self-closed SVG element (``<rect/>``) is balanced by itself."""

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()
        if self._capture is not None and tag in {"h2", "p", "title"}:
            self._capture.append(self._buffer)
            self._capture = None

    def handle_data(self, data: str) -> None:
        self._buffer += data


def walk(page: str) -> PageWalker:
    walker = PageWalker()
    walker.feed(page)
    walker.close()
    assert walker.open == [], f"unclosed elements: {walker.open}"
    return walker


def chart_blocks(report: dict[str, Any]) -> list[str]:
    return [
        block["chart"]
        for section in report["sections"]
        for block in section["blocks"]
        if block["type"] == "chart"
    ]


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(match) for match in re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)]


def value_labels(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter("text") if t.get("class") == "value"]


def test_fixture_follows_the_contract(report: dict[str, Any]) -> None:
    """The sample is the contract's shape, with ten sections, the appendix and every block type."""
    assert report["report_date"] == "2026-03-22"
    for key in ("markets", "divergences", "transmission_chain", "breadth", "defi", "stablecoins"):
        assert report[key]
    assert set(report["divergences"][0]) == {
        "left",
        "right",
        "left_name",
        "right_name",
        "left_return_pct",
        "right_return_pct",
        "left_session_date",
        "right_session_date",
        "spread_bps",
        "zscore",
        "percentile",
        "correlation_60d",
        "observations",
        "band_low_bps",
        "band_high_bps",
        "configured",
        "rank",
    }
    assert len(report["sections"]) == 12
    kinds = {block["type"] for s in report["sections"] for block in s["blocks"]}
    assert kinds == {"paragraph", "bullets", "table", "chart"}
    assert sorted(chart_blocks(report)) == [
        "divergence_bands",
        "returns_by_market",
        "rolling_correlations",
    ]
    assert SCRIPT_NAME in [m["protocol"] for m in report["defi"]["movers"]]


def test_page_is_balanced_and_mobile_ready(report: dict[str, Any]) -> None:
    page = render_html(report)
    walker = walk(page)
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<title>Market Intelligence Report — 2026-03-22</title>" in page
    assert '<time datetime="2026-03-22">2026-03-22</time>' in page
    assert walker.h2 == [section["title"] for section in report["sections"]]
    notes = [s["status_note"] for s in report["sections"] if s["status_note"]]
    assert walker.notes == notes
    # Every table scrolls sideways inside its own wrapper on narrow screens.
    assert page.count("<table>") == page.count('<div class="table-wrap"><table>') > 0
    assert ".table-wrap{overflow-x:auto" in page


def test_each_chart_block_is_one_accessible_scalable_svg(report: dict[str, Any]) -> None:
    page = render_html(report)
    charts = svgs(page)
    assert page.count("<svg") == len(charts) == len(chart_blocks(report)) == 3
    for svg in charts:
        assert svg.get("role") == "img"
        assert svg.get("width") == "100%"
        assert re.fullmatch(r"0 0 \d+ [\d.]+", svg.get("viewBox") or "")
        assert svg[0].tag == "title" and svg[0].text
    assert len(walk(page).svg_titles) == 3


def test_no_external_references_and_no_script(report: dict[str, Any]) -> None:
    page = render_html(report)
    lowered = page.lower()
    for needle in ("http://", "https://", "@import", "<link", "src=", "url(", "<script"):
        assert needle not in lowered, needle
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT_NAME not in page


def test_render_is_deterministic(report: dict[str, Any]) -> None:
    first = render_html(report)
    assert render_html(copy.deepcopy(report)) == first
    assert render_html(json.loads(json.dumps(report))) == first


def test_returns_chart_labels_are_the_json_returns(report: dict[str, Any]) -> None:
    returns = [
        i["return_pct"]
        for m in report["markets"]
        for i in m["instruments"]
        if i["return_pct"] is not None
    ]
    labels = value_labels(svg_returns_by_market(report))
    assert [float(label.removesuffix("%")) for label in labels] == returns
    assert "-1.51%" in labels and "+1.30%" in labels
    # An instrument without data is drawn as n/a, labelled with its id, not left out silently.
    svg = svg_returns_by_market(report)
    assert "SSE 50 (cn/sh000016) · no session" in svg and ">n/a<" in svg
    assert "S&amp;P (us/GSPC) · 2026-03-20" in svg
    assert "BTC (crypto/BTC-USDT) · 2026-03-21" in svg


def test_divergence_charts_label_the_json_values(report: dict[str, Any]) -> None:
    divergences = report["divergences"]
    spreads = [float(v.removesuffix(" bps")) for v in value_labels(svg_divergence_bands(report))]
    assert spreads == [d["spread_bps"] for d in divergences]
    correlations = [float(v) for v in value_labels(svg_rolling_correlations(report))]
    assert correlations == [d["correlation_60d"] for d in divergences]
    bands = svg_divergence_bands(report)
    assert "crypto/BTC-USDT vs us/GSPC · 2026-03-21 / 2026-03-20" in bands
    assert "band -121 to +118 bps · z +2.31" in bands
    # ChiNext vs SSE (+254 bps) lies outside its band, so its marker is the warning colour.
    markers = [r.get("class") for r in ET.fromstring(bands).iter("rect") if r.get("height") == "20"]
    assert markers == ["neg", "accent", "accent", "accent", "accent"]


def test_empty_divergences_render_a_no_data_note(report: dict[str, Any]) -> None:
    report["divergences"] = []
    assert svg_divergence_bands(report) == svg_rolling_correlations(report) == ""
    page = render_html(report)
    walk(page)
    assert page.count('<p class="no-data">No data for this chart') == 2
    assert page.count("<svg") == 1


def test_a_report_without_facts_still_renders(report: dict[str, Any]) -> None:
    """Missing or null facts degrade to notes; the sections still render in full."""
    bare = {"report_date": "2026-03-22", "sections": report["sections"]}
    assert svg_returns_by_market(bare) == ""
    page = render_html(bare)
    walk(page)
    assert page.count('<p class="no-data">') == 3
    assert "<svg" not in page
