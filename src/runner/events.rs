//! What the runner tells the world while it works. The runner never prints:
//! it emits [`Event`]s to an [`EventSink`], and consumers (the CLI's
//! reporter, `run_results.json`, lineage emitters, pipeline history)
//! subscribe without touching the runner. Events arrive in order from one
//! task: a node's `NodeStarted` before its `NodeFinished`, `RunFinished`
//! last.

use std::time::Duration;

use super::NodeResult;
use crate::project::nodes::Node;

/// One thing that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run begins with `total` selected nodes.
    RunStarted { total: usize },
    /// A node was launched (`index` is its 1-based position in the run order).
    NodeStarted { index: usize, total: usize, node: &'a Node },
    /// A node ended: built, tested, failed or skipped. Test outcomes
    /// (failures, stored relation, sample rows) and publish outcomes live in
    /// the result.
    NodeFinished { index: usize, total: usize, node: &'a Node, result: &'a NodeResult },
    /// A batch of a microbatch model started (`index` of `total`, 1-based).
    BatchStarted { node: &'a Node, index: usize, total: usize, label: &'a str },
    /// A batch of a microbatch model ended: committed, failed or skipped.
    BatchFinished { node: &'a Node, index: usize, total: usize, run: &'a super::microbatch::BatchRun },
    /// Every node has a result, in run order.
    RunFinished { results: &'a [NodeResult], elapsed: Duration },
}

/// A consumer of run events. Implementations must be cheap: the runner calls
/// them inline between nodes.
pub trait EventSink: Send + Sync {
    fn on_event(&self, event: &Event<'_>);
}

/// Several sinks, each told every event in turn.
#[derive(Default)]
pub struct Fanout<'s>(pub Vec<&'s dyn EventSink>);

impl EventSink for Fanout<'_> {
    fn on_event(&self, event: &Event<'_>) {
        for s in &self.0 {
            s.on_event(event);
        }
    }
}
