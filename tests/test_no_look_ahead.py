"""No look-ahead (issue 13): a past report is the same bytes whether or not the database holds
later data, and dbt's signal flag is the report's "extreme" label, on the demo data."""

import json
import math

import pytest

from market_intel.report_labels import is_extreme
from market_intel.reporting import rules
from tests.conftest import DEMO_DATE, Pipeline, what_failed

# A report date three days before the demo date: the demo run's database holds its later data.
PAST_DATE = "2026-03-19"


def test_a_past_report_is_byte_identical_whether_or_not_later_data_exists(
    demo_copy: Pipeline, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R built alone (its series end at R-1) against R built again in a copy of the demo run's
    database, whose series go on to the demo date's R-1: the z-scores, evidence, base rates and
    signal record look back a fixed number of observations and forward only within follow-ups
    that ended before R."""
    alone = Pipeline(tmp_path_factory.mktemp("alone"), monkeypatch)
    result = alone.run(PAST_DATE)
    assert result.success, what_failed(result)

    later = Pipeline(demo_copy.root, monkeypatch)  # back to the demo copy's database and reports
    assert (
        later.query("SELECT max(series_date) FROM intermediate.int_daily_series")[0][0]
        > (alone.query("SELECT max(series_date) FROM intermediate.int_daily_series")[0][0])
    )
    result = later.run(PAST_DATE)
    assert result.success, what_failed(result)

    for suffix in ("json", "md"):
        first = (alone.reports / f"{PAST_DATE}.{suffix}").read_bytes()
        assert (later.reports / f"{PAST_DATE}.{suffix}").read_bytes() == first, suffix
    report = json.loads((alone.reports / f"{PAST_DATE}.json").read_text(encoding="utf-8"))
    assert report["signal_record"], "the record this test compares is not empty"
    # Some signal's 5-observation follow-up had not ended at R: later data would complete it.
    assert any(
        pair["horizons"][0]["signals"] > pair["horizons"][-1]["signals"]
        for pair in report["signal_record"]
    )


def test_dbt_extreme_flag_is_the_report_label_on_every_observation(demo_run: Pipeline) -> None:
    """The signal record's signals (fct_divergence_history.extreme) and the report's label
    (report_labels.is_extreme on the JSON's rounded figures) decide alike, every observation."""
    rows = demo_run.query(
        "SELECT zscore, percentile, extreme FROM marts.fct_divergence_history "
        "WHERE zscore IS NOT NULL OR percentile IS NOT NULL"
    )
    assert len(rows) > 1000
    assert any(flag for *_, flag in rows) and not all(flag for *_, flag in rows)
    for zscore, percentile, flag in rows:
        figures = {
            "zscore": None if zscore is None or math.isnan(zscore) else round(zscore, 2),
            "percentile": None if percentile is None else round(percentile, 1),
        }
        assert is_extreme(figures, rules()) == flag, (zscore, percentile)


def test_base_rate_population_is_the_previous_history_observations(demo_run: Pipeline) -> None:
    """The evidence and the base rate count the same population: at most divergence_history
    previous observations, less the narrowing_sessions whose follow-up had not ended."""
    limit = rules()["divergence_history"] - rules()["narrowing_sessions"]
    rows = demo_run.query(
        "SELECT similar_observations, similar_narrowed, base_observations, base_narrowed, "
        "base_narrowed_pct FROM marts.fct_cross_market_divergence "
        "WHERE report_date = ? AND configured",
        [DEMO_DATE],
    )
    assert rows
    for similar, similar_narrowed, base, base_narrowed, base_pct in rows:
        assert base == limit  # the demo holds more history than the window: the window rules
        assert similar <= base and similar_narrowed <= similar and base_narrowed <= base
        assert base_pct == pytest.approx(100.0 * base_narrowed / base)
