"""The gate in the whole pipeline: stale data cannot publish, whatever runs the report, and a
blocked run loses nothing."""

import json
from pathlib import Path

from dagster import AssetCheckSeverity, AssetKey

from tests.conftest import Pipeline

REPORT = [AssetKey("market_intelligence_report")]


def truncate(path: Path, last_date: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join(l for l in lines if l[:10] <= last_date or l.startswith("date")) + "\n"
    )


def failure_messages(result) -> list[str]:
    return [
        e.step_failure_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE" and e.step_failure_data.error
    ]


def check_evaluations(result) -> dict:
    """Each asset check's last evaluation in the run, by (asset, check name)."""
    return {
        (
            e.asset_check_evaluation_data.asset_key.to_user_string(),
            e.asset_check_evaluation_data.check_name,
        ): e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def blocked_lines(result) -> dict[str, list[str]]:
    """The report step's failure metadata: the lines blocking each report date."""
    [failure] = [
        e.step_failure_data.user_failure_data
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE" and e.step_failure_data.user_failure_data
    ]
    return failure.metadata["blocked"].value


def check_descriptions(result) -> list[str]:
    return [
        e.asset_check_evaluation_data.description or ""
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]


def test_stale_us_cannot_publish_and_says_why_in_one_line(pipeline: Pipeline) -> None:
    replay = pipeline.use_replay_of_demo()
    for path in (replay / "us").glob("*.csv"):
        truncate(path, "2025-09-26")

    result = pipeline.run("2026-03-22", raise_on_error=False)

    assert not result.success
    assert not list(pipeline.reports.glob("2026-03-22.*"))
    lines = [line for d in check_descriptions(result) for line in d.splitlines()[:1]]
    why = [line for line in lines if "market_session" in line]
    assert len(why) == 1
    assert "US is stale for report 2026-03-22" in why[0]
    assert "expects session 2026-03-20" in why[0] and "the data ends 2025-09-26" in why[0]

    # The report asset alone (no checks in the selection) holds the gate too.
    alone = pipeline.run("2026-03-22", selection=REPORT, raise_on_error=False)
    assert not alone.success
    (message,) = failure_messages(alone)
    assert "Report 2026-03-22 blocked by the quality gate" in message
    assert "US is stale" in message and "2025-09-26" in message
    assert not list(pipeline.reports.glob("2026-03-22.*"))


def test_blocked_run_loses_nothing_and_a_fixed_rerun_publishes(pipeline: Pipeline) -> None:
    replay = pipeline.use_replay_of_demo()
    assert pipeline.run("2026-03-20").success
    earlier = {p.name: p.read_bytes() for p in pipeline.reports.glob("2026-03-20.*")}
    assert len(earlier) == 3

    def raw_rows_except(session: str) -> list:
        return pipeline.query(
            "SELECT * EXCLUDE (fetched_at) FROM raw.us_bars WHERE session_date <> ? ORDER BY ALL",
            [session],
        )

    before = raw_rows_except("2026-03-20")
    gspc = replay / "us" / "GSPC.csv"
    good = gspc.read_text()
    gspc.write_text(good.replace(",6506.48,", ",-6506.48,"))

    blocked = pipeline.run("2026-03-21", raise_on_error=False)

    assert not blocked.success
    assert any("us/GSPC 2026-03-20" in d for d in check_descriptions(blocked))
    assert not list(pipeline.reports.glob("2026-03-21.*"))
    assert {p.name: p.read_bytes() for p in pipeline.reports.glob("2026-03-20.*")} == earlier
    assert raw_rows_except("2026-03-20") == before

    gspc.write_text(good)
    assert pipeline.run("2026-03-21").success
    report = json.loads((pipeline.reports / "2026-03-21.json").read_text())
    gspc_row = next(i for m in report["markets"] for i in m["instruments"] if i["id"] == "us/GSPC")
    assert (gspc_row["session_date"], gspc_row["return_pct"]) == ("2026-03-20", -1.51)


def test_a_date_past_the_demo_data_is_blocked_by_the_stale_market_it_lacks(
    pipeline: Pipeline,
) -> None:
    """Demo report 2026-03-23 needs crypto's UTC day 2026-03-22, which the demo data lacks: the
    snapshot still has the date's rows, so the gate names the market, the session it expects and
    the one the data ends on (never "no facts"), and the checks in the run say the same."""
    result = pipeline.run("2026-03-23", raise_on_error=False)

    assert not result.success
    (message,) = failure_messages(result)
    assert "Report 2026-03-23 blocked by the quality gate" in message
    assert "Crypto is stale for report 2026-03-23" in message
    assert "expects session 2026-03-22, the data ends 2026-03-21" in message
    assert "no facts" not in message
    assert any("Crypto is stale for report 2026-03-23" in d for d in check_descriptions(result))
    assert not list(pipeline.reports.glob("2026-03-23.*"))

    # Every check result of the run agrees with the report's verdict: the market_session check
    # on the snapshot failed with the stale line that blocks the report, and the ERROR findings
    # the checks show are exactly the lines the report was blocked by.
    results = check_evaluations(result)
    session = results[("marts/fct_report_snapshot", "market_session")]
    assert not session.passed
    first = session.description.splitlines()[0]
    assert first.startswith("marts/fct_report_snapshot market_session FAILED (ERROR): ")
    stale_line = first.split("FAILED (ERROR): ", 1)[1]
    assert stale_line.startswith("Crypto is stale for report 2026-03-23")
    assert stale_line in message
    blocked = [line.removeprefix("[ERROR] ") for line in blocked_lines(result)["2026-03-23"]]
    shown = {
        line.removeprefix("  - ")
        for check in results.values()
        if not check.passed and check.severity == AssetCheckSeverity.ERROR
        for line in [check.description.split("FAILED (ERROR): ", 1)[1].splitlines()[0]]
        + check.description.splitlines()[1:]
    }
    assert set(blocked) == shown
