"""The dbt step: its arguments and environment, and which dbt nodes carry report dates."""

import json
from datetime import date

from dagster import AssetKey

from assets.dbt import dbt_build, dbt_project, is_dated, market_intel_dbt, translator
from market_intel.storage import ReportWindow
from pipelines.partitions import report_dates


def test_a_window_reaches_dbt_as_environment_variables_not_vars() -> None:
    build = dbt_build(ReportWindow(date(2026, 3, 16), date(2026, 3, 23)))
    assert build.args == ["build"]
    assert build.env == {
        "MARKET_INTEL_WINDOW_START": "2026-03-16",
        "MARKET_INTEL_WINDOW_END": "2026-03-23",
    }


def test_a_run_without_report_dates_builds_every_date_and_may_refresh_fully() -> None:
    assert dbt_build(None) == dbt_build(None, full_refresh=False)
    assert dbt_build(None).env == {}
    assert dbt_build(None, full_refresh=True).args == ["build", "--full-refresh"]


def manifest_nodes() -> dict[str, dict]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }


def test_only_incremental_models_are_partitioned_by_report_date() -> None:
    """Seeds and views have no dates: the UI shows them unpartitioned, and a backfill builds
    them once. Every incremental model is partitioned like the raw tables it is built from."""
    nodes = manifest_nodes()
    kinds = {node["config"]["materialized"] for node in nodes.values()}
    assert {"seed", "view", "incremental"} <= kinds
    keys_by_name = {key.path[-1]: key for key in market_intel_dbt.keys}
    for node in nodes.values():
        key = keys_by_name[node["name"]]
        partitions = market_intel_dbt.specs_by_key[key].partitions_def
        dated = node["config"]["materialized"] == "incremental"
        assert is_dated(node) == dated
        assert partitions == (report_dates if dated else None), (node["name"], partitions)


def test_every_model_and_seed_is_one_asset_of_the_one_dbt_step() -> None:
    assert len(market_intel_dbt.keys) == len(manifest_nodes())
    assert AssetKey(["config", "instruments"]) in market_intel_dbt.keys
    assert translator.settings.enable_asset_checks
    assert market_intel_dbt.check_keys  # dbt tests are asset checks
