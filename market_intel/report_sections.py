"""The report's sections, written by rules from its JSON figures (docs/report.md lists them).

Every sentence here is a template over figures already in the report's JSON, with thresholds
from ``report_rules.yml``: a claim can always be traced to the numbers behind it. Text is plain
(renderers escape it), so names that come from a feed cannot inject markup.
"""

from datetime import date
from typing import Any

from market_intel.universe import markets

Block = dict[str, Any]
Section = dict[str, Any]

ARROWS = {"ON": "↑", "OFF": "↓", "MIXED": "↔", None: "?"}
PROVISIONAL = "provisional"
SIGNAL_WORDS = {"ON": "risk-on", "OFF": "risk-off", "MIXED": "mixed", None: "no data"}
FLOW_ARROWS = {"inflow": "↑", "outflow": "↓", "flat": "↔"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def bps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f} bps"


def signed_money(value: float | None) -> str:
    """A change of money with its sign, as the verdict and the flow map state it: +$642.93 m."""
    if value is None:
        return "n/a"
    return ("+" if value > 0 else "") + money(value)


def change_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}%"


def weekday(day: str) -> str:
    return WEEKDAYS[date.fromisoformat(day).weekday()]


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


def extreme_rule(rules: dict) -> str:
    """The rule of the label ``extreme`` (market_intel/report_labels.py), as the report states it."""
    return (
        f"|z| at least {rules['extreme_zscore']:g} or percentile at least "
        f"{rules['extreme_percentile']:g}"
    )


def usual_rule(rules: dict) -> str:
    return (
        f"|z| below {rules['extreme_zscore']:g} and percentile below "
        f"{rules['extreme_percentile']:g}"
    )


def extreme_verdict(row: dict, rules: dict) -> str:
    """What the divergence's ``extreme`` label means for the reader, and for the action plan."""
    if not row["extreme"]:
        return f"within its usual range ({usual_rule(rules)})"
    if row["configured"]:
        return f"extreme ({extreme_rule(rules)}), a configured pair: see the action plan"
    return (
        f"extreme ({extreme_rule(rules)}), not a configured pair: the action plan acts on "
        "configured pairs only"
    )


def next_lead_sentence(lead: dict) -> str:
    """'Friday's US close (2026-03-20; risk-off, mean -1.49%) → next Hong Kong and A-shares open
    (Monday 2026-03-23)': both dates from the JSON's next_session_lead."""
    opens: dict[str | None, list[str]] = {}
    for follower in lead["followers"]:
        opens.setdefault(follower["next_session_date"], []).append(follower["name"])
    provisional = {
        f["next_session_date"] for f in lead["followers"] if f["next_session_provisional"]
    }
    targets = []
    for day, names in opens.items():
        if day is None:
            targets.append(f"next {' and '.join(names)} session (not in its calendar yet)")
        else:
            mark = ", provisional calendar" if day in provisional else ""
            targets.append(f"next {' and '.join(names)} open ({weekday(day)} {day}{mark})")
    session = lead["lead_session_date"]
    return (
        f"Next session's lead: {weekday(session)}'s {lead['lead_name']} close ({session}; "
        f"{SIGNAL_WORDS[lead['lead_signal']]}, mean {pct(lead['lead_mean_return_pct'])}) → "
        + "; ".join(targets)
        + "."
    )


def comovement_sentence(report: dict, rules: dict) -> str | None:
    """Crypto against US equities, from the JSON's crypto_vs_equities label: both dates always,
    a co-movement claim only where the label makes one."""
    label = report.get("crypto_vs_equities")
    if not label:
        return None
    crypto, equities = instrument(report, label["crypto"]), instrument(report, label["equities"])
    correlation = "n/a" if label["correlation_60d"] is None else f"{label['correlation_60d']:+.2f}"
    both = (
        f"{crypto['name']} ({label['crypto_session_date']}, UTC day) "
        f"{pct(label['crypto_return_pct'])} vs {equities['name']} "
        f"({label['equities_session_date']}) {pct(label['equities_return_pct'])}; "
        f"60-observation correlation {correlation}"
    )
    if label["relation"]:
        return (
            f"Crypto {label['relation']} US equities: {both} (at least "
            f"{rules['comovement_min_correlation']:g}, same session date)."
        )
    return f"{both}: no co-movement claim ({'; '.join(label['no_claim_because'])})."


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
    if report.get("next_session_lead"):
        lines.insert(1, next_lead_sentence(report["next_session_lead"]))
    ranked = [d for d in report["divergences"] if d["zscore"] is not None]
    if ranked:
        top = min(ranked, key=lambda d: d["zscore_rank"] or 10**6)
        lines.append(
            f"Most unusual divergence: {describe_divergence(top)}: {extreme_verdict(top, rules)}."
        )
    comovement = comovement_sentence(report, rules)
    if comovement:
        lines.append(comovement)
    stale = [m["name"] for m in report["markets"] if m["status"] in ("stale", "left_out")]
    if stale:
        lines.append("Read with care: " + ", ".join(stale) + " data is stale or left out.")
    return section(
        "key_insight",
        "Key Insight",
        [
            bullets(lines),
            chart("returns_by_market", "Returns by market, each on its session"),
            chart("sparklines", "Last 60 closes of each instrument"),
        ],
    )


LEVEL_COLUMNS = [
    "Instrument",
    "Close",
    "1D",
    "1W",
    "1M",
    "YTD",
    "vs 52w high",
    "vs 52w low",
    "20d vol (1y pctl)",
]
LEVEL_CHANGES = ("return_1w_pct", "return_1m_pct", "return_ytd_pct")
LEVEL_RANGE = ("from_52w_high_pct", "from_52w_low_pct")


def volatility(value: float | None, percentile: float | None) -> str:
    """'18.7% (76)': the 20-session realised vol and, in brackets, its 1-year percentile."""
    if value is None:
        return "n/a"
    return f"{value:.1f}%" + ("" if percentile is None else f" ({percentile:.0f})")


def level_row(row: dict, common_session: str | None) -> list[str]:
    """One instrument's levels; its session date beside its name when it is not the table's."""
    context = row.get("context") or {}
    name = row["name"]
    marks = []
    if row["session_date"] != common_session:
        marks.append(dated(row["session_date"], row.get("calendar")))
    if row["status"] == "stale":
        marks.append("stale")
    if marks:
        name += f" ({', '.join(marks)})"
    return [
        name,
        price(row["close"]),
        pct(row["return_pct"]),
        *(pct(context.get(key)) for key in LEVEL_CHANGES + LEVEL_RANGE),
        volatility(context.get("vol_20d_pct"), context.get("vol_percentile_1y")),
    ]


def levels(report: dict) -> Section:
    """The morning-note table: every instrument's level, moves and range in one table across
    markets, as marts.fct_instrument_context computed them (docs/report.md, Levels)."""
    rows = [row for entry in report["markets"] for row in entry["instruments"]]
    sessions = [row["session_date"] for row in rows if row["session_date"]]
    if not sessions:
        return section("levels", "Levels", [paragraph("No instrument has a session to show.")])
    common = max(set(sessions), key=lambda day: (sessions.count(day), day))
    note = (
        f"Closes of the session of {common} unless dated beside the name. 1W, 1M and YTD: "
        "change from the last close a week, a calendar month and a year-end before it. "
        "vs 52w high/low: distance from the highest and lowest close of the past 52 weeks. "
        "20d vol: realised volatility of the last 20 sessions, annualised, with its percentile "
        "among the past year's in brackets. n/a: too little history."
    )
    return section(
        "levels",
        "Levels",
        [paragraph(note), table(LEVEL_COLUMNS, [level_row(row, common) for row in rows])],
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
            *next_lead_blocks(report),
        ],
    )


def next_lead_blocks(report: dict) -> list[Block]:
    """The lead's latest close, when it closed after the followers' latest sessions."""
    lead = report.get("next_session_lead")
    if not lead:
        return []
    return [
        paragraph(
            next_lead_sentence(lead)
            + " The lead's latest session closed after these markets' latest sessions, so the "
            "chain above cannot show it yet."
        )
    ]


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
        blocks.append(
            paragraph(
                f"Stablecoin supply on {coins['date']}; the supply change the verdict reads is "
                f"{coins['supply_measure_name']}:"
            )
        )
        rows = [
            [
                c["symbol"],
                money(c["circulating_usd"]),
                signed_money(c["change_usd"]),
                change_pct(c["change_pct"]),
            ]
            for c in coins["coins"]
        ]
        if coins["supply_measure"] == "NET":
            rows.append(
                [
                    "NET (tracked coins)",
                    "n/a",
                    signed_money(coins["net_change_usd"]),
                    change_pct(coins["net_change_pct"]),
                ]
            )
        blocks.append(table(["Coin", "Circulating", "1-day change", "Change %"], rows))
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
    """Crypto direction against the stablecoin flow label (report_labels.supply_change): the
    verdict states the table's supply-change figure, with its sign and its name."""
    entry = market(report, "crypto")
    moves = [
        r["return_pct"] for r in (entry or {}).get("instruments", []) if r["return_pct"] is not None
    ]
    coins = report["stablecoins"]
    if not moves or not coins or coins["flow"] is None:
        return "not enough data for a verdict."
    direction = "rose" if min(moves) > 0 else "fell" if max(moves) < 0 else "split"
    threshold = rules["stablecoin_flow_pct"]
    change = (
        f"{signed_money(coins['supply_change_usd'])} ({change_pct(coins['supply_change_pct'])})"
    )
    name = coins["supply_measure_name"]
    if coins["flow"] == "inflow":
        flow_text = f"{name} grew {change}, an inflow (at or above +{threshold:g}%)"
        meaning = "new dry powder" if direction == "fell" else "fresh money alongside prices"
    elif coins["flow"] == "outflow":
        flow_text = f"{name} shrank {change}, an outflow (at or below -{threshold:g}%)"
        meaning = "prices up without new money" if direction == "rose" else "money leaving crypto"
    else:
        flow_text = f"{name} was flat at {change} (within {threshold:g}% either way)"
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
    pair = report.get("style_pair")
    if pair:
        first, second = instrument(report, pair["first"]), instrument(report, pair["second"])
        if pair["leader"]:
            who = f"{instrument(report, pair['leader'])['short_name']} led"
        else:
            who = "Neither led"
        extra.append(paragraph(f"{who}: {move(first)} against {move(second)}."))
    return extra


def hk_extras(report: dict, rules: dict) -> list[Block]:
    pair = divergence(report, *rules["hk_comparison_pair"])
    if not pair:
        return []
    if pair["left_session_date"] == pair["right_session_date"]:
        kind = f"Same-date comparison ({pair['left_session_date']})"
    else:
        kind = (
            f"Comparison across sessions ({pair['left_session_date']} / "
            f"{pair['right_session_date']})"
        )
    return [paragraph(f"{kind}: {describe_divergence(pair)}.")]


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


def cumulative_table(configured: list[dict], rules: dict) -> list[Block]:
    """The configured pairs on multi-session cumulative returns, which can persist where a
    one-day spread reverts (a second table keeps the first within the page width)."""
    windows = rules.get("cumulative_sessions") or []
    if not configured or not windows or f"spread_{windows[0]}s_bps" not in configured[0]:
        return []
    columns = ["Pair"]
    for sessions in windows:
        columns += [f"{sessions}-session spread", f"{sessions}-session z"]
    rows = []
    for d in configured:
        row = [f"{d['left_name']} vs {d['right_name']}"]
        for sessions in windows:
            zscore = d[f"zscore_{sessions}s"]
            row += [
                bps(d[f"spread_{sessions}s_bps"]),
                "n/a" if zscore is None else f"{zscore:+.2f}",
            ]
        rows.append(row)
    note = paragraph(
        "On cumulative returns: each side's compounded return over its own last "
        + " and ".join(str(n) for n in windows)
        + " sessions, left minus right, with the z-score of that spread against its previous "
        f"{rules['divergence_history']} observations (overlapping windows, so a wide "
        "cumulative spread is a gap that has persisted, not a fresh one-day move)."
    )
    return [table(columns, rows), note]


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
    blocks += cumulative_table(configured, rules)
    cross = [d for d in report["divergences"] if not d["configured"]]
    if cross:
        top = min(cross, key=lambda d: d["rank"] or 10**6)
        blocks.append(
            paragraph(f"Widest of the other cross-market pairs today: {describe_divergence(top)}.")
        )
    extreme = [describe_divergence(d) for d in configured if d["extreme"]]
    blocks.append(
        paragraph(
            f"Extreme among the configured pairs today ({extreme_rule(rules)}): "
            + ("; ".join(extreme) if extreme else "none")
            + "."
        )
    )
    others = sorted((d for d in cross if d["extreme"]), key=lambda d: d["zscore_rank"] or 10**6)
    if others:
        blocks.append(
            paragraph(
                "Extreme among the other cross-market pairs (not configured: no action-plan "
                "signal): " + "; ".join(describe_divergence(d) for d in others) + "."
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
    if coins and coins["flow"] is not None:
        items.append(
            f"Stablecoins {FLOW_ARROWS[coins['flow']]} {coins['flow']}: "
            f"{coins['supply_measure']} {signed_money(coins['supply_change_usd'])} "
            f"({change_pct(coins['supply_change_pct'])})"
        )
    if report.get("next_session_lead"):
        items.append(next_lead_sentence(report["next_session_lead"]).rstrip("."))
    return section("capital_flow", "Capital Flow Map", [bullets(items or ["No flows."])])


def base_rate(d: dict) -> str:
    """The unconditional rate beside a likelihood: the share of all observations of the same
    look-back population (any width) that halved, so the reader sees what happens anyway."""
    if d.get("base_n") is None:  # a mart row built before the base rate existed
        return "base rate: not computed"
    if not d["base_n"]:
        return "base rate: no observations"
    share = f"{d['base_narrowed']} of {d['base_n']} ({d['base_rate_pct']:.1f}%)"
    return f"base rate: {share} of all observations"


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
                f"{narrowed} of {sample} ({d['similar_narrowed_pct']:.1f}%) past spreads at least "
                f"this wide halved within {rules['narrowing_sessions']} observations"
            )
        else:
            evidence = "no past spread this wide: no estimate"
        evidence += f"; {base_rate(d)}"
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
                f"{bps(d['spread_bps'])}, z {zscore}" + (", extreme" if d["extreme"] else ""),
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
                "Likelihoods are counted from this project's own history of each pair: of the "
                f"previous {rules['divergence_history']} observations whose follow-up had ended, "
                "every one whose absolute spread was at least today's, and whether it "
                "narrowed to half or less within the next "
                f"{rules['narrowing_sessions']} observations. The base rate counts all of those "
                "observations, whatever their width: a likelihood means something only where "
                "it differs from its base rate."
            ),
        ],
    )


COMPARISON_WORDS = {"==": "is", "in": "one of", ">=": "at least", "<=": "at most"}
ACTION_TONE = (
    "Rule-based signals for reference only, not financial advice: each item names the rule "
    "that fired (docs/report.md) and the figures behind it; sizing, timing and whether to act "
    "at all are the reader's decision."
)


def figure_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "/".join(figure_text(v) for v in value)
    return "n/a" if value is None else str(value)


def evidence_text(found: dict) -> str:
    """'A-share advance ratio 0.1208 on 2026-03-20 (rule: at most 0.35)'; an equality, met by
    every fired item, is stated once: 'US lead signal is OFF on 2026-03-20'."""
    if found["comparison"] == "==":
        return f"{found['name']} is {figure_text(found['value'])} on {found['date'] or 'n/a'}"
    return (
        f"{found['name']} {figure_text(found['value'])} on {found['date'] or 'n/a'} "
        f"(rule: {COMPARISON_WORDS[found['comparison']]} {figure_text(found['threshold'])})"
    )


def base_rate_text(item: dict) -> str:
    if item["base_rate"] is None:
        return "base rate: n/a"
    n = "n/a" if item["n"] is None else item["n"]
    return f"base rate: {item['base_rate']:.1f}% (n {n})"


def action_item_text(item: dict) -> str:
    """The action, then the evidence that fired it, its base rate and the rule's id."""
    found = "; ".join(evidence_text(e) for e in item["evidence"])
    return f"{item['action']} Evidence: {found}; {base_rate_text(item)}. Rule: {item['rule']}."


def no_action_text(tier: str, rules: dict) -> str:
    ids = [rule["id"] for rule in rules["action_rules"] if rule["tier"] == tier]
    return f"No action: none of the {tier} rules fired ({', '.join(ids)})."


def signal_record(report: dict, rules: dict) -> Section:
    """The report's own track record: what followed each past extreme signal of a configured
    pair, from marts.fct_signal_record (only signals whose follow-up ended before the report)."""
    rows = []
    for pair in report.get("signal_record") or []:
        for h in pair["horizons"]:
            rows.append(
                [
                    f"{pair['left_name']} vs {pair['right_name']}",
                    f"next {h['observations']}",
                    str(h["signals"]),
                    "n/a"
                    if h["hit_rate_pct"] is None
                    else f"{h['hits']} of {h['signals']} ({h['hit_rate_pct']:.1f}%)",
                    bps(h["mean_move_bps"]),
                    h["last_signal_on"] or "n/a",
                ]
            )
    columns = ["Pair", "Horizon (obs)", "Signals", "Reverted", "Mean move", "Last signal"]
    blocks = [table(columns, rows)] if rows else [paragraph("No configured pair to record.")]
    blocks.append(
        paragraph(
            f"Signals: every observation among each pair's previous "
            f"{rules['divergence_history']} on which it was extreme ({extreme_rule(rules)}), "
            "counted only once its follow-up had ended before this report. What followed over "
            "the next N observations: the move is the sum of the next N spreads against the "
            "signal's sign (positive: the gap reverted); a signal reverted when its move was "
            "above zero. Mean move in basis points; no look-ahead: later data changes no "
            "past report's record."
        )
    )
    return section("signal_record", "Signal Record", blocks)


def action_plan(report: dict, rules: dict) -> Section:
    """Each tier's decided items (the JSON's action_plan); "no action" only for an empty tier."""
    blocks = []
    for tier, subtitle in rules["action_tiers"].items():
        items = report["action_plan"][tier]
        blocks += [
            paragraph(f"{tier.capitalize()} ({subtitle}):"),
            bullets([action_item_text(i) for i in items] or [no_action_text(tier, rules)]),
        ]
    others = [
        f"{d['left_name']} vs {d['right_name']}"
        for d in report["divergences"]
        if d["extreme"] and not d["configured"]
    ]
    if others:
        blocks.append(
            paragraph(
                "Extreme but not configured, so no rule acts on them: " + "; ".join(others) + "."
            )
        )
    blocks.append(paragraph(ACTION_TONE))
    return section("action_plan", "Action Plan", blocks)


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
            levels(report),
            transmission(report),
            crypto_defi(report, rules),
            *market_sections(report, rules),
            divergences_section(report, rules),
            flow_map(report),
            risk_matrix(report, rules),
            signal_record(report, rules),
            action_plan(report, rules),
            appendix(report),
            section("disclaimer", "Disclaimer", [paragraph(report["disclaimer"])]),
        ]
    )
