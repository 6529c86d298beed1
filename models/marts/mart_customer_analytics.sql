-- Customer metrics (RFM-style) and segments, as of the newest order in the data.
with customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select max(order_date) as as_of_ts from orders

),

per_customer as (

    select
        customer_id,
        count(*) as total_orders,
        cast(sum(case when is_revenue then 1 else 0 end) as bigint) as revenue_orders,
        cast(sum(case when status = 'cancelled' then 1 else 0 end) as bigint) as cancelled_orders,
        cast(sum(case when status = 'returned' then 1 else 0 end) as bigint) as returned_orders,
        cast(sum(case when is_revenue then item_count else 0 end) as bigint) as items_purchased,
        {{ to_money('sum(case when is_revenue then total_amount else 0 end)') }} as lifetime_value,
        min(order_date) as first_order_at,
        max(order_date) as last_order_at
    from orders
    group by customer_id

),

metrics as (

    select
        customers.customer_id,
        customers.email,
        customers.full_name,
        customers.country_code,
        customers.region,
        customers.signed_up_at,
        coalesce(per_customer.total_orders, 0) as total_orders,
        coalesce(per_customer.revenue_orders, 0) as revenue_orders,
        coalesce(per_customer.cancelled_orders, 0) as cancelled_orders,
        coalesce(per_customer.returned_orders, 0) as returned_orders,
        coalesce(per_customer.items_purchased, 0) as items_purchased,
        coalesce(per_customer.lifetime_value, {{ to_money(0) }}) as lifetime_value,
        {{ round_decimal(safe_divide('per_customer.lifetime_value', 'per_customer.revenue_orders'), 2) }} as avg_order_value,
        per_customer.first_order_at,
        per_customer.last_order_at,
        {{ round_decimal(days_between('per_customer.last_order_at', 'as_of.as_of_ts'), 1) }} as days_since_last_order,
        {{ round_decimal(days_between('per_customer.first_order_at', 'as_of.as_of_ts'), 1) }} as days_since_first_order
    from customers
    left join per_customer
        on customers.customer_id = per_customer.customer_id
    cross join as_of

)

select
    *,
    case
        when total_orders = 0 then 'prospect'
        when days_since_first_order <= 30 then 'new'
        when days_since_last_order > 90 then 'at_risk'
        when revenue_orders >= 15 and days_since_last_order <= 30 then 'champion'
        when revenue_orders >= 10 then 'loyal'
        else 'occasional'
    end as customer_segment
from metrics
