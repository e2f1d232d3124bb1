//! Which server runs a kind of background work. Several replicas share one database; each kind of work
//! (moving groups, duplicate checks with the purges) runs on one of them at a time: the holder of its lease,
//! a row it renews every `RENEW`. When the holder dies, the lease runs out after `TTL` and another replica
//! takes it and resumes the work from what the store saved (a move from the faces already embedded, a check
//! from its start). A store nobody shares (SQLite) has one server, which holds every lease without a row.
//!
//! Writes commit one at a time across every replica (the store's write lock), so a conditional upsert is
//! enough to make taking a lease exclusive: no `FOR UPDATE SKIP LOCKED` is needed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

/// How long a lease holds without renewal: a dead holder's work waits this long for another replica.
pub const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews (and others try to take it).
pub const RENEW: Duration = Duration::from_secs(5);

/// A lease kept (or sought) by a task of its own.
pub struct Lease {
    name: &'static str,
    held: watch::Receiver<bool>,
}

impl Lease {
    /// Keep taking or renewing the lease `name` for `owner` until the process ends.
    pub fn keep(store: Store, name: &'static str, owner: String) -> Arc<Self> {
        let (tell, held) = watch::channel(!store.is_shared());
        metrics::gauge!("iai_lease_held", "lease" => name).set(*held.borrow() as u8 as f64);
        if !store.is_shared() {
            return Arc::new(Self { name, held });
        }
        tokio::spawn(async move {
            loop {
                let now_held = match store.take_lease(name, owner.clone(), TTL).await {
                    Ok(held) => held,
                    Err(e) => {
                        // Unknown: the database may have taken it or not; stop working until it answers.
                        tracing::warn!(lease = name, error = %e, "cannot renew a lease");
                        false
                    }
                };
                if now_held != *tell.borrow() {
                    tracing::info!(lease = name, held = now_held, "lease changed hands");
                }
                tell.send_replace(now_held);
                metrics::gauge!("iai_lease_held", "lease" => name).set(now_held as u8 as f64);
                tokio::time::sleep(RENEW).await;
            }
        });
        Arc::new(Self { name, held })
    }

    /// Whether this server holds the lease now.
    pub fn held(&self) -> bool {
        *self.held.borrow()
    }

    /// Wait until this server holds the lease.
    pub async fn wait_held(&self) {
        let mut held = self.held.clone();
        if held.wait_for(|held| *held).await.is_err() {
            // The keeper ended (the runtime is shutting down): never held again.
            std::future::pending::<()>().await;
        }
        tracing::debug!(lease = self.name, "holding the lease");
    }
}
