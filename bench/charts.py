"""The cost per report of the HTML charts, hand-written SVG against matplotlib's SVG backend,
on the demo report (tests/golden/2026-03-22.json), extrapolated to the ten-year backfill's
3,653 reports (docs/report.md, "Charts"): ``python -m bench.charts``.

matplotlib is not a dependency of the project: its half runs only where it is importable
(``pip install matplotlib`` into a scratch environment) and draws the same panels as
``render_html``, one figure each, deterministically (fixed ``svg.hashsalt``, no date).
Best of five repeats, so other processes on the machine weigh less.
"""

import io
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from market_intel.report_html import (
    render_html,
    svg_divergence_bands,
    svg_returns_by_market,
    svg_rolling_correlations,
    svg_sparklines,
)

DEMO_REPORT = Path(__file__).parents[1] / "tests" / "golden" / "2026-03-22.json"
BACKFILL_REPORTS = 3653
CHARTS = (svg_returns_by_market, svg_sparklines, svg_divergence_bands, svg_rolling_correlations)


def best_seconds(work: Callable[[], object], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(work, number=number, repeat=repeat)) / number


def matplotlib_panels(report: dict[str, Any]) -> list[str]:
    """The same panels as the hand-written charts, with matplotlib's SVG backend."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "market-intel"
    plt.rcParams["svg.fonttype"] = "none"

    def save(figure) -> str:
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
        plt.close(figure)
        return out.getvalue()

    markets = [m for m in report["markets"] if m["instruments"]]
    charted = [d for d in report["divergences"] if d.get("charted")]
    panels = []
    for market in markets:
        rows = market["instruments"]
        figure, axes = plt.subplots(figsize=(4, 0.4 * len(rows) + 0.6))
        returns = [row["return_pct"] or 0.0 for row in rows]
        axes.barh([row["short_name"] for row in rows], returns)
        axes.set_title(market["name"])
        panels.append(save(figure))
    for market in markets:
        rows = market["instruments"]
        figure, axes = plt.subplots(len(rows), 1, figsize=(4, 0.3 * len(rows) + 0.3), squeeze=False)
        for axis, row in zip(axes[:, 0], rows, strict=True):
            axis.plot((row.get("context") or {}).get("closes_60") or [0.0], lw=1)
            axis.axis("off")
        panels.append(save(figure))
    for divergence in charted:
        history = divergence["history"]
        figure, axes = plt.subplots(figsize=(4, 1.3))
        x = range(len(history))
        low = [row["band_low_bps"] for row in history]
        high = [row["band_high_bps"] for row in history]
        axes.fill_between(x, low, high, alpha=0.15)
        axes.plot(x, [row["spread_bps"] for row in history], lw=1.5)
        axes.set_title(f"{divergence['left_name']} vs {divergence['right_name']}", fontsize=9)
        panels.append(save(figure))
    for divergence in charted:
        figure, axes = plt.subplots(figsize=(4, 0.8))
        axes.plot([row["correlation_60d"] for row in divergence["history"]], lw=1.5)
        axes.set_ylim(-1, 1)
        panels.append(save(figure))
    return panels


def main() -> None:
    report = json.loads(DEMO_REPORT.read_text(encoding="utf-8"))
    page = best_seconds(lambda: render_html(report), number=10)
    charts = best_seconds(lambda: [draw(report) for draw in CHARTS], number=10)
    panels = sum(draw(report).count("<svg") for draw in CHARTS)
    print(
        f"hand-written SVG: render_html {page * 1000:.1f} ms a report, its {panels} chart "
        f"panels {charts * 1000:.1f} ms; x {BACKFILL_REPORTS} reports: {page * BACKFILL_REPORTS:.0f} s"
    )
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: its half is skipped")
        return
    first = matplotlib_panels(report)
    assert first == matplotlib_panels(report), "matplotlib's SVG is not deterministic"
    drawn = best_seconds(lambda: matplotlib_panels(report), number=1)
    print(
        f"matplotlib {matplotlib.__version__} SVG backend, the same {len(first)} panels: "
        f"{drawn * 1000:.0f} ms a report ({drawn * 1000 / len(first):.0f} ms a panel); "
        f"x {BACKFILL_REPORTS} reports: {drawn * BACKFILL_REPORTS:.0f} s"
    )


if __name__ == "__main__":
    main()
