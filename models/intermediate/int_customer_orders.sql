{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='merge') }}

-- Customer order history: one row per order, enriched with its line totals and its position
-- in the customer's sequence of orders.
--
-- Incremental: a run merges the new and changed orders on order_id. Their sequence numbers and
-- previous-order dates are computed over all orders of their customers; line totals of orders
-- already in the table are taken from it, and only the lines of new orders are read. That is
-- exact as long as, as in the shop's database, an order keeps its customer and its date, its
-- lines arrive with it, and order ids come from a sequence (a new order's id is above every
-- earlier one). The filters' subqueries are literals when the scans are planned, so the
-- staging tables' older files are skipped by their statistics.
with
{% if is_incremental() %}
changed_customers as (

    select distinct customer_id
    from {{ ref('stg_orders') }}
    where updated_at > (select max(updated_at) from {{ this }})

),
{% endif %}

orders as (

    select * from {{ ref('stg_orders') }}
    {% if is_incremental() %}
    where customer_id in (select customer_id from changed_customers)
    {% endif %}

),

order_lines as (

    {% if is_incremental() %}
    select order_id, line_count, item_count, gross_line_amount, discount_amount, net_line_amount
    from {{ this }}
    where customer_id in (select customer_id from changed_customers)

    union all

    {% endif %}
    select
        order_id,
        count(*) as line_count,
        cast(sum(quantity) as bigint) as item_count,
        {{ to_money('sum(gross_amount)') }} as gross_line_amount,
        {{ to_money('sum(discount)') }} as discount_amount,
        {{ to_money('sum(net_amount)') }} as net_line_amount
    from {{ ref('stg_transactions') }}
    {% if is_incremental() %}
    where order_id > (select max(order_id) from {{ this }})
    {% endif %}
    group by order_id

),

statuses as (

    select status, counts_as_revenue from {{ ref('order_statuses') }}

),

sequenced as (

    select
        orders.*,
        cast(row_number() over (
            partition by customer_id order by order_date, order_id
        ) as bigint) as customer_order_number,
        lag(order_date) over (
            partition by customer_id order by order_date, order_id
        ) as previous_order_date
    from orders

)

select
    sequenced.order_id,
    sequenced.customer_id,
    sequenced.order_date,
    sequenced.order_day,
    sequenced.status,
    coalesce(statuses.counts_as_revenue, false) as is_revenue,
    sequenced.total_amount,
    coalesce(order_lines.line_count, 0) as line_count,
    coalesce(order_lines.item_count, 0) as item_count,
    coalesce(order_lines.gross_line_amount, {{ to_money(0) }}) as gross_line_amount,
    coalesce(order_lines.discount_amount, {{ to_money(0) }}) as discount_amount,
    coalesce(order_lines.net_line_amount, {{ to_money(0) }}) as net_line_amount,
    sequenced.customer_order_number,
    sequenced.customer_order_number = 1 as is_first_order,
    sequenced.previous_order_date,
    {{ round_decimal(days_between('sequenced.previous_order_date', 'sequenced.order_date'), 2) }} as days_since_previous_order,
    sequenced.updated_at
from sequenced
left join order_lines
    on sequenced.order_id = order_lines.order_id
left join statuses
    on sequenced.status = statuses.status
{% if is_incremental() %}
-- the new and changed orders: the others' rows are as the table holds them
where sequenced.updated_at > (select max(updated_at) from {{ this }})
{% endif %}
