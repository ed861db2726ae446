"""The published report: one set of files per report date, written only past the quality gate."""

from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from market_intel.checks.gate import DateVerdict, verdicts
from market_intel.checks.suites import all_checks
from market_intel.commentary import CommentarySettings, write_commentary
from market_intel.progress import Progress
from market_intel.report_html import render_html
from market_intel.report_index import blocked_cause, index_summary, update_index
from market_intel.reporting import build_report, load_facts, render_json, render_markdown
from market_intel.settings import absolute_path
from market_intel.storage import DUCKDB_POOL
from pipelines.partitions import report_dates, report_window
from pipelines.resources import MarketSource, ReportDelivery, ReportPublisher, SingleWriterDuckDB

PROGRESS_EVERY = 250
# A date's Markdown up to this size (UTF-8) is previewed in its materialization, in a range
# run too; a larger one shows its headline and the file's path instead (docs/report.md).
PREVIEW_MAX_BYTES = 50_000
PATH_KEYS = {"md": "markdown_path", "html": "html_path", "json": "json_path"}
FACTS = [
    "fct_report_snapshot",
    "fct_market_daily",
    "fct_cross_market_divergence",
    "fct_transmission_chain",
    "fct_cn_breadth",
    "fct_defi_category_tvl",
    "fct_defi_protocol_tvl",
    "fct_stablecoin_supply",
    "fct_report_feed_days",
    "fct_instrument_context",
    "fct_next_session_lead",
    # the quality gate (dbt views): the report reads each date's verdict, never re-runs a check
    "fct_gate_findings",
    "fct_report_verdict",
]


@asset(
    key=AssetKey("market_intelligence_report"),
    deps=[AssetKey(["marts", name]) for name in FACTS],
    group_name="report",
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"markdown", "html", "json"},
    pool=DUCKDB_POOL,
    description="reports/<date>.md, .html and .json, written only for dates the quality gate "
    "passes (MARKET_INTEL_PARTIAL_REPORTS=true publishes them without a failing market).",
)
def market_intelligence_report(
    context: AssetExecutionContext,
    duckdb: SingleWriterDuckDB,
    publisher: ReportPublisher,
    source: MarketSource,
    delivery: ReportDelivery,
) -> MaterializeResult:
    window = report_window(context)
    with duckdb.get_connection() as conn:
        gate = verdicts(conn, window, partial=publisher.partial_reports)
        facts = load_facts(conn, window.start, window.end)
    commentary = CommentarySettings.from_env()
    checks = all_checks()
    blocked = {d: v.blocked for d, v in sorted(gate.items()) if v.blocked}
    dates = window.report_dates()
    progress = Progress(context.log, "reports", "dates", len(dates), PROGRESS_EVERY)
    published: dict[str, dict[str, str]] = {}
    for report_date in dates:
        if not facts.snapshot.on(report_date):
            blocked.setdefault(report_date, []).append("no facts in marts.fct_report_snapshot")
        if report_date not in blocked:
            verdict = gate.get(report_date, DateVerdict())
            report = build_report(report_date, facts, verdict, checks, source.mode)
            narrative = write_commentary(report, commentary)
            if narrative:
                report["commentary"] = narrative
                report["sections"].insert(1, commentary_section(narrative))
            markdown = render_markdown(report)
            paths = publisher.publish(
                report_date,
                {
                    "md": markdown,
                    "html": render_html(report),
                    "json": render_json(report),
                },
            )
            summary = index_summary(report)
            published[summary["report_date"]] = summary
            metadata = {
                PATH_KEYS[suffix]: MetadataValue.path(str(path)) for suffix, path in paths.items()
            }
            metadata["headline"] = MetadataValue.text(summary["headline"])
            metadata["markdown"] = MetadataValue.md(preview(markdown, paths["md"]))
            context.add_asset_metadata(metadata, partition_key=report_date.isoformat())
        progress.step(f"{len(published)} published, {len(blocked)} blocked")
    reports_dir = Path(absolute_path(publisher.reports_dir))
    # Under the DuckDB file's writer lock: the report steps of concurrent runs rewrite the index
    # one at a time whatever the instance's pool limits.
    with duckdb.writer_lock():
        around = update_index(
            reports_dir,
            published,
            {d.isoformat(): blocked_cause(reasons) for d, reasons in blocked.items()},
            base_url=delivery.reports_base_url.strip(),
        )
    context.log.info("report index: %s", around["index_html"])
    for report_date, reasons in sorted(blocked.items()):
        context.log.error("report %s blocked:\n%s", report_date, "\n".join(reasons))
    if blocked:
        first = min(blocked)
        raise Failure(
            description=(
                f"Report {first} blocked by the quality gate: {blocked[first][0]}"
                + (f" (and {len(blocked) - 1} more blocked date(s))" if len(blocked) > 1 else "")
            ),
            metadata={"blocked": MetadataValue.json({str(k): v for k, v in blocked.items()})},
        )
    return MaterializeResult(
        metadata={
            "reports_written": len(published),
            "index_path": MetadataValue.path(str(around["index_html"])),
            "feed_path": MetadataValue.path(str(around["feed"])),
        }
    )


def preview(markdown: str, path: Path) -> str:
    """The report's Markdown for the UI; beyond PREVIEW_MAX_BYTES its title and first section
    (the key insight, which the headline opens) and the file's path, so that a ten-year
    backfill stores a bounded preview per date."""
    size = len(markdown.encode("utf-8"))
    if size <= PREVIEW_MAX_BYTES:
        return markdown
    sections = markdown.split("\n## ")
    head = "\n## ".join(sections[:2]).encode("utf-8")[:PREVIEW_MAX_BYTES]
    return (
        head.decode("utf-8", errors="ignore").rstrip()
        + f"\n\n_The full report ({size:,} bytes of Markdown) is `{path}`._\n"
    )


def commentary_section(narrative: dict) -> dict:
    return {
        "id": "commentary",
        "title": "Commentary",
        "status_note": f"Written by {narrative['model']} from this report's figures; every "
        "number it cites was checked against them.",
        "blocks": [{"type": "paragraph", "text": narrative["text"]}],
    }
