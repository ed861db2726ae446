-- fct_stablecoin_supply has one row per symbol (coins, NET, TOTAL) and UTC day.
select symbol, supply_date, count(*) as n_rows
from {{ ref('fct_stablecoin_supply') }}
group by symbol, supply_date
having count(*) > 1
