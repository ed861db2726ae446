"""The Market Intelligence Report as one self-contained HTML page.

Rendered from the report's JSON alone (docs/report-json.md), so every figure a reader sees is in
the JSON. Inline CSS and inline SVG charts, no scripts and no external references: the page opens
offline, from a mail attachment or a phone, and renders the same bytes for the same JSON, so
golden-file tests can pin it.
"""

import math
import re
from collections.abc import Callable
from html import escape
from typing import Any

from market_intel.report_index import INDEX_HTML, neighbour_dates, report_file
from market_intel.report_sections import dated
from market_intel.reporting import report_title

# Charts are drawn in a narrow coordinate system so their text stays legible once a phone scales
# the SVG down to its width; on wider pages the panels of a chart share the width (a CSS grid).
_WIDTH = 380
_LEFT, _RIGHT = 52, _WIDTH - 52  # the plot; the margins hold value labels beyond the bar ends
_AXIS_TOP = 26  # tick labels sit above this line, grid lines start on it
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'
_SMALL = ' font-size="10"'  # axis labels of the time-series panels
# (CSS class, fallback fill): the page's CSS re-colours the classes for dark mode.
_RED, _GREEN, _BLUE = ("neg", "#d93025"), ("pos", "#188038"), ("accent", "#1a73e8")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    """SVG coordinates with a fixed precision, so the output is byte-stable."""
    return f"{value:.1f}"


def _session(entry: dict[str, Any]) -> str:
    """A market's or instrument's session date, marked when a provisional calendar dates it."""
    day = entry.get("session_date")
    return dated(day, entry.get("calendar")) if day else "no session"


def _pct(value: float) -> str:
    return f"{value:+.2f}%"


def _bps(value: float) -> str:
    return f"{value:+.0f} bps"


def _corr(value: float) -> str:
    return f"{value:+.2f}"


def _scale(low: float, high: float) -> list[float]:
    """Round ticks (a 1-2-2.5-5 step) covering low..high and zero, so bars start from zero."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = 1.0
    rough = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(f * magnitude for f in (1, 2, 2.5, 5, 10) if rough <= f * magnitude)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 9) for i in range(first, last + 1)]


def _mapper(ticks: list[float]) -> Callable[[float], float]:
    low, high = ticks[0], ticks[-1]
    return lambda value: _LEFT + (value - low) / (high - low) * (_RIGHT - _LEFT)


def _text(x: float, y: float, text: str, cls: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" class="{cls}" text-anchor="{anchor}"{extra}>'
        f"{_e(text)}</text>"
    )


def _axis(ticks: list[float], bottom: float, unit: str) -> list[str]:
    """Grid lines with round tick labels on top; the zero line drawn stronger."""
    x = _mapper(ticks)
    parts = []
    for tick in ticks:
        opacity = "0.5" if tick == 0 else "0.15"
        parts.append(
            f'<line x1="{_n(x(tick))}" y1="{_AXIS_TOP}" x2="{_n(x(tick))}" y2="{_n(bottom)}" '
            f'stroke="currentColor" stroke-opacity="{opacity}"/>'
        )
        parts.append(
            _text(x(tick), _AXIS_TOP - 8, f"{tick:g}{unit}", "tick", "middle", ' font-size="11"')
        )
    return parts


def _bar(
    x: Callable[[float], float],
    value: float,
    top: float,
    label: str,
    styles: tuple[tuple[str, str], tuple[str, str]],
) -> list[str]:
    """A bar from zero to value (styled negative, positive), its label beyond the bar's end."""
    start, end = sorted((x(0.0), x(value)))
    negative = value < 0
    cls, colour = styles[0] if negative else styles[1]
    rect = (
        f'<rect x="{_n(start)}" y="{_n(top)}" width="{_n(max(end - start, 1.0))}" height="12" '
        f'class="{cls}" fill="{colour}"/>'
    )
    return [
        rect,
        _text(start - 4, top + 10, label, "value", "end")
        if negative
        else _text(end + 4, top + 10, label, "value"),
    ]


def _svg(title: str, height: float, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {_WIDTH} {_n(height)}" width="100%" role="img" '
        f'aria-label="{_e(title)}" fill="currentColor" {_FONT}>'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
    )


def _returns_panel(market: dict[str, Any], ticks: list[float]) -> str:
    """One market: its status and session, then each instrument's return as a bar."""
    x = _mapper(ticks)
    body, y = [], _AXIS_TOP + 4
    name = market.get("name") or market.get("market")
    heading = f"{name} — {market.get('status')}, {_session(market)}"
    body.append(_text(8, y + 16, heading, "group", extra=' font-weight="600"'))
    y += 22
    for instrument in market["instruments"]:
        short = instrument.get("short_name")
        label = f"{short} ({instrument['id']})" if short else instrument["id"]
        body.append(_text(8, y + 13, f"{label} · {_session(instrument)}", "label"))
        value = instrument.get("return_pct")
        if value is None:
            body.append(_text(x(0.0) + 4, y + 28, "n/a", "na"))
        else:
            body += _bar(x, value, y + 18, _pct(value), (_RED, _GREEN))
        y += 36
    title = f"Daily return in per cent, {name}: each instrument with its session date"
    return _svg(title, y + 6, _axis(ticks, y, "%") + body)


def svg_returns_by_market(report: dict[str, Any]) -> str:
    """Each instrument's return as a bar, one panel per market with its status and session, so
    a stale or closed market is visible next to its figures; one scale for all panels, so bars
    compare across markets. Empty when there is no return."""
    markets = [m for m in report.get("markets") or [] if m.get("instruments")]
    values = [
        i["return_pct"]
        for m in markets
        for i in m["instruments"]
        if i.get("return_pct") is not None
    ]
    if not values:
        return ""
    ticks = _scale(min(values), max(values))
    return "".join(_returns_panel(market, ticks) for market in markets)


def _pair(divergence: dict[str, Any]) -> str:
    """The pair as the divergence table names it (instrument names, not ids)."""
    left = divergence.get("left_name") or divergence.get("left")
    right = divergence.get("right_name") or divergence.get("right")
    return f"{left} vs {right}"


def charted(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The divergences the charts draw, in the JSON's order (configured pairs first): those the
    JSON marks ``charted``; a file written before that key existed charts its configured pairs."""
    return [
        d
        for d in report.get("divergences") or []
        if d.get("charted", d.get("configured")) and d.get("spread_bps") is not None
    ]


_PANEL_LEFT, _PANEL_RIGHT = 44, _WIDTH - 8  # time-series panels: tick labels left of the plot


def _x_by_index(count: int) -> Callable[[int], float]:
    """Observations equally spaced (one per observation, like a trading-day axis)."""
    step = (_PANEL_RIGHT - _PANEL_LEFT) / max(count - 1, 1)
    return lambda index: _PANEL_LEFT + index * step


def _y_mapper(low: float, high: float, top: float, bottom: float) -> Callable[[float], float]:
    return lambda value: bottom - (value - low) / (high - low) * (bottom - top)


def _points(points: list[tuple[float, float]]) -> str:
    """SVG ``points`` with _n's fixed precision, formatted in one pass (the charts' hot path)."""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _polylines(points: list[tuple[float, float] | None], cls: str, colour: str) -> list[str]:
    """A line through the points, broken where a point is missing (a statistic not defined yet)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    return [
        f'<polyline points="{_points(run)}" class="{cls}" '
        f'fill="none" stroke="{colour}" stroke-width="1.5" stroke-linejoin="round"/>'
        for run in runs
        if len(run) > 1
    ]


def _band_area(
    history: list[dict[str, Any]], x: Callable[[int], float], y: Callable[[float], float]
) -> str:
    """The +-2 sd band of each observation, as one shaded area (where the band is defined)."""
    inside = [
        (i, row["band_low_bps"], row["band_high_bps"])
        for i, row in enumerate(history)
        if row.get("band_low_bps") is not None and row.get("band_high_bps") is not None
    ]
    if len(inside) < 2:
        return ""
    outline = [(x(i), y(high)) for i, _, high in inside]
    outline += [(x(i), y(low)) for i, low, _ in reversed(inside)]
    points = _points(outline)
    return f'<polygon points="{points}" class="band" fill="currentColor" fill-opacity="0.15"/>'


def _y_ticks(ticks: list[float], y: Callable[[float], float]) -> list[str]:
    """Horizontal grid lines labelled at the left; the zero line drawn stronger."""
    parts = []
    for tick in ticks:
        opacity = "0.5" if tick == 0 else "0.12"
        parts.append(
            f'<line x1="{_PANEL_LEFT}" y1="{_n(y(tick))}" x2="{_PANEL_RIGHT}" y2="{_n(y(tick))}" '
            f'stroke="currentColor" stroke-opacity="{opacity}"/>'
        )
        parts.append(_text(_PANEL_LEFT - 4, y(tick) + 3.5, f"{tick:g}", "tick", "end", _SMALL))
    return parts


def _date_axis(history: list[dict[str, Any]], x: Callable[[int], float], y: float) -> list[str]:
    """The first and last observation dates under the plot."""
    if not history:
        return []
    first, last = history[0].get("observed_on"), history[-1].get("observed_on")
    return [
        _text(x(0), y, str(first), "tick", "start", _SMALL),
        _text(x(len(history) - 1), y, str(last), "tick", "end", _SMALL),
    ]


def _spread_panel(divergence: dict[str, Any], top: float) -> tuple[list[str], float]:
    """One pair: its name and today's spread, then the spread of its last observations (line)
    inside each observation's +-2 sd band (shaded), today's point red when outside the band."""
    history = divergence.get("history") or []
    spread = divergence["spread_bps"]
    left, right = divergence.get("left_session_date"), divergence.get("right_session_date")
    sessions = left if left == right else f"{left} / {right}"
    body = [
        _text(8, top + 13, _pair(divergence), "label"),
        _text(_PANEL_RIGHT, top + 13, _bps(spread), "value", "end", ' font-weight="600"'),
    ]
    low, high = divergence.get("band_low_bps"), divergence.get("band_high_bps")
    has_band = low is not None and high is not None
    caption = [sessions, f"band {low:+.0f} to {high:+.0f} bps" if has_band else "no band"]
    if divergence.get("zscore") is not None:
        caption.append(f"z {divergence['zscore']:+.2f}")
    if not history:
        caption.append("no history")
    body.append(
        _text(
            8,
            top + 28,
            " · ".join(caption),
            "caption",
            "start",
            ' fill-opacity="0.75" font-size="11"',
        )
    )
    values = [spread] + [
        row[key]
        for row in history
        for key in ("spread_bps", "band_low_bps", "band_high_bps")
        if row.get(key) is not None
    ]
    plot_top, plot_bottom = top + 40, top + 100
    ticks = _scale(min(values), max(values))
    y = _y_mapper(ticks[0], ticks[-1], plot_top, plot_bottom)
    x = _x_by_index(len(history))
    body += _y_ticks(ticks, y)
    body.append(_band_area(history, x, y))
    points = [
        None if row.get("spread_bps") is None else (x(i), y(row["spread_bps"]))
        for i, row in enumerate(history)
    ]
    body += _polylines(points, "stroke-accent", _BLUE[1])
    outside = has_band and not low <= spread <= high
    cls, colour = _RED if outside else _BLUE
    today_x = x(len(history) - 1) if history else _PANEL_RIGHT
    body.append(
        f'<circle cx="{_n(today_x)}" cy="{_n(y(spread))}" r="3" class="{cls} today" '
        f'fill="{colour}"/>'
    )
    body += _date_axis(history, x, plot_bottom + 13)
    return body, plot_bottom + 24


def svg_divergence_bands(report: dict[str, Any]) -> str:
    """Each charted pair's spread over its last observations against the band (mean +- 2 sd of
    its history) it had on each day, one panel per pair, so a reader sees whether today's spread
    is unusual and whether it is widening or closing. Empty when no pair is charted."""
    panels = []
    for divergence in charted(report):
        body, height = _spread_panel(divergence, 4.0)
        title = f"{_pair(divergence)}: spread in basis points inside its mean ± 2 sd band"
        panels.append(_svg(title, height + 4, body))
    return "".join(panels)


def _correlation_panel(divergence: dict[str, Any], top: float) -> tuple[list[str], float]:
    history = divergence.get("history") or []
    value = divergence.get("correlation_60d")
    body = [_text(8, top + 13, _pair(divergence), "label")]
    body.append(
        _text(_PANEL_RIGHT, top + 13, "n/a", "na", "end")
        if value is None
        else _text(_PANEL_RIGHT, top + 13, _corr(value), "value", "end", ' font-weight="600"')
    )
    y = _y_mapper(-1.0, 1.0, top + 22, top + 58)
    x = _x_by_index(len(history))
    body += _y_ticks([-1.0, 0.0, 1.0], y)
    points = [
        None if row.get("correlation_60d") is None else (x(i), y(row["correlation_60d"]))
        for i, row in enumerate(history)
    ]
    body += _polylines(points, "stroke-accent", _BLUE[1])
    body += _date_axis(history, x, top + 70)
    return body, top + 78


def svg_rolling_correlations(report: dict[str, Any]) -> str:
    """Each charted pair's rolling correlation over its last observations on a fixed -1..1 axis,
    so a spread between assets that rarely move together reads differently from one that breaks
    a tight link, and a link that is loosening shows. Empty without correlations."""
    pairs = charted(report)
    if all(d.get("correlation_60d") is None for d in pairs):
        return ""
    panels = []
    for divergence in pairs:
        body, height = _correlation_panel(divergence, 4.0)
        title = f"{_pair(divergence)}: rolling correlation of daily returns"
        panels.append(_svg(title, height + 4, body))
    return "".join(panels)


def _sparkline(closes: list[float], left: float, right: float, top: float) -> str:
    """The closes as a line scaled to their own range (shape, not level), last close dotted."""
    low, high = min(closes), max(closes)
    span = (high - low) or 1.0
    step = (right - left) / max(len(closes) - 1, 1)
    points = [(left + i * step, top + 14 - (c - low) / span * 14) for i, c in enumerate(closes)]
    line = _polylines(points, "stroke-accent", _BLUE[1]) if len(points) > 1 else []
    last_x, last_y = points[-1]
    dot = f'<circle cx="{_n(last_x)}" cy="{_n(last_y)}" r="2" class="accent" fill="{_BLUE[1]}"/>'
    return "".join(line) + dot


def _sparklines_panel(market: dict[str, Any]) -> str:
    body, y = (
        [
            _text(
                8,
                17,
                str(market.get("name") or market.get("market")),
                "group",
                extra=' font-weight="600"',
            )
        ],
        26.0,
    )
    for instrument in market["instruments"]:
        name = instrument.get("short_name") or instrument.get("name") or instrument.get("id")
        body.append(_text(8, y + 13, str(name), "label"))
        series = [
            c for c in (instrument.get("context") or {}).get("closes_60") or [] if c is not None
        ]
        if series:
            body.append(_sparkline(series, 110, 290, y + 2))
            close = instrument.get("close")
            label = "n/a" if close is None else f"{close:,.2f}"
            body.append(_text(_PANEL_RIGHT, y + 13, label, "value", "end"))
        else:
            body.append(_text(110, y + 13, "n/a", "na"))
        y += 22
    title = f"{market.get('name') or market.get('market')}: last 60 closes of each instrument"
    return _svg(title, y + 2, body)


def svg_sparklines(report: dict[str, Any]) -> str:
    """Each instrument's last closes (JSON ``context.closes_60``) as a sparkline beside its
    latest close, one panel per market. Empty when no instrument has that series (a report
    written before the key existed)."""
    markets = [m for m in report.get("markets") or [] if m.get("instruments")]
    if not any(
        (i.get("context") or {}).get("closes_60") for m in markets for i in m["instruments"]
    ):
        return ""
    return "".join(_sparklines_panel(market) for market in markets)


_CHARTS: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "returns_by_market": (
        svg_returns_by_market,
        "Daily return of each instrument in its latest session, grouped by market.",
    ),
    "sparklines": (
        svg_sparklines,
        "Last 60 closes of each instrument, each on its own scale; the dot is the latest close.",
    ),
    "divergence_bands": (
        svg_divergence_bands,
        (
            "The configured pairs, then the other pairs of largest |z|: spread (line) inside the "
            "band mean ± 2 sd of the previous observations (shaded), today's spread dotted, red "
            "outside the band."
        ),
    ),
    "rolling_correlations": (
        svg_rolling_correlations,
        "Rolling correlation of each charted pair's daily returns over its last observations.",
    ),
}

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--soft:#f6f8fa;--note-bg:#fff8c5;--note-fg:#4d3800;--neg:#c5221f;--pos:#137333;--accent:#1a73e8}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--soft:#151b23;--note-bg:#3b2e00;--note-fg:#f2cc60;--neg:#ff7b72;--pos:#3fb950;
--accent:#58a6ff}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
main p,main ul,nav ol,.status-note{max-width:48rem}
header{padding-top:1rem;border-bottom:1px solid var(--line)}
h1{font-size:1.4rem;line-height:1.25;margin:.5rem 0}
h2{font-size:1.15rem;margin:2rem 0 .5rem;padding-top:.5rem;border-top:1px solid var(--line)}
.date{margin:0;color:var(--muted)}
.markets{list-style:none;padding:0;margin:.75rem 0;display:flex;flex-wrap:wrap;gap:.4rem}
.markets li{font-size:.85rem;padding:.15rem .55rem;border:1px solid var(--line);
border-radius:1rem;background:var(--soft)}
.markets .status-stale,.markets .status-unavailable,.markets .status-left_out{border-color:var(--neg);color:var(--neg)}
.markets .status-open{border-color:var(--pos)}
nav ol{padding-left:1.5rem;margin:.5rem 0 1rem;font-size:.95rem}
.pager{display:flex;flex-wrap:wrap;gap:.4rem 1.25rem;font-size:.85rem}
a{color:var(--accent)}
.status-note{margin:.25rem 0 .75rem;padding:.4rem .7rem;border-left:4px solid #d4a72c;
background:var(--note-bg);color:var(--note-fg);font-size:.9rem;border-radius:.25rem}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.75rem 0;
border:1px solid var(--line);border-radius:.4rem;background-color:var(--bg);
background-image:linear-gradient(to right,var(--bg) 40%,transparent),
linear-gradient(to left,var(--bg) 40%,transparent),
radial-gradient(farthest-side at 0 50%,rgba(110,118,129,.55),transparent),
radial-gradient(farthest-side at 100% 50%,rgba(110,118,129,.55),transparent);
background-position:left center,right center,left center,right center;
background-size:2.5rem 100%,2.5rem 100%,1rem 100%,1rem 100%;background-repeat:no-repeat;
background-attachment:local,local,scroll,scroll}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.4rem .6rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{background:var(--soft);white-space:nowrap}
tr:last-child td{border-bottom:0}
td{white-space:nowrap}
td.text{white-space:normal;min-width:14rem}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.neg{color:var(--neg)}
td.pos{color:var(--pos)}
figure{margin:1rem 0}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr));
gap:.5rem 1.5rem;align-items:start}
figure svg{display:block;width:100%;height:auto}
figcaption,.no-data{color:var(--muted);font-size:.85rem}
.no-data{font-style:italic}
svg .neg{fill:var(--neg)}
svg .pos{fill:var(--pos)}
svg .accent{fill:var(--accent)}
svg .stroke-accent{stroke:var(--accent)}
@media (max-width:40rem){header,main,footer{padding:0 .75rem}
table{font-size:.8rem}th,td{padding:.3rem .4rem}
td:first-child{white-space:normal;min-width:6.5rem}td.text:not(:first-child){min-width:10rem}}
@media print{@page{size:A4;margin:12mm}
body{font-size:9pt;line-height:1.35}
header,main,footer{max-width:none;padding:0}
nav{display:none}
h1{font-size:14pt}h2{font-size:11pt;margin:.8rem 0 .3rem;padding-top:.3rem;break-after:avoid}
.table-wrap{overflow:visible;border:0;background:none;margin:.4rem 0}
table{font-size:8pt}th,td{padding:.12rem .35rem}td.text{min-width:0}
tr,figure svg,.status-note{break-inside:avoid}
figure{margin:.5rem 0}.panels{grid-template-columns:1fr 1fr;gap:.25rem 1rem}}
footer{margin-top:2rem;padding-bottom:2rem;color:var(--muted);font-size:.85rem}
"""

_NUMBER_CHARS = set("0123456789,.")
_SHORT_CELL = 32  # characters; shorter cells never wrap (a date must not break at its hyphens)


# A figure with its percentile in brackets, as the Levels table's volatility: "20.2% (87)".
_FIGURE_WITH_RANK = re.compile(r"\d[\d.,]*% \(\d+\)")


def _cell_class(cell: str) -> str:
    """Figures ("-1.51%", "6,506.48", "+254 bps", "20.2% (87)") and "n/a" align right, a signed
    one takes its sign's colour; long text wraps, the rest stays on one line and the table scrolls
    sideways instead."""
    if cell == "n/a" or _FIGURE_WITH_RANK.fullmatch(cell):
        return ' class="num"'
    body = cell.removesuffix("%").removesuffix(" bps").lstrip("+-")
    if body and body[0].isdigit() and set(body) <= _NUMBER_CHARS:
        sign = {"-": " neg", "+": " pos"}.get(cell[0], "")
        return f' class="num{sign}"'
    return ' class="text"' if len(cell) > _SHORT_CELL else ""


def _table(block: dict[str, Any]) -> str:
    columns = block.get("columns") or []
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    rows = []
    for row in block.get("rows") or []:
        cells = ["" if cell is None else str(cell) for cell in row]
        rows.append("<tr>" + "".join(f"<td{_cell_class(c)}>{_e(c)}</td>" for c in cells) + "</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if columns else ""
    return f'<div class="table-wrap"><table>{thead}<tbody>{"".join(rows)}</tbody></table></div>'


def _chart(block: dict[str, Any], report: dict[str, Any]) -> str:
    name = str(block.get("chart"))
    if name not in _CHARTS:
        return f'<p class="no-data">Unknown chart: {_e(name)}.</p>'
    draw, caption = _CHARTS[name]
    svg = draw(report)
    if not svg:
        return f'<p class="no-data">No data for this chart ({_e(name)}).</p>'
    return (
        f'<figure class="chart"><div class="panels">{svg}</div>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _block(block: dict[str, Any], report: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "paragraph":
        return f"<p>{_e(block.get('text') or '')}</p>"
    if kind == "bullets":
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in block.get("items") or []) + "</ul>"
    if kind == "table":
        return _table(block)
    if kind == "chart":
        return _chart(block, report)
    return f'<p class="no-data">Unsupported block: {_e(kind)}.</p>'


def _section_id(section: dict[str, Any], index: int) -> str:
    return _e(section.get("id") or f"section-{index}")


def _section(section: dict[str, Any], index: int, report: dict[str, Any]) -> str:
    parts = [
        f'<section id="{_section_id(section, index)}">',
        f"<h2>{_e(section.get('title') or '')}</h2>",
    ]
    if section.get("status_note"):
        parts.append(f'<p class="status-note" role="note">{_e(section["status_note"])}</p>')
    parts += [_block(block, report) for block in section.get("blocks") or []]
    parts.append("</section>")
    return "\n".join(parts)


def _title(report: dict[str, Any]) -> str:
    """The JSON's title (older files: the plain one), the same in <title> and <h1>."""
    return report.get("title") or report_title(str(report.get("report_date")), "live")


def _heading(report: dict[str, Any]) -> str:
    """The title with its report date marked up as a <time>."""
    day = str(report.get("report_date"))
    before, found, after = _title(report).partition(day)
    if not found:
        return f"<h1>{_e(before)}</h1>"
    return f'<h1>{_e(before)}<time datetime="{_e(day)}">{_e(day)}</time>{_e(after)}</h1>'


def _pager(report: dict[str, Any]) -> str:
    """Links to the previous and next report dates and the index, by relative URL: the same
    bytes whichever other reports exist (a date the gate blocked has no page to open)."""
    try:
        previous, following = neighbour_dates(str(report.get("report_date")))
    except ValueError:
        return ""
    return (
        '<nav class="pager" aria-label="Other reports">'
        f'<a href="{report_file(previous, "html")}" rel="prev">← {previous}</a>'
        f'<a href="{INDEX_HTML}">All reports</a>'
        f'<a href="{report_file(following, "html")}" rel="next">{following} →</a></nav>'
    )


def _header(report: dict[str, Any]) -> str:
    lines = ["<header>", _pager(report), _heading(report)]
    if report.get("as_of_date"):
        lines.append(
            f'<p class="date">Each market shows its latest session on or before '
            f"{_e(report['as_of_date'])}, by its own exchange calendar.</p>"
        )
    chips = [
        f'<li class="status-{_e(m.get("status"))}">{_e(m.get("name") or m.get("market"))}: '
        f"{_e(m.get('status'))}, {_e(_session(m))}</li>"
        for m in report.get("markets") or []
    ]
    if chips:
        lines.append('<ul class="markets">' + "".join(chips) + "</ul>")
    lines.append("</header>")
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained, offline, script-free HTML page, from the JSON alone."""
    sections = report.get("sections") or []
    day = _e(report.get("report_date"))
    toc = "".join(
        f'<li><a href="#{_section_id(s, i)}">{_e(s.get("title") or "")}</a></li>'
        for i, s in enumerate(sections, start=1)
    )
    body = [_section(s, i, report) for i, s in enumerate(sections, start=1)]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="color-scheme" content="light dark">',
            f"<title>{_e(_title(report))}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            _header(report),
            "<main>",
            f'<nav aria-label="Sections"><ol>{toc}</ol></nav>' if toc else "",
            *body,
            "</main>",
            f"<footer>Every figure on this page is in {day}.json, the report's JSON.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )
