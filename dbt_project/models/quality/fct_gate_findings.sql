{#- The quality gate's findings: one row per report date and problem (check_name, asset,
    severity, market, message) for every report date of fct_report_snapshot. The fact checks
    are computed here from the facts; the raw-table checks' findings (quality.raw_findings,
    written by each raw asset's step) are mapped to the report dates they touch through the
    snapshot's lineage. market names the market a partial report may leave out (null: the
    finding belongs to no single market). Severities, return bounds and confirmed moves are the
    seeds quality_checks, return_bounds and confirmed_moves (docs/quality-gate.md). -#}

with snapshot as (
    select * from {{ ref('fct_report_snapshot') }}
),

daily as (
    select * from {{ ref('fct_market_daily') }}
),

markets as (
    select market, name, calendar from {{ ref('markets') }}
),

report_dates as (
    select distinct report_date from snapshot
),

{#- Which (instrument, session) rows each report date reads: the session it shows, and the
    session that session's return is taken against. -#}
lineage as (
    select
        snapshot.report_date,
        snapshot.instrument_id,
        snapshot.session_date,
        daily.previous_session_date
    from snapshot
    left join daily
        on daily.instrument_id = snapshot.instrument_id
        and daily.session_date = snapshot.session_date
),

market_days as (
    select
        report_date,
        market,
        coalesce(calendar, 'published') as calendar,
        count(*) filter (where status in ('open', 'closed')) as fine_instruments,
        max(session_date) filter (where status = 'stale') as latest_session,
        max(expected_session_date) filter (where status = 'stale') as expected_session,
        max(sessions_behind) filter (where status = 'stale') as sessions_behind
    from snapshot
    group by all
),

{#- freshness: an instrument behind the session its calendar expects while its market is not. -#}
freshness as (
    select
        snapshot.report_date,
        'freshness' as check_name,
        snapshot.market,
        concat(
            snapshot.instrument_id, ' lags its market for report ', snapshot.report_date,
            ': data ends ', snapshot.session_date, ' (', snapshot.sessions_behind,
            ' session(s) behind), the calendar expects ', snapshot.expected_session_date,
            ' and ', market_days.fine_instruments, ' other ', markets.name,
            ' instrument(s) have it [', snapshot.source, ']'
        ) as message
    from snapshot
    join market_days
        on market_days.report_date = snapshot.report_date
        and market_days.market = snapshot.market
        and market_days.calendar = coalesce(snapshot.calendar, 'published')
    join markets on markets.market = snapshot.market
    where snapshot.status = 'stale' and market_days.fine_instruments > 0
),

{#- market_session / provisional_session: a whole market without the session its calendar
    (published, or provisional past the library's last published session) expects. -#}
stale_markets as (
    select
        market_days.report_date,
        case market_days.calendar
            when 'provisional' then 'provisional_session' else 'market_session'
        end as check_name,
        market_days.market,
        concat(
            markets.name, ' is stale for report ', market_days.report_date, ': the ',
            case market_days.calendar
                when 'provisional'
                    then concat('provisional calendar (past ', markets.calendar,
                        '''s last published session)')
                else concat('calendar (', markets.calendar, ')')
            end,
            ' expects session ', market_days.expected_session, ', the data ends ',
            market_days.latest_session, ' (', market_days.sessions_behind,
            ' session(s) behind) — ',
            case market_days.calendar
                when 'provisional'
                    then 'the feed is late, or the exchange closed on a day the provisional '
                        || 'rules do not know (a warning: the rules are a guess until '
                        || 'exchange-calendars publishes the year)'
                else 'the feed is late, or the exchange had an unscheduled closure '
                    || '(e.g. a typhoon day)'
            end
        ) as message
    from market_days
    join markets on markets.market = market_days.market
    where market_days.latest_session is not null and market_days.fine_instruments = 0
),

unavailable as (
    select
        report_date,
        'unavailable_instruments' as check_name,
        market,
        concat(
            instrument_id, ': no data from the source for report ', report_date,
            '; shown as unavailable'
        ) as message
    from snapshot
    where status = 'unavailable'
),

{#- feeds_present: a dated feed (one series per day) with no day in the week before R. -#}
feed_days as (
    select 'cn/breadth' as feed, session_date as day from {{ ref('fct_cn_breadth') }}
    union all
    select 'defi/protocols', tvl_date from {{ ref('fct_defi_category_tvl') }}
    union all
    select 'defi/stablecoins', supply_date from {{ ref('fct_stablecoin_supply') }}
),

feeds as (
    select * from (values
        ('cn/breadth', 'cn'), ('defi/protocols', 'defi'), ('defi/stablecoins', 'defi')
    ) as feeds (feed, market)
),

missing_feeds as (
    select
        report_dates.report_date,
        'feeds_present' as check_name,
        feeds.market,
        concat(
            feeds.feed, ': no data from the source in the 7 days before report ',
            report_dates.report_date, '; shown as unavailable'
        ) as message
    from report_dates
    cross join feeds
    where not exists (
        select 1 from feed_days
        where feed_days.feed = feeds.feed
            and feed_days.day >= report_dates.report_date - 7
            and feed_days.day < report_dates.report_date
    )
),

{#- return_bounds: a return beyond its asset class's bound, unless a person confirmed it;
    grouped per report date and market over the returns that report date reads. -#}
extreme_returns as (
    select
        daily.instrument_id,
        daily.market,
        daily.session_date,
        format(
            '{} {} return {:+.2f}% beyond ±{:g}% [{}]',
            daily.instrument_id, cast(daily.session_date as varchar),
            round(daily.return_pct, 2), coalesce(bounds.bound_pct, 0), daily.source
        ) as sample
    from daily
    join {{ ref('instruments') }} as instruments on instruments.instrument_id = daily.instrument_id
    left join {{ ref('return_bounds') }} as bounds on bounds.asset_class = instruments.asset_class
    left join {{ ref('confirmed_moves') }} as confirmed
        on confirmed.instrument_id = daily.instrument_id
        and confirmed.session_date = daily.session_date
    where confirmed.instrument_id is null
        and abs(daily.return_pct) > coalesce(bounds.bound_pct, 0)
),

return_bounds as (
    select
        lineage.report_date,
        'return_bounds' as check_name,
        extreme_returns.market,
        concat(
            'marts.fct_market_daily return_bounds: ', count(distinct extreme_returns.sample),
            ' return(s) need confirmation (dbt_project/seeds/confirmed_moves.csv): ',
            array_to_string(
                list(distinct extreme_returns.sample order by extreme_returns.sample)[1:3], '; '
            )
        ) as message
    from extreme_returns
    join lineage
        on lineage.instrument_id = extreme_returns.instrument_id
        and extreme_returns.session_date in (lineage.session_date, lineage.previous_session_date)
    group by lineage.report_date, extreme_returns.market
),

fact_findings as (
    select *, 'marts/fct_report_snapshot' as asset from freshness
    union all
    select *, 'marts/fct_report_snapshot' from stale_markets
    union all
    select *, 'marts/fct_report_snapshot' from unavailable
    union all
    select *, 'marts/fct_report_snapshot' from missing_feeds
    union all
    select *, 'marts/fct_market_daily' from return_bounds
),

raw_findings as (
    select * from {{ source('quality', 'raw_findings') }}
),

{#- The latest day on or before R-1 of each dated raw table: what report R shows of it. -#}
dated_days as (
    select distinct 'raw.cn_breadth' as dated_table, session_date as day
    from {{ source('raw', 'cn_breadth') }}
    union all
    select distinct 'raw.cn_stock_bars', session_date from {{ source('raw', 'cn_stock_bars') }}
    union all
    select distinct 'raw.defi_protocol_tvl', session_date
    from {{ source('raw', 'defi_protocol_tvl') }}
    union all
    select distinct 'raw.stablecoin_supply', session_date
    from {{ source('raw', 'stablecoin_supply') }}
),

dated_shown as (
    {{ day_shown('report_dates', 'dated_days', 'dated_table', 'day') }}
),

raw_located as (
    select
        lineage.report_date,
        raw_findings.check_name, raw_findings.asset, raw_findings.severity,
        raw_findings.market, raw_findings.message
    from raw_findings
    join lineage
        on lineage.instrument_id = raw_findings.instrument_id
        and raw_findings.session_date in (lineage.session_date, lineage.previous_session_date)
    where raw_findings.instrument_id is not null
    union all
    select
        dated_shown.report_date,
        raw_findings.check_name, raw_findings.asset, raw_findings.severity,
        raw_findings.market, raw_findings.message
    from raw_findings
    join dated_shown
        on dated_shown.dated_table = raw_findings.dated_table
        and dated_shown.day = raw_findings.session_date
    where raw_findings.instrument_id is null
    union all
    select
        raw_findings.report_date,
        raw_findings.check_name, raw_findings.asset, raw_findings.severity,
        raw_findings.market, raw_findings.message
    from raw_findings
    where raw_findings.instrument_id is null
        and raw_findings.dated_table is null
        and raw_findings.report_date is not null
    union all
    select
        report_dates.report_date,
        raw_findings.check_name, raw_findings.asset, raw_findings.severity,
        raw_findings.market, raw_findings.message
    from raw_findings
    join report_dates
        on report_dates.report_date >= raw_findings.window_start
        and report_dates.report_date < raw_findings.window_end
    where raw_findings.instrument_id is null
        and raw_findings.dated_table is null
        and raw_findings.report_date is null
)

select distinct
    fact_findings.report_date,
    fact_findings.check_name,
    fact_findings.asset,
    checks.severity,
    fact_findings.market,
    fact_findings.message
from fact_findings
join {{ ref('quality_checks') }} as checks on checks.check_name = fact_findings.check_name
union
select report_date, check_name, asset, severity, market, message
from raw_located
