//! What the wire asks of access control, as interfaces (as `s3s` asks its `S3Auth` and `S3Access`): the
//! keys stored beside the configuration's (`KeyStore`, asked while a signature is checked) and, once per
//! call, a consistent view that names sub-users and authorises the call (`AccessControl`). `cam`
//! implements both; a server without CAM has neither, and every key is the main account's.

use std::net::IpAddr;
use std::sync::Arc;

use super::named::Named;
use crate::api::access::Access;
use crate::api::{ApiError, GroupCheck, GroupFilter, RequestContext, Service};

/// An active key stored beside the configuration's, and the account it signs for.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub secret_key: String,
    pub principal: crate::api::Principal,
}

/// The keys stored beside the configuration's (CAM's access keys), read at each call so that a key
/// created, deactivated or deleted applies to the next one.
pub trait KeyStore: Send + Sync + 'static {
    fn key(&self, secret_id: &str) -> Option<StoredKey>;
}

/// Access control: a view per call, so that every question one call asks is answered from one state.
pub trait AccessControl: Send + Sync + 'static {
    fn view(&self) -> Arc<dyn AccessView>;
}

/// One state of access control.
pub trait AccessView: Send + Sync {
    /// A sub-user's name (its QPS limits are configured by name).
    fn user_name(&self, uin: u64) -> Option<&str>;
    /// A sub-user's uin by name (a deleted user's QPS cells go with it).
    fn user_uin(&self, name: &str) -> Option<u64>;
    /// `Ok`: allowed, with what the action must still apply. `Err`: refused, or a named id is malformed.
    fn authorize(&self, facts: &Facts) -> Result<Grant, ApiError>;
}

/// What authorisation needs of the request besides its context.
pub struct Facts<'a> {
    pub ctx: &'a RequestContext,
    pub service: Service,
    /// IAI actions only.
    pub access: Option<Access>,
    pub named: &'a Named,
    pub ip: Option<IpAddr>,
    pub now: i64,
}

/// What the action is then told: the groups a listing may show, the check of a person's groups.
#[derive(Default)]
pub struct Grant {
    pub visible_groups: Option<GroupFilter>,
    pub existing_groups: Option<GroupCheck>,
}
