{{ config(materialized='incremental', incremental_strategy='append') }}

-- Order lines with typed columns and computed amounts; lines with a non-positive quantity are
-- data-entry errors and are dropped. Incremental: a run appends the lines numbered after the
-- last one already in the table (the shop numbers lines from a sequence; their timestamps are
-- not in that order: an order placed just before midnight has lines after the next day's first
-- ones). The scan skips the older drops by their Parquet statistics.
with source as (

    select * from {{ source('raw', 'transactions') }}
    {% if is_incremental() %}
    where transaction_id > (select max(transaction_id) from {{ this }})
    {% endif %}

),

typed as (

    select
        cast(transaction_id as bigint) as transaction_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,
        cast(quantity as bigint) as quantity,
        cast(unit_price as decimal(10, 2)) as unit_price,
        coalesce(cast(discount as decimal(10, 2)), cast(0 as decimal(10, 2))) as discount,
        cast(transaction_ts as timestamp) as transaction_ts,
        lower(trim(payment_method)) as payment_method
    from source

)

select
    transaction_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    discount,
    cast(quantity * unit_price as decimal(12, 2)) as gross_amount,
    cast(quantity * unit_price - discount as decimal(12, 2)) as net_amount,
    transaction_ts,
    cast(transaction_ts as date) as transaction_date,
    payment_method
from typed
where quantity > 0
  and transaction_id is not null
  and order_id is not null
  and product_id is not null
