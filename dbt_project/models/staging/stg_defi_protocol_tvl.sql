select
    protocol,
    category,
    session_date as tvl_date,
    tvl_usd,
    source
from {{ source('raw', 'defi_protocol_tvl') }}
where tvl_usd is not null
