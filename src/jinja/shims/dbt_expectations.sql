{#- dp's implementations of dbt_expectations macros whose duckdb__ version
    DataFusion cannot run as written. -#}

{#- DuckDB compares a boolean with `> 0`; DataFusion needs the integer. -#}
{% macro datafusion__regexp_instr(source_value, regexp, position, occurrence, is_raw, flags) %}
{% if flags %}{{ dbt_expectations._validate_flags(flags, 'ciep') }}{% endif %}
cast(regexp_matches({{ source_value }}, '{{ regexp }}', '{{ flags }}') as integer)
{% endmacro %}
