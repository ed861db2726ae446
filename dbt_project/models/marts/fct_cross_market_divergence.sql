{#- Per report date and pair: both returns on the report's own sessions (the same as-of rule as
    fct_report_snapshot), spread = left - right in basis points, the spread's z-score and
    percentile against the previous observations, and the rolling correlation of both series.

    An observation is one distinct pair of sessions (a weekend repeats no equity observation).
    percentile: the share of previous observations whose absolute spread is at most this one's.
    Evidence for the risk matrix (configured pairs): of the previous `divergence_history`
    observations whose follow-up ended before this one, those whose absolute spread was at
    least this one's (similar_*) and all of them (base_*, the unconditional base rate over the
    same population), each with how many narrowed to half or less within the next
    `narrowing_sessions` observations.
    Pairs: the configured ones (seed divergence_pairs) and every cross-market pair of index and
    crypto instruments, ranked per report date so the report can name the most extreme.
    The observations and their statistics are the macro divergence_observations, shared with the
    view fct_divergence_history (each pair's series for the report's charts). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['report_date', 'left_id', 'right_id'],
    on_schema_change='append_new_columns',
) }}
with {{ divergence_observations() }},

report_dates as (
    select distinct report_date, report_date - 1 as as_of_date
    from {{ ref('fct_report_snapshot') }}
    where {{ in_report_window('report_date') }}
),

dated as (
    select report_dates.report_date, pairs.left_id, pairs.right_id, pairs.label, pairs.configured,
        report_dates.as_of_date
    from report_dates
    cross join pairs
),

candidate as (
    select
        dated.report_date,
        dated.left_id,
        dated.right_id,
        dated.label,
        dated.configured,
        scored.observed_on,
        scored.left_session_date,
        scored.right_session_date,
        scored.left_return_pct,
        scored.right_return_pct,
        scored.spread_bps,
        scored.zscore,
        scored.percentile,
        scored.history_observations,
        scored.band_low_bps,
        scored.band_high_bps,
        scored.correlation_60d,
        {%- for sessions in var('cumulative_sessions') %}
        scored.spread_{{ sessions }}s_bps,
        scored.zscore_{{ sessions }}s,
        {%- endfor %}
        scored.similar_observations,
        scored.similar_narrowed,
        scored.base_observations,
        scored.base_narrowed
    from dated
    asof join judged as scored
        on scored.left_id = dated.left_id
        and scored.right_id = dated.right_id
        and dated.as_of_date >= scored.observed_on
)

select
    candidate.* exclude (similar_observations, similar_narrowed, base_observations, base_narrowed),
    case when candidate.configured then coalesce(candidate.similar_observations, 0) end
        as similar_observations,
    case when candidate.configured then coalesce(candidate.similar_narrowed, 0) end
        as similar_narrowed,
    case when candidate.configured then 100.0 * candidate.similar_narrowed
        / nullif(candidate.similar_observations, 0) end as similar_narrowed_pct,
    case when candidate.configured then coalesce(candidate.base_observations, 0) end
        as base_observations,
    case when candidate.configured then coalesce(candidate.base_narrowed, 0) end
        as base_narrowed,
    case when candidate.configured then 100.0 * candidate.base_narrowed
        / nullif(candidate.base_observations, 0) end as base_narrowed_pct,
    row_number() over (
        partition by candidate.report_date
        order by abs(candidate.spread_bps) desc nulls last, candidate.left_id, candidate.right_id
    ) as spread_rank,
    row_number() over (
        partition by candidate.report_date
        order by abs(candidate.zscore) desc nulls last, candidate.left_id, candidate.right_id
    ) as zscore_rank
from candidate
