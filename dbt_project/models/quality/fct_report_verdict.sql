{#- Each report date of fct_report_snapshot and what the gate says about it: an ERROR finding
    blocks it; a partial report (MARKET_INTEL_PARTIAL_REPORTS, applied by the report asset)
    leaves out the markets of market-confined ERROR findings instead, unless an ERROR finding
    has no market. WARN lines go to the report's data-quality appendix. Lines are
    "[SEVERITY] message", ordered by check, asset and message. -#}

with findings as (
    select
        *,
        concat('[', severity, '] ', message) as line
    from {{ ref('fct_gate_findings') }}
),

report_dates as (
    select distinct report_date from {{ ref('fct_report_snapshot') }}
)

select
    report_dates.report_date,
    coalesce(bool_or(findings.severity = 'ERROR'), false) as has_error,
    coalesce(
        list(findings.line order by findings.check_name, findings.asset, findings.message)
            filter (where findings.severity = 'ERROR'),
        []
    ) as error_lines,
    coalesce(
        list(distinct findings.market order by findings.market)
            filter (where findings.severity = 'ERROR' and findings.market is not null),
        []
    ) as error_markets,
    coalesce(
        bool_or(findings.severity = 'ERROR' and findings.market is null), false
    ) as has_unconfined_error,
    coalesce(
        list(findings.line order by findings.check_name, findings.asset, findings.message)
            filter (where findings.severity <> 'ERROR'),
        []
    ) as warning_lines
from report_dates
left join findings on findings.report_date = report_dates.report_date
group by report_dates.report_date
