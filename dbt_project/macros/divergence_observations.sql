{#- The observations of every divergence pair, defined once for the mart
    fct_cross_market_divergence (per report date) and the view fct_divergence_history (the series
    the report's charts draw). Call as `with {{ divergence_observations() }}, ...`; it defines
    the CTEs `pairs` (configured and generated), `followed` (each observation with its narrowing
    follow-up) and `judged` (each observation's z-score, percentile, band, rolling correlation,
    risk-matrix evidence and base rate, `extreme` flag and signal follow-up moves), among others.
    An observation is one distinct pair of sessions, dated `observed_on`, numbered per pair
    (`observation_number`, 1 = oldest); every statistic looks back only (the previous
    `divergence_history` observations, the last `correlation_window` ones), except `narrowed`
    and the `move_<k>_bps` columns, which look ahead and are read only once that follow-up has
    ended (the evidence window, fct_signal_record's rule).
    Evidence and base rate (docs/report.md, "Risk matrix"): the population is the previous
    `divergence_history` observations whose `narrowing_sessions` follow-up ended before this
    one (so it is the same whatever older history the database holds); `similar_*` counts
    those at least as wide as this one, `base_*` all of them, each with how many narrowed.
    extreme: |z| >= `extreme_zscore` or percentile >= `extreme_percentile`, on z rounded to 2
    and the percentile to 1 decimal as the report's JSON holds them, so that this flag and the
    report's label (market_intel/report_labels.py is_extreme) agree.
    spread_<n>s_bps, zscore_<n>s, n in `cumulative_sessions`: the spread of both sides'
    compounded returns over their own last n sessions (each side's calendar: a weekend repeats
    Friday's equity return in no sum), and its z-score against the previous `divergence_history`
    observations of it (overlapping windows: a persistent gap, not an independent sample).
    move_<k>_bps, k in `signal_horizons`: minus the sign of this spread times the sum of the
    next k spreads, in bps: how much of this observation's gap the next k observations took
    back (positive: the spread reverted). -#}
{% macro divergence_observations() -%}
{% set history = var('divergence_history') %}
{% set correlation_window = var('correlation_window') %}
{% set narrowing_sessions = var('narrowing_sessions') %}
{% set signal_horizons = var('signal_horizons') %}
{% set cumulative_sessions = var('cumulative_sessions') %}
series as (
    select
        {%- for sessions in cumulative_sessions %}
        case when count(return_pct) over last_{{ sessions }} = {{ sessions }}
            then 100 * (product(1 + return_pct / 100) over last_{{ sessions }} - 1)
        end as return_{{ sessions }}s_pct,
        {%- endfor %}
        *
    from {{ ref('int_daily_series') }}
    window
        {%- for sessions in cumulative_sessions %}
        last_{{ sessions }} as (
            partition by series_id order by series_date
            rows between {{ sessions - 1 }} preceding and current row
        ){{ ',' if not loop.last }}
        {%- endfor %}
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
        {%- for sessions in cumulative_sessions %}
        left_series.return_{{ sessions }}s_pct as left_return_{{ sessions }}s_pct,
        {%- endfor %}
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
        {%- for sessions in cumulative_sessions %}
        right_series.return_{{ sessions }}s_pct as right_return_{{ sessions }}s_pct,
        {%- endfor %}
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
        {%- for sessions in cumulative_sessions %}
        100 * (any_value(left_return_{{ sessions }}s_pct) - any_value(right_return_{{ sessions }}s_pct))
            as spread_{{ sessions }}s_bps,
        {%- endfor %}
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
        count(*) over recent as correlation_observations,
        {%- for horizon in signal_horizons %}
        -sign(spread_bps) * sum(spread_bps) over next_{{ horizon }} as move_{{ horizon }}_bps,
        {%- endfor %}
        {%- for sessions in cumulative_sessions %}
        (spread_{{ sessions }}s_bps - avg(spread_{{ sessions }}s_bps) over history)
            / nullif(stddev_samp(spread_{{ sessions }}s_bps) over history, 0)
            as zscore_{{ sessions }}s,
        {%- endfor %}
        list({'width': abs(spread_bps), 'narrowed': narrowed}) over evidence as evidence_spreads,
        row_number() over ordered as observation_number
    from followed
    window
        ordered as (partition by left_id, right_id order by observed_on),
        history as (
            partition by left_id, right_id order by observed_on
            rows between {{ history }} preceding and 1 preceding
        ),
        recent as (
            partition by left_id, right_id order by observed_on
            rows between {{ correlation_window - 1 }} preceding and current row
        ),
        evidence as (
            partition by left_id, right_id order by observed_on
            rows between {{ history }} preceding and {{ narrowing_sessions + 1 }} preceding
        ),
        {%- for horizon in signal_horizons %}
        next_{{ horizon }} as (
            partition by left_id, right_id order by observed_on
            rows between 1 following and {{ horizon }} following
        ){{ ',' if not loop.last }}
        {%- endfor %}
),

measured as (
    select
        *,
        (spread_bps - history_mean_bps) / nullif(history_stddev_bps, 0) as zscore,
        len(history_spreads) as history_observations,
        history_mean_bps - 2 * history_stddev_bps as band_low_bps,
        history_mean_bps + 2 * history_stddev_bps as band_high_bps,
        case when correlation_observations >= {{ correlation_window }}
            then correlation end as correlation_60d,
        100.0 * len(list_filter(history_spreads, lambda x: abs(x) <= abs(spread_bps)))
            / nullif(len(history_spreads), 0) as percentile,
        len(list_filter(evidence_spreads, lambda e: e.width >= abs(spread_bps)))
            as similar_observations,
        len(list_filter(evidence_spreads, lambda e: e.width >= abs(spread_bps) and e.narrowed))
            as similar_narrowed,
        len(evidence_spreads) as base_observations,
        len(list_filter(evidence_spreads, lambda e: e.narrowed)) as base_narrowed
    from scored
),

judged as (
    select
        *,
        coalesce(abs(round(zscore, 2)) >= {{ var('extreme_zscore') }}, false)
            or coalesce(round(percentile, 1) >= {{ var('extreme_percentile') }}, false)
            as extreme
    from measured
)
{%- endmacro %}
