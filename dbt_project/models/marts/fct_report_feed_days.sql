{{ config(materialized='view') }}
{#- Which day of each dated feed report R shows: the latest day on or before R-1 (the date rule
    for feeds that are one series per day, macro day_shown). The report reads these days; it never looks for them
    itself, so a report's figures do not depend on the window a run was asked for. -#}

with report_dates as (
    select distinct report_date from {{ ref('fct_report_snapshot') }}
),

feed_days as (
    select distinct 'defi_category_tvl' as feed, tvl_date as feed_date
    from {{ ref('fct_defi_category_tvl') }}
    union all
    select distinct 'stablecoin_supply', supply_date from {{ ref('fct_stablecoin_supply') }}
),

shown as (
    {{ day_shown('report_dates', 'feed_days', 'feed', 'feed_date') }}
)

select report_date, feed, day as feed_date from shown
