{#
  Small portable helpers used by the demo models. Every expansion is plain SQL that runs
  unchanged on Apache DataFusion and DuckDB.
#}

{# True when the (already trimmed/lower-cased) email looks deliverable: has an @ followed by a dot. #}
{% macro valid_email(column) -%}
    ({{ column }} is not null and {{ column }} like '%@%.%')
{%- endmacro %}

{# Division that returns NULL instead of failing or truncating: both sides are cast to DOUBLE. #}
{% macro safe_divide(numerator, denominator) -%}
    (case
        when {{ denominator }} is null or {{ denominator }} = 0 then null
        else cast({{ numerator }} as double) / cast({{ denominator }} as double)
    end)
{%- endmacro %}

{# Whole and fractional days between two timestamps, via epoch seconds (date_diff spellings differ between engines). #}
{% macro days_between(start_ts, end_ts) -%}
    ((cast(date_part('epoch', cast({{ end_ts }} as timestamp)) as double)
      - cast(date_part('epoch', cast({{ start_ts }} as timestamp)) as double)) / 86400.0)
{%- endmacro %}

{# Money column: DECIMAL(18,2) everywhere, so sums have the same type on every engine. #}
{% macro to_money(expression) -%}
    cast({{ expression }} as decimal(18, 2))
{%- endmacro %}

{#
  Round a DOUBLE to `scale` decimals as DECIMAL(18, scale). Used instead of round(x, n):
  DuckDB and DataFusion round half-way doubles differently (363.275 → 363.27 vs 363.28),
  while both engines agree on the double → decimal cast.
#}
{% macro round_decimal(expression, scale=2) -%}
    cast({{ expression }} as decimal(18, {{ scale }}))
{%- endmacro %}

{# numerator / denominator as a percentage, DECIMAL(18, scale); NULL when the denominator is 0 or NULL. #}
{% macro percent(numerator, denominator, scale=2) -%}
    {{ round_decimal('100.0 * ' ~ safe_divide(numerator, denominator), scale) }}
{%- endmacro %}
