{#- The run's window of report dates [min_date, max_date), and the sessions it owns:
    the report for R covers sessions up to R-1, so sessions [min_date - 1, max_date - 1). -#}
{% macro min_report_date() -%} date '{{ var("min_date") }}' {%- endmacro %}
{% macro max_report_date() -%} date '{{ var("max_date") }}' {%- endmacro %}

{% macro in_owned_sessions(column) -%}
    ({{ column }} >= {{ min_report_date() }} - 1 and {{ column }} < {{ max_report_date() }} - 1)
{%- endmacro %}

{% macro in_report_window(column) -%}
    ({{ column }} >= {{ min_report_date() }} and {{ column }} < {{ max_report_date() }})
{%- endmacro %}
