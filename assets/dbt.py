"""dbt models as Dagster assets: the one place facts are computed, built per report-date window."""

import json
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from assets.storage import DUCKDB_POOL
from pipelines.partitions import report_dates, report_window
from pipelines.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)

translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    partitions_def=report_dates,
    backfill_policy=BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool=DUCKDB_POOL,
)
def market_intel_dbt(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """``dbt build`` of the selected models for the run's window of report dates."""
    window = report_window(context)
    dbt_vars = {"min_date": window.start.isoformat(), "max_date": window.end.isoformat()}
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
