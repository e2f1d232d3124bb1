//! What the console reads from the trail: 5-minute statistics and the search log.

use super::Record;
use crate::store::StoreError;
use crate::store::audit::AuditStore;

pub use crate::store::audit::{LogFilter, SEARCH_ACTIONS, StatRow};

/// Buckets starting in `[start_ms, end_ms)`, oldest first.
pub fn stats(trail: &AuditStore, start_ms: i64, end_ms: i64) -> Result<Vec<StatRow>, StoreError> {
    trail.stats(start_ms, end_ms)
}

/// The search log, newest first, and how many rows match.
pub fn search_log(
    trail: &AuditStore,
    filter: &LogFilter,
) -> Result<(Vec<Record>, u64), StoreError> {
    trail.search_log(filter)
}
