{#- Every observation of every divergence pair with the statistics it had on its own day: the
    spread, the z-score and the band (mean -/+ 2 stddev) against the previous
    `divergence_history` observations, and the rolling correlation over the last
    `correlation_window` ones, the percentile, the `extreme` flag of the report's label, and
    the risk-matrix evidence and base rate (similar_*, base_*). The same definitions as
    fct_cross_market_divergence (macro divergence_observations): the mart's row for report R is this view's latest observation on
    or before R-1. A view, so the history exists for every date the series cover, whichever
    report dates have been built; the report's charts read a pair's last observations from it. -#}
{{ config(materialized='view') }}
with {{ divergence_observations() }}

select
    left_id,
    right_id,
    observed_on,
    left_session_date,
    right_session_date,
    spread_bps,
    zscore,
    history_observations,
    band_low_bps,
    band_high_bps,
    correlation_60d,
    {%- for sessions in var('cumulative_sessions') %}
    spread_{{ sessions }}s_bps,
    zscore_{{ sessions }}s,
    {%- endfor %}
    percentile,
    extreme,
    similar_observations,
    similar_narrowed,
    base_observations,
    base_narrowed
from judged
