//! The operator endpoints' view of the service (`wire::ops`): readiness, metrics, result files, the index
//! digest.

use super::IaiService;
use crate::jobs::links::LinkError;
use crate::store::now_ms;
use crate::wire::ops::{FileRefusal, Operations};

/// Groups named in the `iai_index_vectors` metric (the largest; totals cover all).
const INDEX_METRICS_GROUPS: usize = 100;

/// The operator endpoints' view of the service (`wire::ops`).
impl Operations for IaiService {
    async fn check_ready(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())?;
        self.store
            .ensure_current(self.max_staleness)
            .map_err(|e| e.to_string())
    }

    fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut sizes = self.indexes.sizes();
        let (faces, persons) = sizes.iter().fold((0, 0), |(f, p), (_, faces, persons)| {
            (f + faces, p + persons)
        });
        let mut text = format!(
            "# HELP iai_index_groups Groups in the search index.\n# TYPE iai_index_groups gauge\n\
             iai_index_groups {}\n\
             # HELP iai_index_vectors_total Vectors in every group's search index.\n\
             # TYPE iai_index_vectors_total gauge\n\
             iai_index_vectors_total{{kind=\"faces\"}} {faces}\n\
             iai_index_vectors_total{{kind=\"persons\"}} {persons}\n",
            sizes.len()
        );
        // How far this server may be behind the database: the time since it last confirmed it had applied
        // the change log to its head (0 with SQLite, whose log is applied as writes commit; -1 while it
        // cannot confirm at all, the database being unreachable).
        let _ = writeln!(
            text,
            "# HELP iai_change_log_lag_seconds Time since this server last confirmed it applied the change \
             log to its head (-1: cannot confirm).\n# TYPE iai_change_log_lag_seconds gauge\n\
             iai_change_log_lag_seconds {}",
            self.store.log_lag().map_or(-1.0, |lag| lag.as_secs_f64())
        );
        let _ = writeln!(
            text,
            "# HELP iai_index_vectors Vectors in a group's search index (faces, and persons' fused features), \
             for the {INDEX_METRICS_GROUPS} largest groups.\n# TYPE iai_index_vectors gauge"
        );
        // One series per group would let a key holder with 100,000 groups swamp the metrics.
        sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sizes.truncate(INDEX_METRICS_GROUPS);
        for (group, faces, persons) in sizes {
            // Group ids are letters, digits and -%@#&_ (no quote or backslash to escape).
            let _ = writeln!(
                text,
                "iai_index_vectors{{group=\"{group}\",kind=\"faces\"}} {faces}"
            );
            let _ = writeln!(
                text,
                "iai_index_vectors{{group=\"{group}\",kind=\"persons\"}} {persons}"
            );
        }
        text
    }

    async fn result_file(
        &self,
        name: &str,
        expires: i64,
        signature: &str,
    ) -> Result<Vec<u8>, FileRefusal> {
        self.jobs
            .links
            .read(name, expires, signature, now_ms() / 1000)
            .await
            .map_err(|e| match e {
                LinkError::Invalid => FileRefusal::Invalid(e.to_string()),
                LinkError::Expired | LinkError::Gone => FileRefusal::Gone(e.to_string()),
            })
    }

    async fn index_digest(&self) -> Result<serde_json::Value, String> {
        // One digest at a time: it hashes every vector (a core for a while).
        let Ok(_only) = self.digest_running.try_lock() else {
            return Err("a digest is being computed already; retry shortly".into());
        };
        let indexes = self.indexes.clone();
        // The snapshot with writes paused (no commit is half-way through being applied to the index); it
        // copies keys, not vectors, so writes wait milliseconds. The hashing runs after.
        let snapshot = self
            .store
            .with_writes_paused(move || indexes.snapshot())
            .await
            .map_err(|e| e.to_string())?;
        let digest = tokio::task::spawn_blocking(move || snapshot.digest())
            .await
            .map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "groups": digest }))
    }

    fn is_operator_token(&self, presented: &str) -> bool {
        self.jobs.links.is_operator_token(presented)
    }
}
