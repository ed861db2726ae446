-- fct_report_snapshot has one row per report date and instrument.
select report_date, instrument_id, count(*) as n_rows
from {{ ref('fct_report_snapshot') }}
group by report_date, instrument_id
having count(*) > 1
