//! What the scenario reports: each step and the totals, as text or JSON.

use std::fmt;

use cache_core::StatsSnapshot;
use serde::Serialize;

use super::{saved, TTL};
use crate::dynamodb::Usage;

/// One step of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was sent.
    pub request: String,
    /// Requests sent in this step.
    pub requests: u64,
    /// What the cache did: `hit`, `miss`, `pass` (not cached), `write`, or counts for several requests.
    pub cache: String,
    /// Calls that reached the table.
    pub table_calls: u64,
    /// The last response, summarised (or the error).
    pub result: String,
    /// For a read after a write: whether it returned what the write made.
    pub sees_write: Option<bool>,
}

/// What the scenario did, step by step and in total.
#[derive(Debug, Clone, Serialize)]
pub struct DynamoReport {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Requests sent to the cached client.
    pub requests: u64,
    /// What reached DynamoDB through the cache.
    pub cached: Usage,
    /// What reached DynamoDB when the same requests were sent without the cache.
    pub uncached: Usage,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that called the table.
    pub misses: u64,
    /// Requests not cached: consistent reads and writes.
    pub passthrough: u64,
    /// Tags invalidated and keys removed by writes.
    pub invalidations: u64,
    /// Reads after a write that returned what the write made, and reads after a write checked.
    pub reads_after_writes: (u64, u64),
}
/// What the cache did between two snapshots: `hit`, `3 misses`, `write`, ...
pub(super) fn outcome(before: &StatsSnapshot, after: &StatsSnapshot, is_write: bool) -> String {
    let counts = [
        (after.hits - before.hits, "hit"),
        (after.misses - before.misses, "miss"),
        (
            after.passthrough - before.passthrough,
            if is_write { "write" } else { "pass" },
        ),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| match count {
            1 => (*what).to_owned(),
            n => format!("{n} {what}s"),
        })
        .collect();
    parts.join(" + ")
}

impl fmt::Display for DynamoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "aws-sdk-dynamodb through the cache, against a local DynamoDB-compatible server (moto): \
             table of orders (partition key \"customer\", sort key \"order\"), TTL {} s\n",
            TTL.as_secs()
        )?;
        writeln!(
            f,
            " #  {:<50} {:<8} {:>5}  result",
            "request", "cache", "calls"
        )?;
        for (n, step) in self.steps.iter().enumerate() {
            let check = match step.sees_write {
                Some(true) => "  <- sees the write",
                Some(false) => "  <- STALE: misses the write",
                None => "",
            };
            writeln!(
                f,
                "{:>2}  {:<50} {:<8} {:>5}  {}{check}",
                n + 1,
                step.request,
                step.cache,
                step.table_calls,
                step.result
            )?;
        }
        let (ok, checked) = self.reads_after_writes;
        let (calls_saved, units_saved) = saved(self);
        writeln!(
            f,
            "\nrequests {}: {} DynamoDB calls through the cache, {} without it ({calls_saved} saved)",
            self.requests, self.cached.calls, self.uncached.calls,
        )?;
        writeln!(
            f,
            "read capacity units consumed: {:.1} through the cache, {:.1} without it ({units_saved:.1} saved); \
             write units {:.1} and {:.1}",
            self.cached.read_units,
            self.uncached.read_units,
            self.cached.write_units,
            self.uncached.write_units,
        )?;
        writeln!(
            f,
            "cache: {} hits, {} misses, {} passed through (consistent reads and writes), {} invalidations",
            self.hits, self.misses, self.passthrough, self.invalidations
        )?;
        write!(f, "reads after a write that saw it: {ok} of {checked}")
    }
}
