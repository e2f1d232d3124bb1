//! The store's named operations on CAM (users, keys, policies), backend-neutral: callers outside `store/`
//! use these and the row types here, never a backend's.
//!
//! Every write checks what it needs (a user exists, a key is the caller's, a limit) in its own transaction
//! and refuses with a `Refusal`; every write that succeeds logs one `Change::Cam` carrying the CAM tables
//! as it left them, from which the CAM directory is rebuilt.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::sql::Sql;
use super::sql::cam as sql;
pub use super::sql::cam::{AttachmentRow, KeyRow, PolicyRow, Snapshot, UserRow};
use super::{Change, Store, StoreError, now_ms};

/// Who holds access keys: the main account, which has no user row, or a sub-user, which must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    Main(u64),
    User(u64),
}

impl Account {
    pub fn uin(self) -> u64 {
        match self {
            Self::Main(uin) | Self::User(uin) => uin,
        }
    }
}

/// A custom policy by its id or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    Id(u64),
    Name(String),
}

impl Store {
    /// AddUser: a sub-user with the next uin and uid, and `key` (given this uin) when there is one, unless
    /// its name is taken or `max_users` exist already. Returns both as stored.
    pub async fn cam_create_user(
        &self,
        mut user: UserRow,
        mut key: Option<KeyRow>,
        max_users: u64,
    ) -> Result<(UserRow, Option<KeyRow>), StoreError> {
        self.write_logged(move |tx| {
            if sql::user_by_name(tx, &user.name)?.is_some() {
                return Err(Refusal::UserNameInUse(user.name).into());
            }
            if sql::count_users(tx)? >= max_users {
                return Err(Refusal::UserLimit.into());
            }
            (user.uin, user.uid) = sql::insert_user(tx, &user)?;
            if let Some(key) = &mut key {
                key.uin = user.uin;
                sql::insert_key(tx, key)?;
            }
            Ok(((user, key), changed(tx)?))
        })
        .await
    }

    /// DeleteUser: the sub-user named `name` with its keys and attachments; one that still has keys only
    /// with `force`.
    pub async fn cam_delete_user(&self, name: String, force: bool) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            let Some(user) = sql::user_by_name(tx, &name)? else {
                return Err(Refusal::NoUserNamed(name).into());
            };
            if !force && !sql::keys_of(tx, user.uin)?.is_empty() {
                return Err(Refusal::UserHasKeys(name).into());
            }
            sql::delete_user(tx, user.uin)?;
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// GetUser: the sub-user named `name`, if any.
    pub async fn cam_user_by_name(&self, name: String) -> Result<Option<UserRow>, StoreError> {
        self.db
            .read(move |conn| sql::user_by_name(conn, &name))
            .await
    }

    /// ListUsers: every sub-user, by uin.
    pub async fn cam_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.db.read(sql::users).await
    }

    /// CreateAccessKey: `key` for `holder` (the key gets its uin), unless the sub-user does not exist or
    /// already has `max_keys` stored keys. Returns the key as stored.
    pub async fn cam_create_access_key(
        &self,
        holder: Account,
        mut key: KeyRow,
        max_keys: usize,
    ) -> Result<KeyRow, StoreError> {
        self.write_logged(move |tx| {
            let uin = holder.uin();
            check_holder(tx, holder)?;
            if sql::keys_of(tx, uin)?.len() >= max_keys {
                return Err(Refusal::KeyLimit.into());
            }
            key.uin = uin;
            sql::insert_key(tx, &key)?;
            Ok((key, changed(tx)?))
        })
        .await
    }

    /// ListAccessKeys: the stored keys of `holder`, oldest first, unless the sub-user does not exist.
    pub async fn cam_access_keys(&self, holder: Account) -> Result<Vec<KeyRow>, StoreError> {
        self.db
            .read(move |conn| {
                check_holder(conn, holder)?;
                sql::keys_of(conn, holder.uin())
            })
            .await
    }

    /// UpdateAccessKey: activate or deactivate the key `secret_id`, which must be `uin`'s.
    pub async fn cam_set_access_key_active(
        &self,
        uin: u64,
        secret_id: String,
        active: bool,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            check_key_owner(tx, &secret_id, uin)?;
            sql::set_key_active(tx, &secret_id, active)?;
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// DeleteAccessKey: the key `secret_id`, which must be `uin`'s.
    pub async fn cam_delete_access_key(
        &self,
        uin: u64,
        secret_id: String,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            check_key_owner(tx, &secret_id, uin)?;
            sql::delete_key(tx, &secret_id)?;
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// CreatePolicy: a custom policy with the next id, unless its name is taken (by a custom policy: the
    /// caller checks the presets' names) or `max_policies` exist already. Returns its id.
    pub async fn cam_create_policy(
        &self,
        policy: PolicyRow,
        max_policies: u64,
    ) -> Result<u64, StoreError> {
        self.write_logged(move |tx| {
            if sql::policy_by_name(tx, &policy.name)?.is_some() {
                return Err(Refusal::PolicyNameInUse(policy.name).into());
            }
            if sql::count_policies(tx)? >= max_policies {
                return Err(Refusal::PolicyLimit.into());
            }
            let policy_id = sql::insert_policy(tx, &policy)?;
            Ok((policy_id, changed(tx)?))
        })
        .await
    }

    /// GetPolicy: the custom policy `policy_id`, if any.
    pub async fn cam_policy(&self, policy_id: u64) -> Result<Option<PolicyRow>, StoreError> {
        self.db
            .read(move |conn| sql::policy_by_id(conn, policy_id))
            .await
    }

    /// ListPolicies: every custom policy by id, and how many users each policy id (custom or preset) is
    /// attached to.
    pub async fn cam_policies(&self) -> Result<(Vec<PolicyRow>, HashMap<u64, u64>), StoreError> {
        self.db
            .read(|conn| Ok((sql::policies(conn)?, sql::attachment_counts(conn)?)))
            .await
    }

    /// UpdatePolicy: replace the description and the document of a custom policy, those given. Returns
    /// its id.
    pub async fn cam_update_policy(
        &self,
        policy: PolicyRef,
        description: Option<String>,
        document: Option<String>,
    ) -> Result<u64, StoreError> {
        self.write_logged(move |tx| {
            let row = match policy {
                PolicyRef::Id(id) => sql::policy_by_id(tx, id)?.ok_or(Refusal::NoPolicy(id))?,
                PolicyRef::Name(name) => match sql::policy_by_name(tx, &name)? {
                    Some(row) => row,
                    None => return Err(Refusal::NoPolicyNamed(name).into()),
                },
            };
            let updated = PolicyRow {
                description: description.unwrap_or(row.description),
                document: document.unwrap_or(row.document),
                updated_ms: now_ms(),
                ..row
            };
            sql::update_policy(tx, &updated)?;
            Ok((updated.policy_id, changed(tx)?))
        })
        .await
    }

    /// DeletePolicy: the custom policies `policy_ids` and their attachments; none unless all exist.
    pub async fn cam_delete_policies(&self, policy_ids: Vec<u64>) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            for id in policy_ids {
                if sql::policy_by_id(tx, id)?.is_none() {
                    return Err(Refusal::NoPolicy(id).into());
                }
                sql::delete_policy(tx, id)?;
            }
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// AttachUserPolicy: attach the policy `policy_id` to the sub-user `uin` (nothing changes when it is
    /// already), unless either does not exist or the user has `max_attachments` already. `preset`: the id
    /// is a built-in policy's, which is not stored.
    pub async fn cam_attach_policy(
        &self,
        uin: u64,
        policy_id: u64,
        preset: bool,
        max_attachments: usize,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            check_attachment_ends(tx, uin, policy_id, preset)?;
            if sql::attachments_of(tx, uin)?.len() >= max_attachments {
                return Err(Refusal::AttachmentLimit.into());
            }
            let row = AttachmentRow {
                uin,
                policy_id,
                created_ms: now_ms(),
            };
            sql::attach(tx, &row)?;
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// DetachUserPolicy: detach the policy `policy_id` from the sub-user `uin` (nothing changes when it was
    /// not attached), unless either does not exist. `preset` as for `cam_attach_policy`.
    pub async fn cam_detach_policy(
        &self,
        uin: u64,
        policy_id: u64,
        preset: bool,
    ) -> Result<(), StoreError> {
        self.write_logged(move |tx| {
            check_attachment_ends(tx, uin, policy_id, preset)?;
            sql::detach(tx, uin, policy_id)?;
            Ok(((), changed(tx)?))
        })
        .await
    }

    /// ListAttachedUserPolicies: the attachments of the sub-user `uin`, oldest first, each with its custom
    /// policy (`None` for a preset's id), unless the user does not exist.
    pub async fn cam_attached_policies(
        &self,
        uin: u64,
    ) -> Result<Vec<(AttachmentRow, Option<PolicyRow>)>, StoreError> {
        self.db
            .read(move |conn| {
                if sql::user_by_uin(conn, uin)?.is_none() {
                    return Err(Refusal::NoUser(uin).into());
                }
                sql::attached_policies(conn, uin)
            })
            .await
    }
}

/// What every CAM write changed: the tables as it leaves them, which the directory is rebuilt from.
fn changed(conn: &dyn Sql) -> Result<Vec<Change>, StoreError> {
    Ok(vec![Change::Cam {
        snapshot: Some(Arc::new(sql::snapshot(conn)?)),
    }])
}

/// A sub-user holding keys must exist; the main account has no row.
fn check_holder(conn: &dyn Sql, holder: Account) -> Result<(), StoreError> {
    match holder {
        Account::User(uin) if sql::user_by_uin(conn, uin)?.is_none() => {
            Err(Refusal::NoUser(uin).into())
        }
        _ => Ok(()),
    }
}

/// The key must exist and be `uin`'s.
fn check_key_owner(conn: &dyn Sql, secret_id: &str, uin: u64) -> Result<(), StoreError> {
    match sql::key_by_id(conn, secret_id)? {
        None => Err(Refusal::NoKey(secret_id.to_owned()).into()),
        Some(key) if key.uin != uin => Err(Refusal::KeyNotOwned {
            secret_id: secret_id.to_owned(),
            uin,
        }
        .into()),
        Some(_) => Ok(()),
    }
}

/// Both ends of an attachment must exist: the policy first (a preset always does), then the sub-user.
fn check_attachment_ends(
    conn: &dyn Sql,
    uin: u64,
    policy_id: u64,
    preset: bool,
) -> Result<(), StoreError> {
    if !preset && sql::policy_by_id(conn, policy_id)?.is_none() {
        return Err(Refusal::NoPolicy(policy_id).into());
    }
    if sql::user_by_uin(conn, uin)?.is_none() {
        return Err(Refusal::NoUser(uin).into());
    }
    Ok(())
}

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No sub-user has this name.
    NoUserNamed(String),
    /// No sub-user has this uin.
    NoUser(u64),
    /// A sub-user has this name already.
    UserNameInUse(String),
    /// As many sub-users as allowed exist already.
    UserLimit,
    /// The named sub-user still has access keys and deletion was not forced.
    UserHasKeys(String),
    /// No access key has this SecretId.
    NoKey(String),
    /// The access key belongs to another account than `uin`.
    KeyNotOwned { secret_id: String, uin: u64 },
    /// The account has as many access keys as allowed already.
    KeyLimit,
    /// No custom policy has this id.
    NoPolicy(u64),
    /// No custom policy has this name.
    NoPolicyNamed(String),
    /// A custom policy has this name already.
    PolicyNameInUse(String),
    /// As many custom policies as allowed exist already.
    PolicyLimit,
    /// The sub-user has as many policies attached as allowed already.
    AttachmentLimit,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUserNamed(name) => write!(f, "no sub-user named `{name}`"),
            Self::NoUser(uin) => write!(f, "no sub-user {uin}"),
            Self::UserNameInUse(name) => write!(f, "sub-user name `{name}` in use"),
            Self::UserLimit => f.write_str("too many sub-users"),
            Self::UserHasKeys(name) => write!(f, "sub-user `{name}` still has access keys"),
            Self::NoKey(id) => write!(f, "no access key `{id}`"),
            Self::KeyNotOwned { secret_id, uin } => {
                write!(f, "access key `{secret_id}` is not account {uin}'s")
            }
            Self::KeyLimit => f.write_str("too many access keys"),
            Self::NoPolicy(id) => write!(f, "no policy {id}"),
            Self::NoPolicyNamed(name) => write!(f, "no policy named `{name}`"),
            Self::PolicyNameInUse(name) => write!(f, "policy name `{name}` in use"),
            Self::PolicyLimit => f.write_str("too many policies"),
            Self::AttachmentLimit => f.write_str("too many policies attached"),
        }
    }
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Cam(refusal)
    }
}
