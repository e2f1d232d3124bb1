//! Replay protection, a difference from Tencent (setting `replay_protection`, on by default).
//!
//! The official clients sign only `content-type;host` and the body: `X-TC-Action` is not signed, so a
//! captured signed request could be resent with another action (a `GetGroupInfo {"GroupId": "prod"}`
//! becoming a `DeleteGroup`), or resent as it is to repeat a write. The guard remembers every signature
//! seen within the clock-skew window (after it, the signature has expired anyway) and refuses a second
//! use for an action that changes stored state (mode `writes`, the default), or also for another
//! read-only action (mode `strict`). An identical read-only call may always repeat.
//!
//! Why `writes` is the default: the SDKs sign the body and a timestamp in seconds, not the action, so
//! ordinary clients send one signature to several actions: `GetGroupList {}` and `DescribeStatInfo {}`,
//! `DetectLiveFace` and `DetectLiveFaceAccurate` of one image, two tccli runs on one GroupId, all within
//! a second. Refusing those breaks programs written against Tencent; refusing a reused signature for a
//! write stops what a replay can do to stored data, and what a swapped read could show travels readable
//! on the same network anyway (only TLS hides it).
//!
//! A second use on the same TCP connection as the first (same client address and port) is the client
//! itself going on: the official SDKs keep their connection alive, and a `GetGroupInfo {"GroupId": g}`
//! followed within the second by `GetPersonList {"GroupId": g}` or `DeleteGroup {"GroupId": g}` carries
//! one signature. Nobody else can send on that connection without sitting in the middle of it, and such
//! a party could change the request itself, which only TLS prevents.
//!
//! Memory is bounded: an entry is 16 bytes of the signature's SHA-256, the action and an expiry; expired
//! entries are swept as the table grows, and when it is full of live entries a new signature is refused
//! (`RequestLimitExceeded`) rather than forgotten, since forgetting would let a replay through.

use std::collections::HashMap;
use std::net::SocketAddr;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::api::Service;
use crate::api::{ApiError, ErrorCode};

/// Signatures remembered at most (about 48 bytes each in the table).
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// Inserts between sweeps of expired entries.
const SWEEP_EVERY: u32 = 4096;

pub use crate::config::ReplayMode as Mode;

pub struct ReplayGuard {
    mode: Mode,
    /// The clock skew the signatures are checked against: a signature is valid for `timestamp ± skew`.
    skew_secs: i64,
    capacity: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    seen: HashMap<[u8; 16], Seen>,
    inserts: u32,
}

struct Seen {
    /// The connection of the first use.
    origin: Option<SocketAddr>,
    service: Service,
    action: &'static str,
    /// Unix seconds after which the signature is expired, so the entry can go.
    expires: i64,
}

/// One signed call, as the guard sees it.
pub struct Use<'a> {
    pub signature: &'a str,
    /// The client's address and port (its connection).
    pub origin: Option<SocketAddr>,
    /// The time the signature was made for.
    pub timestamp: i64,
    pub service: Service,
    pub action: &'static str,
    /// Changes stored state.
    pub writes: bool,
}

impl ReplayGuard {
    pub fn new(mode: Mode, skew_secs: i64, capacity: usize) -> Self {
        Self {
            mode,
            skew_secs,
            capacity,
            table: Mutex::new(Table::default()),
        }
    }

    /// Remember a signature's first use; refuse a second use for another action or for a write.
    pub fn check(&self, call: &Use, now: i64) -> Result<(), ApiError> {
        let key = fingerprint(call.signature);
        let mut table = self.table.lock();
        if let Some(seen) = table.seen.get(&key)
            && seen.expires >= now
        {
            if seen.origin.is_some() && seen.origin == call.origin {
                return Ok(());
            }
            if call.writes {
                return Err(replayed("for an action that changes stored data"));
            }
            if self.mode == Mode::Strict
                && (seen.service != call.service || seen.action != call.action)
            {
                return Err(replayed("for another action"));
            }
            return Ok(());
        }
        table.inserts += 1;
        if table.inserts >= SWEEP_EVERY || table.seen.len() >= self.capacity {
            table.inserts = 0;
            table.seen.retain(|_, s| s.expires >= now);
        }
        if table.seen.len() >= self.capacity {
            return Err(ApiError::new(
                ErrorCode::RequestLimitExceeded,
                "Too many distinct signed calls within the clock-skew window to remember; retry shortly.",
            ));
        }
        table.seen.insert(
            key,
            Seen {
                origin: call.origin,
                service: call.service,
                action: call.action,
                expires: call.timestamp.saturating_add(self.skew_secs),
            },
        );
        Ok(())
    }

    /// Signatures remembered now (metrics, tests).
    pub fn len(&self) -> usize {
        self.table.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn fingerprint(signature: &str) -> [u8; 16] {
    let digest = Sha256::digest(signature.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

fn replayed(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::AuthFailureSignatureFailure,
        format!(
            "This signature was already used {why}: sign each call anew (replay protection, setting \
             `replay_protection`)."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(signature: &'a str, action: &'static str, writes: bool) -> Use<'a> {
        Use {
            signature,
            origin: Some("10.0.0.1:5000".parse().unwrap()),
            timestamp: 1_000,
            service: Service::Iai,
            action,
            writes,
        }
    }

    #[test]
    fn by_default_a_signature_serves_reads_and_at_most_one_write() {
        let guard = ReplayGuard::new(Mode::Writes, 300, 100);
        let elsewhere = |c: Use<'static>| Use {
            origin: Some("10.0.0.9:5000".parse().unwrap()),
            ..c
        };
        guard
            .check(&call("a", "GetGroupList", false), 1_000)
            .unwrap();
        guard
            .check(&elsewhere(call("a", "DescribeStatInfo", false)), 1_000)
            .unwrap();
        let swapped = guard
            .check(&elsewhere(call("a", "DeleteGroup", true)), 1_000)
            .unwrap_err();
        assert_eq!(swapped.code, ErrorCode::AuthFailureSignatureFailure);
        guard.check(&call("w", "ModifyGroup", true), 1_000).unwrap();
        assert!(
            guard
                .check(&elsewhere(call("w", "ModifyGroup", true)), 1_000)
                .is_err()
        );
        guard
            .check(&elsewhere(call("w", "GetGroupInfo", false)), 1_000)
            .unwrap();
    }

    #[test]
    fn strictly_a_signature_serves_one_action_and_one_write() {
        let guard = ReplayGuard::new(Mode::Strict, 300, 100);
        guard
            .check(&call("a", "GetGroupInfo", false), 1_000)
            .unwrap();
        guard
            .check(&call("a", "GetGroupInfo", false), 1_001)
            .unwrap();
        let elsewhere = Use {
            origin: Some("10.0.0.9:5000".parse().unwrap()),
            ..call("a", "DeleteGroup", true)
        };
        let swapped = guard.check(&elsewhere, 1_001).unwrap_err();
        assert_eq!(swapped.code, ErrorCode::AuthFailureSignatureFailure);
        let cam = Use {
            service: Service::Cam,
            origin: None,
            ..call("a", "GetGroupInfo", false)
        };
        assert!(guard.check(&cam, 1_001).is_err());
        guard
            .check(&call("b", "CreatePerson", true), 1_000)
            .unwrap();
        let other_connection = |c: Use<'static>| Use {
            origin: Some("10.0.0.1:5001".parse().unwrap()),
            ..c
        };
        assert!(
            guard
                .check(&other_connection(call("b", "CreatePerson", true)), 1_000)
                .is_err()
        );
        // The first connection going on with the same signature is the client itself.
        guard.check(&call("b", "DeleteGroup", true), 1_000).unwrap();
    }

    #[test]
    fn memory_is_bounded_and_expired_signatures_are_forgotten() {
        let guard = ReplayGuard::new(Mode::Writes, 300, 3);
        for s in ["a", "b", "c"] {
            guard.check(&call(s, "GetGroupInfo", false), 1_000).unwrap();
        }
        let full = guard
            .check(&call("d", "GetGroupInfo", false), 1_000)
            .unwrap_err();
        assert_eq!(full.code, ErrorCode::RequestLimitExceeded);
        // Once the first three have expired (timestamp 1000 + 300 s), their room is reused.
        guard
            .check(&call("d", "GetGroupInfo", false), 1_301)
            .unwrap();
        assert_eq!(guard.len(), 1);
    }
}
