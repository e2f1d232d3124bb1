//! Background work, persisted in the store and resumed at start:
//! - `mover`: groups moving to another network or version. A version's network changed (its faces are
//!   embedded again from their stored crops), or UpgradeGroupFaceModelVersion / RevertGroupFaceModelVersion.
//!   A group keeps serving what it serves until every face has an embedding of the target network, then
//!   switches at once;
//! - `similar`: the legacy duplicate-person checks (CheckSimilarPerson): the pair scan, its cost estimate,
//!   a running check's saved progress and the queue worker;
//! - `links`: the result files both produce, behind links that expire;
//! - `lease`: which replica runs each kind of work when several share a database.

pub mod lease;
pub mod links;
pub mod mover;
pub mod similar;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::face::FacePipeline;
use crate::face::ModelVersion;
use crate::face::embed::Recognition;
use crate::index::Indexes;
use crate::store::{Store, StoreError};
use links::Links;

/// A JobId in Tencent's shape, `{account}_{kind}_{unix seconds}_{8 letters and digits}` (e.g.
/// `iai_upgrade_group_1796000000_0f3a9c2b`; this server's account part is `iai`).
pub fn new_job_id(kind: &str) -> String {
    let tail: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect();
    format!("iai_{kind}_{}_{tail}", crate::store::now_ms() / 1000)
}

/// How fast background re-embedding goes (configuration: `reembed_batch_persons`, `reembed_pause_ms`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Persons per batch (each with up to 5 faces); each batch takes one inference permit.
    pub batch_persons: usize,
    pub pause: std::time::Duration,
}

/// What the background workers share, and how requests wake them.
pub struct Jobs {
    pub store: Store,
    pub indexes: Arc<Indexes>,
    /// The face models, for re-extracting embeddings.
    pub pipeline: Arc<FacePipeline>,
    pub links: Arc<Links>,
    pub pace: Pace,
    /// This server's name among the replicas (the holder of leases).
    pub replica: String,
    moves: Notify,
    checks: Notify,
}

impl Jobs {
    pub fn new(
        store: Store,
        indexes: Arc<Indexes>,
        pipeline: Arc<FacePipeline>,
        links: Arc<Links>,
        pace: Pace,
        replica: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            indexes,
            pipeline,
            links,
            pace,
            replica,
            moves: Notify::new(),
            checks: Notify::new(),
        })
    }

    /// Start the workers (they pick up whatever the store says is under way), each when this server holds
    /// its lease.
    pub fn start(self: &Arc<Self>) {
        let moving = lease::Lease::keep(self.store.clone(), "mover", self.replica.clone());
        let checking = lease::Lease::keep(self.store.clone(), "checks", self.replica.clone());
        tokio::spawn(mover::run(self.clone(), moving));
        tokio::spawn(similar::run(self.clone(), checking));
    }

    /// A group started moving.
    pub fn wake_mover(&self) {
        self.moves.notify_one();
    }

    /// A duplicate check was asked for.
    pub fn wake_checks(&self) {
        self.checks.notify_one();
    }
}

/// At start: every group whose network is no longer its version's current one starts moving to it (the
/// stored faces are embedded again in the background; the group answers on its old embeddings meanwhile).
/// Returns the retired networks some group still serves, which must be loaded.
pub async fn plan_network_changes(store: &Store) -> Result<Vec<String>, StoreError> {
    let plan = store.move_off_retired_networks(current_network).await?;
    for moved in &plan.moved {
        tracing::info!(
            group = moved.group_id,
            from = moved.from,
            to = moved.to,
            "the group's network changed: its faces will be embedded again"
        );
    }
    Ok(plan.retired)
}

/// The network a group of `version` should serve (an unknown version is taken for 3.0, as at load).
fn current_network(version: &str) -> &'static str {
    Recognition::current(ModelVersion::parse(version).unwrap_or(ModelVersion::V3)).file
}
