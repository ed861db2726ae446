"""The action plan's three tiers (docs/report.md, "Action Plan"): each rule fires on and beyond
its threshold and not just inside it, a tier says "no action" only when none of its rules fires,
and the demo report's plan is the one its JSON decides.

Rules are pure functions of the report's JSON: the generated reports here are plain dicts with
every figure a rule reads, set so that no rule fires, then pushed onto one threshold at a time.
The thresholds are read from report_rules.yml, so a changed threshold moves the test with it.
"""

import copy
import json
import re
from html import escape
from pathlib import Path
from typing import Any

import pytest

from market_intel.action_rules import BASE_N_KEY, BASE_RATE_KEY, CONDITIONS, decide_actions
from market_intel.report_labels import decide_labels, flow
from market_intel.report_sections import action_plan
from market_intel.reporting import rules
from tests.conftest import DEMO_DATE, Pipeline

DOCS = Path(__file__).parents[1] / "docs"
STEP = 0.01


def rule(rule_id: str) -> dict[str, Any]:
    return next(r for r in rules()["action_rules"] if r["id"] == rule_id)


def quiet_instrument(instrument_id: str, name: str, week: float) -> dict[str, Any]:
    return {
        "id": instrument_id,
        "name": name,
        "short_name": name,
        "return_pct": 0.1,
        "session_date": "2026-03-20",
        "context": {"return_1w_pct": week, "vol_percentile_1y": 50.0},
    }


def quiet_report() -> dict[str, Any]:
    """Every figure an action rule reads, each well inside its threshold: no rule fires."""
    return {
        "markets": [
            {
                "market": "us",
                "name": "US",
                "status": "closed",
                "expected_session_date": "2026-03-20",
                "instruments": [
                    quiet_instrument("us/IWM", "IWM", 1.0),
                    quiet_instrument("us/QQQ", "QQQ", 1.0),
                ],
            }
        ],
        "divergences": [
            {
                "left": "us/IXIC",
                "right": "hk/HSTECH",
                "left_name": "Nasdaq",
                "right_name": "HSTECH",
                "left_session_date": "2026-03-20",
                "right_session_date": "2026-03-20",
                "spread_bps": 150.0,
                "zscore": 0.5,
                "percentile": 60.0,
                "extreme": False,
                "configured": True,
                "similar_observations": 100,
                "similar_narrowed_pct": 90.0,
                BASE_RATE_KEY: 70.0,
                BASE_N_KEY: 240,
            }
        ],
        "transmission_chain": {
            "status": "transmitted",
            "links": [{"market": "us", "session_date": "2026-03-20"}],
        },
        "next_session_lead": {
            "lead": "us",
            "lead_name": "US",
            "lead_session_date": "2026-03-20",
            "lead_signal": "ON",
            "lead_mean_return_pct": 0.5,
            "followers": [{"market": "hk", "name": "Hong Kong", "next_session_date": "2026-03-23"}],
        },
        "breadth": {
            "session_date": "2026-03-20",
            "advancers": 3000,
            "decliners": 2000,
            "advance_ratio": 0.6,
        },
        "stablecoins": {
            "date": "2026-03-21",
            "supply_measure": "TOTAL",
            "supply_change_pct": 0.0,
            "flow": "flat",
        },
        "style_pair": {"first": "us/IWM", "second": "us/QQQ", "leader": "us/IWM"},
    }


def fired_rules(report: dict) -> list[str]:
    plan = decide_actions(report, rules())
    return [item["rule"] for items in plan.values() for item in items]


def set_advance_ratio(report: dict, value: float) -> None:
    report["breadth"]["advance_ratio"] = value
    report["next_session_lead"]["lead_signal"] = "OFF"
    report["next_session_lead"]["lead_mean_return_pct"] = -0.5


def set_vol_percentile(report: dict, value: float) -> None:
    report["markets"][0]["instruments"][0]["context"]["vol_percentile_1y"] = value


def set_narrowed_pct(report: dict, value: float) -> None:
    report["divergences"][0].update(extreme=True, similar_narrowed_pct=value)


def set_similar_for_reversion(report: dict, value: float) -> None:
    report["divergences"][0].update(extreme=True, similar_observations=int(value))


def set_edge_over_base_rate(report: dict, value: float) -> None:
    row = report["divergences"][0]
    row.update({"extreme": True, BASE_RATE_KEY: round(row["similar_narrowed_pct"] - value, 2)})


def set_abs_zscore(report: dict, value: float) -> None:
    report["divergences"][0]["zscore"] = -value


def set_similar_for_pair_trade(report: dict, value: float) -> None:
    report["divergences"][0].update(zscore=3.0, similar_observations=int(value))


def set_lead_move(report: dict, value: float) -> None:
    report["next_session_lead"].update(lead_signal="OFF", lead_mean_return_pct=-value)


def set_week_gap(report: dict, value: float) -> None:
    report["markets"][0]["instruments"][0]["context"]["return_1w_pct"] = 1.0 + value


# (rule, threshold key, setter, the side of the threshold that fires: +1 above, -1 below, and the
# step "just beyond" a threshold is: counts move by whole observations).
THRESHOLDS = [
    ("risk_off_lead_weak_breadth", "max_advance_ratio", set_advance_ratio, -1, STEP),
    ("breadth_washout", "max_advance_ratio", set_advance_ratio, -1, STEP),
    ("high_volatility", "min_vol_percentile", set_vol_percentile, 1, 0.1),
    ("divergence_mean_reversion", "min_narrowed_pct", set_narrowed_pct, 1, 0.1),
    ("divergence_mean_reversion", "min_similar", set_similar_for_reversion, 1, 1),
    ("divergence_mean_reversion", "min_edge_pts", set_edge_over_base_rate, 1, 0.1),
    ("divergence_pair_trade", "min_abs_zscore", set_abs_zscore, 1, STEP),
    ("divergence_pair_trade", "min_similar", set_similar_for_pair_trade, 1, 1),
    ("lead_follow_through", "min_abs_lead_return_pct", set_lead_move, 1, STEP),
    ("style_leadership", "min_gap_1w_pct", set_week_gap, 1, STEP),
]


@pytest.mark.parametrize(
    ("rule_id", "key", "setter", "side", "step"),
    THRESHOLDS,
    ids=[f"{t[0]}:{t[1]}" for t in THRESHOLDS],
)
def test_each_rule_fires_on_and_beyond_its_threshold_not_inside(
    rule_id: str, key: str, setter: Any, side: int, step: float
) -> None:
    threshold = rule(rule_id)[key]
    outcomes = {}
    for name, value in (
        ("on", threshold),
        ("beyond", threshold + side * step),
        ("inside", threshold - side * step),
    ):
        report = quiet_report()
        setter(report, value)
        outcomes[name] = rule_id in fired_rules(report)
    assert outcomes == {"on": True, "beyond": True, "inside": False}


def test_the_stablecoin_rule_fires_on_the_outflow_label_at_its_threshold() -> None:
    """The rule reads the label report_labels decided; the label's threshold is its threshold."""
    threshold = rules()["stablecoin_flow_pct"]
    outcomes = {}
    for name, change in (
        ("on", -threshold),
        ("beyond", -threshold - 0.001),
        ("inside", -threshold + 0.001),
    ):
        report = quiet_report()
        report["stablecoins"].update(supply_change_pct=change, flow=flow(change, rules()))
        outcomes[name] = "stablecoin_outflow" in fired_rules(report)
    assert outcomes == {"on": True, "beyond": True, "inside": False}


@pytest.mark.parametrize(
    ("rule_id", "path", "firing", "quiet"),
    [
        (
            "missing_market_data",
            ("markets", 0, "status"),
            ["stale", "left_out"],
            ["closed", "open"],
        ),
        (
            "chain_not_transmitted",
            ("transmission_chain", "status"),
            ["broken", "partial"],
            ["transmitted", "risk_off_everywhere", "no_clear_lead", "incomplete"],
        ),
        ("lead_follow_through", ("next_session_lead", "lead_signal"), ["OFF", "ON"], ["MIXED"]),
        ("risk_off_lead_weak_breadth", ("next_session_lead", "lead_signal"), ["OFF"], ["ON"]),
        ("divergence_mean_reversion", ("divergences", 0, "extreme"), [True], [False]),
        ("divergence_pair_trade", ("divergences", 0, "configured"), [True], [False]),
        ("style_leadership", ("style_pair", "leader"), ["us/IWM"], [None]),
    ],
)
def test_each_rule_reads_its_label(rule_id: str, path: tuple, firing: list, quiet: list) -> None:
    """Each label value the rule acts on fires it (with its other figures beyond threshold)."""
    outcomes = {}
    for value in firing + quiet:
        report = quiet_report()
        report["breadth"]["advance_ratio"] = 0.01
        report["next_session_lead"]["lead_mean_return_pct"] = -5.0
        report["divergences"][0].update(zscore=3.0, percentile=99.0)
        report["markets"][0]["instruments"][0]["context"]["return_1w_pct"] = 9.0
        if rule_id != "divergence_mean_reversion":
            report["divergences"][0]["extreme"] = True
        target = report
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        outcomes[value] = rule_id in fired_rules(report)
    assert outcomes == {value: value in firing for value in firing + quiet}


def test_every_tier_says_no_action_when_no_rule_fires() -> None:
    report = quiet_report()
    plan = decide_actions(report, rules())
    assert plan == {"conservative": [], "moderate": [], "aggressive": []}
    report["action_plan"] = plan
    lines = [line for block in action_plan(report, rules())["blocks"] for line in texts(block)]
    for tier in plan:
        ids = ", ".join(r["id"] for r in rules()["action_rules"] if r["tier"] == tier)
        assert f"No action: none of the {tier} rules fired ({ids})." in lines
    assert any("not financial advice" in line for line in lines)


def test_a_tier_says_no_action_only_when_none_of_its_rules_fires() -> None:
    report = quiet_report()
    set_vol_percentile(report, 99.0)
    report["action_plan"] = decide_actions(report, rules())
    lines = [line for block in action_plan(report, rules())["blocks"] for line in texts(block)]
    assert [item["rule"] for item in report["action_plan"]["conservative"]] == ["high_volatility"]
    assert not any(line.startswith("No action: none of the conservative") for line in lines)
    assert sum(line.startswith("No action: ") for line in lines) == 2


def test_an_item_carries_its_evidence_with_dates_and_the_divergence_base_rate() -> None:
    report = quiet_report()
    set_abs_zscore(report, 3.0)
    for key in (BASE_RATE_KEY, BASE_N_KEY):
        del report["divergences"][0][key]
    (item,) = decide_actions(report, rules())["aggressive"]
    assert (item["rule"], item["base_rate"], item["n"]) == ("divergence_pair_trade", None, None)
    assert [(e["figure"], e["value"], e["date"]) for e in item["evidence"]] == [
        ("divergences[us/IXIC|hk/HSTECH].zscore", 3.0, "2026-03-20 / 2026-03-20"),
        ("divergences[us/IXIC|hk/HSTECH].similar_observations", 100, "2026-03-20 / 2026-03-20"),
    ]
    assert "long HSTECH against Nasdaq" in item["action"]  # Nasdaq outperformed: +150 bps
    report["action_plan"] = {"conservative": [], "moderate": [], "aggressive": [item]}
    (line,) = [
        line
        for block in action_plan(report, rules())["blocks"]
        for line in texts(block)
        if line.startswith("Convergence pair trade")
    ]
    assert "Nasdaq vs HSTECH |z-score| 3 on 2026-03-20 / 2026-03-20 (rule: at least 2.5)" in line
    assert line.endswith("; base rate: n/a. Rule: divergence_pair_trade.")
    report["divergences"][0].update({BASE_RATE_KEY: 71.25, BASE_N_KEY: 240})
    (item,) = decide_actions(report, rules())["aggressive"]
    assert (item["base_rate"], item["n"]) == (71.25, 240)
    report["action_plan"] = {"conservative": [], "moderate": [], "aggressive": [item]}
    blocks = action_plan(report, rules())["blocks"]
    assert any("base rate: 71.2% (n 240)." in line for b in blocks for line in texts(b))


def test_the_configuration_names_known_tiers_and_rules_and_the_docs_list_them() -> None:
    configured = rules()["action_rules"]
    assert list(rules()["action_tiers"]) == ["conservative", "moderate", "aggressive"]
    assert {r["tier"] for r in configured} == set(rules()["action_tiers"])
    assert sorted(r["id"] for r in configured) == sorted(CONDITIONS)
    docs = (DOCS / "report.md").read_text(encoding="utf-8")
    for entry in configured:
        assert f"`{entry['id']}`" in docs, entry["id"]
        for key, value in entry.items():
            if key.startswith(("min_", "max_")):
                assert f"`{key}` {value:g}" in docs, (entry["id"], key)


def texts(block: dict) -> list[str]:
    return block["items"] if block["type"] == "bullets" else [block["text"]]


# --- the demo report ----------------------------------------------------------------------


def expected_starts(plan: dict) -> list[str]:
    """Each tier's bullets in order: its items' actions, or its no-action line."""
    starts = []
    for tier, items in plan.items():
        starts += [item["action"] for item in items] or [f"No action: none of the {tier} rules"]
    return starts


def test_the_demo_plan_is_its_json_decisions_in_every_format(demo_run: Pipeline) -> None:
    report = json.loads((demo_run.reports / f"{DEMO_DATE}.json").read_text(encoding="utf-8"))
    markdown = (demo_run.reports / f"{DEMO_DATE}.md").read_text(encoding="utf-8")
    html = (demo_run.reports / f"{DEMO_DATE}.html").read_text(encoding="utf-8")
    plan = report["action_plan"]
    assert {tier: [i["rule"] for i in items] for tier, items in plan.items()} == {
        # Dow Jones (96th percentile) and HSTECH (93.7th): the demo's history since 2024-12-31
        "conservative": ["risk_off_lead_weak_breadth", "high_volatility", "high_volatility"],
        "moderate": [],
        "aggressive": ["lead_follow_through", "breadth_washout"],
    }
    facts = copy.deepcopy({k: v for k, v in report.items() if k not in ("sections", "headline")})
    assert decide_labels(facts, report["rules"])["action_plan"] == plan
    readable = re.sub(r"\\(.)", r"\1", markdown)
    after = re.split(r"^## \d+\. Action Plan$", readable, flags=re.MULTILINE)[1]
    section = after.split("\n## ", 1)[0]
    bullets = [line.removeprefix("- ") for line in section.splitlines() if line.startswith("- ")]
    starts = expected_starts(plan)
    assert len(bullets) == len(starts)
    assert all(line.startswith(start) for line, start in zip(bullets, starts)), bullets
    for item in plan["conservative"] + plan["aggressive"]:
        assert escape(item["action"]) in html
        for found in item["evidence"]:
            assert f"{found['name']} " in section and f" on {found['date']} (rule: " in section
    risk_off = plan["conservative"][0]
    assert [e["value"] for e in risk_off["evidence"]] == [
        report["next_session_lead"]["lead_signal"],
        report["breadth"]["advance_ratio"],
    ]
    assert "not financial advice" in section
