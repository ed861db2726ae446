"""The action plan, decided once: the example report's three tiers (conservative, moderate,
aggressive), each item one documented rule over the report's JSON figures (docs/report.md,
"Action Plan").

A rule's tier, thresholds and action sentence are configuration (``action_rules`` in
report_rules.yml); its condition is the function here named by the rule's id. A rule reads the
labels already decided (``extreme``, ``flow``, ``leader``: market_intel/report_labels.py), never
decides them again. Each item it writes carries the evidence that fired it (figure, value, date,
the condition it met) and, where it rests on a divergence, that divergence's unconditional base
rate and sample size, so the reader can weigh the signal against what happens anyway.
"""

from collections.abc import Callable
from typing import Any

Item = dict[str, Any]
Rule = dict[str, Any]
Evidence = dict[str, Any]

# The divergence keys holding its unconditional base rate of narrowing and that rate's sample size.
BASE_RATE_KEY, BASE_N_KEY = "base_rate_pct", "base_n"
MISSING_STATUSES = ["stale", "left_out"]
UNTRANSMITTED_CHAIN = ["broken", "partial"]
SIGNAL_NAMES = {"ON": "risk-on", "OFF": "risk-off"}


def holds(value: Any, comparison: str, threshold: Any) -> bool:
    """Whether a figure meets its condition; an unknown figure meets none."""
    if value is None:
        return False
    if comparison == ">=":
        return value >= threshold
    if comparison == "<=":
        return value <= threshold
    if comparison == "in":
        return value in threshold
    return value == threshold


def evidence(
    name: str, figure: str, value: Any, day: str | None, comparison: str, threshold: Any
) -> Evidence:
    """One figure a rule tested: what it is, where the JSON holds it, its date and condition."""
    return {
        "name": name,
        "figure": figure,
        "value": value,
        "date": day,
        "comparison": comparison,
        "threshold": threshold,
    }


def weak_breadth(breadth: dict, rule: Rule) -> Evidence:
    """The A-share advance ratio at or under the rule's ``max_advance_ratio`` (two rules read
    it: the risk-off lead's and the washout's)."""
    return evidence(
        "A-share advance ratio",
        "breadth.advance_ratio",
        breadth["advance_ratio"],
        breadth["session_date"],
        "<=",
        rule["max_advance_ratio"],
    )


def wide_history(row: dict, rule: Rule) -> Evidence:
    """At least ``min_similar`` past spreads of the pair as wide as today's: the history both
    divergence rules need before they act."""
    return evidence(
        "past spreads at least this wide",
        pair_figure(row, "similar_observations"),
        row["similar_observations"],
        pair_dates(row),
        ">=",
        rule["min_similar"],
    )


def fired(
    rule: Rule,
    found: list[Evidence],
    fields: dict[str, Any],
    base: dict | None = None,
) -> list[Item]:
    """The rule's item when every condition of its evidence holds, else nothing."""
    if not all(holds(e["value"], e["comparison"], e["threshold"]) for e in found):
        return []
    return [
        {
            "rule": rule["id"],
            "action": rule["action"].format(**fields),
            "evidence": found,
            "base_rate": None if base is None else base.get(BASE_RATE_KEY),
            "n": None if base is None else base.get(BASE_N_KEY),
        }
    ]


def instruments(report: dict) -> list[dict]:
    return [row for entry in report["markets"] for row in entry["instruments"]]


def instrument(report: dict, instrument_id: str) -> dict | None:
    return next((row for row in instruments(report) if row["id"] == instrument_id), None)


def pair_name(row: dict) -> str:
    return f"{row['left_name']} vs {row['right_name']}"


def pair_figure(row: dict, key: str) -> str:
    return f"divergences[{row['left']}|{row['right']}].{key}"


def pair_dates(row: dict) -> str:
    return f"{row['left_session_date']} / {row['right_session_date']}"


def followers_and_dates(lead: dict) -> tuple[str, str]:
    names = " and ".join(f["name"] for f in lead["followers"])
    days = ", ".join(sorted({f["next_session_date"] or "n/a" for f in lead["followers"]}))
    return names, days


def missing_market_data(report: dict, rule: Rule) -> list[Item]:
    """A stale or left-out market: no figures to act on until its expected session arrives."""
    items = []
    for entry in report["markets"]:
        found = [
            evidence(
                f"{entry['name']} status",
                f"markets[{entry['market']}].status",
                entry["status"],
                entry["expected_session_date"],
                "in",
                MISSING_STATUSES,
            )
        ]
        items += fired(rule, found, {"market": entry["name"]})
    return items


def chain_not_transmitted(report: dict, rule: Rule) -> list[Item]:
    """The overnight lead did not carry to every follower: their moves are local."""
    chain = report["transmission_chain"]
    if not chain:
        return []
    lead = chain["links"][0] if chain["links"] else {}
    found = [
        evidence(
            "transmission chain status",
            "transmission_chain.status",
            chain["status"],
            lead.get("session_date"),
            "in",
            UNTRANSMITTED_CHAIN,
        )
    ]
    return fired(rule, found, {})


def risk_off_lead_weak_breadth(report: dict, rule: Rule) -> list[Item]:
    """A risk-off lead close carried into followers whose own breadth is already weak."""
    lead, breadth = report["next_session_lead"], report["breadth"]
    if not lead or not breadth:
        return []
    followers, days = followers_and_dates(lead)
    found = [
        evidence(
            f"{lead['lead_name']} lead signal",
            "next_session_lead.lead_signal",
            lead["lead_signal"],
            lead["lead_session_date"],
            "==",
            "OFF",
        ),
        weak_breadth(breadth, rule),
    ]
    return fired(rule, found, {"lead": lead["lead_name"], "followers": followers, "days": days})


def stablecoin_outflow(report: dict, rule: Rule) -> list[Item]:
    """Stablecoin supply (the label ``flow``) shrank: no new dry powder for crypto."""
    coins = report["stablecoins"]
    if not coins:
        return []
    found = [
        evidence(
            f"stablecoin flow ({coins['supply_measure']} {coins['supply_change_pct']:+.3f}%)"
            if coins["supply_change_pct"] is not None
            else "stablecoin flow",
            "stablecoins.flow",
            coins["flow"],
            coins["date"],
            "==",
            "outflow",
        )
    ]
    return fired(rule, found, {})


def high_volatility(report: dict, rule: Rule) -> list[Item]:
    """An instrument whose 20-session volatility is high against its own past year."""
    items = []
    for row in instruments(report):
        context = row.get("context") or {}
        found = [
            evidence(
                f"{row['short_name']} 20-session volatility percentile (1y)",
                f"markets[].instruments[{row['id']}].context.vol_percentile_1y",
                context.get("vol_percentile_1y"),
                row["session_date"],
                ">=",
                rule["min_vol_percentile"],
            )
        ]
        items += fired(rule, found, {"instrument": row["name"]})
    return items


def divergence_mean_reversion(report: dict, rule: Rule) -> list[Item]:
    """A configured extreme divergence whose past spreads this wide mostly halved, clearly more
    often than all its past spreads did (the unconditional base rate)."""
    items = []
    for row in report["divergences"]:
        if not row["configured"]:
            continue
        narrowed, base = row["similar_narrowed_pct"], row.get(BASE_RATE_KEY)
        edge = None if narrowed is None or base is None else round(narrowed - base, 1)
        found = [
            evidence(
                f"{pair_name(row)} extreme",
                pair_figure(row, "extreme"),
                row["extreme"],
                pair_dates(row),
                "==",
                True,
            ),
            wide_history(row, rule),
            evidence(
                "of which halved (%)",
                pair_figure(row, "similar_narrowed_pct"),
                narrowed,
                pair_dates(row),
                ">=",
                rule["min_narrowed_pct"],
            ),
            evidence(
                "halved minus base rate (pts)",
                f"{pair_figure(row, 'similar_narrowed_pct')} - {pair_figure(row, BASE_RATE_KEY)}",
                edge,
                pair_dates(row),
                ">=",
                rule["min_edge_pts"],
            ),
        ]
        items += fired(rule, found, {"pair": pair_name(row)}, base=row)
    return items


def style_leadership(report: dict, rule: Rule) -> list[Item]:
    """The style pair's leader of the day also led over the week by a clear margin."""
    style = report.get("style_pair")
    if not style or style["leader"] is None:
        return []
    leader = instrument(report, style["leader"])
    other = instrument(report, style["second" if style["leader"] == style["first"] else "first"])
    if leader is None or other is None:
        return []
    week = (leader.get("context") or {}).get("return_1w_pct")
    other_week = (other.get("context") or {}).get("return_1w_pct")
    gap = None if week is None or other_week is None else round(week - other_week, 2)
    found = [
        evidence(
            "style pair leader",
            "style_pair.leader",
            style["leader"],
            leader["session_date"],
            "in",
            [style["first"], style["second"]],
        ),
        evidence(
            f"{leader['short_name']} minus {other['short_name']} 1W return (pts)",
            "markets[].instruments[].context.return_1w_pct",
            gap,
            leader["session_date"],
            ">=",
            rule["min_gap_1w_pct"],
        ),
    ]
    fields = {"leader": leader["short_name"], "other": other["short_name"]}
    return fired(rule, found, fields)


def divergence_pair_trade(report: dict, rule: Rule) -> list[Item]:
    """A configured divergence far beyond its usual range, with enough comparable history."""
    items = []
    for row in report["divergences"]:
        if not row["configured"] or row["spread_bps"] is None:
            continue
        strong = row["spread_bps"] >= 0
        zscore = None if row["zscore"] is None else abs(row["zscore"])
        found = [
            evidence(
                f"{pair_name(row)} |z-score|",
                pair_figure(row, "zscore"),
                zscore,
                pair_dates(row),
                ">=",
                rule["min_abs_zscore"],
            ),
            wide_history(row, rule),
        ]
        fields = {
            "pair": pair_name(row),
            "laggard": row["right_name"] if strong else row["left_name"],
            "leader": row["left_name"] if strong else row["right_name"],
        }
        items += fired(rule, found, fields, base=row)
    return items


def lead_follow_through(report: dict, rule: Rule) -> list[Item]:
    """A large one-sided lead close, carried to the followers' next open."""
    lead = report["next_session_lead"]
    if not lead:
        return []
    followers, days = followers_and_dates(lead)
    move = lead["lead_mean_return_pct"]
    found = [
        evidence(
            f"{lead['lead_name']} lead signal",
            "next_session_lead.lead_signal",
            lead["lead_signal"],
            lead["lead_session_date"],
            "in",
            list(SIGNAL_NAMES),
        ),
        evidence(
            f"{lead['lead_name']} |mean return| (%)",
            "next_session_lead.lead_mean_return_pct",
            None if move is None else abs(move),
            lead["lead_session_date"],
            ">=",
            rule["min_abs_lead_return_pct"],
        ),
    ]
    fields = {
        "signal": SIGNAL_NAMES.get(lead["lead_signal"], "n/a"),
        "lead": lead["lead_name"],
        "followers": followers,
        "days": days,
    }
    return fired(rule, found, fields)


def breadth_washout(report: dict, rule: Rule) -> list[Item]:
    """A-share breadth so weak that a reversal is worth watching for (not buying yet)."""
    breadth = report["breadth"]
    if not breadth:
        return []
    found = [weak_breadth(breadth, rule)]
    fields = {"advancers": f"{breadth['advancers']:,}", "decliners": f"{breadth['decliners']:,}"}
    return fired(rule, found, fields)


CONDITIONS: dict[str, Callable[[dict, Rule], list[Item]]] = {
    condition.__name__: condition
    for condition in (
        missing_market_data,
        chain_not_transmitted,
        risk_off_lead_weak_breadth,
        stablecoin_outflow,
        high_volatility,
        divergence_mean_reversion,
        style_leadership,
        divergence_pair_trade,
        lead_follow_through,
        breadth_washout,
    )
}


def decide_actions(report: dict, rules: dict) -> dict[str, list[Item]]:
    """Every tier's items, in the configured order of its rules; an empty tier means no action."""
    plan: dict[str, list[Item]] = {tier: [] for tier in rules["action_tiers"]}
    for rule in rules["action_rules"]:
        plan[rule["tier"]] += CONDITIONS[rule["id"]](report, rule)
    return plan
