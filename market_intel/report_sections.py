"""The report's sections, written by rules from its JSON figures (docs/report.md lists them).

Every sentence here is a template over figures already in the report's JSON, with thresholds
from ``report_rules.yml``: a claim can always be traced to the numbers behind it. Text is plain
(renderers escape it), so names that come from a feed cannot inject markup.
"""

from typing import Any

from market_intel.universe import markets

Block = dict[str, Any]
Section = dict[str, Any]

ARROWS = {"ON": "↑", "OFF": "↓", "MIXED": "↔", None: "?"}
PROVISIONAL = "provisional"
SIGNAL_WORDS = {"ON": "risk-on", "OFF": "risk-off", "MIXED": "mixed", None: "no data"}


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def bps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f} bps"


def price(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def money(value: float | None, symbol: str = "$") -> str:
    """Large amounts as people read them: $313.68 bn, $48.00 m."""
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 1e9:
        return f"{sign}{symbol}{amount / 1e9:,.2f} bn"
    if amount >= 1e6:
        return f"{sign}{symbol}{amount / 1e6:,.2f} m"
    return f"{sign}{symbol}{amount:,.0f}"


def dated(day: str | None, calendar: str | None) -> str:
    """A session date, marked when a provisional calendar dates it (docs/report.md)."""
    if day is None:
        return "n/a"
    return f"{day} (provisional calendar)" if calendar == PROVISIONAL else day


def paragraph(text: str) -> Block:
    return {"type": "paragraph", "text": text}


def bullets(items: list[str]) -> Block:
    return {"type": "bullets", "items": items}


def table(columns: list[str], rows: list[list[str]]) -> Block:
    return {"type": "table", "columns": columns, "rows": rows}


def chart(name: str, title: str) -> Block:
    return {"type": "chart", "chart": name, "title": title}


def section(id_: str, title: str, blocks: list[Block], status_note: str = "") -> Section:
    return {"id": id_, "title": title, "status_note": status_note, "blocks": blocks}


def market(report: dict, code: str) -> dict | None:
    return next((m for m in report["markets"] if m["market"] == code), None)


def status_note(entry: dict | None, as_of: str) -> str:
    """What a reader must know before reading a market's figures."""
    if entry is None:
        return "No data: this market is not in the report."
    if entry["status"] == "left_out":
        return "Left out of this report: " + "; ".join(entry["left_out_because"])
    calendar = entry.get("calendar")
    if entry["status"] == "stale":
        which = "provisional calendar" if calendar == PROVISIONAL else "calendar"
        return (
            f"STALE: the {which} expects session {entry['expected_session_date']}, the data "
            f"ends {entry['session_date']}. Figures below are old."
        )
    if entry["status"] == "closed":
        return (
            f"Closed on {as_of}: showing the latest session, "
            f"{dated(entry['session_date'], calendar)}."
        )
    if entry["status"] == "unavailable":
        return "Unavailable: the source provided no data."
    if calendar == PROVISIONAL:
        return f"Session {dated(entry['session_date'], calendar)}: see the data-quality appendix."
    return ""


def instrument_table(entry: dict | None) -> Block:
    rows = [
        [
            f"{i['name']} ({i['id']})",
            dated(i["session_date"], i.get("calendar")),
            price(i["close"]),
            pct(i["return_pct"]),
            i["status"],
        ]
        for i in (entry or {}).get("instruments", [])
    ]
    return table(["Instrument", "Session", "Close", "Return", "Status"], rows)


def instrument(report: dict, instrument_id: str) -> dict | None:
    for entry in report["markets"]:
        for row in entry["instruments"]:
            if row["id"] == instrument_id:
                return row
    return None


def move(row: dict | None) -> str:
    """'S&P -1.51% (2026-03-20)'."""
    if row is None or row["return_pct"] is None:
        return "n/a"
    mark = ", provisional calendar" if row.get("calendar") == PROVISIONAL else ""
    return f"{row['short_name']} {pct(row['return_pct'])} ({row['session_date']}{mark})"


def divergence(report: dict, left: str, right: str) -> dict | None:
    return next(
        (d for d in report["divergences"] if d["left"] == left and d["right"] == right), None
    )


def describe_divergence(row: dict) -> str:
    """'ChiNext vs SSE +254 bps (z 1.66, 87.6th percentile of 250 observations)'."""
    history = []
    if row["zscore"] is not None:
        history.append(f"z {row['zscore']:+.2f}")
    if row["percentile"] is not None:
        history.append(
            f"{row['percentile']:.1f}th percentile of {row['observations']} observations"
        )
    extra = f" ({', '.join(history)})" if history else ""
    return f"{row['left_name']} vs {row['right_name']} {bps(row['spread_bps'])}{extra}"


def is_extreme(row: dict, rules: dict) -> bool:
    return (row["zscore"] is not None and abs(row["zscore"]) >= rules["extreme_zscore"]) or (
        row["percentile"] is not None and row["percentile"] >= rules["extreme_percentile"]
    )


def key_insight(report: dict, rules: dict) -> Section:
    chain = report["transmission_chain"]
    lines = []
    if chain:
        lead = chain["links"][0]
        lines.append(
            f"Transmission chain: {chain['status'].replace('_', ' ')}, {chain['rule']} "
            f"({lead['name']} lead session {lead['session_date']}: "
            f"{SIGNAL_WORDS[lead['signal']]})."
        )
    movers = sorted(
        (
            row
            for entry in report["markets"]
            for row in entry["instruments"]
            if row["return_pct"] is not None and abs(row["return_pct"]) >= rules["notable_move_pct"]
        ),
        key=lambda row: -abs(row["return_pct"]),
    )
    if movers:
        lines.append(
            f"Moves of {rules['notable_move_pct']:g}% or more: "
            + ", ".join(move(row) for row in movers[:6])
            + "."
        )
    else:
        lines.append(f"No instrument moved {rules['notable_move_pct']:g}% or more.")
    ranked = [d for d in report["divergences"] if d["zscore"] is not None]
    if ranked:
        extreme = min(ranked, key=lambda d: d["zscore_rank"] or 10**6)
        verdict = "extreme" if is_extreme(extreme, rules) else "within its usual range"
        lines.append(f"Most unusual divergence: {describe_divergence(extreme)}, {verdict}.")
    btc, spx = (instrument(report, i) for i in rules["crypto_vs_equities"])
    if btc and spx and btc["return_pct"] is not None and spx["return_pct"] is not None:
        together = (btc["return_pct"] >= 0) == (spx["return_pct"] >= 0)
        lines.append(
            f"Crypto moved {'with' if together else 'against'} US equities: {move(btc)} "
            f"against {move(spx)}."
        )
    stale = [m["name"] for m in report["markets"] if m["status"] in ("stale", "left_out")]
    if stale:
        lines.append("Read with care: " + ", ".join(stale) + " data is stale or left out.")
    return section(
        "key_insight",
        "Key Insight",
        [bullets(lines), chart("returns_by_market", "Returns by market, each on its session")],
    )


def transmission(report: dict) -> Section:
    chain = report["transmission_chain"]
    if not chain:
        return section(
            "transmission_chain",
            "Global Risk Sentiment: Transmission Chain",
            [paragraph("No chain: a link has no session data.")],
        )
    rows = [
        [
            f"{link['name']}{'' if link['lead_session_date'] else ' (overnight lead)'}",
            link["session_date"] or "n/a",
            link["lead_session_date"] or "—",
            pct(link["mean_return_pct"]),
            link["signal"] or "left out",
        ]
        for link in chain["links"]
    ]
    threshold = chain["signal_threshold_pct"]
    return section(
        "transmission_chain",
        "Global Risk Sentiment: Transmission Chain",
        [
            table(["Market", "Session", "Paired lead session", "Mean index move", "Signal"], rows),
            paragraph(
                f"Chain status: {chain['status'].replace('_', ' ').upper()}: {chain['rule']}. "
                "Each following session is paired with the lead's session that closed before it opened."
            ),
            paragraph(
                f"Signal rule: ON when the mean index move is at least +{threshold}% and no "
                f"index fell {threshold}% or more; OFF when it is at most -{threshold}% and no "
                "index rose as much; MIXED otherwise."
            ),
        ],
    )


def crypto_defi(report: dict, rules: dict) -> Section:
    entry = market(report, "crypto")
    blocks: list[Block] = []
    rows = (entry or {}).get("instruments", [])
    blocks.append(
        bullets(
            [
                f"{row['short_name']}: ${price(row['close'])} ({pct(row['return_pct'])}) on "
                f"UTC day {row['session_date']}"
                for row in rows
            ]
            or ["No crypto prices."]
        )
    )
    if "defi" in report["left_out"]:
        left_out = "; ".join(report["left_out"]["defi"])
        blocks.append(paragraph(f"DeFi left out of this report: {left_out}"))
    defi = report["defi"]
    if defi:
        blocks.append(paragraph(f"DeFi TVL by category on {defi['date']} (DefiLlama):"))
        blocks.append(
            table(
                ["Category", "TVL", "1-day change"],
                [
                    [c["category"], money(c["tvl_usd"]), pct(c["change_pct"])]
                    for c in defi["categories"]
                ],
            )
        )
        blocks.append(
            table(
                ["Mover", "Category", "TVL", "1-day change"],
                [
                    [m["protocol"], m["category"], money(m["tvl_usd"]), pct(m["change_pct"])]
                    for m in defi["movers"]
                ],
            )
        )
    elif "defi" not in report["left_out"]:
        blocks.append(paragraph("DeFi TVL: unavailable for this date."))
    coins = report["stablecoins"]
    if coins:
        blocks.append(paragraph(f"Stablecoin supply on {coins['date']}:"))
        blocks.append(
            table(
                ["Coin", "Circulating", "1-day change", "Change %"],
                [
                    [
                        c["symbol"],
                        money(c["circulating_usd"]),
                        money(c["change_usd"]),
                        "n/a" if c["change_pct"] is None else f"{c['change_pct']:+.3f}%",
                    ]
                    for c in coins["coins"]
                ],
            )
        )
    elif "defi" not in report["left_out"]:
        blocks.append(paragraph("Stablecoin supply: unavailable for this date."))
    blocks.append(paragraph("Verdict: " + crypto_verdict(report, rules)))
    return section(
        "crypto_defi",
        markets()["crypto"].section_title,
        blocks,
        status_note(entry, report["as_of_date"]) if entry and entry["status"] != "open" else "",
    )


def crypto_verdict(report: dict, rules: dict) -> str:
    """Crypto direction against stablecoin net flow: the two numbers decide the sentence."""
    entry = market(report, "crypto")
    moves = [
        r["return_pct"] for r in (entry or {}).get("instruments", []) if r["return_pct"] is not None
    ]
    coins = report["stablecoins"]
    if not moves or not coins or coins["net_change_pct"] is None:
        return "not enough data for a verdict."
    direction = "rose" if min(moves) > 0 else "fell" if max(moves) < 0 else "split"
    flow = coins["net_change_pct"]
    threshold = rules["stablecoin_flow_pct"]
    if flow >= threshold:
        flow_text = f"tracked stablecoin supply grew {money(coins['net_change_usd'])}"
        meaning = "new dry powder" if direction == "fell" else "fresh money alongside prices"
    elif flow <= -threshold:
        flow_text = f"tracked stablecoin supply shrank {money(abs(coins['net_change_usd']))}"
        meaning = "prices up without new money" if direction == "rose" else "money leaving crypto"
    else:
        flow_text = f"tracked stablecoin supply was flat ({money(coins['net_change_usd'])})"
        meaning = "no new money either way"
    return f"crypto {direction} while {flow_text}: {meaning}."


def us_extras(report: dict, rules: dict) -> list[Block]:
    """Strongest and weakest index, and which of the configured style pair led."""
    entry = market(report, "us")
    rows = [r for r in (entry or {}).get("instruments", []) if r["return_pct"] is not None]
    if not rows:
        return []
    best = max(rows, key=lambda r: r["return_pct"])
    worst = min(rows, key=lambda r: r["return_pct"])
    extra = [paragraph(f"Strongest: {move(best)}. Weakest: {move(worst)}.")]
    first, second = (instrument(report, i) for i in rules["us_style_pair"])
    if first and second and first["return_pct"] is not None and second["return_pct"] is not None:
        leader = first if first["return_pct"] > second["return_pct"] else second
        extra.append(
            paragraph(f"{leader['short_name']} led: {move(first)} against {move(second)}.")
        )
    return extra


def hk_extras(report: dict, rules: dict) -> list[Block]:
    pair = divergence(report, *rules["hk_comparison_pair"])
    return [paragraph(f"Same-date comparison: {describe_divergence(pair)}.")] if pair else []


def cn_extras(report: dict, rules: dict) -> list[Block]:
    extra = []
    pair = divergence(report, *rules["cn_intra_market_pair"])
    if pair:
        extra.append(paragraph(f"Intra-market divergence: {describe_divergence(pair)}."))
    breadth = report["breadth"]
    if not breadth:
        return [*extra, paragraph("Breadth: unavailable for this session.")]
    extra.append(
        paragraph(
            f"Breadth on {breadth['session_date']}: {breadth['advancers']:,} up, "
            f"{breadth['decliners']:,} down, {breadth['unchanged']:,} unchanged of "
            f"{breadth['total']:,} (advance ratio {breadth['advance_ratio']:.4f}; "
            f"source {breadth['source']})."
        )
    )
    vs_avg = breadth["turnover_vs_avg_20_pct"]
    extra.append(
        paragraph(
            f"Turnover: {money(breadth['turnover_cny'], '¥')}"
            + ("" if vs_avg is None else f", {vs_avg:+.1f}% against its 20-session average")
            + "."
        )
    )
    return extra


# What a market's section shows beside its instrument table; a market without an entry (a new
# row of markets.csv) gets the table alone. Crypto has its own section with DeFi.
MARKET_EXTRAS = {"us": us_extras, "hk": hk_extras, "cn": cn_extras}
OWN_SECTION_MARKETS = frozenset({"crypto"})


def market_sections(report: dict, rules: dict) -> list[Section]:
    """One section per market of the universe, in its display order."""
    built = []
    for code, definition in markets().items():
        if code in OWN_SECTION_MARKETS:
            continue
        entry = market(report, code)
        extras = MARKET_EXTRAS.get(code)
        blocks = [instrument_table(entry), *(extras(report, rules) if extras else [])]
        built.append(
            section(
                code, definition.section_title, blocks, status_note(entry, report["as_of_date"])
            )
        )
    return built


def divergences_section(report: dict, rules: dict) -> Section:
    configured = [d for d in report["divergences"] if d["configured"]]
    rows = [
        [
            f"{d['left_name']} vs {d['right_name']}",
            f"{d['left_session_date']} / {d['right_session_date']}",
            pct(d["left_return_pct"]),
            pct(d["right_return_pct"]),
            bps(d["spread_bps"]),
            "n/a" if d["zscore"] is None else f"{d['zscore']:+.2f}",
            "n/a" if d["percentile"] is None else f"{d['percentile']:.1f}",
            "n/a" if d["correlation_60d"] is None else f"{d['correlation_60d']:+.2f}",
        ]
        for d in configured
    ]
    blocks = [
        table(
            ["Pair", "Sessions", "Left", "Right", "Spread", "z-score", "Percentile", "60-obs corr"],
            rows,
        )
    ]
    cross = [d for d in report["divergences"] if not d["configured"]]
    if cross:
        top = min(cross, key=lambda d: d["rank"] or 10**6)
        blocks.append(
            paragraph(f"Widest of the other cross-market pairs today: {describe_divergence(top)}.")
        )
    extreme = [describe_divergence(d) for d in configured if is_extreme(d, rules)]
    blocks.append(
        paragraph(
            "Extreme among the configured pairs today (|z| at least "
            f"{rules['extreme_zscore']:g} or percentile at least {rules['extreme_percentile']:g}): "
            + ("; ".join(extreme) if extreme else "none")
            + "."
        )
    )
    blocks += [
        chart("divergence_bands", "Spreads against their historical band (mean ± 2 sd)"),
        chart("rolling_correlations", "Rolling correlation of each pair"),
    ]
    return section("divergences", "Cross-Market Divergences", blocks)


def flow_map(report: dict) -> Section:
    items = []
    chain = report["transmission_chain"]
    for link in (chain or {}).get("links", []):
        items.append(
            f"{link['name']} equities {ARROWS[link['signal']]} ({SIGNAL_WORDS[link['signal']]}, "
            f"mean {pct(link['mean_return_pct'])}, session {link['session_date']})"
        )
    entry = market(report, "crypto")
    for row in (entry or {}).get("instruments", []):
        arrow = "n/a" if row["return_pct"] is None else ("↑" if row["return_pct"] > 0 else "↓")
        items.append(f"Crypto {row['short_name']} {arrow} ({pct(row['return_pct'])})")
    defi = report["defi"]
    if defi:
        up = [c["category"] for c in defi["categories"] if (c["change_pct"] or 0) > 0]
        down = [c["category"] for c in defi["categories"] if (c["change_pct"] or 0) < 0]
        items.append(
            f"DeFi TVL ↑ in {', '.join(up) or 'no category'}; ↓ in {', '.join(down) or 'none'}"
        )
    coins = report["stablecoins"]
    if coins and coins["net_change_usd"] is not None:
        arrow = "↑" if coins["net_change_usd"] > 0 else "↓"
        items.append(f"Stablecoins {arrow} net {money(coins['net_change_usd'])}")
    return section("capital_flow", "Capital Flow Map", [bullets(items or ["No flows."])])


def risk_matrix(report: dict, rules: dict) -> Section:
    candidates = [
        d
        for d in report["divergences"]
        if d["configured"] and d["similar_observations"] is not None
    ]
    candidates.sort(key=lambda d: -abs(d["zscore"] or 0))
    rows = []
    for rank, d in enumerate(candidates[: rules["risk_matrix_rows"]], start=1):
        sample, narrowed = d["similar_observations"], d["similar_narrowed"]
        if sample:
            evidence = (
                f"{narrowed} of {sample} past spreads at least this wide halved within "
                f"{rules['narrowing_sessions']} observations ({d['similar_narrowed_pct']:.1f}%); "
                "the others persisted"
            )
        else:
            evidence = "no past spread this wide: no estimate"
        band = (
            "n/a"
            if d["band_low_bps"] is None
            else f"spread leaves {bps(d['band_low_bps'])}..{bps(d['band_high_bps'])}"
        )
        zscore = "n/a" if d["zscore"] is None else f"{d['zscore']:+.2f}"
        rows.append(
            [
                str(rank),
                f"{d['left_name']} vs {d['right_name']} divergence persists",
                f"{bps(d['spread_bps'])}, z {zscore}",
                evidence,
                band,
            ]
        )
    return section(
        "risk_matrix",
        "Risk Matrix",
        [
            table(["Rank", "Risk", "Today", "Likelihood from history", "Trigger to watch"], rows),
            paragraph(
                "Likelihoods are counted from this project's own history of each pair: every "
                "past observation whose absolute spread was at least today's, and whether it "
                "narrowed to half or less within the next "
                f"{rules['narrowing_sessions']} observations."
            ),
        ],
    )


def action_plan(report: dict, rules: dict) -> Section:
    items = []
    for d in report["divergences"]:
        if not d["configured"] or not is_extreme(d, rules):
            continue
        history = (
            f"history: narrowed in {d['similar_narrowed']} of {d['similar_observations']} cases"
            if d["similar_observations"]
            else "no comparable history"
        )
        items.append(f"Watch for mean reversion in {describe_divergence(d)}; {history}.")
    for entry in report["markets"]:
        if entry["status"] in ("stale", "left_out"):
            items.append(
                f"Re-run the report once {entry['name']} data for the expected session arrives."
            )
    chain = report["transmission_chain"]
    if chain and chain["status"] in ("broken", "partial"):
        items.append(
            "The chain did not fully transmit: treat the following markets' moves as local."
        )
    if not items:
        items.append(
            f"No configured divergence is extreme (|z| below {rules['extreme_zscore']:g}) and "
            "every market is current: the rules signal no action."
        )
    return section("action_plan", "Action Plan", [bullets(items)])


def appendix(report: dict) -> Section:
    checks = [
        [c["name"], c["severity"], "passed" if c["passed"] else "FAILED", c["message"]]
        for c in report["checks"]
    ]
    sessions = [
        [
            m["name"],
            m["status"],
            dated(m["session_date"], m.get("calendar")),
            dated(m["expected_session_date"], m.get("calendar")),
        ]
        for m in report["markets"]
    ]
    feeds = [
        [row["id"], row["source"] or "n/a", "yes" if row["is_fallback"] else "no"]
        for entry in report["markets"]
        for row in entry["instruments"]
    ]
    blocks = [
        table(["Check", "Severity", "Result", "First finding"], checks),
        table(["Market", "Status", "Session", "Expected session"], sessions),
        table(["Instrument", "Source", "Fallback"], feeds),
    ]
    provisional = [m["name"] for m in report["markets"] if m.get("calendar") == PROVISIONAL]
    if provisional:
        blocks.insert(0, paragraph(provisional_calendar_note(provisional)))
    if report["warnings"]:
        blocks.insert(0, bullets(report["warnings"]))
    return section("data_quality", "Appendix: Data Quality", blocks)


def provisional_calendar_note(names: list[str]) -> str:
    return (
        f"Provisional calendar: {', '.join(names)} sessions are past the last session the "
        "exchange calendar library publishes, so rule-based holidays date them, confirmed by the "
        "feed's own sessions (a day with data is a session; a missing expected session is a "
        "warning, not an error). They are marked (provisional calendar) next to each session "
        "date until the library publishes the year."
    )


# Sections that carry no number: appendices and notes around the numbered body.
UNNUMBERED = frozenset({"commentary", "data_quality", "disclaimer"})


def numbered(body: list[Section]) -> list[Section]:
    """Titles numbered from the sections' order, so adding or moving one renumbers the rest."""
    count = 0
    for entry in body:
        if entry["id"] not in UNNUMBERED:
            count += 1
            entry["title"] = f"{count}. {entry['title']}"
    return body


def sections(report: dict, rules: dict) -> list[Section]:
    """The numbered sections, the data-quality appendix and the disclaimer, in reading order."""
    return numbered(
        [
            key_insight(report, rules),
            transmission(report),
            crypto_defi(report, rules),
            *market_sections(report, rules),
            divergences_section(report, rules),
            flow_map(report),
            risk_matrix(report, rules),
            action_plan(report, rules),
            appendix(report),
            section("disclaimer", "Disclaimer", [paragraph(report["disclaimer"])]),
        ]
    )
