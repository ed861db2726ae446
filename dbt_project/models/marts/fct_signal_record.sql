{#- The report's own track record (grain: report_date, left_id, right_id, horizon): for each
    configured pair, the extreme signals among the previous `divergence_history` observations
    before report R's latest observation of the pair, and what followed each over the next
    `horizon` observations (each of `signal_horizons`).

    A signal is an observation flagged `extreme` by the macro divergence_observations (the rule
    of the report's label). It counts in R's record at horizon k only if its k-observation
    follow-up ended on or before R's latest observation (observed on or before R-1): the record
    uses only data R's own report has, so later data never changes it.
    move_<k>_bps (macro): minus the sign of the signal's spread times the sum of the next k
    spreads, so positive means the gap reverted; a hit is a move above zero. hit_rate_pct is
    hits over signals; mean_move_bps the mean move.
    A view over the macro, as fct_divergence_history: it holds every report date of
    fct_report_snapshot, whichever run built it. -#}
{{ config(materialized='view') }}
{% set history = var('divergence_history') %}
with {{ divergence_observations() }},

report_dates as (
    select distinct report_date, report_date - 1 as as_of_date
    from {{ ref('fct_report_snapshot') }}
),

latest as (
    select report_dates.report_date, pairs.left_id, pairs.right_id, judged.observation_number
    from report_dates
    cross join pairs
    asof join judged
        on judged.left_id = pairs.left_id
        and judged.right_id = pairs.right_id
        and report_dates.as_of_date >= judged.observed_on
    where pairs.configured
),

signals as (
    {%- for horizon in var('signal_horizons') %}
    select
        left_id, right_id, observed_on, observation_number, {{ horizon }} as horizon,
        move_{{ horizon }}_bps as move_bps
    from judged
    where extreme
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select
    latest.report_date,
    latest.left_id,
    latest.right_id,
    horizons.horizon,
    count(signals.observed_on) as signals,
    count(signals.observed_on) filter (where signals.move_bps > 0) as hits,
    100.0 * count(signals.observed_on) filter (where signals.move_bps > 0)
        / nullif(count(signals.observed_on), 0) as hit_rate_pct,
    avg(signals.move_bps) as mean_move_bps,
    min(signals.observed_on) as first_signal_on,
    max(signals.observed_on) as last_signal_on
from latest
cross join (select unnest({{ var('signal_horizons') }}) as horizon) as horizons
left join signals
    on signals.left_id = latest.left_id
    and signals.right_id = latest.right_id
    and signals.horizon = horizons.horizon
    and signals.observation_number >= latest.observation_number - {{ history }}
    and signals.observation_number + signals.horizon <= latest.observation_number
group by all
