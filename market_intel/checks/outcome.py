"""What a check found, in a form the asset checks, the gate and the report all read."""

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

ERROR, WARN = "ERROR", "WARN"
MAX_LISTED = 20


@dataclass(frozen=True)
class Finding:
    """One problem: a line a person can act on (feed, instrument, date, check, values).

    Where it applies: ``rows`` (instrument_id, session_date) that reports may show; ``dates``
    of ``table``, a dated feed whose latest day on or before R-1 report R shows; or
    ``report_dates`` directly. None of them means every date checked. ``market`` names the
    market a partial report may leave out instead of blocking.
    """

    message: str
    market: str | None = None
    rows: pd.DataFrame | None = field(default=None, repr=False)
    dates: frozenset[date] = frozenset()
    table: str | None = None
    report_dates: frozenset[date] = frozenset()


@dataclass(frozen=True)
class CheckOutcome:
    """One check over one window of report dates."""

    name: str
    asset: str
    severity: str
    description: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if self.passed:
            return f"{self.asset} {self.name}: passed"
        first, *others = self.findings
        lines = [f"{self.asset} {self.name} FAILED ({self.severity}): {first.message}"]
        lines += [f"  - {finding.message}" for finding in others[: MAX_LISTED - 1]]
        if len(self.findings) > MAX_LISTED:
            lines.append(f"  - ... and {len(self.findings) - MAX_LISTED} more")
        return "\n".join(lines)
