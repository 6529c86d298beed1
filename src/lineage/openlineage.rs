//! OpenLineage run events: START and COMPLETE/FAIL per node, with the
//! `schema`, `dataSource`, `columnLineage` and `outputStatistics` facets,
//! sent through a bounded queue to a file (NDJSON) or an HTTP endpoint
//! (POST, retried). A slow or dead endpoint never slows a run: when the
//! queue is full, events are dropped and counted.
//!
//! Configured from the environment (as OpenLineage's own clients):
//! `OPENLINEAGE_URL` (+ `OPENLINEAGE_ENDPOINT`, default `api/v1/lineage`,
//! and `OPENLINEAGE_API_KEY`, sent as a bearer token) for HTTP, or
//! `DP_OPENLINEAGE_FILE` for a file; `OPENLINEAGE_NAMESPACE` names the jobs'
//! namespace (default: the project's name).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::Lineage;
use crate::ingest::Outcome as IngestOutcome;
use crate::ingest::spec::{IngestSpec, Origin as IngestOrigin, PgRelation};
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

pub const PRODUCER: &str = concat!("https://github.com/dp-lakehouse/dp/tree/v", env!("CARGO_PKG_VERSION"));
const SPEC: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const QUEUE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Append NDJSON lines to a file.
    File(PathBuf),
    /// POST each event as JSON.
    Http { url: String, api_key: Option<String> },
}

/// Where events go and the jobs' namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub transport: Transport,
    /// `OPENLINEAGE_NAMESPACE` (default: the project's name).
    pub namespace: Option<String>,
}

impl Config {
    /// What the environment asks for, if anything.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Config> {
        let transport = Transport::from_env(env)?;
        Some(Config { transport, namespace: env("OPENLINEAGE_NAMESPACE").filter(|s| !s.is_empty()) })
    }
}

impl Transport {
    /// The transport the environment asks for, if any.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Transport> {
        if let Some(url) = env("OPENLINEAGE_URL").filter(|s| !s.is_empty()) {
            let endpoint = env("OPENLINEAGE_ENDPOINT").unwrap_or_else(|| "api/v1/lineage".into());
            let url = format!("{}/{}", url.trim_end_matches('/'), endpoint.trim_start_matches('/'));
            return Some(Transport::Http { url, api_key: env("OPENLINEAGE_API_KEY").filter(|s| !s.is_empty()) });
        }
        env("DP_OPENLINEAGE_FILE").filter(|s| !s.is_empty()).map(|f| Transport::File(PathBuf::from(f)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Fail,
}

/// What the emitter did, for the closing line of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Given up on after the retries (HTTP) or a write error (file).
    pub failed: u64,
}

struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Where a dataset lives, in OpenLineage's naming: (namespace, name).
fn dataset_id(project: &Project, n: &Node) -> (String, String) {
    let loc = match &n.source {
        Some(s) => crate::engine::resolve_source_location(&project.settings, s.location.as_deref().unwrap_or(&s.identifier)),
        None => {
            let wh = &project.settings.target.warehouse;
            format!("{}/{}/{}", wh.trim_end_matches('/'), n.schema, n.alias)
        }
    };
    split_location(&project.settings.root, &loc)
}

/// `s3://bucket/a/b` → (`s3://bucket`, `a/b`); a local path → (`file`, absolute path).
fn split_location(root: &std::path::Path, loc: &str) -> (String, String) {
    if let Some((scheme, rest)) = loc.split_once("://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if scheme == "file" {
            return ("file".into(), format!("/{path}"));
        }
        return (format!("{scheme}://{host}"), path.to_string());
    }
    let p = std::path::Path::new(loc);
    let abs = if p.is_absolute() { p.to_path_buf() } else { crate::config::normalize_path(&root.join(p)) };
    ("file".into(), abs.display().to_string())
}

fn facet(schema: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_producer".into(), json!(PRODUCER));
    m.insert("_schemaURL".into(), json!(schema));
    m
}

/// Emits OpenLineage events for the nodes of one run.
pub struct Emitter {
    tx: Mutex<Option<mpsc::Sender<Value>>>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Arc<Counters>,
    namespace: String,
    project: Arc<Project>,
    lineage: Option<Arc<Lineage>>,
    runs: Mutex<HashMap<String, uuid::Uuid>>,
    /// The run of the whole invocation (each node's `parent`).
    parent: (uuid::Uuid, String),
}

impl Emitter {
    /// Starts the background sender (needs a tokio runtime).
    pub fn start(config: Config, project: Arc<Project>, lineage: Option<Arc<Lineage>>, invocation_id: &str, command: &str) -> Emitter {
        Self::with_capacity(config, project, lineage, invocation_id, command, QUEUE)
    }

    /// As [`Emitter::start`], with a queue of `capacity` events.
    pub fn with_capacity(config: Config, project: Arc<Project>, lineage: Option<Arc<Lineage>>, invocation_id: &str, command: &str, capacity: usize) -> Emitter {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters { sent: AtomicU64::new(0), dropped: AtomicU64::new(0), failed: AtomicU64::new(0) });
        let worker = tokio::spawn(run_transport(config.transport, rx, counters.clone()));
        let namespace = config.namespace.unwrap_or_else(|| project.settings.project_name.clone());
        let parent = (uuid::Uuid::parse_str(invocation_id).unwrap_or_else(|_| uuid::Uuid::new_v4()), format!("{}.{command}", project.settings.project_name));
        Emitter { tx: Mutex::new(Some(tx)), worker: Mutex::new(Some(worker)), counters, namespace, project, lineage, runs: Mutex::new(HashMap::new()), parent }
    }

    fn send(&self, event: Value) {
        let guard = self.tx.lock().unwrap();
        let Some(tx) = guard.as_ref() else { return };
        if tx.try_send(event).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn job_name(&self, n: &Node) -> String {
        format!("{}.{}", n.package_name, n.name)
    }

    fn dataset(&self, n: &Node, with_schema: bool) -> Value {
        let (namespace, name) = dataset_id(&self.project, n);
        let mut facets = Map::new();
        let mut ds = facet("https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet");
        ds.insert("name".into(), json!(namespace));
        ds.insert("uri".into(), json!(if namespace == "file" { format!("file://{name}") } else { format!("{namespace}/{name}") }));
        facets.insert("dataSource".into(), Value::Object(ds));
        if let Some(fields) = self.schema_fields(n).filter(|_| with_schema) {
            let mut s = facet("https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet");
            s.insert("fields".into(), Value::Array(fields));
            facets.insert("schema".into(), Value::Object(s));
        }
        json!({"namespace": namespace, "name": name, "facets": facets})
    }

    fn schema_fields(&self, n: &Node) -> Option<Vec<Value>> {
        let from_lineage = self.lineage.as_ref().and_then(|l| l.nodes.get(&n.unique_id)).filter(|nl| !nl.columns.is_empty());
        let fields: Vec<Value> = match from_lineage {
            Some(nl) => nl
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, c))| {
                    let mut f = json!({"name": name, "type": c.data_type, "ordinal_position": i + 1});
                    if let Some(d) = n.columns.get(name).map(|c| &c.description).filter(|d| !d.is_empty()) {
                        f["description"] = json!(d);
                    }
                    f
                })
                .collect(),
            None => n
                .columns
                .values()
                .enumerate()
                .map(|(i, c)| json!({"name": c.name, "type": c.data_type.clone().unwrap_or_default(), "description": c.description, "ordinal_position": i + 1}))
                .collect(),
        };
        (!fields.is_empty()).then_some(fields)
    }

    /// The relations a node reads: its lineage's scanned relations, else
    /// its parents (through ephemeral models).
    fn input_nodes(&self, n: &Node) -> Vec<&Node> {
        let mut ids: Vec<String> = vec![];
        if let Some(nl) = self.lineage.as_ref().and_then(|l| l.nodes.get(&n.unique_id)).filter(|nl| nl.unavailable.is_none()) {
            for i in nl.columns.values().flat_map(|c| c.inputs.iter()).chain(nl.dataset.iter()) {
                if !ids.contains(&i.node) {
                    ids.push(i.node.clone());
                }
            }
        }
        let mut stack: Vec<String> = n.depends_on.clone();
        while let Some(d) = stack.pop() {
            match self.project.nodes.get(&d) {
                Some(p) if p.materialized() == crate::project::nodes::Materialization::Ephemeral => stack.extend(p.depends_on.iter().cloned()),
                Some(_) if !ids.contains(&d) => ids.push(d),
                _ => {}
            }
        }
        ids.iter().filter_map(|u| self.project.nodes.get(u)).filter(|p| p.resource_type != ResourceType::Test).collect()
    }

    fn column_lineage(&self, n: &Node) -> Option<Value> {
        let nl = self.lineage.as_ref()?.nodes.get(&n.unique_id)?;
        if nl.unavailable.is_some() {
            return None;
        }
        let input = |i: &super::Input| -> Option<Value> {
            let p = self.project.nodes.get(&i.node)?;
            let (namespace, name) = dataset_id(&self.project, p);
            Some(json!({"namespace": namespace, "name": name, "field": i.column, "transformations": i.transformations}))
        };
        let mut fields = Map::new();
        for (c, cl) in &nl.columns {
            let inputs: Vec<Value> = cl.inputs.iter().filter_map(input).collect();
            let mut f = json!({"inputFields": inputs});
            if let Some(u) = &cl.unknown {
                f["transformationDescription"] = json!(format!("unknown: {u}"));
            }
            fields.insert(c.clone(), f);
        }
        let mut facet = facet("https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet");
        facet.insert("fields".into(), Value::Object(fields));
        facet.insert("dataset".into(), Value::Array(nl.dataset.iter().filter_map(input).collect()));
        Some(Value::Object(facet))
    }

    fn event(&self, kind: &str, n: &Node, run_id: uuid::Uuid, run_facets: Map<String, Value>, outputs: Vec<Value>) -> Value {
        let inputs = self.input_nodes(n).into_iter().map(|p| self.dataset(p, true)).collect();
        self.job_event(kind, &self.job_name(n), &n.resource_type.as_str().to_uppercase(), run_id, run_facets, inputs, outputs)
    }

    fn output(&self, n: &Node, rows: Option<u64>) -> Vec<Value> {
        if n.resource_type == ResourceType::Test || n.materialized() == crate::project::nodes::Materialization::Ephemeral {
            return vec![];
        }
        let mut d = self.dataset(n, true);
        if let Some(cl) = self.column_lineage(n) {
            d["facets"]["columnLineage"] = cl;
        }
        if let Some(r) = rows {
            let mut s = facet("https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet");
            s.insert("rowCount".into(), json!(r));
            d["outputFacets"] = json!({"outputStatistics": s});
        }
        let published = self.published(n, &d);
        std::iter::once(d).chain(published).collect()
    }

    /// A model published to PostgreSQL: its table there (namespace
    /// `postgres://host:port`, name `db.schema.table`), each column the same
    /// column of the warehouse table (IDENTITY).
    fn published(&self, n: &Node, warehouse: &Value) -> Option<Value> {
        let nl = self.lineage.as_ref()?.nodes.get(&n.unique_id)?;
        let relation = nl.published.as_deref()?.strip_prefix("postgres:")?;
        self.pg_table(n, relation, warehouse)
    }

    /// `n`'s table `relation` in the target's PostgreSQL, each column the
    /// same column of `warehouse` (IDENTITY); columns from the lineage, else
    /// the YAML.
    fn pg_table(&self, n: &Node, relation: &str, warehouse: &Value) -> Option<Value> {
        let addr = super::systems::pg_address(self.project.settings.target.postgres.as_ref(), None);
        let (namespace, db) = addr.rsplit_once('/')?;
        let mut d = self.named_dataset(namespace, &format!("{db}.{relation}"), n);
        d["facets"]["dataSource"]["uri"] = json!(addr);
        let columns: Vec<String> = match self.lineage.as_ref().and_then(|l| l.nodes.get(&n.unique_id)).filter(|nl| !nl.columns.is_empty()) {
            Some(nl) => nl.columns.keys().cloned().collect(),
            None => n.columns.keys().cloned().collect(),
        };
        let fields: Map<String, Value> = columns
            .into_iter()
            .map(|c| {
                (c.clone(), json!({"inputFields": [{"namespace": warehouse["namespace"], "name": warehouse["name"], "field": c, "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}))
            })
            .collect();
        let mut cl = facet("https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet");
        if !fields.is_empty() {
            cl.insert("fields".into(), Value::Object(fields));
            d["facets"]["columnLineage"] = Value::Object(cl);
        }
        Some(d)
    }

    /// `dp publish` copied (or failed to copy) `n` into PostgreSQL: a START
    /// and a COMPLETE or FAIL event, job `publish.<schema>.<table>`, input
    /// the warehouse table, output the PostgreSQL table mapped column for
    /// column (IDENTITY), with the rows copied.
    pub fn publication(&self, n: &Node, elapsed: Duration, rows: Option<u64>, error: Option<&str>) {
        let warehouse = self.dataset(n, true);
        let relation = format!("{}.{}", n.schema, n.alias);
        let mut outputs: Vec<Value> = self.pg_table(n, &relation, &warehouse).into_iter().collect();
        if let (Some(r), Some(out)) = (rows, outputs.first_mut()) {
            let mut st = facet("https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet");
            st.insert("rowCount".into(), json!(r));
            out["outputFacets"] = json!({"outputStatistics": st});
        }
        let run_id = uuid::Uuid::new_v4();
        let job = format!("publish.{relation}");
        let started = chrono::Utc::now() - chrono::Duration::from_std(elapsed).unwrap_or_default();
        let mut start = self.job_event("START", &job, "PUBLISH", run_id, Map::new(), vec![warehouse.clone()], outputs.clone());
        start["eventTime"] = json!(started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        self.send(start);
        let mut facets = Map::new();
        if let Some(e) = error {
            let mut f = facet("https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
            f.insert("message".into(), json!(e));
            f.insert("programmingLanguage".into(), json!("RUST"));
            facets.insert("errorMessage".into(), Value::Object(f));
        }
        let kind = if error.is_none() { "COMPLETE" } else { "FAIL" };
        self.send(self.job_event(kind, &job, "PUBLISH", run_id, facets, vec![warehouse], outputs));
    }

    /// A node starts running: a START event.
    pub fn node_started(&self, n: &Node) {
        let run_id = uuid::Uuid::new_v4();
        self.runs.lock().unwrap().insert(n.unique_id.clone(), run_id);
        let out = self.output(n, None);
        self.send(self.event("START", n, run_id, Map::new(), out));
    }

    /// A node finished: COMPLETE (with its row count) or FAIL (with the error).
    pub fn node_finished(&self, n: &Node, outcome: Outcome, rows: Option<u64>, error: Option<&str>) {
        let run_id = self.runs.lock().unwrap().remove(&n.unique_id).unwrap_or_else(uuid::Uuid::new_v4);
        let mut facets = Map::new();
        if let (Outcome::Fail, Some(e)) = (outcome, error) {
            let mut f = facet("https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
            f.insert("message".into(), json!(e));
            f.insert("programmingLanguage".into(), json!("RUST"));
            facets.insert("errorMessage".into(), Value::Object(f));
        }
        let kind = if outcome == Outcome::Complete { "COMPLETE" } else { "FAIL" };
        let out = self.output(n, rows);
        self.send(self.event(kind, n, run_id, facets, out));
    }

    /// One ingestion run of a source table (`dp ingest`): a START (at its
    /// start) and a COMPLETE or FAIL event; job `ingest.<source>.<table>`,
    /// input the PostgreSQL table (namespace `postgres://host:port`, name
    /// `db.schema.table`) or the landing folder (`file` / `s3://bucket`),
    /// outputs the bronze objects written (else the bronze prefix), with
    /// their schema, identity column lineage from the input and row counts.
    pub fn ingestion(&self, spec: &IngestSpec, o: &IngestOutcome) {
        let Some(n) = self.project.nodes.get(&spec.unique_id) else { return };
        let input = self.ingest_input(spec, n);
        let objects: Vec<String> = if o.objects.is_empty() { vec![spec.location.clone()] } else { o.objects.clone() };
        let outputs: Vec<Value> = objects
            .iter()
            .map(|key| {
                let loc = crate::engine::resolve_source_location(&self.project.settings, key);
                let (namespace, name) = split_location(&self.project.settings.root, &loc);
                let mut d = self.named_dataset(&namespace, &name, n);
                let fields: Map<String, Value> = n
                    .columns
                    .keys()
                    .map(|c| (c.clone(), json!({"inputFields": [{"namespace": input["namespace"], "name": input["name"], "field": c, "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]})))
                    .collect();
                if !fields.is_empty() {
                    let mut cl = facet("https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet");
                    cl.insert("fields".into(), Value::Object(fields));
                    d["facets"]["columnLineage"] = Value::Object(cl);
                }
                if o.ok && objects.len() == 1 && !o.objects.is_empty() {
                    let mut st = facet("https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet");
                    st.insert("rowCount".into(), json!(o.rows));
                    st.insert("size".into(), json!(o.bytes));
                    d["outputFacets"] = json!({"outputStatistics": st});
                }
                d
            })
            .collect();
        let run_id = uuid::Uuid::new_v4();
        let job = format!("ingest.{}", spec.source_name);
        let started = chrono::Utc::now() - chrono::Duration::from_std(o.elapsed).unwrap_or_default();
        let mut start = self.job_event("START", &job, "INGEST", run_id, Map::new(), vec![input.clone()], outputs.clone());
        start["eventTime"] = json!(started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        self.send(start);
        let mut facets = Map::new();
        if let Some(e) = o.error.as_deref().filter(|_| !o.ok) {
            let mut f = facet("https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet");
            f.insert("message".into(), json!(e));
            f.insert("programmingLanguage".into(), json!("RUST"));
            facets.insert("errorMessage".into(), Value::Object(f));
        }
        let kind = if o.ok { "COMPLETE" } else { "FAIL" };
        self.send(self.job_event(kind, &job, "INGEST", run_id, facets, vec![input], outputs));
    }

    /// The dataset an ingestion reads.
    fn ingest_input(&self, spec: &IngestSpec, n: &Node) -> Value {
        match &spec.from {
            IngestOrigin::Postgres(p) => {
                let addr = super::systems::pg_address(self.project.settings.target.postgres.as_ref(), p.connection.as_ref());
                let (namespace, db) = addr.rsplit_once('/').map(|(a, d)| (a.to_string(), d.to_string())).unwrap_or((addr.clone(), String::new()));
                let name = match &p.relation {
                    PgRelation::Table(schema, table) => format!("{db}.{}.{table}", schema.as_deref().unwrap_or("public")),
                    // A query has no table: the database and the source it feeds.
                    PgRelation::Query(_) => format!("{db}.query.{}", spec.source_name),
                };
                let mut d = self.named_dataset(&namespace, &name, n);
                d["facets"]["dataSource"]["uri"] = json!(addr);
                d
            }
            IngestOrigin::Files(f) => {
                let loc = crate::engine::resolve_source_location(&self.project.settings, &f.path);
                let (namespace, name) = split_location(&self.project.settings.root, &loc);
                self.named_dataset(&namespace, &name, n)
            }
        }
    }

    /// A dataset at (namespace, name) with `n`'s columns as its schema.
    fn named_dataset(&self, namespace: &str, name: &str, n: &Node) -> Value {
        let mut facets = Map::new();
        let mut ds = facet("https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet");
        ds.insert("name".into(), json!(namespace));
        ds.insert("uri".into(), json!(if namespace == "file" { format!("file://{name}") } else { format!("{namespace}/{name}") }));
        facets.insert("dataSource".into(), Value::Object(ds));
        if let Some(fields) = self.schema_fields(n) {
            let mut s = facet("https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet");
            s.insert("fields".into(), Value::Array(fields));
            facets.insert("schema".into(), Value::Object(s));
        }
        json!({"namespace": namespace, "name": name, "facets": facets})
    }

    /// An event of any job: a node's ([`Self::event`]) or one that is no node
    /// of the project (an ingestion, a publish).
    #[allow(clippy::too_many_arguments)]
    fn job_event(
        &self,
        kind: &str,
        job: &str,
        job_type: &str,
        run_id: uuid::Uuid,
        run_facets: Map<String, Value>,
        inputs: Vec<Value>,
        outputs: Vec<Value>,
    ) -> Value {
        let mut jt = facet("https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet");
        jt.insert("processingType".into(), json!("BATCH"));
        jt.insert("integration".into(), json!("DP"));
        jt.insert("jobType".into(), json!(job_type));
        let mut run_facets = run_facets;
        let mut parent = facet("https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet");
        parent.insert("run".into(), json!({"runId": self.parent.0.to_string()}));
        parent.insert("job".into(), json!({"namespace": self.namespace, "name": self.parent.1}));
        run_facets.insert("parent".into(), Value::Object(parent));
        json!({
            "eventType": kind,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "producer": PRODUCER,
            "schemaURL": SPEC,
            "run": {"runId": run_id.to_string(), "facets": run_facets},
            "job": {"namespace": self.namespace, "name": job, "facets": {"jobType": jt}},
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    /// Sends what is queued (waiting at most `timeout`) and stops.
    pub async fn finish(&self, timeout: Duration) -> Stats {
        self.tx.lock().unwrap().take();
        let worker = self.worker.lock().unwrap().take();
        if let Some(w) = worker {
            let _ = tokio::time::timeout(timeout, w).await;
        }
        self.stats()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}

async fn run_transport(transport: Transport, mut rx: mpsc::Receiver<Value>, counters: Arc<Counters>) {
    match transport {
        Transport::File(path) => {
            use std::io::Write as _;
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!("OpenLineage: cannot open {}: {e}", path.display());
                    None
                }
            };
            while let Some(ev) = rx.recv().await {
                let ok = file.as_mut().is_some_and(|f| writeln!(f, "{ev}").is_ok());
                let c = if ok { &counters.sent } else { &counters.failed };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        Transport::Http { url, api_key } => {
            let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("OpenLineage: no HTTP client: {e}");
                    while rx.recv().await.is_some() {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            };
            while let Some(ev) = rx.recv().await {
                let body = ev.to_string();
                let mut delay = Duration::from_millis(100);
                let mut done = false;
                for attempt in 0..4 {
                    let mut req = client.post(&url).header("content-type", "application/json").body(body.clone());
                    if let Some(k) = &api_key {
                        req = req.bearer_auth(k);
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            done = true;
                            break;
                        }
                        // A client error will not get better with retries.
                        Ok(r) if r.status().is_client_error() => {
                            tracing::warn!("OpenLineage: {url} refused an event: HTTP {}", r.status());
                            break;
                        }
                        Ok(r) => tracing::debug!("OpenLineage: {url}: HTTP {} (attempt {})", r.status(), attempt + 1),
                        Err(e) => tracing::debug!("OpenLineage: {url}: {e} (attempt {})", attempt + 1),
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                let c = if done { &counters.sent } else { &counters.failed };
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_openlineage_naming() {
        let root = std::path::Path::new("/p");
        assert_eq!(split_location(root, "s3://b/wh/marts/x"), ("s3://b".into(), "wh/marts/x".into()));
        assert_eq!(split_location(root, "./warehouse/marts/x"), ("file".into(), "/p/warehouse/marts/x".into()));
        assert_eq!(split_location(root, "file:///w/marts/x"), ("file".into(), "/w/marts/x".into()));
    }

    #[test]
    fn transport_from_env() {
        let env = |k: &str| match k {
            "OPENLINEAGE_URL" => Some("http://localhost:5000/".to_string()),
            "OPENLINEAGE_API_KEY" => Some("k".to_string()),
            _ => None,
        };
        assert_eq!(Transport::from_env(&env), Some(Transport::Http { url: "http://localhost:5000/api/v1/lineage".into(), api_key: Some("k".into()) }));
        let env = |k: &str| (k == "DP_OPENLINEAGE_FILE").then(|| "ol.ndjson".to_string());
        assert_eq!(Transport::from_env(&env), Some(Transport::File("ol.ndjson".into())));
        assert_eq!(Transport::from_env(&|_| None), None);
        let env = |k: &str| match k {
            "DP_OPENLINEAGE_FILE" => Some("ol.ndjson".to_string()),
            "OPENLINEAGE_NAMESPACE" => Some("prod".to_string()),
            _ => None,
        };
        assert_eq!(Config::from_env(&env), Some(Config { transport: Transport::File("ol.ndjson".into()), namespace: Some("prod".into()) }));
    }
}
