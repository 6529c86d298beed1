-- Product performance: sales of every product over orders that count as revenue
-- (cancelled and returned orders excluded). Products without sales get zeros.
with products as (

    select product_id, cost from {{ ref('stg_products') }}

),

revenue_orders as (

    select order_id
    from {{ ref('int_customer_orders') }}
    where is_revenue

),

revenue_lines as (

    select transactions.*
    from {{ ref('stg_transactions') }} as transactions
    inner join revenue_orders
        on transactions.order_id = revenue_orders.order_id

),

aggregated as (

    select
        products.product_id,
        count(distinct revenue_lines.order_id) as order_count,
        count(revenue_lines.transaction_id) as line_count,
        cast(coalesce(sum(revenue_lines.quantity), 0) as bigint) as units_sold,
        {{ to_money('coalesce(sum(revenue_lines.gross_amount), 0)') }} as gross_revenue,
        {{ to_money('coalesce(sum(revenue_lines.discount), 0)') }} as discount_amount,
        {{ to_money('coalesce(sum(revenue_lines.net_amount), 0)') }} as net_revenue,
        {{ to_money('coalesce(sum(revenue_lines.quantity * products.cost), 0)') }} as cost_of_goods,
        min(revenue_lines.transaction_ts) as first_sold_at,
        max(revenue_lines.transaction_ts) as last_sold_at
    from products
    left join revenue_lines
        on products.product_id = revenue_lines.product_id
    group by products.product_id

)

select
    product_id,
    order_count,
    line_count,
    units_sold,
    gross_revenue,
    discount_amount,
    net_revenue,
    cost_of_goods,
    {{ to_money('net_revenue - cost_of_goods') }} as gross_profit,
    first_sold_at,
    last_sold_at
from aggregated
