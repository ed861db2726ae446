"""dbt models as Dagster assets: the one place facts are computed.

One step of each run: the incremental facts are partitioned by report date and built per window
of report dates; the seeds and views have no dates and are not partitioned.
"""

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetSpec, BackfillPolicy, Config
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from market_intel.settings import DBT_PROJECT_DIR
from market_intel.storage import DUCKDB_POOL, ReportWindow
from pipelines.partitions import report_dates, run_window
from pipelines.resources import SingleWriterDuckDB

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)

PARTIAL_PARSE = "partial_parse.msgpack"
KEPT_ARTIFACTS = {"run_results.json"}


class ReportDateTranslator(DagsterDbtTranslator):
    """dagster-dbt's translator, with report-date partitions for the incremental models only.

    Seeds and views have no dates: they show and run unpartitioned, once a run. One
    ``@dbt_assets`` keeps one dbt step: the views sit between the facts (staging before them,
    intermediate and quality views between and after them), so two ``@dbt_assets`` would make
    Dagster cut each into several steps, five ``dbt build`` invocations a run.
    """

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if is_dated(self.get_resource_props(manifest, unique_id)):
            return spec.replace_attributes(partitions_def=report_dates)
        return spec


def is_dated(resource_props: Mapping[str, Any]) -> bool:
    """Incremental models hold rows per report date; seeds, views and sources do not."""
    return resource_props.get("config", {}).get("materialized") == "incremental"


translator = ReportDateTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(Config):
    """What a person may ask of the dbt step in the UI's launchpad."""

    full_refresh: bool = False


@dataclass(frozen=True)
class DbtBuild:
    """A ``dbt build`` invocation: its arguments, and the environment dbt reads its window
    from."""

    args: list[str]
    env: dict[str, str]


def dbt_build(window: ReportWindow | None, full_refresh: bool = False) -> DbtBuild:
    """The dbt arguments and environment of the step; the nodes are dagster-dbt's selection,
    from the step's assets.

    The window goes in the environment, not in ``--vars``: when its vars change, dbt re-parses
    the whole project (1.8 s a run here); when an environment variable changes, only the models
    that read it while parsing. No window (a run without report dates, e.g. seeds alone): dbt
    builds every date.
    """
    args = ["build", *(["--full-refresh"] if full_refresh else [])]
    return DbtBuild(args, window_environment(window) if window else {})


@dbt_assets(
    manifest=dbt_project.manifest_path,
    backfill_policy=BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool=DUCKDB_POOL,
)
def market_intel_dbt(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    duckdb: SingleWriterDuckDB,
    config: DbtBuildConfig,
) -> Iterator[Any]:
    """``dbt build`` of the selected nodes for the run's window of report dates, under the
    DuckDB file's writer lock."""
    build = dbt_build(run_window(context), config.full_refresh)
    with duckdb.writer_lock():
        with environment(build.env):
            invocation = dbt.cli(build.args, context=context)
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
    """The environment variables that give dbt its window (macros/report_window.sql)."""
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
