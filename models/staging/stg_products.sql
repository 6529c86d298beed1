-- Products with the free-text category standardised through the category_mapping seed.
with source as (

    select * from {{ source('raw', 'products') }}

),

category_mapping as (

    select raw_category, category from {{ ref('category_mapping') }}

)

select
    cast(source.id as bigint) as product_id,
    trim(source.name) as product_name,
    source.category as raw_category,
    coalesce(category_mapping.category, 'Other') as category,
    cast(source.price as decimal(10, 2)) as price,
    cast(source.cost as decimal(10, 2)) as cost,
    cast(source.price - source.cost as decimal(10, 2)) as unit_margin,
    cast(source.created_at as timestamp) as created_at,
    cast(source.updated_at as timestamp) as updated_at
from source
left join category_mapping
    on lower(trim(source.category)) = category_mapping.raw_category
