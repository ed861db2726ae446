-- Every spread equals the difference of its two returns, in basis points.
select *
from {{ ref('fct_cross_market_divergence') }}
where abs(spread_bps - 100 * (left_return_pct - right_return_pct)) > 1e-6
