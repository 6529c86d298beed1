-- Cleaned customers: one row per customer id with a valid email.
with source as (

    select * from {{ source('raw', 'customers') }}

),

deduplicated as (

    -- the extract contains exact duplicate rows: keep the most recent version of each id
    select
        *,
        row_number() over (partition by id order by updated_at desc, created_at desc) as row_num
    from source

),

cleaned as (

    select
        cast(id as bigint) as customer_id,
        trim(lower(email)) as email,
        initcap(trim(first_name)) as first_name,
        initcap(trim(last_name)) as last_name,
        upper(trim(country_code)) as country_code,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at
    from deduplicated
    where row_num = 1

)

select *
from cleaned
where {{ valid_email('email') }}
