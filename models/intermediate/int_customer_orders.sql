-- Customer order history: one row per order, enriched with its line totals and its position
-- in the customer's sequence of orders.
with orders as (

    select * from {{ ref('stg_orders') }}

),

order_lines as (

    select
        order_id,
        count(*) as line_count,
        cast(sum(quantity) as bigint) as item_count,
        {{ to_money('sum(gross_amount)') }} as gross_line_amount,
        {{ to_money('sum(discount)') }} as discount_amount,
        {{ to_money('sum(net_amount)') }} as net_line_amount
    from {{ ref('stg_transactions') }}
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
