"""What a check found, in a form the asset check, the gate and the report all read."""

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

ERROR, WARN = "ERROR", "WARN"


@dataclass(frozen=True)
class CheckOutcome:
    """One check over one window of report dates.

    ``bad_rows`` names the offending (instrument_id, session_date) rows, so the gate can block just
    the reports that use them; ``blocked_dates`` lists report dates a check failed for directly.
    """

    name: str
    asset: str
    severity: str
    messages: list[str] = field(default_factory=list)
    bad_rows: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    blocked_dates: frozenset[date] = frozenset()

    @property
    def passed(self) -> bool:
        return not self.messages

    def summary(self) -> str:
        status = "passed" if self.passed else f"FAILED ({self.severity})"
        return f"{self.asset} · {self.name}: {status}" + "".join(
            f"\n  - {message}" for message in self.messages
        )

    def to_result(self) -> AssetCheckResult:
        severity = AssetCheckSeverity.ERROR if self.severity == ERROR else AssetCheckSeverity.WARN
        return AssetCheckResult(
            passed=self.passed,
            severity=severity,
            description=self.summary()[:2000],
            metadata={
                "severity": self.severity,
                "failures": MetadataValue.json(self.messages),
                "offending_rows": len(self.bad_rows),
            },
        )
