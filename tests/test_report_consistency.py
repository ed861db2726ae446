"""Every sentence that judges figures agrees with the report's own JSON (docs/report.md, "Labels").

For each sentence kind (a divergence called extreme or usual, the stablecoin verdict and flow,
crypto against US equities, which of the style pair led, the next session's lead, a same-date
comparison) the published Markdown is read back and compared with the JSON's figures and the
thresholds of report_rules.yml (the JSON's ``rules``): sign, threshold and dates. The oracle is
this file's own reading of the rule, never the code under test; the next session's lead is
checked against the exchange calendars' close times.

Reports checked:
- a range run over more than 500 real report dates of the reference data (skips without it);
- a range run of the demo data whose TOTAL stablecoin rows are cut before CUT_TOTAL_BEFORE, so
  that both supply measures (TOTAL, and NET when the feed has no TOTAL) are published;
- generated variants of those reports: figures pushed onto, just inside and beyond every
  threshold, then labelled and rendered again by the code the pipeline runs (decide_labels,
  sections, render_markdown).
"""

import copy
import json
import random
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from market_intel import calendars
from market_intel.report_labels import decide_labels
from market_intel.report_sections import sections
from market_intel.reporting import render_markdown
from market_intel.settings import DBT_PROJECT_DIR
from market_intel.universe import markets
from tests.conftest import REFERENCE_FILES, Pipeline, send_nothing, what_failed

# The real-data replay: one range run, history from LOOKBACK_DAYS before its first date.
REFERENCE_FIRST, REFERENCE_LAST = "2024-09-01", "2026-03-22"
MIN_REAL_REPORTS = 500
LOOKBACK_DAYS = 400
# The demo range: TOTAL stablecoin rows are dropped before this day, NET stands in.
DEMO_FIRST, DEMO_LAST = "2026-01-20", "2026-03-22"
CUT_TOTAL_BEFORE = "2026-02-20"
VARIANTS_PER_REPORT = 3
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONEY = re.compile(r"(?P<sign>[-+])?\$(?P<amount>[\d,]+(?:\.\d+)?)(?: (?P<unit>bn|m))?")


# --- runs ---------------------------------------------------------------------------------


def published(pipeline: Pipeline) -> list[tuple[dict, str]]:
    """(JSON, Markdown) of every report the run published."""
    return [
        (json.loads(path.read_text(encoding="utf-8")), path.with_suffix(".md").read_text("utf-8"))
        for path in sorted(pipeline.reports.glob("????-??-??.json"))
    ]


@pytest.fixture(scope="module")
def real_reports(reference_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    """Every report of one range run over the real closes (reference data linked, not copied)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        send_nothing(monkeypatch)
        monkeypatch.delenv("MARKET_INTEL_LLM_BASE_URL", raising=False)
        pipeline = Pipeline(tmp_path_factory.mktemp("consistency_real"), monkeypatch, "replay")
        for instrument_id, name in REFERENCE_FILES.items():
            link = pipeline.replay / f"{instrument_id}.csv"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(reference_data / name)
        monkeypatch.setenv("MARKET_INTEL_LOOKBACK_DAYS", str(LOOKBACK_DAYS))
        result = pipeline.run(REFERENCE_FIRST, REFERENCE_LAST, raise_on_error=False)
        assert result.success, what_failed(result)
        return published(pipeline)


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory: pytest.TempPathFactory) -> list:
    """A range of demo dates, TOTAL cut from the stablecoin file before CUT_TOTAL_BEFORE."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        send_nothing(monkeypatch)
        monkeypatch.delenv("MARKET_INTEL_LLM_BASE_URL", raising=False)
        pipeline = Pipeline(tmp_path_factory.mktemp("consistency_demo"), monkeypatch)
        replay = pipeline.use_replay_of_demo()
        coins = replay / "defi" / "stablecoins.csv"
        header, *rows = coins.read_text().splitlines()
        kept = [r for r in rows if not (",TOTAL," in r and r.split(",")[0] < CUT_TOTAL_BEFORE)]
        assert len(kept) < len(rows)
        coins.write_text("\n".join([header, *kept]) + "\n")
        result = pipeline.run(DEMO_FIRST, DEMO_LAST, raise_on_error=False)
        assert result.success, what_failed(result)
        return published(pipeline)


# --- reading the Markdown back ------------------------------------------------------------


def lines_of(markdown: str) -> list[str]:
    """Each line as a reader reads it: Markdown escapes and bullet marks off."""
    return [re.sub(r"\\(.)", r"\1", line).removeprefix("- ") for line in markdown.splitlines()]


def table_rows(markdown: str, first_column: str) -> list[list[str]]:
    """The body rows of the Markdown table whose first column is ``first_column``."""
    rows, inside = [], False
    for line in markdown.splitlines():
        if not line.startswith("|"):
            inside = False
            continue
        cells = [re.sub(r"\\(.)", r"\1", c.strip()) for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] == first_column:
            inside = True
        elif inside and not set("".join(cells)) <= {"-"}:
            rows.append(cells)
    return rows


def starting(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def pair(d: dict) -> str:
    return f"{d['left_name']} vs {d['right_name']}"


def described(d: dict) -> str:
    """How a sentence names a pair with its spread: 'A vs B +378 bps'."""
    return f"{pair(d)} {d['spread_bps']:+.0f} bps"


def shown_money(text: str) -> float:
    match = MONEY.fullmatch(text)
    assert match, text
    scale = {"bn": 1e9, "m": 1e6, None: 1}[match["unit"]]
    value = float(match["amount"].replace(",", "")) * scale
    return -value if match["sign"] == "-" else value


def agrees(shown: str, value: float) -> bool:
    """A money text shows the JSON amount: same sign, same magnitude at its precision."""
    amount = shown_money(shown)
    tolerance = 0.006e9 if " bn" in shown else 0.006e6 if " m" in shown else 1
    return (amount > 0) == (value > 0) and abs(amount - value) <= tolerance


def weekday(day: str) -> str:
    return WEEKDAYS[date.fromisoformat(day).weekday()]


# --- the rules, as this test reads them ---------------------------------------------------


def expected_extreme(d: dict, rules: dict) -> bool:
    z, percentile = d["zscore"], d["percentile"]
    return (z is not None and abs(z) >= rules["extreme_zscore"]) or (
        percentile is not None and percentile >= rules["extreme_percentile"]
    )


def expected_flow(change_pct: float | None, rules: dict) -> str | None:
    if change_pct is None:
        return None
    threshold = rules["stablecoin_flow_pct"]
    return (
        "inflow" if change_pct >= threshold else "outflow" if change_pct <= -threshold else "flat"
    )


def instrument(report: dict, instrument_id: str) -> dict | None:
    return next(
        (i for m in report["markets"] for i in m["instruments"] if i["id"] == instrument_id), None
    )


def chain_config() -> tuple[str, list[str]]:
    dbt_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    return dbt_vars["chain_lead"], dbt_vars["chain_followers"]


def calendar_session(market: str, day: str) -> Any:
    start = date.fromisoformat(day)
    found = calendars.sessions(markets()[market].calendar, start, start + timedelta(days=1))
    return found.iloc[0]


def first_session_after(market: str, day: str) -> str:
    start = date.fromisoformat(day) + timedelta(days=1)
    found = calendars.sessions(markets()[market].calendar, start, start + timedelta(days=20))
    return found["session_date"].iloc[0].isoformat()


# --- one check per sentence kind ----------------------------------------------------------


def check_extreme(report: dict, markdown: str) -> None:
    rules, lines = report["rules"], lines_of(markdown)
    divergences = report["divergences"]
    for d in divergences:
        assert d["extreme"] == expected_extreme(d, rules), pair(d)
    ranked = [d for d in divergences if d["zscore"] is not None]
    insight = starting(lines, "Most unusual divergence: ")
    assert len(insight) == (1 if ranked else 0)
    if ranked:
        top = min(ranked, key=lambda d: d["zscore_rank"] or 10**6)
        text = insight[0]
        assert text.startswith(f"Most unusual divergence: {described(top)} (z {top['zscore']:+.2f}")
        verdict = "extreme (" if top["extreme"] else "within its usual range ("
        assert f"): {verdict}" in text, text
        assert ("not a configured pair" in text) == (top["extreme"] and not top["configured"])
    configured = [d for d in divergences if d["configured"]]
    extreme_rule = f"percentile at least {rules['extreme_percentile']:g}): "
    (listed,) = starting(lines, "Extreme among the configured pairs today (")
    named = listed.split(extreme_rule, 1)[1]
    for d in configured:
        assert (described(d) in named) == d["extreme"], (pair(d), listed)
    assert (named == "none.") == (not any(d["extreme"] for d in configured))
    others = [d for d in divergences if not d["configured"] and d["extreme"]]
    other_lines = starting(lines, "Extreme among the other cross-market pairs")
    assert len(other_lines) == (1 if others else 0)
    for d in divergences:
        if not d["configured"] and other_lines:
            assert (described(d) in other_lines[0]) == d["extreme"], pair(d)
    not_acted = starting(lines, "Extreme but not configured, so no rule acts on them: ")
    assert len(not_acted) == (1 if others else 0)
    for d in divergences:
        if not d["configured"] and not_acted:
            assert (pair(d) in not_acted[0]) == d["extreme"], pair(d)
    for row in table_rows(markdown, "Rank"):
        d = next(d for d in configured if row[1] == f"{pair(d)} divergence persists")
        assert row[2].endswith(", extreme") == d["extreme"], row


def check_stablecoins(report: dict, markdown: str) -> None:
    rules, lines = report["rules"], lines_of(markdown)
    coins = report["stablecoins"]
    verdicts = starting(lines, "Verdict: ")
    assert len(verdicts) == 1
    verdict = verdicts[0]
    flow_words = [line for line in lines if re.search(r"\b(?:inflow|outflow)\b", line)]
    if coins is None:
        assert verdict == "Verdict: not enough data for a verdict." and not flow_words
        return
    total = next((c for c in coins["coins"] if c["symbol"] == "TOTAL"), None)
    measure = "TOTAL" if total else "NET"
    source = total or {"change_usd": coins["net_change_usd"], "change_pct": coins["net_change_pct"]}
    change, change_pct = source["change_usd"], source["change_pct"]
    assert (coins["supply_measure"], coins["supply_change_usd"]) == (measure, change)
    assert coins["supply_change_pct"] == change_pct
    flow = expected_flow(change_pct, rules)
    assert coins["flow"] == flow
    for line in flow_words:
        assert re.findall(r"\b(?:inflow|outflow)\b", line) == [flow], line
    moves = [
        i["return_pct"] for i in instrument_rows(report, "crypto") if i["return_pct"] is not None
    ]
    if flow is None or not moves:
        assert verdict == "Verdict: not enough data for a verdict."
        return
    found = re.fullmatch(
        r"Verdict: crypto (rose|fell|split) while (.+) (grew|shrank|was flat at) (\S+(?: bn| m)?) "
        r"\(([+-]\d+\.\d{3})%\).*",
        verdict,
    )
    assert found, verdict
    direction, name, verb, money, pct = found.groups()
    expected_direction = "rose" if min(moves) > 0 else "fell" if max(moves) < 0 else "split"
    assert direction == expected_direction
    assert f"({measure}, " in name, verdict
    assert verb == {"inflow": "grew", "outflow": "shrank", "flat": "was flat at"}[flow]
    assert agrees(money, change) if change else money in ("$0", "n/a"), verdict
    assert pct == f"{change_pct:+.3f}"
    row_name = "TOTAL" if measure == "TOTAL" else "NET (tracked coins)"
    (row,) = [r for r in table_rows(markdown, "Coin") if r[0] == row_name]
    assert (row[2], row[3]) == (money, f"{pct}%"), (row, verdict)
    (flow_line,) = starting(lines, "Stablecoins ")
    assert f"{flow}: {measure} {money} ({pct}%)" in flow_line, flow_line


def instrument_rows(report: dict, market: str) -> list[dict]:
    entry = next((m for m in report["markets"] if m["market"] == market), None)
    return (entry or {}).get("instruments", [])


def check_comovement(report: dict, markdown: str) -> None:
    rules, lines = report["rules"], lines_of(markdown)
    crypto_id, equities_id = rules["crypto_vs_equities"]
    claims = [line for line in lines if re.search(r"moved (?:with|against)|co-movement", line)]
    crypto, equities = instrument(report, crypto_id), instrument(report, equities_id)
    if not crypto or not equities or None in (crypto["return_pct"], equities["return_pct"]):
        assert claims == []
        return
    (line,) = claims
    assert f"({crypto['session_date']}, UTC day) {crypto['return_pct']:+.2f}%" in line
    assert f"({equities['session_date']}) {equities['return_pct']:+.2f}%" in line
    correlation = next(
        (
            d["correlation_60d"]
            for d in report["divergences"]
            if {d["left"], d["right"]} == {crypto_id, equities_id}
        ),
        None,
    )
    assert f"correlation {'n/a' if correlation is None else f'{correlation:+.2f}'}" in line
    claim_allowed = (
        crypto["session_date"] == equities["session_date"]
        and correlation is not None
        and correlation >= rules["comovement_min_correlation"]
        and crypto["return_pct"] != 0
        and equities["return_pct"] != 0
    )
    if claim_allowed:
        together = (crypto["return_pct"] > 0) == (equities["return_pct"] > 0)
        assert line.startswith(f"Crypto moved {'with' if together else 'against'} US equities")
    else:
        assert "moved" not in line and line.endswith(")."), line
        assert ": no co-movement claim (" in line


def check_led(report: dict, markdown: str) -> None:
    first_id, second_id = report["rules"]["us_style_pair"]
    first, second = instrument(report, first_id), instrument(report, second_id)
    lines = [line for line in lines_of(markdown) if re.match(r"^\S+ led: ", line)]
    if not first or not second or None in (first["return_pct"], second["return_pct"]):
        assert lines == []
        return
    (line,) = lines
    comparable = first["session_date"] == second["session_date"]
    if comparable and first["return_pct"] != second["return_pct"]:
        leader = first if first["return_pct"] > second["return_pct"] else second
        assert line.startswith(f"{leader['short_name']} led: "), line
    else:
        assert line.startswith("Neither led: "), line
    for row in (first, second):
        assert f"{row['short_name']} {row['return_pct']:+.2f}% ({row['session_date']}" in line


def check_next_session_lead(report: dict, markdown: str) -> None:
    lead_market, followers = chain_config()
    by_market = {m["market"]: m for m in report["markets"]}
    excluded = set(report["left_out"])
    lead = by_market.get(lead_market)
    expected = []
    if lead and lead["session_date"] and lead_market not in excluded:
        lead_close = calendar_session(lead_market, lead["session_date"])["close_utc"]
        for market in followers:
            entry = by_market.get(market)
            if not entry or not entry["session_date"] or market in excluded:
                continue
            if lead_close > calendar_session(market, entry["session_date"])["close_utc"]:
                expected.append(market)
    fact = report["next_session_lead"]
    sentences = [line for line in lines_of(markdown) if "Next session's lead: " in line]
    if not expected:
        assert fact is None and sentences == []
        return
    assert [f["market"] for f in fact["followers"]] == expected
    assert (fact["lead"], fact["lead_session_date"]) == (lead_market, lead["session_date"])
    assert len(sentences) == 3  # key insight, transmission chain, capital flow map
    for follower in fact["followers"]:
        entry = by_market[follower["market"]]
        assert follower["session_date"] == entry["session_date"]
        assert follower["next_session_date"] == first_session_after(
            follower["market"], entry["session_date"]
        )
        if entry["status"] != "stale":
            assert follower["next_session_date"] >= report["report_date"]
    session = fact["lead_session_date"]
    for sentence in sentences:
        assert f"{weekday(session)}'s {fact['lead_name']} close ({session};" in sentence
        for follower in fact["followers"]:
            day = follower["next_session_date"]
            assert follower["name"] in sentence and f"({weekday(day)} {day}" in sentence


def check_same_date(report: dict, markdown: str) -> None:
    left, right = report["rules"]["hk_comparison_pair"]
    d = next((d for d in report["divergences"] if (d["left"], d["right"]) == (left, right)), None)
    lines = lines_of(markdown)
    same = starting(lines, "Same-date comparison (")
    across = starting(lines, "Comparison across sessions (")
    if d is None:
        assert same == across == []
    elif d["left_session_date"] == d["right_session_date"]:
        assert across == [] and same[0].startswith(
            f"Same-date comparison ({d['left_session_date']}): {described(d)}"
        )
    else:
        assert same == [] and across[0].startswith(
            f"Comparison across sessions ({d['left_session_date']} / {d['right_session_date']})"
        )


def expected_led(report: dict) -> tuple[dict, dict] | None:
    """(leader, other) of the style pair as check_led reads it; None when neither led."""
    first, second = (instrument(report, i) for i in report["rules"]["us_style_pair"])
    if not first or not second or None in (first["return_pct"], second["return_pct"]):
        return None
    if first["session_date"] != second["session_date"]:
        return None
    if first["return_pct"] == second["return_pct"]:
        return None
    return (first, second) if first["return_pct"] > second["return_pct"] else (second, first)


def fires(report: dict, rule: dict) -> list[dict]:
    """The subjects (a market, an instrument, a pair, or the report) a rule acts on, read from
    the figures and thresholds of docs/report.md's action-plan table."""
    rules, lead, breadth = report["rules"], report["next_session_lead"], report["breadth"]
    ratio = (breadth or {}).get("advance_ratio")
    kind = rule["id"]
    if kind == "missing_market_data":
        return [m for m in report["markets"] if m["status"] in ("stale", "left_out")]
    if kind == "chain_not_transmitted":
        chain = report["transmission_chain"]
        return [chain] if chain and chain["status"] in ("broken", "partial") else []
    if kind in ("risk_off_lead_weak_breadth", "breadth_washout"):
        lead_ok = kind == "breadth_washout" or bool(lead and lead["lead_signal"] == "OFF")
        return (
            [breadth]
            if lead_ok and ratio is not None and ratio <= rule["max_advance_ratio"]
            else []
        )
    if kind == "stablecoin_outflow":
        coins = report["stablecoins"]
        change = coins and coins["supply_change_pct"]
        return [coins] if coins and expected_flow(change, rules) == "outflow" else []
    if kind == "high_volatility":
        return [
            row
            for m in report["markets"]
            for row in m["instruments"]
            if ((row.get("context") or {}).get("vol_percentile_1y") or -1)
            >= rule["min_vol_percentile"]
        ]
    configured = [d for d in report["divergences"] if d["configured"]]
    if kind == "divergence_mean_reversion":
        return [
            d
            for d in configured
            if expected_extreme(d, rules)
            and (d["similar_observations"] or 0) >= rule["min_similar"]
            and d["similar_narrowed_pct"] is not None
            and d["similar_narrowed_pct"] >= rule["min_narrowed_pct"]
            and d.get("base_rate_pct") is not None
            and round(d["similar_narrowed_pct"] - d["base_rate_pct"], 1) >= rule["min_edge_pts"]
        ]
    if kind == "divergence_pair_trade":
        return [
            d
            for d in configured
            if d["spread_bps"] is not None
            and d["zscore"] is not None
            and abs(d["zscore"]) >= rule["min_abs_zscore"]
            and (d["similar_observations"] or 0) >= rule["min_similar"]
        ]
    if kind == "style_leadership":
        led = expected_led(report)
        if led is None:
            return []
        weeks = [(row.get("context") or {}).get("return_1w_pct") for row in led]
        if None in weeks or round(weeks[0] - weeks[1], 2) < rule["min_gap_1w_pct"]:
            return []
        return [led[0]]
    assert kind == "lead_follow_through", kind
    move = (lead or {}).get("lead_mean_return_pct")
    signal = (lead or {}).get("lead_signal")
    if (
        signal in ("ON", "OFF")
        and move is not None
        and abs(move) >= rule["min_abs_lead_return_pct"]
    ):
        return [lead]
    return []


def tier_bullets(markdown: str, tiers: dict) -> dict[str, list[str]]:
    """Each tier's bullets in the action plan, as a reader reads them."""
    (plan,) = re.findall(
        r"^## \d+\. Action Plan$(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL
    )
    found: dict[str, list[str]] = {}
    current = None
    for line in plan.splitlines():
        text = re.sub(r"\\(.)", r"\1", line)
        heading = next(
            (t for t, sub in tiers.items() if text == f"{t.capitalize()} ({sub}):"), None
        )
        if heading:
            current = heading
            found[current] = []
        elif current and text.startswith("- "):
            found[current].append(text[2:])
        elif text:
            current = None
    return found


def check_action_plan(report: dict, markdown: str) -> None:
    """Each tier lists one bullet per subject its rules fire on, in the rules' order, with the
    rule's id, the base rate of a divergence rule, and "no action" only when none fires."""
    rules = report["rules"]
    bullets = tier_bullets(markdown, rules["action_tiers"])
    assert list(bullets) == list(rules["action_tiers"])
    for tier in rules["action_tiers"]:
        expected = [
            (rule, subject)
            for rule in rules["action_rules"]
            if rule["tier"] == tier
            for subject in fires(report, rule)
        ]
        assert [i["rule"] for i in report["action_plan"][tier]] == [r["id"] for r, _ in expected]
        lines = bullets[tier]
        if not expected:
            assert len(lines) == 1 and lines[0].startswith(f"No action: none of the {tier} rules")
            continue
        assert len(lines) == len(expected) and not any(x.startswith("No action") for x in lines)
        for line, (rule, subject) in zip(lines, expected):
            assert line.endswith(f". Rule: {rule['id']}."), line
            if rule["id"].startswith("divergence_"):
                assert pair(subject) in line, (pair(subject), line)
                rate, n = subject.get("base_rate_pct"), subject.get("base_n")
                assert (
                    f"base rate: {rate:.1f}% (n {n})" if rate is not None else "base rate: n/a"
                ) in line
            else:
                assert "base rate: n/a" in line, line
            if rule["id"] in ("risk_off_lead_weak_breadth", "breadth_washout"):
                assert (
                    f"A-share advance ratio {subject['advance_ratio']:g} on {subject['session_date']}"
                    in line
                )


CHECKS = [
    check_action_plan,
    check_extreme,
    check_stablecoins,
    check_comovement,
    check_led,
    check_next_session_lead,
    check_same_date,
]


def inconsistencies(reports: list[tuple[dict, str]]) -> list[str]:
    """'report date: check: what failed' for every sentence that disagrees with its JSON."""
    found = []
    for report, markdown in reports:
        for check in CHECKS:
            try:
                check(report, markdown)
            except AssertionError as error:
                found.append(f"{report['report_date']}: {check.__name__}: {error}")
    return found


# --- generated variants -------------------------------------------------------------------


def near(rng: random.Random, threshold: float, step: float) -> float:
    """On, just inside, just beyond, or far from a threshold, either sign."""
    value = rng.choice([threshold, threshold - step, threshold + step, 0.0, 3 * threshold])
    return round(rng.choice([1, -1]) * value, 3)


def vary(report: dict, rng: random.Random) -> dict:
    """The report's facts with figures pushed across every label's threshold."""
    facts = copy.deepcopy({k: v for k, v in report.items() if k not in ("sections", "headline")})
    rules = facts["rules"]
    for d in facts["divergences"]:
        if rng.random() < 0.5:
            d["zscore"] = near(rng, rules["extreme_zscore"], 0.01)
        if rng.random() < 0.5:
            d["percentile"] = rng.choice(
                [rules["extreme_percentile"], rules["extreme_percentile"] - 0.1, 50.0, 99.9]
            )
    coins = facts["stablecoins"]
    if coins:
        if rng.random() < 0.3:
            coins["coins"] = [c for c in coins["coins"] if c["symbol"] != "TOTAL"]
        for row in [*coins["coins"], None]:
            pct = None if rng.random() < 0.1 else near(rng, rules["stablecoin_flow_pct"], 0.001)
            usd = round(pct / 100 * 3e11) if pct else rng.choice([0, None])
            if row is None:
                coins["net_change_pct"], coins["net_change_usd"] = pct, usd
            else:
                row["change_pct"], row["change_usd"] = pct, usd
    crypto_id, equities_id = rules["crypto_vs_equities"]
    crypto, equities = instrument(facts, crypto_id), instrument(facts, equities_id)
    if crypto and equities:
        if rng.random() < 0.5:
            crypto["session_date"] = equities["session_date"]
        crypto["return_pct"] = rng.choice([-2.26, 0.0, 1.5, equities["return_pct"]])
        for d in facts["divergences"]:
            if {d["left"], d["right"]} == {crypto_id, equities_id}:
                minimum = rules["comovement_min_correlation"]
                d["correlation_60d"] = rng.choice([None, minimum, minimum - 0.01, 0.8, -0.5])
    first, second = (instrument(facts, i) for i in rules["us_style_pair"])
    if first and second and first["return_pct"] is not None and rng.random() < 0.5:
        second["return_pct"] = rng.choice([first["return_pct"], -first["return_pct"]])
    vary_action_figures(facts, rng)
    facts.update(decide_labels(facts, rules))
    facts["sections"] = sections(facts, rules)
    return facts


def vary_action_figures(facts: dict, rng: random.Random) -> None:
    """The action plan's figures pushed onto, inside and beyond their rules' thresholds."""
    thresholds = {r["id"]: r for r in facts["rules"]["action_rules"]}
    breadth, lead = facts["breadth"], facts["next_session_lead"]
    if breadth and rng.random() < 0.7:
        limit = rng.choice(
            [
                thresholds[i]["max_advance_ratio"]
                for i in ("risk_off_lead_weak_breadth", "breadth_washout")
            ]
        )
        breadth["advance_ratio"] = round(limit + rng.choice([0.0, -0.01, 0.01, 0.5]), 4)
    if lead and rng.random() < 0.7:
        lead["lead_signal"] = rng.choice(["ON", "OFF", "MIXED", None])
        move = near(rng, thresholds["lead_follow_through"]["min_abs_lead_return_pct"], 0.01)
        lead["lead_mean_return_pct"] = rng.choice([move, None])
    for d in facts["divergences"]:
        if d["configured"] and rng.random() < 0.3:
            d["zscore"] = near(rng, thresholds["divergence_pair_trade"]["min_abs_zscore"], 0.01)


def variants(reports: list[tuple[dict, str]], seed: int) -> list[tuple[dict, str]]:
    rng = random.Random(seed)
    built = []
    for report, _ in reports:
        for _ in range(VARIANTS_PER_REPORT):
            varied = vary(report, rng)
            built.append((varied, render_markdown(varied)))
    return built


# --- the tests ----------------------------------------------------------------------------


def test_the_demo_range_publishes_sentences_that_agree_with_its_json(demo_reports) -> None:
    measures = {r["stablecoins"]["supply_measure"] for r, _ in demo_reports if r["stablecoins"]}
    assert len(demo_reports) >= 60 and measures == {"TOTAL", "NET"}
    assert inconsistencies(demo_reports) == []


def test_generated_figures_across_every_threshold_are_worded_as_their_json(demo_reports) -> None:
    generated = variants(demo_reports, seed=13)
    labels = {
        "extreme": {d["extreme"] for r, _ in generated for d in r["divergences"]},
        "flow": {r["stablecoins"]["flow"] for r, _ in generated if r["stablecoins"]},
        "relation": {r["crypto_vs_equities"]["relation"] for r, _ in generated},
        "leader": {r["style_pair"]["leader"] is None for r, _ in generated},
    }
    assert labels == {
        "extreme": {True, False},
        "flow": {"inflow", "outflow", "flat", None},
        "relation": {"moved with", "moved against", None},
        "leader": {True, False},
    }
    for tier in ("conservative", "moderate", "aggressive"):
        acts = {bool(r["action_plan"][tier]) for r, _ in generated}
        assert acts == {True, False}, tier  # each tier both acts and says "no action"
    assert inconsistencies(generated) == []


@pytest.mark.slow  # one range run over 568 real dates: about 60 s alone, 2-3 min on a busy machine
def test_over_500_real_report_dates_every_sentence_agrees_with_its_json(real_reports) -> None:
    assert len(real_reports) >= MIN_REAL_REPORTS
    print(f"{len(real_reports)} real reports checked")
    leads = {r["next_session_lead"] is None for r, _ in real_reports}
    assert leads == {True, False}  # a US holiday on an Asian trading day leaves no lead
    assert inconsistencies(real_reports) == []
    assert inconsistencies(variants(real_reports[::10], seed=5)) == []


def test_the_checks_catch_a_contradiction(demo_reports) -> None:
    """The oracle can fail: the old contradictions, put back, are each found."""
    report, markdown = next(
        (r, m)
        for r, m in demo_reports
        if r["stablecoins"] and r["stablecoins"]["flow"] and r["next_session_lead"]
    )
    flipped = {"inflow": "outflow", "outflow": "inflow", "flat": "inflow"}[
        report["stablecoins"]["flow"]
    ]
    wrong_flow = re.sub(r"\b(inflow|outflow)\b", flipped, markdown)
    if wrong_flow == markdown:
        wrong_flow = markdown.replace("was flat at", "grew")
    claimed = re.sub(
        r"^- .*no co-movement claim.*$",
        "- Crypto moved with US equities.",
        markdown,
        flags=re.MULTILINE,
    )
    usual = markdown.replace("): extreme (", "): within its usual range (")
    lead = report["next_session_lead"]
    day = lead["followers"][0]["next_session_date"]
    later = (date.fromisoformat(day) + timedelta(days=7)).isoformat()
    wrong_date = markdown.replace(f"{weekday(day)} {day}", f"{weekday(later)} {later}")
    silenced = re.sub(
        r"^- .*Rule: [\w\\]+\.$",
        "- No action: none of the conservative rules fired.",
        markdown,
        count=1,
        flags=re.MULTILINE,
    )
    found = inconsistencies(
        [
            (report, wrong_flow),
            (report, claimed),
            (report, usual),
            (report, wrong_date),
            (report, silenced),
        ]
    )
    if silenced != markdown:
        assert any("check_action_plan" in f for f in found)
    assert any("check_next_session_lead" in f for f in found)
    assert any("check_stablecoins" in f for f in found)
    if claimed != markdown:
        assert any("check_comovement" in f for f in found)
    if usual != markdown:
        assert any("check_extreme" in f for f in found)
