"""The Market Intelligence Report as one self-contained HTML page.

Rendered from the report's JSON alone (docs/report-json.md), so every figure a reader sees is in
the JSON. Inline CSS and inline SVG charts, no scripts and no external references: the page opens
offline, from a mail attachment or a phone, and renders the same bytes for the same JSON, so
golden-file tests can pin it.
"""

import math
from collections.abc import Callable
from html import escape
from typing import Any

from market_intel.report_sections import dated

# Charts are drawn in a narrow coordinate system so their text stays legible once a phone scales
# the SVG down to its width; the page caps their width so desktops do not blow them up.
_WIDTH = 380
_LEFT, _RIGHT = 52, _WIDTH - 52  # the plot; the margins hold value labels beyond the bar ends
_AXIS_TOP = 26  # tick labels sit above this line, grid lines start on it
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'
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


def svg_returns_by_market(report: dict[str, Any]) -> str:
    """Each instrument's return as a bar, grouped by market and labelled with its session date,
    so a stale or closed market is visible next to its figures. Empty when there is no return."""
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
    x = _mapper(ticks)
    body, y = [], _AXIS_TOP + 4
    for market in markets:
        heading = (
            f"{market.get('name') or market.get('market')} — {market.get('status')}, "
            f"{_session(market)}"
        )
        body.append(_text(8, y + 16, heading, "group", extra=' font-weight="600"'))
        y += 22
        for instrument in market["instruments"]:
            short = instrument.get("short_name")
            name = f"{short} ({instrument['id']})" if short else instrument["id"]
            body.append(_text(8, y + 13, f"{name} · {_session(instrument)}", "label"))
            value = instrument.get("return_pct")
            if value is None:
                body.append(_text(x(0.0) + 4, y + 28, "n/a", "na"))
            else:
                body += _bar(x, value, y + 18, _pct(value), (_RED, _GREEN))
            y += 36
    title = "Daily return by market, in per cent, each instrument with its session date"
    return _svg(title, y + 6, _axis(ticks, y, "%") + body)


def _pair(divergence: dict[str, Any]) -> str:
    return f"{divergence.get('left')} vs {divergence.get('right')}"


def svg_divergence_bands(report: dict[str, Any]) -> str:
    """Today's spread of each pair as a marker on its historical band, so an unusual divergence
    stands out (red when outside the band). Empty when there are no divergences."""
    divergences = report.get("divergences") or []
    values = [
        d[key]
        for d in divergences
        for key in ("spread_bps", "band_low_bps", "band_high_bps")
        if d.get(key) is not None
    ]
    if not values:
        return ""
    ticks = _scale(min(values), max(values))
    x = _mapper(ticks)
    body, y = [], _AXIS_TOP + 4
    for divergence in divergences:
        left, right = divergence.get("left_session_date"), divergence.get("right_session_date")
        sessions = left if left == right else f"{left} / {right}"
        body.append(_text(8, y + 13, f"{_pair(divergence)} · {sessions}", "label"))
        low, high = divergence.get("band_low_bps"), divergence.get("band_high_bps")
        has_band = low is not None and high is not None
        if has_band:
            body.append(
                f'<rect x="{_n(x(low))}" y="{_n(y + 19)}" width="{_n(x(high) - x(low))}" '
                f'height="14" class="band" fill="currentColor" fill-opacity="0.18"/>'
            )
        spread = divergence.get("spread_bps")
        if spread is None:
            body.append(_text(x(0.0) + 4, y + 30, "n/a", "na"))
        else:
            outside = has_band and not low <= spread <= high
            cls, colour = _RED if outside else _BLUE
            marker = x(spread)
            body.append(
                f'<rect x="{_n(marker - 2)}" y="{_n(y + 16)}" width="4" height="20" '
                f'class="{cls}" fill="{colour}"/>'
            )
            right_side = marker <= (_LEFT + _RIGHT) / 2
            body.append(
                _text(marker + 6, y + 30, _bps(spread), "value")
                if right_side
                else _text(marker - 6, y + 30, _bps(spread), "value", "end")
            )
        caption = [f"band {low:+.0f} to {high:+.0f} bps" if has_band else "no band"]
        if divergence.get("zscore") is not None:
            caption.append(f"z {divergence['zscore']:+.2f}")
        body.append(_text(8, y + 50, " · ".join(caption), "caption", extra=' fill-opacity="0.75"'))
        y += 58
    title = "Spread of each pair today, in basis points, against its historical band"
    return _svg(title, y + 4, _axis(ticks, y, "") + body)


def svg_rolling_correlations(report: dict[str, Any]) -> str:
    """Each pair's rolling correlation on a fixed -1..1 axis, so a spread between assets that
    rarely move together reads differently from one that breaks a tight link. Empty without
    correlations."""
    divergences = report.get("divergences") or []
    if all(d.get("correlation_60d") is None for d in divergences):
        return ""
    ticks = [-1.0, -0.5, 0.0, 0.5, 1.0]
    x = _mapper(ticks)
    body, y = [], _AXIS_TOP + 4
    for divergence in divergences:
        body.append(_text(8, y + 13, _pair(divergence), "label"))
        value = divergence.get("correlation_60d")
        if value is None:
            body.append(_text(x(0.0) + 4, y + 28, "n/a", "na"))
        else:
            body += _bar(x, value, y + 18, _corr(value), (_BLUE, _BLUE))
        y += 36
    title = "Rolling correlation of each divergence pair's daily returns"
    return _svg(title, y + 6, _axis(ticks, y, "") + body)


_CHARTS: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "returns_by_market": (
        svg_returns_by_market,
        "Daily return of each instrument in its latest session, grouped by market.",
    ),
    "divergence_bands": (
        svg_divergence_bands,
        "Today's spread (marker) on the pair's historical band (shaded); red: outside the band.",
    ),
    "rolling_correlations": (
        svg_rolling_correlations,
        "Rolling correlation of each pair's daily returns.",
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
header,main,footer{max-width:48rem;margin:0 auto;padding:0 1rem}
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
a{color:var(--accent)}
.status-note{margin:.25rem 0 .75rem;padding:.4rem .7rem;border-left:4px solid #d4a72c;
background:var(--note-bg);color:var(--note-fg);font-size:.9rem;border-radius:.25rem}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.75rem 0;
border:1px solid var(--line);border-radius:.4rem}
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
figure svg{display:block;max-width:36rem;height:auto}
figcaption,.no-data{color:var(--muted);font-size:.85rem}
.no-data{font-style:italic}
svg .neg{fill:var(--neg)}
svg .pos{fill:var(--pos)}
svg .accent{fill:var(--accent)}
footer{margin-top:2rem;padding-bottom:2rem;color:var(--muted);font-size:.85rem}
"""

_NUMBER_CHARS = set("0123456789,.")
_SHORT_CELL = 32  # characters; shorter cells never wrap (a date must not break at its hyphens)


def _cell_class(cell: str) -> str:
    """Figures ("-1.51%", "6,506.48", "+254 bps") align right and take their sign's colour; long
    text wraps, the rest stays on one line and the table scrolls sideways instead."""
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
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


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


def _header(report: dict[str, Any]) -> str:
    day = _e(report.get("report_date"))
    lines = [
        "<header>",
        f'<h1>Market Intelligence Report — <time datetime="{day}">{day}</time></h1>',
    ]
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
            f"<title>Market Intelligence Report — {day}</title>",
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
