"""The HTML report: a well-formed, self-contained, script-free page rendered from the JSON alone."""

import copy
import json
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from market_intel.report_html import (
    _cell_class,
    render_html,
    svg_divergence_bands,
    svg_returns_by_market,
    svg_rolling_correlations,
    svg_sparklines,
)
from market_intel.reporting import charted_divergences, divergence_history

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


def value_labels(chart: str) -> list[str]:
    """The value labels of a chart's panels (one SVG each), in order."""
    return [
        t.text or "" for svg in svgs(chart) for t in svg.iter("text") if t.get("class") == "value"
    ]


def texts(chart: str) -> list[str]:
    return [t.text or "" for svg in svgs(chart) for t in svg.iter("text")]


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
        "charted",
        "history",
    }
    assert set(report["divergences"][0]["history"][0]) == {
        "observed_on",
        "spread_bps",
        "band_low_bps",
        "band_high_bps",
        "correlation_60d",
    }
    assert len(report["sections"]) == 12
    kinds = {block["type"] for s in report["sections"] for block in s["blocks"]}
    assert kinds == {"paragraph", "bullets", "table", "chart"}
    assert sorted(chart_blocks(report)) == [
        "divergence_bands",
        "returns_by_market",
        "rolling_correlations",
        "sparklines",
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


def test_each_chart_block_is_a_figure_of_accessible_scalable_svgs(report: dict[str, Any]) -> None:
    """One figure per chart block, its panels (a market, a pair) each an SVG with a title."""
    page = render_html(report)
    charts = svgs(page)
    figures = re.findall(r'<figure class="chart"><div class="panels">(.*?)</div>', page)
    assert len(figures) == len(chart_blocks(report)) == 4
    # returns and sparklines: one panel per market (4); bands and correlations: per pair (5).
    assert [f.count("<svg") for f in figures] == [4, 4, 5, 5]
    assert page.count("<svg") == len(charts) == 18
    for svg in charts:
        assert svg.get("role") == "img"
        assert svg.get("width") == "100%"
        assert re.fullmatch(r"0 0 \d+ [\d.]+", svg.get("viewBox") or "")
        assert svg[0].tag == "title" and svg[0].text
        assert svg.get("aria-label") == svg[0].text
    assert len(walk(page).svg_titles) == 18


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
    # Named as in the divergence table (instrument names), never by raw ids.
    labels = [t for t in texts(bands) if " vs " in t]
    assert labels == [f"{d['left_name']} vs {d['right_name']}" for d in divergences]
    assert not any("/" in label for label in labels)
    assert "2026-03-21 / 2026-03-20 · band -356 to +331 bps · z -0.38" in texts(bands)
    assert "2026-03-20 · band -121 to +118 bps · z +2.31" in texts(bands)
    # ChiNext vs SSE (+254 bps) lies outside its band, so today's point is the warning colour.
    today = [c.get("class") for svg in svgs(bands) for c in svg.iter("circle")]
    assert today == ["neg today", "accent today", "accent today", "accent today", "accent today"]


def points(element: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in (element.get("points") or "").split()]


def test_spread_history_is_a_time_series_inside_its_band(report: dict[str, Any]) -> None:
    """Each pair's panel draws every observation of its history, oldest left, with the band
    of each observation shaded, and today's point at the line's end; the axis names the first
    and last observation dates."""
    for divergence, svg in zip(report["divergences"], svgs(svg_divergence_bands(report))):
        history = divergence["history"]
        (line,) = svg.iter("polyline")
        drawn = points(line)
        assert len(drawn) == len(history) == 10
        assert [x for x, _ in drawn] == sorted(x for x, _ in drawn)
        (band,) = svg.iter("polygon")
        assert len(points(band)) == 2 * len(history)
        (today,) = svg.iter("circle")
        assert (float(today.get("cx")), float(today.get("cy"))) == drawn[-1]
        # Higher spread, higher on the page: SVG y grows downwards.
        ordered = sorted(range(len(history)), key=lambda i: history[i]["spread_bps"])
        assert drawn[ordered[0]][1] > drawn[ordered[-1]][1]
        axis = [t.text for t in svg.iter("text") if t.get("class") == "tick"]
        assert axis[-2:] == [history[0]["observed_on"], history[-1]["observed_on"]]


def test_rolling_correlation_is_a_line_over_time(report: dict[str, Any]) -> None:
    """A line per pair on a fixed -1..1 axis, broken where the correlation is not defined yet
    (the first two observations of the sample have none)."""
    for divergence, svg in zip(report["divergences"], svgs(svg_rolling_correlations(report))):
        defined = [row for row in divergence["history"] if row["correlation_60d"] is not None]
        (line,) = svg.iter("polyline")
        drawn = points(line)
        assert len(drawn) == len(defined) == 8
        ticks = [t.text for t in svg.iter("text") if t.get("class") == "tick"]
        assert ticks[:3] == ["-1", "0", "1"]
        low, high = (float(line.get("y1")) for line in list(svg.iter("line"))[0:3:2])
        assert all(high <= y <= low for _, y in drawn)


def test_only_charted_pairs_are_drawn(report: dict[str, Any]) -> None:
    report["divergences"][1]["charted"] = False
    report["divergences"][1]["history"] = None
    shown = [d for d in report["divergences"] if d["charted"]]
    assert len(svgs(svg_divergence_bands(report))) == len(shown) == 4
    names = [t for t in texts(svg_rolling_correlations(report)) if " vs " in t]
    assert names == [f"{d['left_name']} vs {d['right_name']}" for d in shown]


def test_charted_pairs_are_the_configured_ones_and_the_top_three_by_abs_z() -> None:
    """The JSON marks the configured pairs and the three other pairs of largest |z| (by
    dbt's zscore_rank; a pair without z is never among them); each charted pair gets its
    observations before the report date, the last 60 at most."""

    def pair(left: str, configured: bool, rank: int, zscore: float | None) -> dict[str, Any]:
        return {
            "left": left,
            "right": "x",
            "configured": configured,
            "zscore_rank": rank,
            "zscore": zscore,
        }

    divergences = [
        pair("a", True, 7, 0.1),
        pair("b", False, 1, None),
        pair("c", False, 3, -2.5),
        pair("d", False, 2, 3.0),
        pair("e", False, 6, 0.2),
        pair("f", False, 4, 1.9),
        pair("g", False, 5, 1.0),
    ]
    start = date(2026, 1, 1)
    rows = [
        {
            "observed_on": (start + timedelta(days=i)).isoformat(),
            "spread_bps": float(i),
            "band_low_bps": -1.0,
            "band_high_bps": 1.0,
            "correlation_60d": None,
        }
        for i in range(80)
    ]
    report_date = start + timedelta(days=70)
    marked = charted_divergences(divergences, {("a", "x"): rows, ("c", "x"): rows}, report_date)
    assert [d["left"] for d in marked if d["charted"]] == ["a", "c", "d", "f"]
    assert all(d["history"] is None for d in marked if not d["charted"])
    history = marked[0]["history"]
    assert len(history) == 60
    assert history[-1]["observed_on"] == (report_date - timedelta(days=1)).isoformat()
    assert history[0]["spread_bps"] == 10.0
    assert marked[3]["history"] == []  # charted, but dbt has no observation of it


def test_history_is_read_once_for_a_window_with_60_observations_before_it() -> None:
    """One query for the window [start, end): each pair's observations from the 60th before
    ``start`` on, so the first report's chart is as full as a daily run's; nothing from
    ``end`` on. Over a stand-in of the dbt view (the statistics are dbt's, Python only reads)."""
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marts")
    conn.execute(
        "CREATE TABLE marts.fct_divergence_history AS SELECT 'us/GSPC' AS left_id, "
        "'hk/HSI' AS right_id, DATE '2025-01-01' + INTERVAL (2 * i) DAY AS observed_on, "
        "i * 1.0 AS spread_bps, -5.0 AS band_low_bps, 5.0 AS band_high_bps, "
        "0.5 AS correlation_60d FROM range(200) AS t(i)"
    )
    start = date(2025, 1, 1) + timedelta(days=2 * 100)  # observation 100 is on start
    history = divergence_history(conn, start, start + timedelta(days=2 * 10))
    rows = history[("us/GSPC", "hk/HSI")]
    assert [row["spread_bps"] for row in rows] == [float(i) for i in range(40, 110)]
    assert rows[0] == {
        "observed_on": (date(2025, 1, 1) + timedelta(days=80)).isoformat(),
        "spread_bps": 40.0,
        "band_low_bps": -5.0,
        "band_high_bps": 5.0,
        "correlation_60d": 0.5,
    }


def test_sparklines_draw_the_closes_of_the_json(report: dict[str, Any]) -> None:
    """One line per instrument with ``context.closes_60`` (its own scale, the last point the
    latest close), n/a for the others; without the key anywhere, no chart at all."""
    chart = svg_sparklines(report)
    with_series = [i for m in report["markets"] for i in m["instruments"] if i.get("context")]
    lines = [line for svg in svgs(chart) for line in svg.iter("polyline")]
    assert len(lines) == len(with_series) == 3
    for instrument, line in zip(with_series, lines):
        closes = instrument["context"]["closes_60"]
        drawn = points(line)
        assert len(drawn) == len(closes) == 60
        top, bottom = min(y for _, y in drawn), max(y for _, y in drawn)
        assert drawn[closes.index(max(closes))][1] == top
        assert drawn[closes.index(min(closes))][1] == bottom
    assert f"{with_series[0]['close']:,.2f}" in value_labels(chart)
    assert texts(chart).count("n/a") == sum(len(m["instruments"]) for m in report["markets"]) - 3
    for market in report["markets"]:
        for instrument in market["instruments"]:
            instrument.pop("context", None)
    assert svg_sparklines(report) == ""
    assert '<p class="no-data">No data for this chart (sparklines).</p>' in render_html(report)


def test_empty_divergences_render_a_no_data_note(report: dict[str, Any]) -> None:
    report["divergences"] = []
    assert svg_divergence_bands(report) == svg_rolling_correlations(report) == ""
    page = render_html(report)
    walk(page)
    assert page.count('<p class="no-data">No data for this chart') == 2
    assert page.count('<figure class="chart">') == 2  # returns and sparklines


def test_a_report_without_facts_still_renders(report: dict[str, Any]) -> None:
    """Missing or null facts degrade to notes; the sections still render in full."""
    bare = {"report_date": "2026-03-22", "sections": report["sections"]}
    assert svg_returns_by_market(bare) == svg_sparklines(bare) == ""
    page = render_html(bare)
    walk(page)
    assert page.count('<p class="no-data">') == 4
    assert "<svg" not in page


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("-1.51%", ' class="num neg"'),
        ("+254 bps", ' class="num pos"'),
        ("6,506.48", ' class="num"'),
        ("20.2% (87)", ' class="num"'),
        ("n/a", ' class="num"'),
        ("S&P 500", ""),
        ("20.2% of (87) stocks", ""),
    ],
)
def test_figures_align_right_and_signed_ones_take_their_colour(cell: str, expected: str) -> None:
    """A column of figures reads down one edge, also where a row has no figure (n/a) or adds its
    percentile in brackets (the Levels table's volatility)."""
    assert _cell_class(cell) == expected
