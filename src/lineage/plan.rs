//! Column lineage from a DataFusion logical plan (the unoptimized plan of a
//! model's compiled SQL): for every output column, the columns of the
//! scanned relations it derives from and how, using OpenLineage's
//! transformation types; plus the columns that affect the whole dataset
//! (joins, filters, grouping, sorting, windows).
//!
//! CTEs and ephemeral models are `SubqueryAlias` nodes and are traced
//! through; each `TableScan` is a relation of the project (model, seed,
//! source) and ends the walk.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, WindowFunctionDefinition};

use super::Subtype;

/// A column of a scanned relation: (relation key, column name).
pub type ColKey = (String, String);
/// Input columns and the ways they reach an output.
pub type DepMap = BTreeMap<ColKey, BTreeSet<Subtype>>;

#[derive(Clone, Debug, Default)]
pub struct FieldDeps {
    pub deps: DepMap,
    /// Why (part of) this column cannot be traced.
    pub unknown: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Traced {
    /// One entry per field of the plan's schema, in order.
    pub fields: Vec<FieldDeps>,
    /// Columns that affect every row/column (INDIRECT transformations).
    pub dataset: DepMap,
}

/// What a scanned table is: the key its columns are recorded under.
pub trait Resolve {
    fn relation(&self, table: &TableReference) -> Option<String>;
    /// Whether a scalar function is one DataFusion ships (anything else is a
    /// UDF whose semantics are unknown).
    fn known_function(&self, name: &str) -> bool;
}

fn add(map: &mut DepMap, key: &ColKey, t: Subtype) {
    map.entry(key.clone()).or_default().insert(t);
}

fn merge(into: &mut DepMap, from: &DepMap) {
    for (k, v) in from {
        into.entry(k.clone()).or_default().extend(v.iter().copied());
    }
}

fn passthrough(t: Traced, n: usize) -> Traced {
    let mut t = t;
    t.fields.resize_with(n, FieldDeps::default);
    t
}

pub struct Tracer<'a> {
    pub resolve: &'a dyn Resolve,
}

impl Tracer<'_> {
    pub fn trace(&self, plan: &LogicalPlan) -> Traced {
        let width = plan.schema().fields().len();
        match plan {
            LogicalPlan::TableScan(scan) => {
                let Some(rel) = self.resolve.relation(&scan.table_name) else {
                    // A scan of something outside the project (e.g. a
                    // recursive CTE's work table): keep the table's name.
                    let rel = format!("table:{}", scan.table_name);
                    return Traced { fields: scan.projected_schema.fields().iter().map(|f| ident(&rel, f.name())).collect(), dataset: DepMap::new() };
                };
                Traced { fields: scan.projected_schema.fields().iter().map(|f| ident(&rel, f.name())).collect(), dataset: DepMap::new() }
            }
            LogicalPlan::Projection(p) => {
                let input = self.trace(&p.input);
                let mut dataset = input.dataset.clone();
                let ins = [(&*p.input, &input)];
                let fields = p.expr.iter().map(|e| self.expr(e, &ins, Subtype::Identity, &mut dataset)).collect();
                passthrough(Traced { fields, dataset }, width)
            }
            LogicalPlan::Filter(f) => {
                let mut t = self.trace(&f.input);
                let ins = [(&*f.input, &t.clone())];
                let d = self.expr(&f.predicate, &ins, Subtype::Filter, &mut t.dataset);
                merge(&mut t.dataset, &d.deps);
                passthrough(t, width)
            }
            LogicalPlan::Sort(s) => {
                let mut t = self.trace(&s.input);
                let snapshot = t.clone();
                let ins = [(&*s.input, &snapshot)];
                for e in &s.expr {
                    let d = self.expr(&e.expr, &ins, Subtype::Sort, &mut t.dataset);
                    merge(&mut t.dataset, &d.deps);
                }
                passthrough(t, width)
            }
            LogicalPlan::Aggregate(a) => {
                let input = self.trace(&a.input);
                let mut dataset = input.dataset.clone();
                let ins = [(&*a.input, &input)];
                let mut fields = vec![];
                for g in &a.group_expr {
                    let exprs: Vec<&Expr> = match g {
                        Expr::GroupingSet(gs) => gs.distinct_expr(),
                        e => vec![e],
                    };
                    for e in exprs {
                        let f = self.expr(e, &ins, Subtype::Identity, &mut dataset);
                        let gb = self.expr(e, &ins, Subtype::GroupBy, &mut dataset);
                        merge(&mut dataset, &gb.deps);
                        fields.push(f);
                    }
                }
                // A grouping-set id column sits between groups and aggregates.
                let extra = width.saturating_sub(fields.len() + a.aggr_expr.len());
                fields.extend((0..extra).map(|_| FieldDeps::default()));
                for e in &a.aggr_expr {
                    fields.push(self.expr(e, &ins, Subtype::Identity, &mut dataset));
                }
                passthrough(Traced { fields, dataset }, width)
            }
            LogicalPlan::Window(w) => {
                let input = self.trace(&w.input);
                let mut dataset = input.dataset.clone();
                let ins = [(&*w.input, &input)];
                let mut fields = input.fields.clone();
                for e in &w.window_expr {
                    fields.push(self.expr(e, &ins, Subtype::Identity, &mut dataset));
                }
                passthrough(Traced { fields, dataset }, width)
            }
            LogicalPlan::Join(j) => {
                let left = self.trace(&j.left);
                let right = self.trace(&j.right);
                let mut dataset = left.dataset.clone();
                merge(&mut dataset, &right.dataset);
                let ins = [(&*j.left, &left), (&*j.right, &right)];
                for (l, r) in &j.on {
                    for e in [l, r] {
                        let d = self.expr(e, &ins, Subtype::Join, &mut dataset);
                        merge(&mut dataset, &d.deps);
                    }
                }
                if let Some(f) = &j.filter {
                    let d = self.expr(f, &ins, Subtype::Join, &mut dataset);
                    merge(&mut dataset, &d.deps);
                }
                let fields = match j.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left.fields.clone(),
                    JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right.fields.clone(),
                    _ => left.fields.iter().chain(right.fields.iter()).cloned().collect(),
                };
                passthrough(Traced { fields, dataset }, width)
            }
            LogicalPlan::Union(u) => {
                let mut out = Traced { fields: vec![FieldDeps::default(); width], dataset: DepMap::new() };
                for i in &u.inputs {
                    let t = self.trace(i);
                    merge(&mut out.dataset, &t.dataset);
                    for (o, f) in out.fields.iter_mut().zip(t.fields) {
                        merge(&mut o.deps, &f.deps);
                        o.unknown = o.unknown.take().or(f.unknown);
                    }
                }
                out
            }
            LogicalPlan::RecursiveQuery(r) => {
                let mut out = self.trace(&r.static_term);
                let rec = self.trace(&r.recursive_term);
                merge(&mut out.dataset, &rec.dataset);
                for (o, f) in out.fields.iter_mut().zip(rec.fields) {
                    merge(&mut o.deps, &f.deps);
                }
                passthrough(out, width)
            }
            LogicalPlan::Distinct(Distinct::All(input)) => passthrough(self.trace(input), width),
            LogicalPlan::Distinct(Distinct::On(d)) => {
                let input = self.trace(&d.input);
                let mut dataset = input.dataset.clone();
                let ins = [(&*d.input, &input)];
                for e in &d.on_expr {
                    let g = self.expr(e, &ins, Subtype::GroupBy, &mut dataset);
                    merge(&mut dataset, &g.deps);
                }
                let fields = d.select_expr.iter().map(|e| self.expr(e, &ins, Subtype::Identity, &mut dataset)).collect();
                passthrough(Traced { fields, dataset }, width)
            }
            LogicalPlan::Unnest(u) => {
                let input = self.trace(&u.input);
                let fields = u
                    .dependency_indices
                    .iter()
                    .map(|i| {
                        let mut f = input.fields.get(*i).cloned().unwrap_or_default();
                        for set in f.deps.values_mut() {
                            *set = set.iter().map(|t| Subtype::Transformation.compose(*t)).collect();
                        }
                        f
                    })
                    .collect();
                passthrough(Traced { fields, dataset: input.dataset }, width)
            }
            LogicalPlan::SubqueryAlias(s) => passthrough(self.trace(&s.input), width),
            LogicalPlan::Subquery(s) => passthrough(self.trace(&s.subquery), width),
            LogicalPlan::Limit(l) => passthrough(self.trace(&l.input), width),
            LogicalPlan::Repartition(r) => passthrough(self.trace(&r.input), width),
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => Traced { fields: vec![FieldDeps::default(); width], dataset: DepMap::new() },
            other => {
                let why = format!(
                    "the plan has a {} node, which column lineage does not trace",
                    other.display().to_string().split([':', '\n']).next().unwrap_or("?")
                );
                Traced { fields: vec![FieldDeps { deps: DepMap::new(), unknown: Some(why) }; width], dataset: DepMap::new() }
            }
        }
    }

    /// The input columns an expression reads, each with how it reaches
    /// the value (`mode` is the context: IDENTITY at the top of a
    /// projection, FILTER in a WHERE, ...). Subqueries' dataset-level
    /// dependencies go into `dataset`.
    fn expr(&self, e: &Expr, ins: &[(&LogicalPlan, &Traced)], mode: Subtype, dataset: &mut DepMap) -> FieldDeps {
        let mut out = FieldDeps::default();
        self.walk(e, ins, mode, dataset, &mut out);
        out
    }

    fn column(&self, c: &Column, ins: &[(&LogicalPlan, &Traced)], mode: Subtype, out: &mut FieldDeps) {
        for (plan, t) in ins {
            if let Ok(i) = plan.schema().index_of_column(c) {
                let Some(f) = t.fields.get(i) else { break };
                for (k, set) in &f.deps {
                    for s in set {
                        add(&mut out.deps, k, mode.compose(*s));
                    }
                }
                if out.unknown.is_none() {
                    out.unknown.clone_from(&f.unknown);
                }
                return;
            }
        }
        if out.unknown.is_none() {
            out.unknown = Some(format!("column {c} could not be resolved in the plan"));
        }
    }

    fn subquery(&self, plan: &LogicalPlan, mode: Subtype, dataset: &mut DepMap, out: &mut FieldDeps) {
        let t = self.trace(plan);
        for f in &t.fields {
            for (k, set) in &f.deps {
                for s in set {
                    add(&mut out.deps, k, mode.compose(*s));
                }
            }
        }
        for (k, set) in &t.dataset {
            for s in set {
                add(dataset, k, *s);
            }
        }
    }

    fn walk(&self, e: &Expr, ins: &[(&LogicalPlan, &Traced)], mode: Subtype, dataset: &mut DepMap, out: &mut FieldDeps) {
        match e {
            Expr::Alias(a) => self.walk(&a.expr, ins, mode, dataset, out),
            Expr::Column(c) => self.column(c, ins, mode, out),
            Expr::OuterReferenceColumn(..) | Expr::Literal(..) | Expr::Placeholder(_) | Expr::ScalarVariable(..) => {}
            Expr::AggregateFunction(af) => {
                for a in &af.params.args {
                    self.walk(a, ins, mode.up(Subtype::Aggregation), dataset, out);
                }
                if let Some(f) = &af.params.filter {
                    self.walk(f, ins, mode.indirect(Subtype::Filter), dataset, out);
                }
                for s in &af.params.order_by {
                    self.walk(&s.expr, ins, mode.indirect(Subtype::Sort), dataset, out);
                }
            }
            Expr::WindowFunction(w) => {
                let how = match &w.fun {
                    WindowFunctionDefinition::AggregateUDF(_) => Subtype::Aggregation,
                    WindowFunctionDefinition::WindowUDF(_) => Subtype::Transformation,
                };
                for a in &w.params.args {
                    self.walk(a, ins, mode.up(how), dataset, out);
                }
                for p in &w.params.partition_by {
                    self.walk(p, ins, mode.indirect(Subtype::Window), dataset, out);
                }
                for s in &w.params.order_by {
                    self.walk(&s.expr, ins, mode.indirect(Subtype::Window), dataset, out);
                }
                if let Some(f) = &w.params.filter {
                    self.walk(f, ins, mode.indirect(Subtype::Filter), dataset, out);
                }
            }
            Expr::Case(c) => {
                if let Some(x) = &c.expr {
                    self.walk(x, ins, mode.indirect(Subtype::Conditional), dataset, out);
                }
                for (w, t) in &c.when_then_expr {
                    self.walk(w, ins, mode.indirect(Subtype::Conditional), dataset, out);
                    self.walk(t, ins, mode.up(Subtype::Transformation), dataset, out);
                }
                if let Some(x) = &c.else_expr {
                    self.walk(x, ins, mode.up(Subtype::Transformation), dataset, out);
                }
            }
            Expr::ScalarFunction(f) => {
                let name = f.func.name();
                if !self.resolve.known_function(name) && out.unknown.is_none() {
                    out.unknown = Some(format!("function {name} is a user-defined function: its lineage cannot be traced"));
                }
                for a in &f.args {
                    self.walk(a, ins, mode.up(Subtype::Transformation), dataset, out);
                }
            }
            Expr::ScalarSubquery(sq) => self.subquery(&sq.subquery, mode.up(Subtype::Transformation), dataset, out),
            Expr::Exists(ex) => self.subquery(&ex.subquery.subquery, mode.up(Subtype::Transformation), dataset, out),
            Expr::InSubquery(is) => {
                self.walk(&is.expr, ins, mode.up(Subtype::Transformation), dataset, out);
                self.subquery(&is.subquery.subquery, mode.up(Subtype::Transformation), dataset, out);
            }
            other => {
                let _ = other.apply_children(|c| {
                    self.walk(c, ins, mode.up(Subtype::Transformation), dataset, out);
                    Ok(TreeNodeRecursion::Continue)
                });
            }
        }
    }
}

fn ident(rel: &str, column: &str) -> FieldDeps {
    let mut deps = DepMap::new();
    deps.insert((rel.to_string(), column.to_string()), BTreeSet::from([Subtype::Identity]));
    FieldDeps { deps, unknown: None }
}
