-- Daily rollup of orders by the day they were placed.
select
    order_day,
    count(*) as order_count,
    count(distinct customer_id) as customer_count,
    cast(sum(case when is_first_order then 1 else 0 end) as bigint) as new_customer_count,
    cast(sum(case when is_revenue then 1 else 0 end) as bigint) as revenue_order_count,
    cast(sum(case when status = 'pending' then 1 else 0 end) as bigint) as pending_order_count,
    cast(sum(case when status = 'cancelled' then 1 else 0 end) as bigint) as cancelled_order_count,
    cast(sum(case when status = 'returned' then 1 else 0 end) as bigint) as returned_order_count,
    cast(sum(case when is_revenue then item_count else 0 end) as bigint) as items_sold,
    {{ to_money('sum(case when is_revenue then total_amount else 0 end)') }} as revenue,
    {{ to_money('sum(case when is_revenue then discount_amount else 0 end)') }} as discount_amount
from {{ ref('int_customer_orders') }}
group by order_day
