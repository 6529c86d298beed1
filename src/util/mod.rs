//! Leaf helpers shared by every layer: "did you mean" suggestions, YAML
//! with line numbers, SQL identifier quoting and relation names, number
//! formatting, casting a record batch to a schema. Uses nothing else in the
//! crate.

pub mod binval;
pub mod checksum;
pub mod dbt_version;
pub mod frames;
pub mod ident;
pub mod pyjson;
pub mod replace;
pub mod yaml;

/// The hasher of maps keyed by the project's unique ids: foldhash, as
/// DataFusion uses. std's SipHash was a tenth of a warm compile's CPU
/// with 40,000 nodes. The index maps keep insertion order, so no output
/// depends on the seed.
pub type FastHash = foldhash::fast::RandomState;
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastHash>;
pub type FastSet<K> = std::collections::HashSet<K, FastHash>;
pub type FastIndexMap<K, V> = indexmap::IndexMap<K, V, FastHash>;
pub type FastIndexSet<K> = indexmap::IndexSet<K, FastHash>;

/// Drops `v` on a thread of its own. Freeing a loaded project of 40,000
/// nodes one allocation at a time takes a fifth of a second, which a
/// command about to exit need not wait for: the process ends without
/// waiting for the thread, and a long-lived one (`dp pipeline`) frees it
/// all there. The thread enters the caller's tokio runtime, if any, for
/// values whose drop needs one. (If no thread can be started, `v` is
/// dropped here.)
pub fn drop_in_background<T: Send + 'static>(v: T) {
    let runtime = tokio::runtime::Handle::try_current().ok();
    let _ = std::thread::Builder::new().name("dp-drop".into()).spawn(move || {
        let _entered = runtime.as_ref().map(|r| r.enter());
        drop(v)
    });
}

/// Runs `other` on a thread of its own while `here` runs on this one, and
/// returns both results (`other`'s first); a panic on either side goes on
/// here, once both have ended.
pub fn beside<A: Send, B>(other: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|s| {
        let other = s.spawn(other);
        let here = here();
        (other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), here)
    })
}

/// The closest name to `name` among `candidates` (for "did you mean").
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// `batch` under `schema` (same columns, in order): each column cast to
/// its field's type where the two differ.
pub fn cast_batch(
    batch: &datafusion::arrow::record_batch::RecordBatch,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<datafusion::arrow::record_batch::RecordBatch, datafusion::arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { datafusion::arrow::compute::cast(c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()?;
    datafusion::arrow::record_batch::RecordBatch::try_new(schema.clone(), columns)
}

/// Whether the environment variable `var` turns a switch off (`off`, `0` or
/// `false`); unset or anything else leaves it on.
pub fn switched_off(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| matches!(v.trim(), "off" | "0" | "false"))
}

/// `1234567` → `1,234,567`.
pub fn fmt_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::fmt_thousands(0), "0");
        assert_eq!(super::fmt_thousands(999), "999");
        assert_eq!(super::fmt_thousands(1000), "1,000");
        assert_eq!(super::fmt_thousands(1234567), "1,234,567");
    }

    /// Both sides run, the other one on another thread, and its panic
    /// reaches the caller.
    #[test]
    fn beside_runs_both_and_passes_a_panic_on() {
        let here = std::thread::current().id();
        let (a, b) = super::beside(|| std::thread::current().id(), || std::thread::current().id());
        assert_ne!(a, here);
        assert_eq!(b, here);
        let panicked = std::panic::catch_unwind(|| super::beside(|| panic!("on the other side"), || 1));
        let message = panicked.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"on the other side"));
    }

    /// The value is dropped, on another thread, inside the caller's runtime
    /// (a drop that spawns a task works).
    #[test]
    fn drops_in_the_background_within_the_runtime() {
        struct Spawns(std::sync::mpsc::Sender<(String, bool)>);
        impl Drop for Spawns {
            fn drop(&mut self) {
                let in_runtime = tokio::runtime::Handle::try_current().is_ok();
                let name = std::thread::current().name().unwrap_or_default().to_string();
                self.0.send((name, in_runtime)).unwrap();
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { super::drop_in_background(Spawns(tx.clone())) });
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), ("dp-drop".to_string(), true));
        super::drop_in_background(Spawns(tx));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), ("dp-drop".to_string(), false));
    }

    #[test]
    fn suggests_the_closest_name() {
        assert_eq!(super::suggest("stg_order", ["stg_orders", "fct_orders"].into_iter()).as_deref(), Some("stg_orders"));
        assert_eq!(super::suggest("zzz", ["stg_orders"].into_iter()), None);
    }
}
