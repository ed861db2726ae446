{#- Every market's sessions with the previous session of the same market: returns are taken
    against it. Sessions come from raw.market_sessions: exchange-calendars, and past a calendar's
    last published session a provisional rule-based calendar (provisional = true). On those
    provisional days the market's own bars confirm the calendar (docs/feeds.md, "Calendars"):
      - a day the market has a bar on is a session, whether the rules list it or not (its open
        and close are the times of day of the market's session before it);
      - a listed day with no bar of the market, while the market has a bar on a later day, was
        no session (a holiday the rules do not know) and is dropped;
      - a listed day with no bar and none after it yet stays expected (the market shows stale).
    Days the published calendar covers are never changed by the data. -#}
with calendar as (
    select market, session_date, open_utc, close_utc, coalesce(provisional, false) as provisional
    from {{ source('raw', 'market_sessions') }}
),

provisional_days as (
    -- per market with a provisional calendar: its first day past the last published session
    select
        market,
        coalesce(max(session_date) filter (where not provisional) + 1, min(session_date))
            as first_day
    from calendar
    group by market
    having bool_or(provisional)
),

market_bars as (
    select distinct market, session_date from {{ ref('stg_market_bars') }}
),

last_bars as (
    select market, max(session_date) as last_bar_date from market_bars group by market
),

listed as (
    select calendar.*
    from calendar
    left join last_bars on last_bars.market = calendar.market
    where not calendar.provisional
        or last_bars.last_bar_date is null
        or calendar.session_date >= last_bars.last_bar_date
        or exists (
            select 1 from market_bars
            where market_bars.market = calendar.market
                and market_bars.session_date = calendar.session_date
        )
),

confirmed_by_bars as (
    select market_bars.market, market_bars.session_date
    from market_bars
    join provisional_days on provisional_days.market = market_bars.market
    where market_bars.session_date >= provisional_days.first_day
        and not exists (
            select 1 from calendar
            where calendar.market = market_bars.market
                and calendar.session_date = market_bars.session_date
        )
),

sessions as (
    select market, session_date, open_utc, close_utc, provisional from listed
    union all
    select
        confirmed.market,
        confirmed.session_date,
        confirmed.session_date + (template.open_utc - template.session_date::timestamp),
        confirmed.session_date + (template.close_utc - template.session_date::timestamp),
        true
    from confirmed_by_bars as confirmed
    asof join calendar as template
        on template.market = confirmed.market
        and confirmed.session_date >= template.session_date
)

select
    market,
    session_date,
    lag(session_date) over (partition by market order by session_date) as previous_session_date,
    open_utc,
    close_utc,
    provisional
from sessions
