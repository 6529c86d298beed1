//! Sources backed by files (bronze): Parquet, CSV or NDJSON, one file, a
//! folder or a glob such as `bronze/postgres/orders/*/orders.parquet`,
//! registered as DataFusion listing tables with their inferred schema. The
//! location may be a URL (`s3://bucket/bronze/orders/*/orders.parquet`):
//! the part before the first glob is listed, the rest filters it.

use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::{FileFormat, csv::CsvFormat, json::JsonFormat, parquet::ParquetFormat};
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SourceTable {
    /// `source_name.table` for messages.
    pub label: String,
    /// The location as written in YAML.
    pub declared: String,
    /// Absolute path (or URL), possibly with a glob.
    pub location: String,
    pub format: String,
    pub delimiter: Option<u8>,
    pub has_header: bool,
}

impl SourceTable {
    pub fn new(label: &str, declared: &str, location: String, format: Option<&str>, options: &serde_json::Map<String, serde_json::Value>) -> SourceTable {
        let fmt = format.map(str::to_string).unwrap_or_else(|| infer_format(&location));
        let delimiter = options.get("delimiter").and_then(|v| v.as_str()).and_then(|s| s.bytes().next());
        let has_header = options.get("header").or(options.get("has_header")).and_then(|v| v.as_bool()).unwrap_or(true);
        SourceTable { label: label.into(), declared: declared.into(), location, format: fmt, delimiter, has_header }
    }

    fn format(&self) -> Result<Arc<dyn FileFormat>> {
        Ok(match self.format.as_str() {
            "parquet" => Arc::new(ParquetFormat::default()),
            "csv" | "tsv" => {
                let mut f = CsvFormat::default().with_has_header(self.has_header);
                if let Some(d) = self.delimiter.or(if self.format == "tsv" { Some(b'\t') } else { None }) {
                    f = f.with_delimiter(d);
                }
                Arc::new(f)
            }
            "json" | "ndjson" | "jsonl" => Arc::new(JsonFormat::default()),
            other => {
                return Err(DataFusionError::Plan(format!(
                    "source {}: unknown file format '{other}'\n  hint: set meta.format to parquet, csv or json",
                    self.label
                )));
            }
        })
    }

    pub async fn provider(&self, ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
        let url = listing_url(&self.location)?;
        let ext = extension_of(&self.location);
        let options = ListingOptions::new(self.format()?).with_file_extension(ext);
        let state = ctx.state();
        let schema = options.infer_schema(&state, &url).await.map_err(|e| {
            DataFusionError::Plan(format!(
                "source {}: no readable files at '{}' (resolved to {}): {e}\n  hint: check meta.external_location in the source's YAML, or generate the demo data with `dp demo generate`",
                self.label, self.declared, self.location
            ))
        })?;
        if schema.fields().is_empty() {
            return Err(DataFusionError::Plan(format!(
                "source {}: no files match '{}' (resolved to {})\n  hint: check meta.external_location in the source's YAML, or generate the demo data with `dp demo generate`",
                self.label, self.declared, self.location
            )));
        }
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}

impl SourceTable {
    /// The files the location matches, with their sizes and modification
    /// times (platform health measures the newest one's age).
    pub async fn files(&self, ctx: &SessionContext) -> Result<Vec<object_store::ObjectMeta>> {
        use futures::TryStreamExt;
        let url = listing_url(&self.location)?;
        let store = ctx.runtime_env().object_store(&url)?;
        let state = ctx.state();
        let ext = extension_of(&self.location);
        url.list_all_files(&state, store.as_ref(), &ext).await?.try_collect().await
    }
}

/// DataFusion only splits globs off plain paths; do the same for URLs.
fn listing_url(loc: &str) -> Result<ListingTableUrl> {
    if !loc.contains("://") || loc.starts_with("file://") {
        return ListingTableUrl::parse(loc);
    }
    let Some(g) = loc.find(['*', '?', '[']) else { return ListingTableUrl::parse(loc) };
    let cut = loc[..g].rfind('/').map(|i| i + 1).unwrap_or(g);
    let (base, glob) = loc.split_at(cut);
    let url = url::Url::parse(base).map_err(|e| DataFusionError::Plan(format!("'{loc}' is not a valid URL: {e}")))?;
    let pattern = glob::Pattern::new(glob).map_err(|e| DataFusionError::Plan(format!("'{loc}': bad glob: {e}")))?;
    ListingTableUrl::try_new(url, Some(pattern))
}

fn infer_format(loc: &str) -> String {
    let l = loc.to_ascii_lowercase();
    if l.ends_with(".csv") || l.ends_with(".csv.gz") {
        "csv".into()
    } else if l.ends_with(".tsv") {
        "tsv".into()
    } else if l.ends_with(".json") || l.ends_with(".ndjson") || l.ends_with(".jsonl") {
        "json".into()
    } else {
        "parquet".into()
    }
}

fn extension_of(loc: &str) -> String {
    let last = loc.rsplit('/').next().unwrap_or(loc);
    if last.contains('*') || !last.contains('.') {
        // A glob or a folder: let the glob (or nothing) decide.
        match last.rsplit_once('.') {
            Some((_, e)) if !e.contains('*') => format!(".{e}"),
            _ => String::new(),
        }
    } else {
        format!(".{}", last.rsplit_once('.').map(|(_, e)| e).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_globs_list_the_prefix_before_the_first_glob() {
        let u = super::listing_url("s3://b/bronze/postgres/orders/*/orders.parquet").unwrap();
        assert_eq!(u.as_str(), "s3://b/bronze/postgres/orders/");
        assert_eq!(u.prefix().as_ref(), "bronze/postgres/orders");
        assert_eq!(u.get_glob().as_ref().map(|g| g.as_str()), Some("*/orders.parquet"));
        let u = super::listing_url("s3://b/bronze/files/sales/").unwrap();
        assert!(u.get_glob().is_none());
    }
}
