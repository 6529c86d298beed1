//! The DAG scheduler: launches ready nodes in run order, at most `threads`
//! at once; a node that ends blocking (error, failed test, or a panic
//! inside its task) skips everything downstream of it while independent
//! branches go on; `fail_fast` stops launching after the first blocking
//! result. A panic never escapes a node: it becomes that node's error, with
//! the panic message.

use futures::FutureExt;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use super::{NodeResult, Status};

/// What a node's task returns: its result, and whether that result skips
/// the node's descendants.
pub struct Done {
    pub result: NodeResult,
    pub blocks: bool,
}

/// Runs the nodes `ids` (in run order) with the dependency `edges`
/// (parent, child; edges leaving the selection are ignored). `start(pos,
/// thread)` is called on the scheduler's task when node `ids[pos]` launches
/// and returns its work; `finished(pos, result)` when it ends. Returns each
/// node's result, `None` for those never launched (skipped).
pub async fn drive<S, W>(
    ids: &[String],
    edges: &[(String, String)],
    threads: usize,
    fail_fast: bool,
    mut start: S,
    mut finished: impl FnMut(usize, &NodeResult),
) -> Vec<Option<NodeResult>>
where
    S: FnMut(usize, usize) -> W,
    W: Future<Output = Done> + Send + 'static,
{
    let pos: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, u)| (u.as_str(), i)).collect();
    let mut children: Vec<Vec<usize>> = vec![vec![]; ids.len()];
    let mut waiting: Vec<usize> = vec![0; ids.len()];
    for (p, c) in edges {
        if let (Some(&p), Some(&c)) = (pos.get(p.as_str()), pos.get(c.as_str()))
            && !children[p].contains(&c)
        {
            children[p].push(c);
            waiting[c] += 1;
        }
    }
    const SKIPPED: usize = usize::MAX;
    let mut results: Vec<Option<NodeResult>> = (0..ids.len()).map(|_| None).collect();
    let mut ready: BTreeSet<usize> = (0..ids.len()).filter(|&i| waiting[i] == 0).collect();
    let mut running = tokio::task::JoinSet::new();
    let threads = threads.max(1);
    let mut stop = false;
    let mut next_thread = 0usize;
    loop {
        while !stop && running.len() < threads {
            let Some(i) = ready.pop_first() else { break };
            next_thread = next_thread % threads + 1;
            let thread = next_thread;
            let work = start(i, thread);
            let uid = ids[i].clone();
            running.spawn(async move {
                let started_at = chrono::Utc::now();
                let t = Instant::now();
                let done = AssertUnwindSafe(work).catch_unwind().await.unwrap_or_else(|panic| Done {
                    result: NodeResult::error(
                        uid,
                        format!("internal error: the node's task panicked: {}", panic_message(&panic)),
                        started_at,
                        t.elapsed(),
                        thread,
                    ),
                    blocks: true,
                });
                (i, done)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        // Tasks catch their own panics; a join error is a cancellation,
        // which this scheduler never does.
        let Ok((i, Done { result, blocks })) = joined else { continue };
        finished(i, &result);
        results[i] = Some(result);
        if blocks {
            stop |= fail_fast;
            let mut stack = vec![i];
            while let Some(x) = stack.pop() {
                for &c in &children[x] {
                    if results[c].is_none() && waiting[c] != SKIPPED {
                        waiting[c] = SKIPPED;
                        stack.push(c);
                    }
                }
            }
        } else {
            for &c in &children[i] {
                if waiting[c] != SKIPPED && waiting[c] > 0 {
                    waiting[c] -= 1;
                    if waiting[c] == 0 {
                        ready.insert(c);
                    }
                }
            }
        }
    }
    results
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

impl NodeResult {
    /// A node that ended in an error before producing anything.
    pub fn error(uid: String, message: String, started_at: chrono::DateTime<chrono::Utc>, elapsed: std::time::Duration, thread: usize) -> NodeResult {
        NodeResult {
            unique_id: uid,
            status: Status::Error,
            message,
            rows: None,
            started_at,
            completed_at: chrono::Utc::now(),
            execution_time: elapsed,
            thread,
            compiled_code: None,
            failures: None,
            stored_in: None,
            sample: None,
            published: None,
            batches: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn ok(uid: &str) -> Done {
        let mut r = NodeResult::error(uid.into(), String::new(), chrono::Utc::now(), Default::default(), 1);
        r.status = Status::Success;
        Done { result: r, blocks: false }
    }

    async fn run(ids: &[&str], edges: &[(&str, &str)], panics: &'static str, threads: usize, fail_fast: bool) -> (Vec<Option<NodeResult>>, Vec<String>) {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let edges: Vec<(String, String)> = edges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let order = Arc::new(Mutex::new(vec![]));
        let ids2 = ids.clone();
        let results = drive(
            &ids,
            &edges,
            threads,
            fail_fast,
            |i, _| {
                let uid = ids2[i].clone();
                async move {
                    if uid == panics {
                        panic!("boom in {uid}");
                    }
                    ok(&uid)
                }
            },
            |i, _| order.lock().unwrap().push(ids[i].clone()),
        )
        .await;
        let order = order.lock().unwrap().clone();
        (results, order)
    }

    fn status(r: &Option<NodeResult>) -> Option<Status> {
        r.as_ref().map(|r| r.status)
    }

    #[tokio::test]
    async fn a_panicking_node_is_an_error_and_skips_its_descendants() {
        let (r, _) = run(&["a", "b", "c", "d"], &[("a", "b"), ("b", "d"), ("c", "d")], "a", 2, false).await;
        assert_eq!(status(&r[0]), Some(Status::Error));
        assert_eq!(r[0].as_ref().unwrap().message, "internal error: the node's task panicked: boom in a");
        assert_eq!(status(&r[1]), None, "b depends on a: skipped");
        assert_eq!(status(&r[2]), Some(Status::Success), "c is independent");
        assert_eq!(status(&r[3]), None, "d depends on b: skipped");
    }

    #[tokio::test]
    async fn children_wait_for_their_parents() {
        let (r, order) = run(&["a", "b", "c"], &[("a", "b"), ("b", "c")], "", 4, false).await;
        assert!(r.iter().all(|r| status(r) == Some(Status::Success)));
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn fail_fast_stops_launching() {
        let (r, _) = run(&["a", "b", "c"], &[], "a", 1, true).await;
        assert_eq!(status(&r[0]), Some(Status::Error));
        assert_eq!(status(&r[1]), None);
        assert_eq!(status(&r[2]), None);
    }
}
