{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='merge'
    )
}}

-- Order facts, one row per order. Incremental: a run only reprocesses orders changed since
-- the newest updated_at already in the table and merges them on order_id.
select
    order_id,
    customer_id,
    order_date,
    order_day,
    status,
    is_revenue,
    total_amount,
    line_count,
    item_count,
    gross_line_amount,
    discount_amount,
    net_line_amount,
    customer_order_number,
    is_first_order,
    days_since_previous_order,
    updated_at
from {{ ref('int_customer_orders') }}

{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
