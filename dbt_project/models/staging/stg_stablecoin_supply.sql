select
    symbol,
    session_date as supply_date,
    circulating_usd,
    source
from {{ source('raw', 'stablecoin_supply') }}
where circulating_usd is not null
