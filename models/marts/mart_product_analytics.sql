-- Product performance: sales, profit, rankings and category share.
with products as (

    select * from {{ ref('dim_products') }}

),

sales as (

    select * from {{ ref('int_product_sales') }}

),

joined as (

    select
        products.product_id,
        products.product_name,
        products.category,
        products.price_tier,
        products.price,
        products.margin_pct as list_margin_pct,
        sales.order_count,
        sales.units_sold,
        sales.gross_revenue,
        sales.discount_amount,
        sales.net_revenue,
        sales.cost_of_goods,
        sales.gross_profit,
        sales.first_sold_at,
        sales.last_sold_at
    from products
    inner join sales
        on products.product_id = sales.product_id

),

ranked as (

    select
        *,
        cast(row_number() over (order by net_revenue desc, product_id) as bigint) as revenue_rank,
        cast(row_number() over (partition by category order by net_revenue desc, product_id) as bigint) as category_revenue_rank,
        count(*) over () as product_count,
        sum(net_revenue) over (partition by category) as category_net_revenue
    from joined

)

select
    product_id,
    product_name,
    category,
    price_tier,
    price,
    list_margin_pct,
    order_count,
    units_sold,
    gross_revenue,
    discount_amount,
    net_revenue,
    cost_of_goods,
    gross_profit,
    {{ percent('gross_profit', 'net_revenue') }} as realized_margin_pct,
    {{ percent('discount_amount', 'gross_revenue') }} as discount_rate_pct,
    {{ percent('net_revenue', 'category_net_revenue') }} as category_revenue_share_pct,
    revenue_rank,
    category_revenue_rank,
    case
        when units_sold = 0 then 'no_sales'
        when {{ safe_divide('revenue_rank', 'product_count') }} <= 0.2 then 'top'
        when {{ safe_divide('revenue_rank', 'product_count') }} <= 0.8 then 'core'
        else 'tail'
    end as performance_tier,
    first_sold_at,
    last_sold_at
from ranked
