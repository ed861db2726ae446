-- stg_defi_protocol_tvl has one row per protocol and UTC day.
select protocol, tvl_date, count(*) as n_rows
from {{ ref('stg_defi_protocol_tvl') }}
group by protocol, tvl_date
having count(*) > 1
