"""The report's judgements, each decided once from its JSON figures (docs/report.md, "Labels").

A label is a word a sentence uses to judge figures: a divergence is "extreme", a stablecoin day an
"inflow" or "outflow", crypto "moved with" or "against" US equities, one of a style pair "led",
a market's latest close "leads" the next session of another. Each is decided here, by one rule
with thresholds from ``report_rules.yml``, and written into the JSON before any section is
built: every section (and any other reader of the JSON) reads the decision, none decides again.
"""

from datetime import date
from typing import Any

import pandas as pd

from market_intel import calendars
from market_intel.action_rules import decide_actions
from market_intel.universe import markets

# The stablecoin figure that is "the supply change": TOTAL (every USD-pegged coin, from the feed)
# when the feed provides it, else NET (the sum over the tracked coins; docs/facts.md).
SUPPLY_MEASURES = {
    "TOTAL": "total stablecoin supply (TOTAL, all USD-pegged coins)",
    "NET": "tracked stablecoin supply (NET, the tracked coins)",
}
# How far past a follower's latest session its next session is looked for in its calendar.
NEXT_SESSION_SEARCH_DAYS = 20


def is_extreme(row: dict, rules: dict) -> bool:
    """A divergence is extreme at |z| >= extreme_zscore or percentile >= extreme_percentile."""
    zscore, percentile = row["zscore"], row["percentile"]
    return (zscore is not None and abs(zscore) >= rules["extreme_zscore"]) or (
        percentile is not None and percentile >= rules["extreme_percentile"]
    )


def flow(change_pct: float | None, rules: dict) -> str | None:
    """inflow at or above +stablecoin_flow_pct, outflow at or below its negative, flat between."""
    if change_pct is None:
        return None
    threshold = rules["stablecoin_flow_pct"]
    if change_pct >= threshold:
        return "inflow"
    if change_pct <= -threshold:
        return "outflow"
    return "flat"


def supply_change(coins: dict | None, rules: dict) -> dict | None:
    """The stablecoin facts with the one figure the report calls the supply change, and its flow."""
    if coins is None:
        return None
    total = next((c for c in coins["coins"] if c["symbol"] == "TOTAL"), None)
    if total is not None:
        measure, change_usd, change_pct = "TOTAL", total["change_usd"], total["change_pct"]
    else:
        measure, change_usd, change_pct = "NET", coins["net_change_usd"], coins["net_change_pct"]
    return {
        **coins,
        "supply_measure": measure,
        "supply_measure_name": SUPPLY_MEASURES[measure],
        "supply_change_usd": change_usd,
        "supply_change_pct": change_pct,
        "flow": flow(change_pct, rules),
    }


def instrument_row(report: dict, instrument_id: str) -> dict | None:
    return next(
        (row for m in report["markets"] for row in m["instruments"] if row["id"] == instrument_id),
        None,
    )


def pair_correlation(report: dict, first: str, second: str) -> float | None:
    """The pair's rolling correlation from the divergence facts, in either order."""
    for row in report["divergences"]:
        if {row["left"], row["right"]} == {first, second}:
            return row["correlation_60d"]
    return None


def crypto_vs_equities(report: dict, rules: dict) -> dict | None:
    """Whether crypto "moved with" or "against" US equities: only on the same session date, both
    moves non-zero, and a rolling correlation of at least comovement_min_correlation; otherwise
    no co-movement claim (relation null) and the reason why."""
    crypto_id, equities_id = rules["crypto_vs_equities"]
    crypto, equities = instrument_row(report, crypto_id), instrument_row(report, equities_id)
    if crypto is None or equities is None:
        return None
    if crypto["return_pct"] is None or equities["return_pct"] is None:
        return None
    correlation = pair_correlation(report, crypto_id, equities_id)
    minimum = rules["comovement_min_correlation"]
    same_session = crypto["session_date"] == equities["session_date"]
    reasons = []
    if not same_session:
        reasons.append("different session dates")
    if correlation is None:
        reasons.append("no correlation history")
    elif correlation < minimum:
        reasons.append(f"correlation below {minimum:g}")
    if crypto["return_pct"] == 0 or equities["return_pct"] == 0:
        reasons.append("a move of zero")
    together = (crypto["return_pct"] > 0) == (equities["return_pct"] > 0)
    relation = None if reasons else ("moved with" if together else "moved against")
    return {
        "crypto": crypto_id,
        "equities": equities_id,
        "crypto_session_date": crypto["session_date"],
        "equities_session_date": equities["session_date"],
        "crypto_return_pct": crypto["return_pct"],
        "equities_return_pct": equities["return_pct"],
        "same_session": same_session,
        "correlation_60d": correlation,
        "relation": relation,
        "no_claim_because": reasons,
    }


def style_pair(report: dict, rules: dict) -> dict | None:
    """Which of the configured style pair "led": the higher return on the same session; none
    when the returns are equal or the sessions differ."""
    first_id, second_id = rules["us_style_pair"]
    first, second = instrument_row(report, first_id), instrument_row(report, second_id)
    if first is None or second is None:
        return None
    if first["return_pct"] is None or second["return_pct"] is None:
        return None
    leader = None
    comparable = first["session_date"] == second["session_date"]
    if comparable and first["return_pct"] != second["return_pct"]:
        leader = first_id if first["return_pct"] > second["return_pct"] else second_id
    return {"first": first_id, "second": second_id, "leader": leader}


def known(value: Any) -> bool:
    return value is not None and not bool(pd.isna(value))


def next_session(market: str, after: date) -> tuple[str | None, bool]:
    """The market's first session after ``after`` by its calendar, and whether a provisional
    calendar dates it; None past the last session the calendar knows."""
    found = calendars.next_session(markets()[market].calendar, after, NEXT_SESSION_SEARCH_DAYS)
    if found is None:
        return None, False
    day, provisional = found
    return day.isoformat(), provisional


def next_session_lead(rows: list[dict], excluded: set[str]) -> dict | None:
    """What the lead market's latest close leads: the next session of every follower whose
    latest session closed before it (marts.fct_next_session_lead); None when it leads none."""
    leading = [
        row
        for row in rows
        if known(row["lead_closed_after"])
        and bool(row["lead_closed_after"])
        and row["market"] not in excluded
        and row["lead_market"] not in excluded
    ]
    if not leading:
        return None
    leading.sort(key=lambda row: list(markets()).index(row["market"]))
    first = leading[0]
    followers = []
    for row in leading:
        day, provisional = next_session(row["market"], row["session_date"])
        followers.append(
            {
                "market": row["market"],
                "name": markets()[row["market"]].name,
                "session_date": row["session_date"].isoformat(),
                "next_session_date": day,
                "next_session_provisional": provisional,
            }
        )
    mean = first["lead_mean_return_pct"]
    return {
        "lead": first["lead_market"],
        "lead_name": markets()[first["lead_market"]].name,
        "lead_session_date": first["lead_session_date"].isoformat(),
        "lead_signal": first["lead_signal"] if known(first["lead_signal"]) else None,
        "lead_mean_return_pct": round(float(mean), 2) if known(mean) else None,
        "followers": followers,
    }


def decide_labels(report: dict, rules: dict) -> dict[str, Any]:
    """The report's keys that carry a label, decided once: merge them into the JSON before the
    sections are written. The action plan's rules read the labels, so they are decided last."""
    labels = {
        "divergences": [
            {**row, "extreme": is_extreme(row, rules)} for row in report["divergences"]
        ],
        "stablecoins": supply_change(report["stablecoins"], rules),
        "crypto_vs_equities": crypto_vs_equities(report, rules),
        "style_pair": style_pair(report, rules),
    }
    return {**labels, "action_plan": decide_actions({**report, **labels}, rules)}
