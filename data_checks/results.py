"""How a check's outcome reaches Dagster, the same for the raw assets' own checks and the
separate asset checks: one AssetCheckResult, and a log line at the outcome's severity."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, DagsterLogManager, MetadataValue

from market_intel.checks.outcome import ERROR, MAX_LISTED, CheckOutcome


def check_result(outcome: CheckOutcome) -> AssetCheckResult:
    """The outcome as Dagster shows it: passed or not, its severity and the first findings."""
    severity = AssetCheckSeverity.ERROR if outcome.severity == ERROR else AssetCheckSeverity.WARN
    return AssetCheckResult(
        asset_key=AssetKey(outcome.asset.split("/")),
        check_name=outcome.name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.summary()[:4000],
        metadata={
            "severity": outcome.severity,
            "checks": outcome.description,
            "failures": len(outcome.findings),
            "first_failures": MetadataValue.json(
                [finding.message for finding in outcome.findings[:MAX_LISTED]]
            ),
        },
    )


def log_outcome(log: DagsterLogManager, outcome: CheckOutcome) -> None:
    """A failure in the run log: at error level for ERROR, at warning level for WARN."""
    if not outcome.passed:
        (log.error if outcome.severity == ERROR else log.warning)(outcome.summary())
