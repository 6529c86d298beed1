{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='merge') }}

-- Orders: the latest version of each order across all extraction folders, with a normalised
-- status and a customer that exists in stg_customers. Incremental: a run merges the versions
-- newer than the newest one already in the table (its extraction folders only: the scan skips
-- the others by their Parquet statistics).
with source as (

    select * from {{ source('raw', 'orders') }}
    {% if is_incremental() %}
    where updated_at > (select max(updated_at) from {{ this }})
    {% endif %}

),

latest as (

    select
        *,
        row_number() over (partition by id order by updated_at desc) as row_num
    from source
    where id is not null

),

customers as (

    select customer_id from {{ ref('stg_customers') }}

)

select
    cast(latest.id as bigint) as order_id,
    cast(latest.customer_id as bigint) as customer_id,
    cast(latest.order_date as timestamp) as order_date,
    cast(latest.order_date as date) as order_day,
    lower(trim(latest.status)) as status,
    cast(latest.total_amount as decimal(12, 2)) as total_amount,
    cast(latest.updated_at as timestamp) as updated_at
from latest
inner join customers
    on latest.customer_id = customers.customer_id
where latest.row_num = 1
