//! `--show-failures`: after the summary, each warning or failing test's
//! first failing rows (at most `SHOW_FAILURES_ROWS`, fewer under the test's
//! `limit`) as a table on stdout, in run order:
//!
//! ```text
//! FAIL 1 unique_orders_order_id (models/seeds.yml): first 1 failing row
//! +--------------+-----------+
//! | unique_field | n_records |
//! ...
//! ```

use datafusion::arrow::util::pretty::pretty_format_batches;

use super::{NodeResult, Status};
use crate::cli::Printer;
use crate::project::load::Project;

pub fn print(printer: &Printer, results: &[NodeResult], project: &Project) -> anyhow::Result<()> {
    let mut first = true;
    for r in results.iter().filter(|r| matches!(r.status, Status::Warn | Status::Fail)) {
        let Some(sample) = &r.sample else { continue };
        let n = &project.nodes[&r.unique_id];
        let rows: usize = sample.iter().map(|b| b.num_rows()).sum();
        let tag = if r.status == Status::Fail { "FAIL" } else { "WARN" };
        if !first {
            printer.data("");
        }
        first = false;
        printer.data(format!(
            "{tag} {} {} ({}): first {rows} failing row{}",
            r.failures.unwrap_or(0),
            n.name,
            n.patch_path.as_deref().unwrap_or(&n.original_file_path),
            if rows == 1 { "" } else { "s" }
        ));
        if rows > 0 {
            printer.data(pretty_format_batches(sample)?.to_string());
        }
    }
    Ok(())
}
