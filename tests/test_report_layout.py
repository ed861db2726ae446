"""The demo report's HTML as a browser lays it out: headless Chromium (the OS package
``chromium``; the tests skip without it) measures every table at 1280 and 390 px, prints the page
to PDF and takes screenshots.

Chromium's window is never narrower than 500 px, so the page is measured inside an ``<iframe>``
of the width under test (its own viewport: the page's media queries see 390 px). The iframe's
``srcdoc`` shares the outer page's origin, so a script of the outer page reads the report's
layout and writes it into the DOM as JSON, which ``--dump-dom`` returns.
"""

import json
import re
import shutil
import struct
import subprocess
from html import escape, unescape
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_DATE, Pipeline

DESKTOP, PHONE = 1280, 390
MAX_PRINTED_PAGES = 8
PAGE_HEIGHT = 16000  # px: taller than the demo report at 390 px, so a screenshot shows all of it

# Per table: its section, column names, visible and scrollable width, each cell's right edge
# (relative to the table's scroll box), and the box's overflow and background (the scroll cue).
PROBE = """
<script>
const frame = document.getElementById('report');
frame.addEventListener('load', () => {
  const page = frame.contentDocument;
  const view = frame.contentWindow;
  const tables = [...page.querySelectorAll('.table-wrap')].map(box => {
    const edge = box.getBoundingClientRect().left;
    const style = view.getComputedStyle(box);
    return {
      section: box.closest('section') ? box.closest('section').id : null,
      columns: [...box.querySelectorAll('thead th')].map(th => th.textContent),
      client_width: box.clientWidth,
      scroll_width: box.scrollWidth,
      rights: [...box.querySelectorAll('tbody tr')].map(
        row => [...row.children].map(cell => cell.getBoundingClientRect().right - edge)),
      overflow_x: style.overflowX,
      background: style.backgroundImage,
    };
  });
  const result = document.createElement('pre');
  result.id = 'layout';
  result.textContent = JSON.stringify({
    viewport: view.innerWidth,
    page_width: page.documentElement.scrollWidth,
    page_height: Math.ceil(page.documentElement.getBoundingClientRect().height),
    tables: tables,
  });
  document.body.appendChild(result);
});
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium is not installed (the OS package; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def report_html(demo_run: Pipeline) -> Path:
    return demo_run.reports / f"{DEMO_DATE}.html"


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium, offline (a report has no external reference to load anyway)."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def framed(report: Path, width: int, folder: Path, probe: bool) -> Path:
    """An outer page holding the report in an iframe ``width`` px wide (and the probe)."""
    page = folder / f"framed-{width}{'-probe' if probe else ''}.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe id="report" style="border:0;display:block;width:{width}px;'
        f'height:{PAGE_HEIGHT}px" srcdoc="{escape(report.read_text(encoding="utf-8"))}"></iframe>'
        f"{PROBE if probe else ''}</body></html>",
        encoding="utf-8",
    )
    return page


def layout(chromium: str, report: Path, width: int, folder: Path) -> dict[str, Any]:
    page = framed(report, width, folder, probe=True)
    dom = run_chromium(
        chromium,
        folder / "profile",
        f"--window-size={max(width, 500)},2000",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ).stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found, f"the probe wrote nothing: {dom[-500:]}"
    measured = json.loads(unescape(found.group(1)))
    assert measured["viewport"] == width
    return measured


@pytest.fixture(scope="module")
def desktop(chromium: str, report_html: Path, tmp_path_factory) -> dict[str, Any]:
    return layout(chromium, report_html, DESKTOP, tmp_path_factory.mktemp("desktop"))


@pytest.fixture(scope="module")
def phone(chromium: str, report_html: Path, tmp_path_factory) -> dict[str, Any]:
    return layout(chromium, report_html, PHONE, tmp_path_factory.mktemp("phone"))


def cut_off(table: dict[str, Any], column: int) -> list[float]:
    """Right edges of the column's cells beyond the table's visible width (1 px of rounding)."""
    return [row[column] for row in table["rights"] if row[column] > table["client_width"] + 1]


def test_at_1280_px_no_table_hides_a_column(desktop: dict[str, Any]) -> None:
    assert desktop["page_width"] <= DESKTOP
    assert len(desktop["tables"]) >= 10
    for table in desktop["tables"]:
        assert table["scroll_width"] <= table["client_width"] + 1, (table["section"], table)
        for column, name in enumerate(table["columns"]):
            assert not cut_off(table, column), f"{table['section']}: {name} is cut off"


def test_at_390_px_market_tables_show_name_close_and_return(phone: dict[str, Any]) -> None:
    """The page itself never scrolls sideways; each instrument table shows its first column
    (the name), Close and Return without scrolling."""
    assert phone["page_width"] <= PHONE
    market_tables = [t for t in phone["tables"] if {"Close", "Return"} <= set(t["columns"])]
    assert {t["section"] for t in market_tables} >= {"us", "hk", "cn"}
    for table in market_tables:
        for name in (table["columns"][0], "Close", "Return"):
            column = table["columns"].index(name)
            assert not cut_off(table, column), f"{table['section']}: {name} is cut off"


def test_at_390_px_a_table_that_scrolls_shows_it(phone: dict[str, Any]) -> None:
    """Every table scrolls inside its own box, and that box paints the scroll shadows (a
    background of gradients that follow the content: visible only on a side with more)."""
    scrolling = [t for t in phone["tables"] if t["scroll_width"] > t["client_width"] + 1]
    assert scrolling, "no table is wider than a phone: the test would prove nothing"
    for table in phone["tables"]:
        assert table["overflow_x"] == "auto", table["section"]
        assert table["background"].count("gradient(") == 4, table["section"]


def pdf_pages(pdf: bytes) -> int:
    """Page objects of a PDF (``/Type /Page``, not ``/Pages``)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_the_printed_demo_report_fits_in_eight_pages(
    chromium: str, report_html: Path, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    run_chromium(
        chromium,
        tmp_path / "profile",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        report_html.as_uri(),
    )
    pages = pdf_pages(pdf.read_bytes())
    assert 1 <= pages <= MAX_PRINTED_PAGES, f"{pages} printed pages"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_screenshots(
    chromium: str, report_html: Path, tmp_path: Path, width: int, desktop, phone
) -> None:
    """A screenshot of the whole page at each width (kept in the test's tmp_path to look at):
    Chromium draws it, as wide as the window and as tall as the page."""
    height = (desktop if width == DESKTOP else phone)["page_height"]
    assert height < PAGE_HEIGHT
    shot = tmp_path / f"report-{width}.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--window-size={max(width, 500)},{height}",
        f"--screenshot={shot}",
        framed(report_html, width, tmp_path, probe=False).as_uri(),
    )
    assert png_size(shot) == (max(width, 500), height)
    print(f"screenshot: {shot}")
