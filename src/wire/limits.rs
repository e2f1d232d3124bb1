//! QPS limits per interface group and principal (CONTROL.md §B): each principal (the main account, each
//! sub-user) has its own limiter per interface group, 50 calls a second by default, configurable per group
//! and per sub-user, off at 0. UpgradeGroupFaceModelVersion has its own 10 a second besides.
//!
//! Limiters are `governor`'s GCRA cells: a principal may spend its whole second's quota at once (burst =
//! the limit) and then one call per 1/limit seconds. They are made on a principal's first call, so the
//! table holds at most (principals × 10) small cells. A refused call has cost a signature check and a
//! hash lookup: nothing of its parameters has been parsed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;

use crate::api::access::{Access, InterfaceGroup};
use crate::api::{ApiError, ErrorCode, Principal};

pub use crate::config::{DEFAULT_GROUP_QPS, DEFAULT_UPGRADE_QPS, QpsConfig, UPGRADE_KEY};
const UPGRADE_ACTION: &str = "UpgradeGroupFaceModelVersion";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Group(InterfaceGroup),
    Upgrade,
}

/// A principal's limiter of one bucket; `None` where the limit is 0 (off).
type Limiter = Option<Arc<DefaultDirectRateLimiter>>;

pub struct RateLimits {
    config: QpsConfig,
    limiters: RwLock<HashMap<(Principal, Bucket), Limiter>>,
}

impl RateLimits {
    pub fn new(config: QpsConfig) -> Self {
        Self {
            config,
            limiters: RwLock::new(HashMap::new()),
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
                    "The request rate exceeds the limit of the interface group {} ({}): {} calls a second.",
                    access.group.key(),
                    access.group.tencent_name(),
                    self.quota(principal, Bucket::Group(access.group), &user_name)
                ),
            ));
        }
        if action == UPGRADE_ACTION && !self.allow(principal, Bucket::Upgrade, &user_name) {
            return Err(ApiError::new(
                ErrorCode::FailedOperationRequestLimitExceeded,
                format!(
                    "UpgradeGroupFaceModelVersion is limited to {} calls a second.",
                    self.quota(principal, Bucket::Upgrade, &user_name)
                ),
            ));
        }
        Ok(())
    }

    fn allow(
        &self,
        principal: Principal,
        bucket: Bucket,
        user_name: &impl Fn() -> Option<String>,
    ) -> bool {
        if let Some(limiter) = self.limiters.read().get(&(principal, bucket)) {
            return limiter.as_ref().is_none_or(|l| l.check().is_ok());
        }
        let quota = self.quota(principal, bucket, user_name);
        let limiter =
            NonZeroU32::new(quota).map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
        let mut table = self.limiters.write();
        let limiter = table.entry((principal, bucket)).or_insert(limiter);
        limiter.as_ref().is_none_or(|l| l.check().is_ok())
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
        }
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

    #[test]
    fn a_burst_gets_the_limit_and_other_principals_and_groups_are_unaffected() {
        let limits = RateLimits::new(QpsConfig::default());
        let passed = burst(&limits, Principal::Main, "GetGroupList", 120);
        assert!((50..=52).contains(&passed), "{passed}");
        let refused = limits
            .check(
                Principal::Main,
                || None,
                "GetGroupList",
                access::of("GetGroupList").unwrap(),
            )
            .unwrap_err();
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
