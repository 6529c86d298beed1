-- Daily business KPIs with rolling and cumulative revenue.
with daily as (

    select * from {{ ref('int_daily_aggregates') }}

)

select
    order_day,
    cast(date_part('year', order_day) as bigint) as order_year,
    cast(date_part('month', order_day) as bigint) as order_month,
    cast(date_part('dow', order_day) as bigint) as day_of_week,
    case when date_part('dow', order_day) in (0, 6) then true else false end as is_weekend,
    order_count,
    customer_count,
    new_customer_count,
    revenue_order_count,
    pending_order_count,
    cancelled_order_count,
    returned_order_count,
    items_sold,
    revenue,
    discount_amount,
    {{ round_decimal(safe_divide('revenue', 'revenue_order_count'), 2) }} as avg_order_value,
    {{ percent('cancelled_order_count', 'order_count') }} as cancellation_rate_pct,
    {{ percent('returned_order_count', 'order_count') }} as return_rate_pct,
    {{ round_decimal('avg(cast(revenue as double)) over (order by order_day rows between 6 preceding and current row)', 2) }} as revenue_7d_avg,
    {{ to_money('sum(revenue) over (order by order_day rows between unbounded preceding and current row)') }} as cumulative_revenue
from daily
