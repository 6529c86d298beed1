-- Customer dimension: cleaned customer attributes, country and region, order milestones.
with customers as (

    select * from {{ ref('stg_customers') }}

),

countries as (

    select country_code, country_name, region from {{ ref('country_codes') }}

),

order_milestones as (

    select
        customer_id,
        min(order_date) as first_order_at,
        max(order_date) as last_order_at,
        count(*) as order_count
    from {{ ref('int_customer_orders') }}
    group by customer_id

)

select
    customers.customer_id,
    customers.email,
    customers.first_name,
    customers.last_name,
    nullif(trim(coalesce(customers.first_name, '') || ' ' || coalesce(customers.last_name, '')), '') as full_name,
    customers.country_code,
    coalesce(countries.country_name, 'Unknown') as country_name,
    coalesce(countries.region, 'Unknown') as region,
    customers.created_at as signed_up_at,
    cast(customers.created_at as date) as signup_date,
    order_milestones.first_order_at,
    order_milestones.last_order_at,
    coalesce(order_milestones.order_count, 0) as order_count,
    order_milestones.customer_id is not null as has_ordered,
    customers.updated_at
from customers
left join countries
    on customers.country_code = countries.country_code
left join order_milestones
    on customers.customer_id = order_milestones.customer_id
