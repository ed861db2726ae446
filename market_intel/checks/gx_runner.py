"""Run a Great Expectations 1.x suite over a pandas frame and say which rows failed.

dagster-ge needs GX<1 and pandas<3, so the asset checks call GX directly through this module.
"""

from dataclasses import dataclass, field
from functools import cache

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation: what it expected and the offending rows (all of them)."""

    expectation: str
    column: str | None
    rows: pd.DataFrame = field(repr=False)
    observed: object = None

    def describe(self, key_columns: list[str], limit: int = 3) -> str:
        target = f"{self.expectation}({self.column})" if self.column else self.expectation
        if self.rows.empty:
            return f"{target}: observed {self.observed}"
        shown = self.rows[[c for c in [*key_columns, self.column] if c and c in self.rows]]
        sample = shown.head(limit).to_dict("records")
        return f"{target}: {len(self.rows)} row(s), e.g. {sample}"


@cache
def _batch_definition() -> gx.core.batch_definition.BatchDefinition:
    """One ephemeral GX context per process, with a batch definition for any pandas frame."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("market_intel").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def new_suite(name: str) -> gx.ExpectationSuite:
    """An empty suite; GX wants its context active before expectations are added."""
    _batch_definition()
    return gx.ExpectationSuite(name=name)


def validate(frame: pd.DataFrame, suite: gx.ExpectationSuite) -> list[ExpectationFailure]:
    """Validate ``frame`` against ``suite``; an empty list means every expectation held."""
    frame = frame.reset_index(drop=True)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    failures = []
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        indexes = outcome.result.get("unexpected_index_list") or []
        rows = frame.iloc[[i for i in indexes if isinstance(i, int)]]
        failures.append(
            ExpectationFailure(
                expectation=config.type,
                column=config.kwargs.get("column")
                or (
                    f"{config.kwargs['column_A']}>={config.kwargs['column_B']}"
                    if "column_A" in config.kwargs
                    else None
                ),
                rows=rows,
                observed=outcome.result.get("observed_value"),
            )
        )
    return failures
