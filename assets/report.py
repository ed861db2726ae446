"""The published report: one set of files per report date, written only past the quality gate."""

import json

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_duckdb import DuckDBResource

from assets.reporting import build_report, render_markdown
from data_checks.gate import evaluate
from pipelines.partitions import report_dates, report_window
from pipelines.resources import ReportPublisher


@asset(
    key=AssetKey("market_intelligence_report"),
    deps=[AssetKey(["marts", "fct_report_snapshot"]), AssetKey(["marts", "fct_market_daily"])],
    group_name="report",
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"markdown", "json"},
    description="reports/<date>.md and .json, written only for dates the quality gate passes.",
)
def market_intelligence_report(
    context: AssetExecutionContext, duckdb: DuckDBResource, publisher: ReportPublisher
) -> MaterializeResult:
    window = report_window(context)
    with duckdb.get_connection() as conn:
        gate = evaluate(conn, window)
        snapshot = conn.execute(
            "SELECT * FROM marts.fct_report_snapshot WHERE report_date >= ? AND report_date < ?",
            [window.start, window.end],
        ).df()
    snapshot["report_date"] = snapshot["report_date"].dt.date
    blocked = dict(gate.blocked)
    published, markdown = [], ""
    dates = window.report_dates()
    for done, report_date in enumerate(dates, start=1):
        rows = snapshot[snapshot["report_date"] == report_date]
        if rows.empty:
            blocked.setdefault(report_date, []).append("no facts in fct_report_snapshot")
        if report_date in blocked:
            continue
        report = build_report(report_date, rows, gate.outcomes)
        markdown = render_markdown(report)
        published.append(
            publisher.publish(
                report_date, {"md": markdown, "json": json.dumps(report, indent=2) + "\n"}
            )
        )
        if done % 250 == 0:
            context.log.info("reports: %d/%d dates done", done, len(dates))
    for report_date, reasons in sorted(blocked.items()):
        context.log.error("report %s blocked:\n%s", report_date, "\n".join(reasons))
    if blocked:
        first = min(blocked)
        raise Failure(
            description=(
                f"{len(blocked)} of {len(dates)} report(s) blocked by the quality gate, "
                f"first {first}: {blocked[first][0].splitlines()[0]}"
            ),
            metadata={"blocked": MetadataValue.json({str(k): v for k, v in blocked.items()})},
        )
    last = published[-1]
    return MaterializeResult(
        metadata={
            "reports_written": len(published),
            "markdown": MetadataValue.md(markdown),
            "markdown_path": MetadataValue.path(str(last["md"])),
            "json_path": MetadataValue.path(str(last["json"])),
        }
    )
