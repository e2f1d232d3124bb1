//! QPS limits per interface group and principal (CONTROL.md §B): each principal (the main account, each
//! sub-user) has its own limiter per interface group, 50 calls a second by default, configurable per group
//! and per sub-user, off at 0. UpgradeGroupFaceModelVersion has its own 10 a second besides, and CAM's calls
//! one limit together (`cam`, 50). Apart from these, `FailureLimits` counts calls that fail authentication
//! per client address.
//!
//! Limiters are `governor`'s GCRA cells: a principal may spend its whole second's quota at once (burst =
//! the limit) and then one call per 1/limit seconds. They are made on a principal's first call, so the
//! table holds at most (principals × 10) small cells. A refused call has cost a signature check and a
//! hash lookup: nothing of its parameters has been parsed.
//!
//! Several replicas on one database hold the limits for the deployment as a whole, as Tencent's do: each
//! replica enforces its share. With n replicas live (`Share`, counted from the replicas' heartbeats), a
//! limit of L a second lets each replica admit L/n a second, with bursts of ⌊L/n⌋ (at least 1), so the
//! replicas together admit at most L a second however a load balancer spreads the calls. When a replica
//! dies, the others take its share back within 5 s of its last heartbeat. The error is the same
//! `RequestLimitExceeded`, and its message names the share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;

use crate::api::access::{Access, InterfaceGroup};
use crate::api::{ApiError, ErrorCode, Principal};

pub use crate::config::{CAM_KEY, DEFAULT_GROUP_QPS, DEFAULT_UPGRADE_QPS, QpsConfig, UPGRADE_KEY};
const UPGRADE_ACTION: &str = "UpgradeGroupFaceModelVersion";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Group(InterfaceGroup),
    Upgrade,
    /// CAM's own calls, all together.
    Cam,
}

/// A principal's limiter of one bucket, made for a number of replicas sharing the limit; `None` where the
/// limit is 0 (off).
type Limiter = (u32, Option<Arc<DefaultDirectRateLimiter>>);

/// How many replicas share the limits now (1: this server alone).
pub type Share = Arc<dyn Fn() -> u32 + Send + Sync>;

pub struct RateLimits {
    config: QpsConfig,
    share: Share,
    limiters: RwLock<HashMap<(Principal, Bucket), Limiter>>,
}

/// One replica's cell for a limit of `limit` a second shared by `replicas`.
fn cell(limit: u32, replicas: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    let limit = NonZeroU32::new(limit)?;
    let quota = if replicas <= 1 {
        Quota::per_second(limit)
    } else {
        let burst = NonZeroU32::new((limit.get() / replicas).max(1)).expect("at least 1");
        Quota::with_period(Duration::from_secs_f64(
            f64::from(replicas) / f64::from(limit.get()),
        ))
        .expect("a positive period")
        .allow_burst(burst)
    };
    Some(Arc::new(RateLimiter::direct(quota)))
}

impl RateLimits {
    /// Limits this server enforces alone.
    pub fn new(config: QpsConfig) -> Self {
        Self::shared(config, Arc::new(|| 1))
    }

    /// Limits shared among the replicas `share` counts.
    pub fn shared(config: QpsConfig, share: Share) -> Self {
        Self {
            config,
            share,
            limiters: RwLock::new(HashMap::new()),
        }
    }

    /// "N calls a second", and this replica's share of it when others share it.
    fn describe(&self, quota: u32) -> String {
        match (self.share)() {
            n if n > 1 => format!(
                "{quota} calls a second for the deployment; this server, one of {n} replicas, admits {:.1}",
                f64::from(quota) / f64::from(n)
            ),
            _ => format!("{quota} calls a second"),
        }
    }

    /// Count a call; refuse it when its principal is over a limit. `user_name` names a sub-user (its own
    /// settings), asked only when a limiter is made.
    pub fn check(
        &self,
        principal: Principal,
        user_name: impl Fn() -> Option<String>,
        action: &str,
        access: Access,
    ) -> Result<(), ApiError> {
        if !self.allow(principal, Bucket::Group(access.group), &user_name) {
            return Err(ApiError::new(
                ErrorCode::RequestLimitExceeded,
                format!(
                    "The request rate exceeds the limit of the interface group {} ({}): {}.",
                    access.group.key(),
                    access.group.tencent_name(),
                    self.describe(self.quota(principal, Bucket::Group(access.group), &user_name))
                ),
            ));
        }
        if action == UPGRADE_ACTION && !self.allow(principal, Bucket::Upgrade, &user_name) {
            return Err(ApiError::new(
                ErrorCode::FailedOperationRequestLimitExceeded,
                format!(
                    "UpgradeGroupFaceModelVersion is limited to {}.",
                    self.describe(self.quota(principal, Bucket::Upgrade, &user_name))
                ),
            ));
        }
        Ok(())
    }

    /// Count a CAM call (one limit for all of CAM's actions, setting `cam`, 50 a second by default).
    pub fn check_cam(
        &self,
        principal: Principal,
        user_name: impl Fn() -> Option<String>,
    ) -> Result<(), ApiError> {
        if self.allow(principal, Bucket::Cam, &user_name) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::RequestLimitExceeded,
            format!(
                "The request rate exceeds the limit of CAM's calls: {}.",
                self.describe(self.quota(principal, Bucket::Cam, &user_name))
            ),
        ))
    }

    /// Drop a deleted sub-user's limiters (uins are never given again, so nothing would reach them).
    pub fn forget(&self, uin: u64) {
        self.limiters
            .write()
            .retain(|(principal, _), _| *principal != Principal::User(uin));
    }

    fn allow(
        &self,
        principal: Principal,
        bucket: Bucket,
        user_name: &impl Fn() -> Option<String>,
    ) -> bool {
        let replicas = (self.share)().max(1);
        if let Some((made_for, limiter)) = self.limiters.read().get(&(principal, bucket))
            && *made_for == replicas
        {
            return limiter.as_ref().is_none_or(|l| l.check().is_ok());
        }
        // A first call, or the replicas sharing the limit changed: a cell for the share of now.
        let limiter = cell(self.quota(principal, bucket, user_name), replicas);
        let mut table = self.limiters.write();
        let entry = table
            .entry((principal, bucket))
            .or_insert_with(|| (replicas, limiter.clone()));
        if entry.0 != replicas {
            *entry = (replicas, limiter);
        }
        entry.1.as_ref().is_none_or(|l| l.check().is_ok())
    }

    fn quota(
        &self,
        principal: Principal,
        bucket: Bucket,
        user_name: &impl Fn() -> Option<String>,
    ) -> u32 {
        let name = match principal {
            Principal::Main => None,
            Principal::User(_) => user_name(),
        };
        match bucket {
            Bucket::Group(g) => self
                .config
                .limit(name.as_deref(), g.key(), DEFAULT_GROUP_QPS),
            Bucket::Upgrade => self
                .config
                .limit(name.as_deref(), UPGRADE_KEY, DEFAULT_UPGRADE_QPS),
            Bucket::Cam => self
                .config
                .limit(name.as_deref(), CAM_KEY, DEFAULT_GROUP_QPS),
        }
    }
}

/// Calls that fail authentication, per client address: a token bucket of `rate` a second holding five
/// seconds' worth. An address with an empty bucket has its calls refused before their bodies are read,
/// until the bucket refills. Addresses with full buckets are forgotten, so the table holds only addresses
/// that failed lately, and at most `MAX_ADDRESSES` of them (past that the oldest-refilled are dropped).
pub struct FailureLimits {
    rate: f64,
    burst: f64,
    table: parking_lot::Mutex<HashMap<IpAddr, TokenBucket>>,
}

/// A token bucket: tokens left at `at`.
#[derive(Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    at: Instant,
}

const MAX_ADDRESSES: usize = 100_000;

impl FailureLimits {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            rate: f64::from(per_second),
            burst: f64::from(per_second) * 5.0,
            table: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    fn refilled(&self, bucket: TokenBucket, now: Instant) -> f64 {
        (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate).min(self.burst)
    }

    /// Refuse a call from an address whose failures used up its bucket.
    pub fn admit(&self, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let table = self.table.lock();
        match table.get(&ip) {
            Some(bucket) if self.refilled(*bucket, now) < 1.0 => Err(ApiError::new(
                ErrorCode::RequestLimitExceeded,
                format!(
                    "Too many calls from this address failed authentication (more than {} a second); \
                     retry shortly with a valid signature.",
                    self.rate
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Count a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut table = self.table.lock();
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&ip) {
            let burst = self.burst;
            table.retain(|_, b| self.refilled(*b, now) < burst);
            if table.len() >= MAX_ADDRESSES {
                table.clear();
            }
        }
        let bucket = table.entry(ip).or_insert(TokenBucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        *bucket = TokenBucket {
            tokens: (tokens - 1.0).max(0.0),
            at: now,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::access;

    fn burst(limits: &RateLimits, principal: Principal, action: &str, n: usize) -> usize {
        let access = access::of(action).unwrap();
        (0..n)
            .filter(|_| {
                limits
                    .check(principal, || Some("alice".into()), action, access)
                    .is_ok()
            })
            .count()
    }

    /// The main account's next GetGroupList, refused.
    fn one_more(limits: &RateLimits) -> ApiError {
        limits
            .check(
                Principal::Main,
                || None,
                "GetGroupList",
                access::of("GetGroupList").unwrap(),
            )
            .unwrap_err()
    }

    #[test]
    fn a_burst_gets_the_limit_and_other_principals_and_groups_are_unaffected() {
        let limits = RateLimits::new(QpsConfig::default());
        let passed = burst(&limits, Principal::Main, "GetGroupList", 120);
        assert!((50..=52).contains(&passed), "{passed}");
        let refused = one_more(&limits);
        assert_eq!(refused.code, ErrorCode::RequestLimitExceeded);
        assert!((50..=52).contains(&burst(&limits, Principal::User(7), "GetGroupList", 120)));
        assert!((50..=52).contains(&burst(&limits, Principal::Main, "SearchFaces", 120)));
    }

    #[test]
    fn settings_per_group_and_per_user_and_zero_is_off() {
        let config: QpsConfig = toml_like(
            &[("search", 5), ("group_management", 0)],
            &[("alice", "search", 2)],
        );
        config.validate().unwrap();
        let limits = RateLimits::new(config);
        assert!((5..=6).contains(&burst(&limits, Principal::Main, "SearchFaces", 20)));
        assert!((2..=3).contains(&burst(&limits, Principal::User(7), "SearchFaces", 20)));
        assert_eq!(burst(&limits, Principal::Main, "GetGroupList", 500), 500);
    }

    #[test]
    fn replicas_share_a_limit() {
        let replicas = Arc::new(std::sync::atomic::AtomicU32::new(4));
        let counted = replicas.clone();
        let limits = RateLimits::shared(
            QpsConfig::default(),
            Arc::new(move || counted.load(std::sync::atomic::Ordering::Relaxed)),
        );
        // 50 a second among 4: bursts of 12 here.
        let passed = burst(&limits, Principal::Main, "GetGroupList", 120);
        assert!((12..=13).contains(&passed), "{passed}");
        let refused = one_more(&limits);
        assert!(
            refused.message.contains("one of 4 replicas"),
            "{}",
            refused.message
        );
        // One replica left: the whole limit again.
        replicas.store(1, std::sync::atomic::Ordering::Relaxed);
        let passed = burst(&limits, Principal::Main, "GetGroupList", 120);
        assert!((50..=52).contains(&passed), "{passed}");
        // More replicas than calls a second: one each, one call every n/limit seconds.
        replicas.store(80, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(burst(&limits, Principal::Main, "GetGroupList", 10), 1);
    }

    #[test]
    fn upgrades_have_their_own_ten_a_second() {
        let limits = RateLimits::new(QpsConfig::default());
        let access = access::of(UPGRADE_ACTION).unwrap();
        let codes: Vec<_> = (0..20)
            .map(|_| limits.check(Principal::Main, || None, UPGRADE_ACTION, access))
            .collect();
        let refused: Vec<_> = codes.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!((9..=10).contains(&refused.len()), "{}", refused.len());
        assert!(
            refused
                .iter()
                .all(|e| e.code == ErrorCode::FailedOperationRequestLimitExceeded)
        );
    }

    #[test]
    fn cam_calls_have_their_limit_and_deleted_users_are_forgotten() {
        let limits = RateLimits::new(QpsConfig::default());
        let passed = (0..80)
            .filter(|_| limits.check_cam(Principal::User(9), || None).is_ok())
            .count();
        assert!((50..=52).contains(&passed), "{passed}");
        assert!(!limits.limiters.read().is_empty());
        limits.forget(9);
        assert!(limits.limiters.read().is_empty());
    }

    #[test]
    fn failed_authentications_are_limited_per_address() {
        let limits = FailureLimits::new(20).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..100 {
            limits.admit(a).unwrap();
            limits.failed(a);
        }
        assert_eq!(
            limits.admit(a).unwrap_err().code,
            ErrorCode::RequestLimitExceeded
        );
        limits.admit(b).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(120));
        limits.admit(a).unwrap();
        assert!(FailureLimits::new(0).is_none());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let config = toml_like(&[("serch", 5)], &[]);
        assert!(config.validate().unwrap_err().contains("serch"));
        let config = toml_like(&[], &[("bob", "detect", 1)]);
        assert!(config.validate().unwrap_err().contains("[qps.users.bob]"));
    }

    fn toml_like(groups: &[(&str, u32)], users: &[(&str, &str, u32)]) -> QpsConfig {
        let mut c = QpsConfig::default();
        for (k, v) in groups {
            c.groups.insert(k.to_string(), *v);
        }
        for (u, k, v) in users {
            c.users
                .entry(u.to_string())
                .or_default()
                .insert(k.to_string(), *v);
        }
        c
    }
}
