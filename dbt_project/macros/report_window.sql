{#- The run's window of report dates [start, end), and the sessions it owns: the report for R
    covers sessions up to R-1, so sessions [start - 1, end - 1). The dbt step sets the window in
    the environment (assets/dbt.py), not as vars: new vars make dbt re-parse the whole project.
    Without it, a plain `dbt build` builds every date. -#}
{% macro min_report_date() -%}
    date '{{ env_var("MARKET_INTEL_WINDOW_START", "2015-01-01") }}'
{%- endmacro %}
{% macro max_report_date() -%}
    date '{{ env_var("MARKET_INTEL_WINDOW_END", "2100-01-01") }}'
{%- endmacro %}

{% macro in_owned_sessions(column) -%}
    ({{ column }} >= {{ min_report_date() }} - 1 and {{ column }} < {{ max_report_date() }} - 1)
{%- endmacro %}

{% macro in_report_window(column) -%}
    ({{ column }} >= {{ min_report_date() }} and {{ column }} < {{ max_report_date() }})
{%- endmacro %}

{#- Incremental runs build the rows their window owns, plus rows not built yet (history a feed
    has just filled in), so a daily run touches one date and a fresh database fills itself. -#}
{% macro owned_or_new(date_column, keys, alias='candidate') -%}
{% if is_incremental() %}
where {{ in_owned_sessions(alias ~ '.' ~ date_column) }}
    or not exists (
        select 1 from {{ this }} as built
        where {% for key in keys %}built.{{ key }} = {{ alias }}.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    )
{% endif %}
{%- endmacro %}
