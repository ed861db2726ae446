-- fct_defi_category_tvl has one row per category and UTC day.
select category, tvl_date, count(*) as n_rows
from {{ ref('fct_defi_category_tvl') }}
group by category, tvl_date
having count(*) > 1
