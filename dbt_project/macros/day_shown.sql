{#- The date rule for feeds that are one series per day: report R shows each series' latest day
    on or before R-1. One row per report date of `report_dates` and series (`key`) of `days`,
    with that day as `day` (no row before the series' first day). Used by the facts the report
    reads (fct_report_feed_days) and by the gate, which maps a raw finding on a day to the
    reports that show it (fct_gate_findings), so both follow the same rule. -#}
{% macro day_shown(report_dates, days, key, day) -%}
select report_dates.report_date, series.{{ key }}, shown.{{ day }} as day
from {{ report_dates }} as report_dates
cross join (select distinct {{ key }} from {{ days }}) as series
asof join {{ days }} as shown
    on shown.{{ key }} = series.{{ key }}
    and report_dates.report_date - 1 >= shown.{{ day }}
{%- endmacro %}
