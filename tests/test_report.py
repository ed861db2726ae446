"""The published report end to end: golden files, sections, figures, HTML, escaping, the gate,
the LLM commentary and the true figures of the reference data (docs/report.md).

Few pipeline runs: the demo date and, when ../shared/reference-data is present, one replay of
the real closes (both run once for the session, tests/conftest.py), and a module fixture's
tampered replay of the demo (US files cut after 2026-03-13 and hostile DeFi names; blocked,
then published partially). The LLM tests and the gate's second opinion run only the report
asset over a database built already.

Golden files: tests/golden/2026-03-22.{md,html,json} are the demo date's report, byte for byte.
After an intended change to the report, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_report.py -k golden
"""

import difflib
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey

from tests.conftest import DEMO_DATE, Pipeline

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).parents[1] / "docs"
REPORT_ASSET = [AssetKey("market_intelligence_report")]
SECTION_IDS = [
    "key_insight",
    "levels",
    "transmission_chain",
    "crypto_defi",
    "us",
    "hk",
    "cn",
    "divergences",
    "capital_flow",
    "risk_matrix",
    "signal_record",
    "action_plan",
    "data_quality",
    "disclaimer",
]
SCRIPT_NAME = "<script>alert(1)</script>"
PIPE_CATEGORY = "**bold** | pipe"


# The network: loopback only (the LLM stub); conftest's guard refuses every connection.


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            raise RuntimeError(f"a test tried to connect to {host!r}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides conftest's guard so that the LLM stub on 127.0.0.1 can be reached."""
    loopback_only(monkeypatch)


# Pipeline runs, shared by the module (and by the session: demo_run and reference_run in
# conftest). Each fixture sets the MARKET_INTEL_* variables only while it runs its pipeline, so
# that the fixtures cannot see each other's database; a later run sets them again (point_at).


def isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a module fixture's runs: loopback only (module fixtures run before the
    function-scoped guard), and no LLM endpoint the developer may have configured."""
    loopback_only(monkeypatch)
    monkeypatch.delenv("MARKET_INTEL_LLM_BASE_URL", raising=False)


def point_at(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, reports: Path) -> None:
    """The settings of ``pipeline``'s demo run again, with reports written to ``reports``."""
    monkeypatch.setenv("MARKET_INTEL_DB", str(pipeline.db))
    monkeypatch.setenv("MARKET_INTEL_SOURCE", "demo")
    monkeypatch.setenv("MARKET_INTEL_REPLAY_DIR", str(pipeline.replay))
    monkeypatch.setenv("MARKET_INTEL_REPORTS_DIR", str(reports))
    monkeypatch.setenv("MARKET_INTEL_PARTIAL_REPORTS", "false")


@dataclass
class TamperedRun:
    """The demo replayed with the US files cut after 2026-03-13 and hostile DeFi names."""

    pipeline: Pipeline
    full_run: Any  # the whole pipeline, MARKET_INTEL_PARTIAL_REPORTS=false: blocked
    files_after_full_run: list[str]
    report_only_run: Any  # the report asset alone, still not partial: refuses too
    partial_run: Any  # the report asset alone with MARKET_INTEL_PARTIAL_REPORTS=true


def cut_after(path: Path, last_day: str) -> None:
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *(r for r in rows if r.split(",")[0] <= last_day)]) + "\n")


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> TamperedRun:
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch)
        monkeypatch.setenv("MARKET_INTEL_PARTIAL_REPORTS", "false")
        pipeline = Pipeline(tmp_path_factory.mktemp("tampered"), monkeypatch)
        replay = pipeline.use_replay_of_demo()
        us_files = sorted((replay / "us").glob("*.csv"))
        assert us_files
        for path in us_files:
            cut_after(path, "2026-03-13")
        protocols = replay / "defi" / "protocols.csv"
        text = protocols.read_text()
        assert ",Hyperliquid,Derivatives," in text and ",Curve,Dexs," in text
        # Hyperliquid and Curve are among the day's top movers, Dexs among the top categories.
        text = text.replace(",Hyperliquid,", f",{SCRIPT_NAME},").replace(
            ",Dexs,", f",{PIPE_CATEGORY},"
        )
        protocols.write_text(text)

        full_run = pipeline.run(DEMO_DATE, raise_on_error=False)
        files = (
            sorted(p.name for p in pipeline.reports.glob("????-??-??.*"))
            if pipeline.reports.exists()
            else []
        )
        report_only_run = pipeline.run(DEMO_DATE, selection=REPORT_ASSET, raise_on_error=False)
        monkeypatch.setenv("MARKET_INTEL_PARTIAL_REPORTS", "true")
        partial_run = pipeline.run(DEMO_DATE, selection=REPORT_ASSET, raise_on_error=False)
    return TamperedRun(pipeline, full_run, files, report_only_run, partial_run)


def read_report(pipeline: Pipeline, suffix: str = "json") -> Any:
    text = (pipeline.reports / f"{DEMO_DATE}.{suffix}").read_text(encoding="utf-8")
    return json.loads(text) if suffix == "json" else text


@pytest.fixture(scope="module")
def demo_report(demo_run: Pipeline) -> dict[str, Any]:
    return read_report(demo_run)


@pytest.fixture(scope="module")
def demo_markdown(demo_run: Pipeline) -> str:
    return read_report(demo_run, "md")


@pytest.fixture(scope="module")
def demo_html(demo_run: Pipeline) -> str:
    return read_report(demo_run, "html")


def facts_of(report: dict[str, Any]) -> dict[str, Any]:
    """The report's figures: everything but the rendered prose (and any LLM commentary)."""
    return {key: value for key, value in report.items() if key not in ("sections", "commentary")}


def instruments_by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for market in report["markets"] for i in market["instruments"]}


def market_of(report: dict[str, Any], code: str) -> dict[str, Any]:
    return next(m for m in report["markets"] if m["market"] == code)


def section_of(report: dict[str, Any], id_: str) -> dict[str, Any]:
    return next(s for s in report["sections"] if s["id"] == id_)


# Numbers as a reader sees them, and as the JSON holds them.

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
INSTRUMENT_ID = re.compile(r"\b(?:us|hk|cn|crypto|defi)/[A-Za-z0-9_.-]+")
SHOWN_NUMBER = re.compile(
    r"""
    (?<![\w.,])
    (?P<sign>[-+])?
    (?P<currency>[$¥])?
    (?P<integer>\d{1,3}(?:,\d{3})+(?!\d)|\d+)
    (?:\.(?P<decimals>\d+))?
    (?P<unit>%|\ bps|\ bn\b|\ m\b)?
    """,
    re.VERBOSE,
)
SCALES = {" bn": 9, " m": 6}
JSON_NUMBER = re.compile(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?")
MONEY_KEY = re.compile(r"(?:^|_)(?:usd|cny)(?:$|_)")


@dataclass(frozen=True)
class Shown:
    """A number as rendered: "-1.51%", "+254 bps", "$68,918.12", "-$479.42 m", "5,481"."""

    text: str
    value: str  # sign (if written), digits without separators, decimals: "-479.42"
    places: int
    signed: bool
    exponent: int  # 9 for "bn", 6 for "m": a display of a USD/CNY amount


def shown_numbers(text: str) -> list[Shown]:
    """The figures in rendered text; dates and instrument ids are not figures."""
    text = INSTRUMENT_ID.sub(" ", ISO_DATE.sub(" ", text)).replace("..", " .. ")
    found = []
    for match in SHOWN_NUMBER.finditer(text):
        decimals = match["decimals"] or ""
        digits = match["integer"].replace(",", "") + (f".{decimals}" if decimals else "")
        found.append(
            Shown(
                text=match.group().strip(),
                value=(match["sign"] or "") + digits,
                places=len(decimals),
                signed=match["sign"] is not None,
                exponent=SCALES.get(match["unit"] or "", 0),
            )
        )
    return found


class JsonNumbers:
    """Every number in a JSON document: numeric values (USD/CNY amounts flagged by their key),
    and numbers inside strings and keys ("S&P 500", "correlation_60d"); ISO dates are skipped.
    A shown number is held when some JSON number formats to it at the precision shown."""

    def __init__(self, document: Any) -> None:
        self.plain: list[float] = []
        self.money: list[float] = []
        self._walk(document, money=False)
        self._formatted: dict[tuple[int, bool, int], set[str]] = {}

    def _walk(self, node: Any, money: bool) -> None:
        if isinstance(node, bool) or node is None:
            return
        if isinstance(node, int | float):
            (self.money if money else self.plain).append(float(node))
        elif isinstance(node, str):
            for found in JSON_NUMBER.findall(ISO_DATE.sub(" ", node)):
                self.plain.append(float(found.replace(",", "")))
        elif isinstance(node, dict):
            for key, value in node.items():
                self._walk(str(key), money=False)
                self._walk(value, money or bool(MONEY_KEY.search(str(key))))
        elif isinstance(node, list):
            for item in node:
                self._walk(item, money)

    def holds(self, shown: Shown) -> bool:
        key = (shown.places, shown.signed, shown.exponent)
        if key not in self._formatted:
            pool = self.money if shown.exponent else self.plain + self.money
            spec = f"{'+' if shown.signed else ''}.{shown.places}f"
            self._formatted[key] = {
                format(
                    value / 10**shown.exponent if shown.signed else abs(value) / 10**shown.exponent,
                    spec,
                )
                for value in pool
            }
        return shown.value in self._formatted[key]


def missing_numbers(items: list[tuple[str, str]], numbers: JsonNumbers) -> list[str]:
    """``where: text -> number`` for each shown number the JSON does not hold."""
    return [
        f"{where or 'text'}: {text!r} -> {shown.text}"
        for where, text in items
        for shown in shown_numbers(text)
        if not numbers.holds(shown)
    ]


# The rendered files, parsed: Markdown tables split on unescaped pipes, HTML text by element.

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
NON_FIGURE_COLUMNS = {"Rank"}  # 1, 2, 3: the order of the rows, not a figure


def md_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def markdown_tables(markdown: str) -> list[Table]:
    tables: list[Table] = []
    current: Table | None = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [md_unescape(c.strip()) for c in UNESCAPED_PIPE.split(line)[1:-1]]
        if current is None:
            current = Table(cells)
            tables.append(current)
        elif not set("".join(cells)) <= {"-"}:
            current.rows.append(cells)
    return tables


def markdown_items(markdown: str) -> list[tuple[str, str]]:
    """(where, text): each table cell under its column, each other line (heading numbers off)."""
    items = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            items.append(("", md_unescape(re.sub(r"^#+ (?:\d+\. )?", "", line))))
    for table in markdown_tables(markdown):
        for row in table.rows:
            items += [(column, cell) for column, cell in zip(table.columns, row, strict=True)]
    return items


VOID = {"meta", "link", "br", "hr", "img", "input", "source", "wbr", "area", "col", "base"}


@dataclass
class Svg:
    title: str = ""
    texts: list[tuple[str, str]] = field(default_factory=list)  # (class, text)


class Page(HTMLParser):
    """The page's text by element; asserts every element closes in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.items: list[tuple[str, str]] = []  # (where, text), as markdown_items
        self.tables: list[Table] = []
        self.svgs: list[Svg] = []
        self.tags: list[str] = []
        self._text_class = ""
        self._column = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in VOID:
            return
        self.open.append(tag)
        if tag == "svg":
            self.svgs.append(Svg())
        elif tag == "text":
            self._text_class = dict(attrs).get("class") or ""
        elif tag == "table":
            self.tables.append(Table([]))
        elif tag == "tr":
            self._column = 0
            if "tbody" in self.open:
                self.tables[-1].rows.append([])
        elif tag in ("td", "th"):
            if tag == "th":
                self.tables[-1].columns.append("")
            else:
                self.tables[-1].rows[-1].append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag == "td":
            self._column += 1

    def handle_data(self, data: str) -> None:
        where = self.open[-1] if self.open else ""
        if where == "style" or not data.strip():
            return
        if "svg" in self.open:
            svg = self.svgs[-1]
            if where == "title":
                svg.title += data
            elif where == "text":
                svg.texts.append((self._text_class, data))
                if self._text_class != "tick":  # axis ticks are a scale, not figures
                    self.items.append(("chart", data))
            return
        if where == "th":
            self.tables[-1].columns[-1] += data
        elif where == "td":
            table = self.tables[-1]
            table.rows[-1][-1] += data
            self.items.append((table.columns[self._column], data))
        elif where in ("h2", "a"):
            self.items.append(("", re.sub(r"^\d+\. ", "", data)))
        else:
            self.items.append(("", data))


def parse_page(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert page.open == [], f"unclosed elements: {page.open}"
    return page


# 1. Golden files.


@pytest.mark.parametrize("suffix", ["md", "html", "json"])
def test_golden(demo_run: Pipeline, suffix: str) -> None:
    produced = (demo_run.reports / f"{DEMO_DATE}.{suffix}").read_bytes()
    golden = GOLDEN / f"{DEMO_DATE}.{suffix}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(produced)
        pytest.skip(f"UPDATE_GOLDEN=1: rewrote {golden}")
    assert golden.exists(), f"{golden} is missing: run UPDATE_GOLDEN=1 (see this file's docstring)"
    if produced != golden.read_bytes():
        diff = difflib.unified_diff(
            golden.read_text(encoding="utf-8").splitlines(),
            produced.decode("utf-8").splitlines(),
            str(golden),
            "produced",
            lineterm="",
        )
        pytest.fail(
            "report differs from its golden file (UPDATE_GOLDEN=1 rewrites it):\n"
            + "\n".join(list(diff)[:80])
        )


def test_published_files_are_deterministic(demo_run: Pipeline) -> None:
    """No timestamps, no machine paths: the same facts publish the same bytes."""
    for suffix in ("md", "html", "json"):
        text = (demo_run.reports / f"{DEMO_DATE}.{suffix}").read_text(encoding="utf-8")
        assert str(demo_run.root) not in text and str(Path(__file__).parents[1]) not in text
    assert not re.search(r"\d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\d", text)


def test_the_json_has_the_layout_of_the_standard_library(demo_run: Pipeline) -> None:
    """orjson writes the report (render_json): the bytes json.dumps(indent=2) would write, so a
    reader diffing two reports sees the same layout as before, non-ASCII names as text."""
    from market_intel.reporting import render_json

    written = (demo_run.reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8")
    report = json.loads(written)
    assert render_json(report) == written
    assert written == json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    assert "创业板指" in written


# 2. Sections and the JSON contract.


def test_every_section_in_order(demo_report: dict, demo_markdown: str, demo_html: str) -> None:
    assert [s["id"] for s in demo_report["sections"]] == SECTION_IDS
    page = parse_page(demo_html)
    headings = [s["title"] for s in demo_report["sections"]]
    for title in headings:
        assert f"\n## {title}\n" in demo_markdown
        assert f"<h2>{escape(title)}</h2>" in demo_html
    for id_ in SECTION_IDS:
        assert f'<section id="{id_}">' in demo_html
    assert page.tags.count("section") == len(SECTION_IDS)
    for section in demo_report["sections"]:
        assert set(section) >= {"id", "title", "status_note", "blocks"}
        assert section["blocks"], section["id"]
        for block in section["blocks"]:
            assert block["type"] in ("paragraph", "bullets", "table", "chart"), block


MARKET_KEYS = {"market", "name", "status", "session_date", "expected_session_date", "instruments"}
INSTRUMENT_KEYS = {
    "id",
    "name",
    "short_name",
    "close",
    "return_pct",
    "session_date",
    "expected_session_date",
    "status",
    "source",
    "is_fallback",
}
DIVERGENCE_KEYS = {
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


def test_json_holds_the_contract_keys(demo_report: dict) -> None:
    report = demo_report
    assert report["report_date"] == DEMO_DATE and report["as_of_date"] == "2026-03-21"
    assert [m["market"] for m in report["markets"]] == ["us", "hk", "cn", "crypto"]
    for market in report["markets"]:
        assert set(market) >= MARKET_KEYS
        for row in market["instruments"]:
            assert set(row) >= INSTRUMENT_KEYS, row["id"]
    ids = [i["id"] for m in report["markets"] for i in m["instruments"]]
    assert ids == [
        "us/GSPC",
        "us/IXIC",
        "us/DJI",
        "us/IWM",
        "us/QQQ",
        "hk/HSI",
        "hk/HSCEI",
        "hk/HSTECH",
        "cn/sh000001",
        "cn/sz399001",
        "cn/sz399006",
        "cn/sh000016",
        "crypto/BTC-USDT",
        "crypto/ETH-USDT",
    ]
    assert report["divergences"]
    for row in report["divergences"]:
        assert set(row) >= DIVERGENCE_KEYS
        assert row["spread_bps"] == pytest.approx(
            100 * (row["left_return_pct"] - row["right_return_pct"]), abs=1.0
        )
    chain = report["transmission_chain"]
    assert set(chain) >= {"status", "links"}
    assert [link["market"] for link in chain["links"]] == ["us", "hk", "cn"]
    for link in chain["links"]:
        assert set(link) >= {
            "market",
            "name",
            "session_date",
            "lead_session_date",
            "signal",
            "mean_return_pct",
        }
    assert set(report["breadth"]) >= {
        "session_date",
        "advancers",
        "decliners",
        "unchanged",
        "total",
        "advance_ratio",
        "turnover_cny",
        "turnover_vs_avg_20_pct",
        "source",
    }
    breadth = report["breadth"]
    assert breadth["advancers"] + breadth["decliners"] + breadth["unchanged"] == breadth["total"]
    assert set(report["defi"]) >= {"date", "categories", "movers"}
    assert all(
        set(c) >= {"category", "tvl_usd", "change_pct"} for c in report["defi"]["categories"]
    )
    assert all(
        set(m) >= {"protocol", "category", "tvl_usd", "change_pct"}
        for m in report["defi"]["movers"]
    )
    assert set(report["stablecoins"]) >= {"date", "coins", "net_change_usd"}
    assert {c["symbol"] for c in report["stablecoins"]["coins"]} >= {"USDT", "USDC"}
    assert report["checks"]
    for check in report["checks"]:
        assert set(check) >= {"name", "severity", "passed", "message"}
        assert check["severity"] in ("ERROR", "WARN")
    assert all(c["passed"] for c in report["checks"] if c["severity"] == "ERROR")


def json_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in json_keys(value)}
    if isinstance(node, list):
        return {k for item in node for k in json_keys(item)}
    return set()


def test_docs_name_every_key_the_json_holds(demo_report: dict) -> None:
    doc = (DOCS / "report-json.md").read_text(encoding="utf-8")
    undocumented = sorted(k for k in json_keys(demo_report) if not re.search(rf"\b{k}\b", doc))
    assert undocumented == [], "keys missing from docs/report-json.md"


# 3. Every number a reader sees is in the JSON.


def test_every_rendered_number_is_in_the_json(
    demo_report: dict, demo_markdown: str, demo_html: str
) -> None:
    numbers = JsonNumbers(demo_report)
    page = parse_page(demo_html)
    assert len(markdown_items(demo_markdown)) > 300 and len(page.items) > 300
    assert missing_numbers(markdown_items(demo_markdown), numbers) == []
    assert missing_numbers(page.items, numbers) == []


def test_figure_tables_hold_only_facts(
    demo_report: dict, demo_markdown: str, demo_html: str
) -> None:
    """Returns, closes, spreads, z-scores, percentiles, correlations, money: every number in
    every table is one of the facts (the JSON without its sections)."""
    numbers = JsonNumbers(facts_of(demo_report))
    page = parse_page(demo_html)
    for name, items in (("md", markdown_items(demo_markdown)), ("html", page.items)):
        cells = [
            (where, text)
            for where, text in items
            if where and where != "chart" and where not in NON_FIGURE_COLUMNS
        ]
        assert len(cells) > 200, name
        assert missing_numbers(cells, numbers) == [], name


def test_every_rendered_number_is_a_fact(
    demo_report: dict, demo_markdown: str, demo_html: str
) -> None:
    """The contract (docs/report-json.md): every figure shown is in the facts themselves."""
    numbers = JsonNumbers(facts_of(demo_report))
    page = parse_page(demo_html)
    items = [
        (where, text)
        for where, text in markdown_items(demo_markdown) + page.items
        if where not in NON_FIGURE_COLUMNS
    ]
    assert missing_numbers(items, numbers) == []


def number(cell: str) -> float:
    """'-1.51%', '6,506.48', '+254 bps', '+1.66' -> float."""
    return float(re.sub(r"[,%$]| bps", "", cell))


def test_tables_show_each_row_its_own_figures(demo_report: dict, demo_markdown: str) -> None:
    """Row by row: the figure tables show the right instrument's or pair's figures."""
    tables = markdown_tables(demo_markdown)
    instrument_rows = {
        row[0]: row
        for table in tables
        if table.columns[0] == "Instrument" and "Close" in table.columns
        for row in table.rows
    }
    for market in demo_report["markets"]:
        if market["market"] == "crypto":
            continue
        for i in market["instruments"]:
            row = instrument_rows[f"{i['name']} ({i['id']})"]
            assert row[1] == i["session_date"]
            assert number(row[2]) == i["close"]
            assert number(row[3]) == i["return_pct"]
            assert row[4] == i["status"]
    divergence_table = next(t for t in tables if t.columns[0] == "Pair")
    configured = [d for d in demo_report["divergences"] if d["configured"]]
    assert len(divergence_table.rows) == len(configured)
    for row, d in zip(divergence_table.rows, configured, strict=True):
        assert row[0] == f"{d['left_name']} vs {d['right_name']}"
        assert row[1] == f"{d['left_session_date']} / {d['right_session_date']}"
        assert number(row[2]) == d["left_return_pct"]
        assert number(row[3]) == d["right_return_pct"]
        assert number(row[4]) == pytest.approx(d["spread_bps"], abs=0.5)
        assert (number(row[5]), number(row[6]), number(row[7])) == (
            d["zscore"],
            d["percentile"],
            d["correlation_60d"],
        )
    chain_table = next(t for t in tables if t.columns[0] == "Market" and "Signal" in t.columns)
    for row, link in zip(chain_table.rows, demo_report["transmission_chain"]["links"], strict=True):
        assert (row[1], number(row[3]), row[4]) == (
            link["session_date"],
            link["mean_return_pct"],
            link["signal"],
        )
    breadth = demo_report["breadth"]
    assert (
        f"Breadth on {breadth['session_date']}: {breadth['advancers']:,} up, "
        f"{breadth['decliners']:,} down, {breadth['unchanged']:,} unchanged of "
        f"{breadth['total']:,}" in demo_markdown
    )


# 4. The HTML page.


def test_html_is_self_contained_with_its_charts(demo_report: dict, demo_html: str) -> None:
    page = parse_page(demo_html)
    assert not re.search(
        r"https?:|<script|<link|<img|<iframe|@import|url\(", demo_html, re.IGNORECASE
    )
    # only in-page anchors, and the relative links to the next and previous dates and the index
    assert not re.search(r"\s(?:src|href)=\"(?!#|\d{4}-\d\d-\d\d\.html\"|index\.html\")", demo_html)
    assert "script" not in page.tags
    # Four charts of panels: returns and sparklines one per market, the divergence bands and
    # correlations one per charted pair (docs/report.md, "Charts").
    markets = [m for m in demo_report["markets"] if m["instruments"]]
    charted = [d for d in demo_report["divergences"] if d["charted"]]
    assert len(page.svgs) == 2 * len(markets) + 2 * len(charted) == 24
    assert all(svg.title.strip() for svg in page.svgs)
    returns = page.svgs[: len(markets)]
    labels = [text for svg in returns for cls, text in svg.texts if cls in ("value", "na")]
    expected = [i["return_pct"] for m in markets for i in m["instruments"]]
    assert [None if label == "n/a" else number(label) for label in labels] == expected
    assert all("return" in svg.title.lower() for svg in returns)


# 5. Hostile names from a feed are text, never markup.


def test_hostile_names_are_inert(tampered: TamperedRun) -> None:
    assert tampered.partial_run.success
    report = read_report(tampered.pipeline)
    movers = {m["protocol"]: m for m in report["defi"]["movers"]}
    assert movers[SCRIPT_NAME]["category"] == "Derivatives"
    assert PIPE_CATEGORY in {c["category"] for c in report["defi"]["categories"]}

    html = read_report(tampered.pipeline, "html")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse_page(html)
    assert SCRIPT_NAME in [cell for table in page.tables for row in table.rows for cell in row]
    assert PIPE_CATEGORY in [cell for table in page.tables for row in table.rows for cell in row]

    markdown = read_report(tampered.pipeline, "md")
    assert not re.search(r"(?<!\\)<", markdown), "raw HTML in the Markdown"
    assert r"\<script\>alert(1)\</script\>" in markdown
    assert r"\*\*bold\*\* \| pipe" in markdown and "**bold**" not in markdown
    header_pipes = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header_pipes = None
            continue
        pipes = len(UNESCAPED_PIPE.findall(line))
        header_pipes = header_pipes or pipes
        assert pipes == header_pipes, line
    cells = [cell for t in markdown_tables(markdown) for row in t.rows for cell in row]
    assert SCRIPT_NAME in cells and PIPE_CATEGORY in cells

    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in rendered and "<strong>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


# 6. Closed and stale markets.


def test_sunday_report_shows_us_closed_with_a_note(demo_report: dict) -> None:
    us = market_of(demo_report, "us")
    assert (us["status"], us["session_date"], us["expected_session_date"]) == (
        "closed",
        "2026-03-20",
        "2026-03-20",
    )
    note = section_of(demo_report, "us")["status_note"]
    assert note == "Closed on 2026-03-21: showing the latest session, 2026-03-20."
    assert market_of(demo_report, "crypto")["status"] == "open"
    assert section_of(demo_report, "crypto_defi")["status_note"] == ""


def test_the_demo_states_each_judgement_once(demo_report: dict, demo_markdown: str) -> None:
    """Issue 13's three contradictions of the demo, gone: "extreme" is the pair's label in every
    section, the verdict states the table's TOTAL with its sign, and Saturday's BTC against
    Friday's S&P names both dates and makes no co-movement claim at a correlation of -0.09."""
    extreme = {d["label"] for d in demo_report["divergences"] if d["extreme"]}
    assert extreme == {"ChiNext vs HSTECH", "ChiNext vs Nasdaq"}
    assert not any(d["extreme"] for d in demo_report["divergences"] if d["configured"])
    assert "not a configured pair: the action plan acts on configured pairs only." in demo_markdown
    assert (
        "Extreme but not configured, so no rule acts on them: "
        "ChiNext (创业板指) vs Hang Seng TECH Index; ChiNext (创业板指) vs Nasdaq Composite."
    ) in demo_markdown
    coins = demo_report["stablecoins"]
    assert (coins["supply_measure"], coins["supply_change_usd"], coins["flow"]) == (
        "TOTAL",
        642929345.0,
        "inflow",
    )
    assert "| TOTAL | $314.32 bn | +$642.93 m | +0.205% |" in demo_markdown
    assert (
        "Verdict: crypto fell while total stablecoin supply (TOTAL, all USD-pegged coins) grew "
        "+$642.93 m (+0.205%), an inflow (at or above +0.05%): new dry powder."
    ) in demo_markdown
    assert "- Stablecoins ↑ inflow: TOTAL +$642.93 m (+0.205%)" in demo_markdown
    assert "shrank" not in demo_markdown and "money leaving crypto" not in demo_markdown
    assert demo_report["crypto_vs_equities"]["relation"] is None
    assert (
        "- Bitcoin (2026-03-21, UTC day) -2.26% vs S&P 500 (2026-03-20) -1.51%; 60-observation "
        "correlation -0.09: no co-movement claim (different session dates; correlation below 0.3)."
    ) in demo_markdown
    assert "moved with" not in demo_markdown
    lead = demo_report["next_session_lead"]
    assert (lead["lead_session_date"], [f["next_session_date"] for f in lead["followers"]]) == (
        "2026-03-20",
        ["2026-03-23", "2026-03-23"],
    )
    assert (
        "- Next session's lead: Friday's US close (2026-03-20; risk-off, mean -1.49%) → next "
        "Hong Kong and A-shares open (Monday 2026-03-23)."
    ) in demo_markdown


def failure_messages(result: Any) -> str:
    lines = [
        e.asset_check_evaluation_data.description or ""
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]
    lines += [
        e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
    return "\n".join(lines)


def test_stale_us_blocks_the_report(tampered: TamperedRun) -> None:
    assert not tampered.full_run.success
    assert tampered.files_after_full_run == []
    stale = "US is stale for report 2026-03-22"
    for result in (tampered.full_run, tampered.report_only_run):
        messages = failure_messages(result)
        assert stale in messages
        line = next(line for line in messages.splitlines() if stale in line)
        assert "expects session 2026-03-20" in line and "the data ends 2026-03-13" in line
    # The report asset refuses on its own too (its gate does not rely on the checks' run).
    assert not tampered.report_only_run.success
    assert "blocked by the quality gate" in failure_messages(tampered.report_only_run)


def test_partial_report_leaves_the_stale_market_out(tampered: TamperedRun) -> None:
    assert tampered.partial_run.success
    report = read_report(tampered.pipeline)
    us = market_of(report, "us")
    assert us["status"] == "left_out" and us["instruments"] == []
    assert any("2026-03-13" in reason for reason in us["left_out_because"])
    note = section_of(report, "us")["status_note"]
    assert note.startswith("Left out of this report")
    assert "2026-03-20" in note and "2026-03-13" in note
    assert report["divergences"]
    assert not [d for d in report["divergences"] if "us/" in d["left"] + d["right"]]
    us_link = report["transmission_chain"]["links"][0]
    assert us_link["market"] == "us" and us_link["mean_return_pct"] is None
    assert [m["market"] for m in report["markets"] if m["status"] == "closed"] == ["hk", "cn"]
    markdown = read_report(tampered.pipeline, "md")
    assert "US data is stale or left out" in markdown
    assert "Re-run the report once US data for the expected session arrives." in markdown


# 7. LLM commentary through a local OpenAI-compatible stub.

FAITHFUL = (
    "The S&P 500 fell 1.51% on 2026-03-20 and the Nasdaq Composite lost 2.01%, while Bitcoin "
    "closed at $68,918.12 (-2.26%) on 2026-03-21."
)
INVENTED = "The S&P 500 fell 3.17% on 2026-03-20, its worst day in months."


@dataclass
class Stub:
    content: str = ""
    requests: list[dict] = field(default_factory=list)
    base_url: str = ""


@pytest.fixture
def llm(demo_run: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stub]:
    """A chat-completions stub on 127.0.0.1, configured for the report asset, over a copy of
    the demo run's database; reports of the run go to a folder of their own, so the demo run's
    files stay as they are for the tests that read them."""
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            state.requests.append({"path": self.path, "body": body})
            message = {"role": "assistant", "content": state.content}
            payload = json.dumps(
                {"model": "stub-model", "choices": [{"index": 0, "message": message}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("MARKET_INTEL_LLM_BASE_URL", state.base_url)
    monkeypatch.setenv("MARKET_INTEL_LLM_MODEL", "stub-model")
    monkeypatch.setenv("MARKET_INTEL_LLM_TIMEOUT_SECONDS", "10")
    (tmp_path / "demo").mkdir()
    database = Pipeline(tmp_path / "demo", monkeypatch).copy_from(demo_run)
    point_at(database, monkeypatch, tmp_path / "reports")  # an empty folder: what the run wrote
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_report_with_llm(demo_run: Pipeline, stub: Stub, content: str, tmp_path: Path) -> Path:
    stub.content = content
    assert demo_run.run(DEMO_DATE, selection=REPORT_ASSET).success
    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert request["path"] == "/v1/chat/completions"
    sent = json.loads(request["body"]["messages"][1]["content"])
    assert "sections" not in sent and sent["report_date"] == DEMO_DATE
    return tmp_path / "reports"


def test_llm_commentary_citing_report_numbers_is_published(
    demo_run: Pipeline, demo_report: dict, llm: Stub, tmp_path: Path
) -> None:
    reports = run_report_with_llm(demo_run, llm, FAITHFUL, tmp_path)
    report = json.loads((reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8"))
    assert report["commentary"] == {"text": FAITHFUL, "model": "stub-model"}
    assert [s["id"] for s in report["sections"]] == [SECTION_IDS[0], "commentary", *SECTION_IDS[1:]]
    assert section_of(report, "commentary")["blocks"] == [{"type": "paragraph", "text": FAITHFUL}]
    assert facts_of(report) == facts_of(demo_report)
    assert FAITHFUL in (reports / f"{DEMO_DATE}.md").read_text(encoding="utf-8")
    html = (reports / f"{DEMO_DATE}.html").read_text(encoding="utf-8")
    assert '<section id="commentary">' in html and "$68,918.12 (-2.26%)" in html


def test_llm_commentary_with_an_invented_number_is_dropped(
    demo_run: Pipeline, demo_report: dict, llm: Stub, tmp_path: Path
) -> None:
    assert [
        s.text for s in shown_numbers(INVENTED) if not JsonNumbers(facts_of(demo_report)).holds(s)
    ] == ["3.17%"]
    reports = run_report_with_llm(demo_run, llm, INVENTED, tmp_path)
    report = json.loads((reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8"))
    assert "commentary" not in report
    assert "commentary" not in [s["id"] for s in report["sections"]]
    # Published all the same, and exactly the report without commentary.
    for suffix in ("md", "html", "json"):
        assert (reports / f"{DEMO_DATE}.{suffix}").read_bytes() == (
            demo_run.reports / f"{DEMO_DATE}.{suffix}"
        ).read_bytes()


# 8. The real closes of ../shared/reference-data.

TRUE_MOVES = {
    "us/GSPC": (-1.51, "2026-03-20"),
    "us/IXIC": (-2.01, "2026-03-20"),
    "us/DJI": (-0.96, "2026-03-20"),
    "hk/HSI": (-0.88, "2026-03-20"),
    "hk/HSCEI": (-1.40, "2026-03-20"),
    "hk/HSTECH": (-2.48, "2026-03-20"),
    "cn/sh000001": (-1.24, "2026-03-20"),
    "cn/sz399001": (-0.25, "2026-03-20"),
    "cn/sz399006": (1.30, "2026-03-20"),
    "crypto/BTC-USDT": (-2.26, "2026-03-21"),
    "crypto/ETH-USDT": (-2.86, "2026-03-21"),
}
NOT_PROVIDED = ["cn/sh000016", "us/IWM", "us/QQQ"]


# reference_run (conftest): the demo date replayed from the real closes of REFERENCE_FILES.


def test_reference_replay_publishes_the_true_moves(reference_run: Pipeline) -> None:
    report = read_report(reference_run)
    rows = instruments_by_id(report)
    shown = {i: (rows[i]["return_pct"], rows[i]["session_date"]) for i in TRUE_MOVES}
    assert shown == TRUE_MOVES
    for instrument_id in NOT_PROVIDED:
        assert rows[instrument_id]["status"] == "unavailable"
        assert rows[instrument_id]["return_pct"] is None
        assert any(w.startswith(f"[WARN] {instrument_id}:") for w in report["warnings"])
    assert {m["market"]: m["status"] for m in report["markets"]} == {
        "us": "closed",
        "hk": "closed",
        "cn": "closed",
        "crypto": "open",
    }
    assert (report["breadth"], report["defi"], report["stablecoins"]) == (None, None, None)
    assert [s["id"] for s in report["sections"]] == SECTION_IDS
    markdown = read_report(reference_run, "md")
    assert "| S&P 500 (us/GSPC) | 2026-03-20 | 6,506.48 | -1.51% | closed |" in markdown
    assert (
        "| ChiNext (创业板指) (cn/sz399006) | 2026-03-20 | 3,352.10 | +1.30% | closed |" in markdown
    )
    assert "Breadth: unavailable for this session." in markdown


def test_reference_replay_names_the_missing_feeds(reference_run: Pipeline) -> None:
    report = read_report(reference_run)
    warnings = "\n".join(report["warnings"]).lower()
    assert "breadth" in warnings and "stablecoin" in warnings and "defi" in warnings
    crypto_defi = json.dumps(section_of(report, "crypto_defi"), ensure_ascii=False).lower()
    assert "defi" in crypto_defi and "unavailable" in crypto_defi
