{#- Per report date and pair: both returns on the report's own sessions (the same as-of rule as
    fct_report_snapshot), spread = left - right in basis points, the spread's z-score and
    percentile against the previous observations, and the rolling correlation of both series.

    An observation is one distinct pair of sessions (a weekend repeats no equity observation).
    percentile: the share of previous observations whose absolute spread is at most this one's.
    Evidence for the risk matrix (configured pairs): of the past observations whose absolute
    spread was at least this one's, how many narrowed to half or less within the next
    `narrowing_sessions` observations (only observations whose follow-up ended before this one).
    Pairs: the configured ones (seed divergence_pairs) and every cross-market pair of index and
    crypto instruments, ranked per report date so the report can name the most extreme. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['report_date', 'left_id', 'right_id'],
) }}
{% set history = var('divergence_history') %}
{% set correlation_window = var('correlation_window') %}
{% set narrowing_sessions = var('narrowing_sessions') %}

with series as (
    select * from {{ ref('int_daily_series') }}
),

configured as (
    select left_id, right_id, label, true as configured from {{ ref('divergence_pairs') }}
),

generated as (
    select
        left_side.instrument_id as left_id,
        right_side.instrument_id as right_id,
        left_side.short_name || ' vs ' || right_side.short_name as label,
        false as configured
    from {{ ref('instruments') }} as left_side
    join {{ ref('instruments') }} as right_side
        on left_side.market < right_side.market
    where left_side.asset_class in ('equity_index', 'crypto')
        and right_side.asset_class in ('equity_index', 'crypto')
),

pairs as (
    select * from configured
    union all
    select * from generated
    where not exists (
        select 1 from configured
        where (configured.left_id = generated.left_id and configured.right_id = generated.right_id)
            or (configured.left_id = generated.right_id and configured.right_id = generated.left_id)
    )
),

anchors as (
    select distinct pairs.left_id, pairs.right_id, series.series_date as anchor_date
    from pairs
    join series on series.series_id in (pairs.left_id, pairs.right_id)
),

aligned as (
    select
        anchors.left_id,
        anchors.right_id,
        anchors.anchor_date,
        left_series.series_date as left_session_date,
        left_series.return_pct as left_return_pct
    from anchors
    asof join series as left_series
        on left_series.series_id = anchors.left_id
        and anchors.anchor_date >= left_series.series_date
),

both_sides as (
    select
        aligned.*,
        right_series.series_date as right_session_date,
        right_series.return_pct as right_return_pct
    from aligned
    asof join series as right_series
        on right_series.series_id = aligned.right_id
        and aligned.anchor_date >= right_series.series_date
),

observations as (
    select
        left_id,
        right_id,
        left_session_date,
        right_session_date,
        min(anchor_date) as observed_on,
        any_value(left_return_pct) as left_return_pct,
        any_value(right_return_pct) as right_return_pct,
        100 * (any_value(left_return_pct) - any_value(right_return_pct)) as spread_bps
    from both_sides
    group by all
),

followed as (
    select
        *,
        min(abs(spread_bps)) over following <= 0.5 * abs(spread_bps) as narrowed,
        lead(observed_on, {{ narrowing_sessions }}) over ordered as follow_up_ends_on
    from observations
    window
        ordered as (partition by left_id, right_id order by observed_on),
        following as (
            partition by left_id, right_id order by observed_on
            rows between 1 following and {{ narrowing_sessions }} following
        )
),

scored as (
    select
        *,
        avg(spread_bps) over history as history_mean_bps,
        stddev_samp(spread_bps) over history as history_stddev_bps,
        list(spread_bps) over history as history_spreads,
        corr(left_return_pct, right_return_pct) over recent as correlation,
        count(*) over recent as correlation_observations
    from followed
    window
        history as (
            partition by left_id, right_id order by observed_on
            rows between {{ history }} preceding and 1 preceding
        ),
        recent as (
            partition by left_id, right_id order by observed_on
            rows between {{ correlation_window - 1 }} preceding and current row
        )
),

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
        (scored.spread_bps - scored.history_mean_bps) / nullif(scored.history_stddev_bps, 0)
            as zscore,
        100.0 * len(list_filter(scored.history_spreads, lambda x: abs(x) <= abs(scored.spread_bps)))
            / nullif(len(scored.history_spreads), 0) as percentile,
        len(scored.history_spreads) as history_observations,
        scored.history_mean_bps - 2 * scored.history_stddev_bps as band_low_bps,
        scored.history_mean_bps + 2 * scored.history_stddev_bps as band_high_bps,
        case when scored.correlation_observations >= {{ correlation_window }}
            then scored.correlation end as correlation_60d
    from dated
    asof join scored
        on scored.left_id = dated.left_id
        and scored.right_id = dated.right_id
        and dated.as_of_date >= scored.observed_on
),

evidence as (
    select
        candidate.report_date,
        candidate.left_id,
        candidate.right_id,
        count(past.observed_on) as similar_observations,
        count(past.observed_on) filter (where past.narrowed) as similar_narrowed
    from candidate
    join followed as past
        on past.left_id = candidate.left_id
        and past.right_id = candidate.right_id
        and past.follow_up_ends_on < candidate.observed_on
        and abs(past.spread_bps) >= abs(candidate.spread_bps)
    where candidate.configured
    group by all
)

select
    candidate.*,
    case when candidate.configured then coalesce(evidence.similar_observations, 0) end
        as similar_observations,
    case when candidate.configured then coalesce(evidence.similar_narrowed, 0) end
        as similar_narrowed,
    100.0 * evidence.similar_narrowed / nullif(evidence.similar_observations, 0)
        as similar_narrowed_pct,
    row_number() over (
        partition by candidate.report_date
        order by abs(candidate.spread_bps) desc nulls last, candidate.left_id, candidate.right_id
    ) as spread_rank,
    row_number() over (
        partition by candidate.report_date
        order by abs(candidate.zscore) desc nulls last, candidate.left_id, candidate.right_id
    ) as zscore_rank
from candidate
left join evidence using (report_date, left_id, right_id)
