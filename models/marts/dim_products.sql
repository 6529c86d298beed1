-- Product dimension: standardised category, pricing and margin attributes.
select
    product_id,
    product_name,
    category,
    raw_category,
    price,
    cost,
    unit_margin,
    {{ percent('unit_margin', 'price') }} as margin_pct,
    case
        when price < 20 then 'budget'
        when price < 100 then 'standard'
        else 'premium'
    end as price_tier,
    created_at,
    updated_at
from {{ ref('stg_products') }}
