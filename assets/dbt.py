"""dbt models as Dagster assets: the one place facts are computed, built per report-date window."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from market_intel.settings import DBT_PROJECT_DIR
from market_intel.storage import DUCKDB_POOL, ReportWindow
from pipelines.partitions import report_dates, report_window

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)

PARTIAL_PARSE = "partial_parse.msgpack"
KEPT_ARTIFACTS = {"run_results.json"}
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
    with environment(window_environment(report_window(context))):
        invocation = dbt.cli(["build"], context=context)
    yield from invocation.stream()
    tidy_run_target(invocation.target_path)


def tidy_run_target(run_target: Path) -> None:
    """After a successful build: keep the run's parsed project for the next run, and of its
    artifacts only ``run_results.json``.

    dagster-dbt starts each run from ``target/partial_parse.msgpack``; dbt re-parses the whole
    project (1.8 s here) when that was parsed for another database path, as after ``make
    manifest`` or a change of ``MARKET_INTEL_DB``. And it leaves every run's folder behind
    (5 MB a run, 2 GB a year of daily runs); a failed run's folder stays whole.
    """
    parsed = run_target / PARTIAL_PARSE
    if parsed.exists():
        kept = dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE
        staged = kept.with_suffix(f".{os.getpid()}.tmp")  # one per process: runs side by side
        shutil.copyfile(parsed, staged)
        staged.replace(kept)
    for path in run_target.iterdir():
        if path.name in KEPT_ARTIFACTS:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def window_environment(window: ReportWindow) -> dict[str, str]:
    """The environment variables that give dbt its window (macros/report_window.sql).

    Not dbt vars: when its vars change, dbt re-parses the whole project (1.8 s a run here);
    when an environment variable changes, only the models that read it while parsing.
    """
    return {
        "MARKET_INTEL_WINDOW_START": window.start.isoformat(),
        "MARKET_INTEL_WINDOW_END": window.end.isoformat(),
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in this process's environment (which the dbt subprocess inherits)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
