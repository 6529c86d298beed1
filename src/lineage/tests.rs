//! The plan walker on SQL constructs, against in-memory tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::TableReference;
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use super::Subtype;
use super::plan::{Resolve, Tracer};

struct R(std::collections::HashSet<String>);

impl Resolve for R {
    fn relation(&self, t: &TableReference) -> Option<String> {
        Some(t.table().to_string())
    }
    fn known_function(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

fn ctx() -> SessionContext {
    let ctx = SessionContext::new();
    let orders = Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("ordered_at", DataType::Date32, true),
    ]);
    let customers = Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]);
    ctx.register_table("orders", Arc::new(EmptyTable::new(Arc::new(orders)))).unwrap();
    ctx.register_table("customers", Arc::new(EmptyTable::new(Arc::new(customers)))).unwrap();
    let udf: ScalarUDF =
        create_udf("mask", vec![DataType::Utf8], DataType::Utf8, Volatility::Immutable, Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())));
    ctx.register_udf(udf);
    ctx
}

/// Output column → sorted "table.column:SUBTYPE" strings; plus "dataset".
async fn lineage(sql: &str) -> BTreeMap<String, Vec<String>> {
    let ctx = ctx();
    let known = SessionContext::new().state().scalar_functions().keys().cloned().collect();
    let r = R(known);
    let plan = ctx.state().create_logical_plan(sql).await.unwrap();
    let t = Tracer { resolve: &r }.trace(&plan);
    let fmt = |deps: &super::plan::DepMap| -> Vec<String> {
        let mut v: Vec<String> = deps.iter().flat_map(|((t, c), s)| s.iter().map(move |x| format!("{t}.{c}:{}", x.as_str()))).collect();
        v.sort();
        v
    };
    let mut out = BTreeMap::new();
    for (f, d) in plan.schema().fields().iter().zip(&t.fields) {
        let mut v = fmt(&d.deps);
        if let Some(u) = &d.unknown {
            v.push(format!("unknown: {u}"));
        }
        out.insert(f.name().clone(), v);
    }
    out.insert("(dataset)".into(), fmt(&t.dataset));
    out
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn identity_transformation_and_filter_through_ctes() {
    let l = lineage("with o as (select * from orders where status = 'done') select order_id, amount * 2 as double_amount from o").await;
    assert_eq!(l["order_id"], v(&["orders.order_id:IDENTITY"]));
    assert_eq!(l["double_amount"], v(&["orders.amount:TRANSFORMATION"]));
    assert_eq!(l["(dataset)"], v(&["orders.status:FILTER"]));
}

#[tokio::test]
async fn aggregation_group_by_and_join() {
    let l = lineage(
        "select c.name, count(*) as n, sum(o.amount) as total from orders o join customers c on o.customer_id = c.id group by c.name order by total desc",
    )
    .await;
    assert_eq!(l["name"], v(&["customers.name:IDENTITY"]));
    assert_eq!(l["total"], v(&["orders.amount:AGGREGATION"]));
    assert!(l["n"].is_empty(), "{:?}", l["n"]);
    assert_eq!(l["(dataset)"], v(&["customers.id:JOIN", "customers.name:GROUP_BY", "orders.amount:SORT", "orders.customer_id:JOIN"]));
}

#[tokio::test]
async fn case_is_conditional_and_windows_partition() {
    let l = lineage(
        "select case when status = 'x' then amount else 0 end as a, \
         row_number() over (partition by customer_id order by ordered_at) as rn, \
         sum(amount) over (partition by customer_id) as running from orders",
    )
    .await;
    assert_eq!(l["a"], v(&["orders.amount:TRANSFORMATION", "orders.status:CONDITIONAL"]));
    assert_eq!(l["rn"], v(&["orders.customer_id:WINDOW", "orders.ordered_at:WINDOW"]));
    assert_eq!(l["running"], v(&["orders.amount:AGGREGATION", "orders.customer_id:WINDOW"]));
}

#[tokio::test]
async fn unions_merge_and_udfs_are_unknown() {
    let l = lineage("select name as x from customers union all select status from orders").await;
    assert_eq!(l["x"], v(&["customers.name:IDENTITY", "orders.status:IDENTITY"]));
    let l = lineage("select mask(name) as m, upper(name) as u from customers").await;
    assert_eq!(l["m"], v(&["customers.name:TRANSFORMATION", "unknown: function mask is a user-defined function: its lineage cannot be traced"]));
    assert_eq!(l["u"], v(&["customers.name:TRANSFORMATION"]));
}

#[tokio::test]
async fn subqueries_and_casts() {
    let l = lineage(
        "select id, cast(id as varchar) as s, (select max(amount) from orders where orders.customer_id = customers.id) as top \
         from customers where id in (select customer_id from orders)",
    )
    .await;
    assert_eq!(l["s"], v(&["customers.id:TRANSFORMATION"]));
    assert_eq!(l["top"], v(&["orders.amount:AGGREGATION"]));
    assert!(l["(dataset)"].contains(&"orders.customer_id:FILTER".to_string()), "{:?}", l["(dataset)"]);
    assert!(l["(dataset)"].contains(&"customers.id:FILTER".to_string()), "{:?}", l["(dataset)"]);
}

#[test]
fn composition_rules() {
    use Subtype::*;
    assert_eq!(Identity.compose(Aggregation), Aggregation);
    assert_eq!(Transformation.compose(Identity), Transformation);
    assert_eq!(Join.compose(Aggregation), Join);
    assert_eq!(Identity.compose(Filter), Filter);
    assert_eq!(Aggregation.up(Transformation), Aggregation);
    assert_eq!(Filter.up(Aggregation), Filter);
}
