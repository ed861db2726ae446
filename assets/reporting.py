"""The Market Intelligence Report built from the dbt facts: the JSON first, then every other
format rendered from the JSON alone, so each figure a reader sees is in the JSON."""

from datetime import date, timedelta
from typing import Any

import pandas as pd

from assets.universe import instruments, markets
from data_checks.outcome import CheckOutcome


def _number(value: Any, digits: int = 2) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


def _day(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def build_report(
    report_date: date, snapshot: pd.DataFrame, outcomes: list[CheckOutcome]
) -> dict[str, Any]:
    """The report's JSON contract (design.md) from one report date's snapshot rows."""
    by_id = snapshot.set_index("instrument_id")
    report_markets = []
    for code, market in markets().items():
        ids = [i.instrument_id for i in instruments(code) if i.instrument_id in by_id.index]
        if not ids:
            continue
        first = by_id.loc[ids[0]]
        report_markets.append(
            {
                "market": code,
                "name": market.name,
                "status": first["market_status"],
                "session_date": _day(first["market_session_date"]),
                "instruments": [
                    {
                        "id": instrument_id,
                        "name": by_id.at[instrument_id, "name"],
                        "close": _number(by_id.at[instrument_id, "close"]),
                        "return_pct": _number(by_id.at[instrument_id, "return_pct"]),
                        "session_date": _day(by_id.at[instrument_id, "session_date"]),
                        "expected_session_date": _day(
                            by_id.at[instrument_id, "expected_session_date"]
                        ),
                        "status": by_id.at[instrument_id, "status"],
                        "source": by_id.at[instrument_id, "source"],
                    }
                    for instrument_id in ids
                ],
            }
        )
    return {
        "report_date": report_date.isoformat(),
        "markets": report_markets,
        "checks": [
            {"name": f"{o.asset}:{o.name}", "severity": o.severity, "passed": o.passed}
            for o in outcomes
        ],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _price(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown report, from the JSON alone."""
    as_of = date.fromisoformat(report["report_date"]) - timedelta(days=1)
    intro = (
        f"Each market shows its latest completed session on or before {as_of.isoformat()} "
        "by its own exchange calendar; every figure carries its session date."
    )
    lines = [f"# Market Intelligence Report — {report['report_date']}", "", intro]
    for market in report["markets"]:
        lines += [
            "",
            f"## {market['name']} — {market['status']}, session {market['session_date']}",
            "",
            "| Instrument | Session | Close | Return | Status |",
            "|---|---|---:|---:|---|",
        ]
        lines += [
            f"| {row['name']} (`{row['id']}`) | {row['session_date'] or 'n/a'} | "
            f"{_price(row['close'])} | {_pct(row['return_pct'])} | {row['status']} |"
            for row in market["instruments"]
        ]
    lines += ["", "## Data quality", "", "| Check | Severity | Result |", "|---|---|---|"]
    lines += [
        f"| {check['name']} | {check['severity']} | {'passed' if check['passed'] else 'FAILED'} |"
        for check in report["checks"]
    ]
    return "\n".join(lines) + "\n"
