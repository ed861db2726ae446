"""The one ``Definitions`` of market-intel: every asset, check, resource and job, assembled here.

Importing ``market_intel.settings`` (through the assets) sets the process environment Dagster
and dbt read (``PROCESS_ENVIRONMENT``: one planned event per asset for a range run, no dbt
version check), for every process that loads these definitions.
"""

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job, in_process_executor
from dagster_dbt import DbtCliResource

from assets.dbt import dbt_project, market_intel_dbt
from assets.delivery import alert_blocked_report, report_deliveries
from assets.raw import raw_assets
from assets.report import market_intelligence_report
from data_checks.asset_checks import gate_checks
from market_intel.settings import DBT_EXECUTABLE
from pipelines.resources import MarketSource, ReportDelivery, ReportPublisher, SingleWriterDuckDB
from pipelines.schedules import schedules
from pipelines.sensors import sensors

# Everything for a window of report dates: feeds, facts, checks, the report and its delivery,
# in one run. Partitioned by report date (inferred from its assets); the undated assets (seeds,
# views, the source probe) run once in it.
market_intel_job = define_asset_job(
    "market_intel_job",
    selection=AssetSelection.all(),
    description="Feeds, facts, quality gate, report and delivery for the selected report dates.",
)

defs = Definitions(
    assets=[
        *raw_assets,
        market_intel_dbt,
        # A blocked date alerts MARKET_INTEL_ALERT_URLS from the report step's failure, whatever
        # job runs it (the delivery step after it does not run then).
        market_intelligence_report.with_hooks({alert_blocked_report}),
        report_deliveries,
    ],
    asset_checks=gate_checks,
    jobs=[market_intel_job],
    schedules=schedules,
    sensors=sensors,
    resources={
        "duckdb": SingleWriterDuckDB(database=EnvVar("MARKET_INTEL_DB")),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        "source": MarketSource(
            mode=EnvVar("MARKET_INTEL_SOURCE"),
            replay_dir=EnvVar("MARKET_INTEL_REPLAY_DIR"),
            ccxt_exchanges=EnvVar("MARKET_INTEL_CCXT_EXCHANGES"),
            requests_per_minute=EnvVar.int("MARKET_INTEL_REQUESTS_PER_MINUTE"),
            lookback_days=EnvVar.int("MARKET_INTEL_LOOKBACK_DAYS"),
        ),
        "publisher": ReportPublisher(
            reports_dir=EnvVar("MARKET_INTEL_REPORTS_DIR"),
            partial=EnvVar("MARKET_INTEL_PARTIAL_REPORTS"),
        ),
        "delivery": ReportDelivery(
            notify_urls=EnvVar("MARKET_INTEL_NOTIFY_URLS"),
            alert_urls=EnvVar("MARKET_INTEL_ALERT_URLS"),
            reports_base_url=EnvVar("MARKET_INTEL_REPORTS_BASE_URL"),
            force=EnvVar("MARKET_INTEL_NOTIFY_FORCE"),
            backfill=EnvVar("MARKET_INTEL_NOTIFY_BACKFILL"),
            retries=EnvVar.int("MARKET_INTEL_NOTIFY_RETRIES"),
            retry_seconds=EnvVar.int("MARKET_INTEL_NOTIFY_RETRY_SECONDS"),
        ),
    },
    # One DuckDB file allows one writer: steps of a run go one after another in one process.
    executor=in_process_executor,
)
