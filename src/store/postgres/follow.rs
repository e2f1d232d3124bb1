//! A replica follows the change log: a connection of its own LISTENs on `iai_change_log`, and every
//! notification, or `POLL` without one, reads the entries after the last applied and hands them to the
//! followers in order. After a disconnect it reconnects and catches up from the last applied number. Each
//! round also records the replica's position and heartbeat in `replicas`, counts the replicas seen lately
//! (they share the QPS limits), and trims the log below what every live replica has applied.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::Db;
use crate::store::changes::{Log, hydrate_all};
use crate::store::sql::changes::View;
use crate::store::{Change, StoreError, now_ms};

/// How often the log is read when no notification came (the fallback when one is lost).
pub const POLL: Duration = Duration::from_millis(250);
/// Entries read per query while catching up.
const PAGE: i64 = 500;
/// A replica not seen for this long is not live: the log is trimmed without waiting for it.
const LIVE: Duration = Duration::from_secs(60);
/// Replicas seen within this share the QPS limits (heartbeats come every `POLL`): a replica that dies
/// gives its share back to the others this long after its last heartbeat.
const SHARING: Duration = Duration::from_secs(5);
/// Entries older than this are trimmed even if a replica still needs them (it must restart from a snapshot).
const KEEP_AT_MOST: Duration = Duration::from_secs(24 * 3600);

/// This replica: its id (in the access log, `replicas` and job leases) and the address it serves on.
#[derive(Clone, Debug)]
pub struct Replica {
    pub id: String,
    pub address: String,
}

/// Follow the log from `log.applied()` until the process ends.
pub(in crate::store) async fn run(db: Db, log: Arc<Log>, replica: Replica) {
    let started = now_ms();
    let mut backoff = Duration::from_millis(100);
    loop {
        match follow_connected(&db, &log, &replica, started).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "the change-log connection failed; reconnecting"),
        }
        log.unconfirm();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn follow_connected(
    db: &Db,
    log: &Arc<Log>,
    replica: &Replica,
    started: i64,
) -> Result<(), StoreError> {
    let (client, mut connection) = db.config().connect(NoTls).await?;
    // The connection's messages: notifications wake the loop; its end (an error, the server gone) ends it.
    let (wake, mut woken) = mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = wake.try_send(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the change-log connection ended");
                    return;
                }
                None => return,
            }
        }
    });
    let result = async {
        client.batch_execute("LISTEN iai_change_log").await?;
        tracing::info!(applied = log.applied(), "following the change log");
        loop {
            catch_up(db, &client, log).await?;
            heartbeat(&client, log, replica, started).await?;
            tokio::select! {
                woke = woken.recv() => if woke.is_none() {
                    return Err(StoreError::Task("the change-log connection closed".into()));
                },
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Apply every entry after the last applied; the log is confirmed current once a read comes back short.
/// Changes whose writer's rows travel only in process (a rebuilt group's vectors, the CAM tables) are
/// completed from one read of the database (`changes::hydrate`) before they are applied, on the blocking
/// pool.
async fn catch_up(
    db: &Db,
    client: &tokio_postgres::Client,
    log: &Arc<Log>,
) -> Result<(), StoreError> {
    loop {
        let from = log.applied() as i64;
        let rows = client
            .query(
                "SELECT seq, body FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&from, &PAGE],
            )
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let seq: i64 = row.get(0);
            if seq != from + 1 + n as i64 {
                // The entries this replica needed were trimmed: only a fresh start can bring it back.
                log.lost(seq as u64);
                return Err(StoreError::Task(format!(
                    "the change log was trimmed past this replica (applied {}, next kept {seq}): restart it",
                    log.applied()
                )));
            }
            entries.push((seq as u64, Change::decode(row.get::<_, &[u8]>(1))?));
        }
        if entries.iter().any(|(_, change)| change.needs_hydrating()) {
            entries = db
                .read(move |conn| hydrate_all(entries, &View(conn)))
                .await?;
        }
        // Applying is CPU work (a group's vectors, a rebuilt index): off the async workers, which go on
        // serving calls meanwhile. Entries are applied in order, one page at a time.
        let applying = log.clone();
        tokio::task::spawn_blocking(move || {
            for (seq, change) in &entries {
                applying.apply(*seq, std::slice::from_ref(change));
            }
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        if (rows.len() as i64) < PAGE {
            log.confirm();
            return Ok(());
        }
    }
}

/// Remove `replica` from the live replicas (it is stopping).
pub async fn leave(db: &Db, replica_id: &str) -> Result<(), StoreError> {
    db.client()
        .await?
        .execute("DELETE FROM replicas WHERE replica_id = $1", &[&replica_id])
        .await?;
    Ok(())
}

/// (id, address) of the replicas seen within `LIVE`.
pub async fn live_replicas(db: &Db) -> Result<Vec<(String, String)>, StoreError> {
    let since = now_ms() - LIVE.as_millis() as i64;
    Ok(db
        .client()
        .await?
        .query(
            "SELECT replica_id, address FROM replicas WHERE seen_ms > $1 ORDER BY replica_id",
            &[&since],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Record this replica's position, and trim what every live replica has applied (or what is too old).
async fn heartbeat(
    client: &tokio_postgres::Client,
    log: &Log,
    replica: &Replica,
    started: i64,
) -> Result<(), StoreError> {
    if log.leaving() {
        return Ok(());
    }
    let now = now_ms();
    client
        .execute(
            "INSERT INTO replicas (replica_id, address, applied, started_ms, seen_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (replica_id) DO UPDATE SET address = $2, applied = $3, seen_ms = $5",
            &[&replica.id, &replica.address, &(log.applied() as i64), &started, &now],
        )
        .await?;
    let sharing: i64 = client
        .query_one(
            "SELECT count(*) FROM replicas WHERE seen_ms > $1",
            &[&(now - SHARING.as_millis() as i64)],
        )
        .await?
        .get(0);
    log.set_live_replicas(u32::try_from(sharing).unwrap_or(u32::MAX));
    client
        .execute(
            // The newest entry stays: it carries the next number.
            "DELETE FROM change_log WHERE seq < (SELECT max(seq) FROM change_log)
             AND (seq <= (SELECT min(applied) FROM replicas WHERE seen_ms > $1) OR at_ms < $2)",
            &[
                &(now - LIVE.as_millis() as i64),
                &(now - KEEP_AT_MOST.as_millis() as i64),
            ],
        )
        .await?;
    Ok(())
}
