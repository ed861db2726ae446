"""Delivery of the published report to e-mail and chat, once, and only past the gate
(docs/delivery.md). The asset sends the notes of the run's newly published dates; the failure
hook on the report asset sends the one-line alert of a blocked date. Both keep every attempt in
``delivery.report_deliveries``; targets appear only in Apprise's privacy form."""

from datetime import date
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DagsterLogManager,
    Failure,
    HookContext,
    MaterializeResult,
    MetadataValue,
    asset,
    failure_hook,
)
from dagster_duckdb import DuckDBResource

from market_intel.delivery_dispatch import (
    ALERT,
    LEDGER,
    NOTE,
    Attempt,
    ReportFiles,
    Target,
    alert_message,
    attempts_table,
    dates_to_deliver,
    ensure_ledger,
    failures,
    history,
    is_true,
    new_message_id,
    note_message,
    parse_targets,
    record,
    send,
    sent_before,
    was_sent,
)
from market_intel.settings import absolute_path
from market_intel.storage import DUCKDB_POOL
from pipelines.partitions import report_dates, report_window
from pipelines.resources import ReportDelivery, ReportPublisher

# A run tag that delivers again what was delivered already, like MARKET_INTEL_NOTIFY_FORCE.
FORCE_TAG = "market_intel/notify_force"
REPORT_KEY = AssetKey("market_intelligence_report")
NOT_CONFIGURED = "not configured (MARKET_INTEL_NOTIFY_URLS is empty): nothing sent"
HISTORY_ROWS = 50


@asset(
    key=AssetKey(["delivery", "report_deliveries"]),
    deps=[REPORT_KEY],
    group_name="report",
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"apprise", "duckdb"},
    pool=DUCKDB_POOL,
    description="Sends each newly published report to MARKET_INTEL_NOTIFY_URLS (e-mail: the "
    "HTML report; chat: a short note), once per date and target; a range run sends its latest "
    "date (MARKET_INTEL_NOTIFY_BACKFILL). Every attempt is a row of delivery.report_deliveries.",
)
def report_deliveries(
    context: AssetExecutionContext,
    duckdb: DuckDBResource,
    publisher: ReportPublisher,
    delivery: ReportDelivery,
) -> MaterializeResult:
    targets = parse_targets(delivery.notify_urls)
    if not targets:
        context.log.info("delivery %s", NOT_CONFIGURED)
        return MaterializeResult(metadata={"delivery": NOT_CONFIGURED})
    dates = report_window(context).report_dates()
    reports_dir = Path(absolute_path(publisher.reports_dir))
    published = [d for d in dates if ReportFiles(reports_dir, d).published]
    chosen = dates_to_deliver(published, len(dates), delivery.backfill.strip().lower())
    force = delivery.forced or is_true(context.run.tags.get(FORCE_TAG))
    with duckdb.get_connection() as conn:
        ensure_ledger(conn)
        done = set() if force else sent_before(conn, NOTE, chosen)
    attempts: list[Attempt] = []
    skipped = 0
    for report_date in chosen:
        files = ReportFiles(reports_dir, report_date)
        for target in targets:
            if was_sent(done, report_date, target):
                skipped += 1
                continue
            attempts += deliver_note(context, duckdb, delivery, target, files)
    summary = (
        f"{len(chosen)} of {len(published)} published date(s) to deliver "
        f"({len(dates)} in the run), {len(targets)} target(s); "
        f"{sum(a.outcome == 'sent' for a in attempts)} sent, "
        f"{skipped} already delivered (not sent again)"
    )
    context.log.info("delivery: %s", summary)
    with duckdb.get_connection() as conn:
        earlier = history(conn, chosen, HISTORY_ROWS)
    metadata = {
        "delivery": summary,
        "attempts": MetadataValue.md(attempts_table(attempts)),
        "ledger": MetadataValue.md(
            f"Latest {HISTORY_ROWS} rows of {LEDGER} for the delivered dates:\n\n"
            + attempts_table(earlier)
        ),
    }
    failed = failures(attempts)
    if failed:
        raise Failure(description=failure_description(failed), metadata=metadata)
    return MaterializeResult(metadata=metadata)


def deliver_note(
    context: AssetExecutionContext,
    duckdb: DuckDBResource,
    delivery: ReportDelivery,
    target: Target,
    files: ReportFiles,
) -> list[Attempt]:
    """Send one date's note to one target and record its attempts at once (a crash later
    cannot make a re-run send it twice)."""
    message_id = new_message_id(files.report_date, NOTE)
    message = note_message(target, files, delivery.reports_base_url, message_id)
    attempts = send(
        target,
        message,
        files.report_date,
        NOTE,
        message_id,
        delivery.retries,
        delivery.retry_seconds,
    )
    with duckdb.get_connection() as conn:
        record(conn, attempts, context.run_id)
    log_outcome(context.log, attempts[-1])
    return attempts


def failure_description(failed: list[Attempt]) -> str:
    named = "; ".join(
        f"{a.target} ({a.service}) for {a.report_date}: {(a.error or a.outcome).rstrip('.')}"
        for a in failed
    )
    return (
        f"delivery failed after {failed[0].attempt} attempt(s) to {named}. The report stays "
        "published and the other targets are unaffected; a re-run sends only to the targets "
        "that did not get it."
    )


def log_outcome(log: DagsterLogManager, attempt: Attempt) -> None:
    if attempt.outcome == "sent":
        log.info(
            "%s of %s sent to %s (%s), ref %s",
            attempt.kind,
            attempt.report_date,
            attempt.target,
            attempt.service,
            attempt.message_id,
        )
    else:
        log.error(
            "%s of %s not delivered to %s (%s) after %d attempt(s): %s",
            attempt.kind,
            attempt.report_date,
            attempt.target,
            attempt.service,
            attempt.attempt,
            attempt.error,
        )


@failure_hook(required_resource_keys={"delivery", "duckdb"})
def alert_blocked_report(context: HookContext) -> None:
    """The report step failed: when the gate blocked dates, one line to the alert targets about
    the latest of them (readers get nothing). Once per date and target unless forced."""
    blocked = blocked_dates(context.op_exception)
    if not blocked:
        return
    delivery: ReportDelivery = context.resources.delivery
    targets = parse_targets(delivery.alert_urls)
    if not targets:
        context.log.info("blocked-date alert not configured (MARKET_INTEL_ALERT_URLS is empty)")
        return
    latest = max(blocked)
    run = context.instance.get_run_by_id(context.run_id)
    force = delivery.forced or is_true(run.tags.get(FORCE_TAG) if run else None)
    duckdb: DuckDBResource = context.resources.duckdb
    with duckdb.get_connection() as conn:
        done = set() if force else sent_before(conn, ALERT, [latest])
    for target in targets:
        if was_sent(done, latest, target):
            context.log.info("alert of %s already sent to %s", latest, target.label)
            continue
        tried = send_alert(target, latest, blocked, delivery)
        with duckdb.get_connection() as conn:
            record(conn, tried, context.run_id)
        log_outcome(context.log, tried[-1])


def send_alert(
    target: Target, latest: date, blocked: dict[date, list[str]], delivery: ReportDelivery
) -> list[Attempt]:
    message_id = new_message_id(latest, ALERT)
    cause = blocked[latest][0] if blocked[latest] else "blocked by the quality gate"
    message = alert_message(target, latest, cause, len(blocked) - 1)
    return send(
        target, message, latest, ALERT, message_id, delivery.retries, delivery.retry_seconds
    )


def blocked_dates(error: BaseException | None) -> dict[date, list[str]]:
    """The dates the report asset's ``Failure`` says the gate blocked, with their reasons."""
    if not isinstance(error, Failure) or "blocked" not in (error.metadata or {}):
        return {}
    reasons = error.metadata["blocked"].value
    return {date.fromisoformat(day): list(lines) for day, lines in reasons.items()}
