"""The whole pipeline in-process on the demo data: the date rule, idempotence, ranges, the gate."""

import json

import duckdb
import pytest
from dagster import DagsterInstance

from market_intel.settings import DBT_PROJECT_DIR
from market_intel.storage import RAW_TABLES
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG
from tests.conftest import (
    DEMO_DATE,
    Pipeline,
    what_failed,
)

# demo_run (conftest): the demo date, run once for the session; demo_copy: a copy of it.


@pytest.fixture(scope="module")
def week_run(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The demo data over report dates 2026-03-16..22 in one run; its tests only read it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        pipeline = Pipeline(tmp_path_factory.mktemp("week"), monkeypatch)
        pipeline.result = pipeline.run("2026-03-16", "2026-03-22")
        assert pipeline.result.success
    return pipeline


def instruments_by_id(report: dict) -> dict[str, dict]:
    return {i["id"]: i for market in report["markets"] for i in market["instruments"]}


def test_demo_date_publishes_friday_us_session_on_a_sunday(demo_run: Pipeline) -> None:
    report = json.loads((demo_run.reports / f"{DEMO_DATE}.json").read_text())
    assert report["report_date"] == DEMO_DATE
    us = next(m for m in report["markets"] if m["market"] == "us")
    assert (us["status"], us["session_date"]) == ("closed", "2026-03-20")
    rows = instruments_by_id(report)
    assert rows["us/GSPC"]["return_pct"] == -1.51
    assert rows["us/IXIC"]["return_pct"] == -2.01
    assert rows["us/DJI"]["return_pct"] == -0.96
    assert rows["us/GSPC"]["close"] == 6506.48
    assert {rows[i]["session_date"] for i in ("us/GSPC", "us/IXIC", "us/DJI")} == {"2026-03-20"}
    assert rows["crypto/BTC-USDT"]["session_date"] == "2026-03-21"
    assert rows["crypto/BTC-USDT"]["status"] == "open"
    markdown = (demo_run.reports / f"{DEMO_DATE}.md").read_text()
    assert "| S&P 500 (us/GSPC) | 2026-03-20 | 6,506.48 | -1.51% | closed |" in markdown


def test_return_is_against_the_previous_nyse_session(demo_run: Pipeline) -> None:
    rows = demo_run.query(
        "SELECT session_date, previous_session_date, round(return_pct, 2) "
        "FROM marts.fct_market_daily WHERE instrument_id = 'us/GSPC' AND session_date IN "
        "(DATE '2026-03-20', DATE '2026-03-16')"
    )
    by_session = {row[0].isoformat(): row for row in rows}
    assert by_session["2026-03-20"][1].isoformat() == "2026-03-19"
    # Monday's return is taken against Friday, not against Sunday.
    assert by_session["2026-03-16"][1].isoformat() == "2026-03-13"


def test_demo_date_lands_every_feed(demo_run: Pipeline) -> None:
    for table, day, expected in [
        ("us_bars", "2026-03-20", 5),
        ("hk_bars", "2026-03-20", 3),
        ("cn_bars", "2026-03-20", 4),
        ("crypto_bars", "2026-03-21", 2),
        ("cn_breadth", "2026-03-20", 1),
        ("cn_stock_bars", "2026-03-20", 5481),
        ("defi_protocol_tvl", "2026-03-21", 24),
        ("stablecoin_supply", "2026-03-21", 3),
    ]:
        rows = demo_run.query(f"SELECT count(*) FROM raw.{table} WHERE session_date = ?", [day])
        assert rows == [(expected,)], table
    breadth = demo_run.query(
        "SELECT advancers, advancers + decliners + unchanged, turnover_cny "
        "FROM raw.cn_breadth WHERE session_date = DATE '2026-03-20'"
    )
    assert breadth == [(662, 5481, 2286.86e9)]
    # Breadth counted from the per-stock bars agrees with the snapshot.
    counted = demo_run.query(
        "SELECT advancers, decliners, unchanged, round(turnover_cny) "
        "FROM staging.stg_cn_stock_breadth WHERE session_date = DATE '2026-03-20'"
    )
    assert counted == [(662, 4705, 114, 2286.86e9)]
    total = demo_run.query(
        "SELECT circulating_usd FROM raw.stablecoin_supply "
        "WHERE symbol = 'TOTAL' AND session_date = DATE '2026-03-20'"
    )
    assert total == [(313.68e9,)]


def test_a_successful_dbt_step_keeps_only_its_run_results(demo_run: Pipeline) -> None:
    """dagster-dbt leaves 5 MB of artifacts per run; a successful run keeps run_results.json,
    and its parsed project as the next run's starting point."""
    target = DBT_PROJECT_DIR / "target"
    (run_folder,) = target.glob(f"market_intel_dbt-{demo_run.run_id[:7]}-*")
    assert [path.name for path in run_folder.iterdir()] == ["run_results.json"]
    assert (target / "partial_parse.msgpack").exists()


def test_same_date_twice_gives_identical_rows(demo_copy: Pipeline) -> None:
    demo_run = demo_copy  # the demo date's run, copied: this test runs the date again

    def snapshot() -> list[list]:
        raw = [
            demo_run.query(
                f"SELECT * {'EXCLUDE (fetched_at)' if 'fetched_at' in t.columns else ''} "
                f"FROM raw.{name} ORDER BY ALL"
            )
            for name, t in RAW_TABLES.items()
        ]
        facts = [
            demo_run.query(f"SELECT * FROM marts.{table} ORDER BY ALL")
            for table in ("fct_market_daily", "fct_report_snapshot", "fct_cross_market_divergence")
        ]
        return raw + facts

    before = snapshot()
    report_before = (demo_run.reports / f"{DEMO_DATE}.json").read_bytes()
    assert demo_run.run(DEMO_DATE).success
    assert snapshot() == before
    assert (demo_run.reports / f"{DEMO_DATE}.json").read_bytes() == report_before
    duplicates = demo_run.query(
        "SELECT count(*) FROM (SELECT instrument_id, session_date FROM raw.us_bars "
        "GROUP BY ALL HAVING count(*) > 1)"
    )
    assert duplicates == [(0,)]


def test_one_run_over_a_week(week_run: Pipeline) -> None:
    pipeline, result = week_run, week_run.result
    assert result.success
    runs_of_dbt = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    assert len({e.step_key for e in runs_of_dbt}) == len(runs_of_dbt)  # each step ran once
    published = sorted(p.name for p in pipeline.reports.glob("????-??-??.json"))
    assert published == [f"2026-03-{day}.json" for day in range(16, 23)]
    monday = json.loads((pipeline.reports / "2026-03-16.json").read_text())
    assert instruments_by_id(monday)["us/GSPC"]["session_date"] == "2026-03-13"
    wednesday = json.loads((pipeline.reports / "2026-03-18.json").read_text())
    us = next(m for m in wednesday["markets"] if m["market"] == "us")
    assert (us["status"], us["session_date"]) == ("open", "2026-03-17")


def test_dated_feeds_are_the_same_alone_or_at_the_end_of_a_range(
    week_run: Pipeline, demo_run: Pipeline
) -> None:
    """The days of dated feeds a report shows depend on its date only, not on the window of the
    run that built it (marts.fct_report_feed_days)."""
    alone = json.loads((demo_run.reports / f"{DEMO_DATE}.json").read_text())
    in_range = json.loads((week_run.reports / f"{DEMO_DATE}.json").read_text())
    for key in ("defi", "stablecoins", "breadth", "markets"):
        assert in_range[key] == alone[key], key
    assert alone["defi"]["date"] == alone["stablecoins"]["date"] == "2026-03-21"


MAX_EVENTS_PER_REPORT_DATE = 20


def test_a_range_run_records_at_most_twenty_events_per_report_date(pipeline: Pipeline) -> None:
    """Dagster's bookkeeping per report date of a one-run backfill, read from the run's event
    log: one materialization per dated asset and date. Planned events come one per asset for
    the whole range (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS, market_intel/settings.py),
    and seeds, views, the source probe and the checks are undated: once a run, whatever its
    length. Counted: the events that name a report date, per date."""
    from pipelines.definitions import defs

    first, last, dates = "2026-03-13", "2026-03-22", 10
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    with DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def("market_intel_job")
        result = job.execute_in_process(tags=tags, instance=instance)
        assert result.success, what_failed(result)
        events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event]
    dated = [event for event in events if event.partition is not None]
    assert {event.event_type_value for event in dated} == {"ASSET_MATERIALIZATION"}
    # Each report date shows its own Markdown in the UI, a range run too (no extra event).
    previews = {
        event.partition: event.materialization.metadata["markdown"].value
        for event in dated
        if event.asset_key.to_user_string() == "market_intelligence_report"
    }
    assert len(previews) == dates
    for day, markdown in previews.items():
        assert markdown.startswith(f"# Market Intelligence Report — {day} (demo data)\n"), day
    per_date = len(dated) / dates
    assert per_date <= MAX_EVENTS_PER_REPORT_DATE, f"{per_date:.1f} events per report date"
    planned = [e for e in events if e.event_type_value == "ASSET_MATERIALIZATION_PLANNED"]
    assert planned and len(planned) == len({event.asset_key for event in planned})
    print(
        f"{len(events)} events: {per_date:.0f} per report date, {len(events) - len(dated)} per run"
    )


def test_a_daily_run_rebuilds_only_its_own_date(pipeline: Pipeline, week_run: Pipeline) -> None:
    """dbt builds the run's window: a run of one date rewrites that date's facts and leaves the
    rows of every other date exactly as they were."""
    assert pipeline.copy_from(week_run).query(  # the range 2026-03-16..22 built in one run
        "SELECT min(report_date)::VARCHAR, max(report_date)::VARCHAR FROM marts.fct_report_snapshot"
    ) == [("2026-03-16", "2026-03-22")]
    # The mark: a volume no feed gives, in a column no view or dbt test reads (a mark in the
    # closes would fail the tests of the views over the snapshot, e.g. fct_instrument_context).
    with duckdb.connect(str(pipeline.db)) as conn:
        conn.execute("UPDATE marts.fct_report_snapshot SET volume = -1 WHERE close IS NOT NULL")
    assert pipeline.run("2026-03-22").success
    marked = dict(
        pipeline.query(
            "SELECT report_date::VARCHAR, count(*) FILTER (WHERE volume = -1) "
            "FROM marts.fct_report_snapshot GROUP BY 1"
        )
    )
    assert marked["2026-03-20"] > 0 and marked["2026-03-21"] > 0  # other dates untouched
    assert marked["2026-03-22"] == 0  # its own date rebuilt


@pytest.mark.parametrize("bad_close", ["-5.0", ""], ids=["negative", "missing"])
def test_bad_raw_row_fails_the_check_and_blocks_the_report(
    pipeline: Pipeline, bad_close: str
) -> None:
    replay = pipeline.use_replay_of_demo()
    path = replay / "us" / "GSPC.csv"
    lines = path.read_text().splitlines()
    date, open_, high, low, _, volume = lines[-1].split(",")
    assert date == "2026-03-20"
    lines[-1] = f"{date},{open_},{high},{low},{bad_close},{volume}"
    path.write_text("\n".join(lines) + "\n")

    result = pipeline.run(DEMO_DATE, raise_on_error=False)

    assert not result.success
    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = [e for e in evaluations if not e.passed]
    assert [e.asset_check_key.asset_key.to_user_string() for e in failed] == ["raw/us_bars"]
    assert "us/GSPC" in failed[0].description and "2026-03-20" in failed[0].description
    assert not (pipeline.reports / f"{DEMO_DATE}.md").exists()
    assert not (pipeline.reports / f"{DEMO_DATE}.json").exists()
