//! `CamService`: the CAM actions (users, access keys, policies, attachments) with CAM's rules and error
//! codes, on top of `store::cam`. Every write commits, then replaces the shared `Directory` while the
//! store's write lock is still held, so directories are published in commit order and the next request
//! is checked against the new state.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Transaction;

use super::directory::{self, Directory, Shared};
use super::generated::service::Cam;
use super::generated::types::*;
use super::policy::{self, PolicyErrorKind};
use super::presets;
use crate::api::{ApiError, ErrorCode, Principal, RequestContext};
use crate::store::cam::{self as rows, AttachmentRow, KeyRow, PolicyRow, UserRow};
use crate::store::{Store, now_ms};

/// CAM's limits (Tencent's documented quotas).
const MAX_USERS: u64 = 1000;
const MAX_KEYS_PER_USER: usize = 2;
const MAX_POLICIES: u64 = 1500;
const MAX_ATTACHMENTS_PER_USER: usize = 200;
const MAX_DESCRIPTION_BYTES: usize = 300;

pub struct CamService {
    store: Store,
    directory: Shared,
    owner_uin: u64,
    /// The configuration's SecretIds: the main account's keys that CAM lists but cannot change.
    configured_keys: Vec<String>,
    started: String,
    /// What the last directory build compiled (policies, users' unions), reused by the next: a write
    /// recompiles only what it changed. Locked inside the store's write lock only.
    compiled: Arc<parking_lot::Mutex<directory::Compiled>>,
}

impl CamService {
    /// Load the directory from the store.
    pub async fn open(
        store: Store,
        owner_uin: u64,
        configured_keys: Vec<String>,
    ) -> anyhow::Result<Self> {
        let snapshot = store
            .read(|conn| rows::snapshot(conn).map_err(anyhow::Error::from))
            .await?;
        let mut compiled = directory::Compiled::default();
        let built = Directory::build_with(owner_uin, &snapshot, &mut compiled);
        Ok(Self {
            store,
            directory: Directory::shared(built),
            owner_uin,
            configured_keys,
            started: datetime(now_ms()),
            compiled: Arc::new(parking_lot::Mutex::new(compiled)),
        })
    }

    pub fn directory(&self) -> &Shared {
        &self.directory
    }

    /// Run a CAM write and publish the directory it leads to.
    async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + Sync + 'static,
        F: FnOnce(&Transaction) -> Result<T, ApiError> + Send + 'static,
    {
        let owner = self.owner_uin;
        let shared = self.directory.clone();
        let compiled = self.compiled.clone();
        let (out, _) = self
            .store
            .write_then(
                move |tx| {
                    let out = f(tx)?;
                    let snapshot = rows::snapshot(tx)?;
                    // Under the store's write lock: directories are built and published in commit order.
                    let built = Directory::build_with(owner, &snapshot, &mut compiled.lock());
                    Ok::<_, ApiError>((out, Arc::new(built)))
                },
                move |(_, built)| shared.store(built.clone()),
            )
            .await?;
        Ok(out)
    }

    async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, ApiError> + Send + 'static,
    {
        self.store.read(f).await
    }

    /// The uin a call acts on: `TargetUin`, or the caller's own.
    fn target(&self, ctx: &RequestContext, target: Option<u64>) -> u64 {
        match (target, ctx.principal) {
            (Some(uin), _) => uin,
            (None, Principal::Main) => self.owner_uin,
            (None, Principal::User(uin)) => uin,
        }
    }
}

fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// 32 random hex characters (122 bits of a v4 UUID).
fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn error(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// Names of users and policies: 1 to `max` characters of letters, digits and `+=,.@-_`.
fn check_name(name: &str, max: usize, code: ErrorCode, what: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(error(
            code,
            format!(
                "The {what} `{name}` is not valid: 1 to {max} characters of letters, digits and +=,.@-_."
            ),
        ))
    }
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(error(
            ErrorCode::InvalidParameterDescriptionLengthOverlimit,
            format!("Description may not be longer than {MAX_DESCRIPTION_BYTES} bytes."),
        ));
    }
    Ok(())
}

/// Validate a policy document now, so that nothing malformed is ever evaluated.
fn check_document(document: &str) -> Result<(), ApiError> {
    policy::parse(document, &directory::catalogue())
        .map(|_| ())
        .map_err(|e| {
            let code = match e.kind {
                PolicyErrorKind::PolicyDocument => ErrorCode::InvalidParameterPolicyDocumentError,
                PolicyErrorKind::LengthOverLimit => {
                    ErrorCode::InvalidParameterPolicyDocumentLengthOverLimit
                }
                PolicyErrorKind::Version => ErrorCode::InvalidParameterVersionError,
                PolicyErrorKind::Statement => ErrorCode::InvalidParameterStatementError,
                PolicyErrorKind::Effect => ErrorCode::InvalidParameterEffectError,
                PolicyErrorKind::Action => ErrorCode::InvalidParameterActionError,
                PolicyErrorKind::ActionNotExist => ErrorCode::InvalidParameterActionNotExist,
                PolicyErrorKind::Resource => ErrorCode::InvalidParameterResourceError,
                PolicyErrorKind::Condition => ErrorCode::InvalidParameterConditionError,
                PolicyErrorKind::ConditionType => ErrorCode::InvalidParameterConditionTypeError,
                PolicyErrorKind::ConditionContent => {
                    ErrorCode::InvalidParameterConditionContentError
                }
                PolicyErrorKind::Principal => ErrorCode::InvalidParameterPrincipalError,
            };
            error(code, e.message)
        })
}

fn user_not_found(what: impl std::fmt::Display) -> ApiError {
    error(
        ErrorCode::ResourceNotFoundUserNotExist,
        format!("The sub-user {what} does not exist."),
    )
}

fn policy_not_found(policy_id: u64) -> ApiError {
    error(
        ErrorCode::ResourceNotFoundPolicyIdNotFound,
        format!("The policy {policy_id} does not exist."),
    )
}

fn unmodifiable(what: &str) -> ApiError {
    error(
        ErrorCode::FailedOperationUnmodifiable,
        format!("{what} cannot be changed."),
    )
}

/// A policy as CAM lists it, custom or preset.
struct PolicyView {
    policy_id: u64,
    name: String,
    description: String,
    document: String,
    tags: Vec<Tag>,
    preset: bool,
    created_ms: i64,
    updated_ms: i64,
}

impl PolicyView {
    fn custom(row: PolicyRow) -> Self {
        Self {
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            policy_id: row.policy_id,
            name: row.name,
            description: row.description,
            document: row.document,
            preset: false,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        }
    }

    fn preset(p: &presets::Preset) -> Self {
        Self {
            policy_id: p.policy_id,
            name: p.name.to_owned(),
            description: p.description.to_owned(),
            document: p.document.clone(),
            tags: Vec::new(),
            preset: true,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    fn find(conn: &rusqlite::Connection, policy_id: u64) -> Result<Self, ApiError> {
        if let Some(p) = presets::by_id(policy_id) {
            return Ok(Self::preset(p));
        }
        rows::policy_by_id(conn, policy_id)?
            .map(Self::custom)
            .ok_or_else(|| policy_not_found(policy_id))
    }

    fn policy_type(&self) -> u64 {
        if self.preset { 2 } else { 1 }
    }
}

impl Cam for CamService {
    async fn add_user(
        &self,
        _: &RequestContext,
        req: AddUserRequest,
    ) -> Result<AddUserResponse, ApiError> {
        check_name(
            &req.name,
            64,
            ErrorCode::InvalidParameterUserNameIllegal,
            "user name",
        )?;
        let remark = req.remark.unwrap_or_default();
        check_description(&remark)?;
        let console_login = req.console_login.unwrap_or(0).min(1);
        let use_api = req.use_api.unwrap_or(0) == 1;
        // No console sign-in yet: a password is only reported, as Tencent does when it generates one.
        let password = match (console_login, req.password.filter(|p| !p.is_empty())) {
            (1, None) => format!("{}{}", random_hex(), "Aa1!"),
            _ => String::new(),
        };
        let now = now_ms();
        let row = UserRow {
            uin: 0,
            uid: 0,
            name: req.name.clone(),
            remark,
            console_login,
            phone_num: req.phone_num.unwrap_or_default(),
            country_code: req.country_code.unwrap_or_default(),
            email: req.email.unwrap_or_default(),
            created_ms: now,
        };
        let key = use_api.then(|| KeyRow {
            secret_id: format!("AKID{}", random_hex()),
            secret_key: random_hex(),
            uin: 0,
            active: true,
            description: None,
            created_ms: now,
        });
        let (uin, uid, key) = self
            .write(move |tx| {
                if rows::user_by_name(tx, &row.name)?.is_some() {
                    return Err(error(
                        ErrorCode::InvalidParameterSubUserNameInUse,
                        format!("A sub-user named `{}` already exists.", row.name),
                    ));
                }
                if rows::count_users(tx)? >= MAX_USERS {
                    return Err(error(
                        ErrorCode::InvalidParameterSubUserFull,
                        format!("An account has at most {MAX_USERS} sub-users."),
                    ));
                }
                let (uin, uid) = rows::insert_user(tx, &row)?;
                let key = match key {
                    Some(mut key) => {
                        key.uin = uin;
                        rows::insert_key(tx, &key)?;
                        Some(key)
                    }
                    None => None,
                };
                Ok((uin, uid, key))
            })
            .await?;
        Ok(AddUserResponse {
            uin,
            name: req.name,
            password,
            secret_id: key
                .as_ref()
                .map(|k| k.secret_id.clone())
                .unwrap_or_default(),
            secret_key: key.map(|k| k.secret_key).unwrap_or_default(),
            uid,
            phone_num_verify_link: String::new(),
        })
    }

    async fn get_user(
        &self,
        _: &RequestContext,
        req: GetUserRequest,
    ) -> Result<GetUserResponse, ApiError> {
        let name = req.name;
        let user = self
            .read(move |conn| {
                rows::user_by_name(conn, &name)?.ok_or_else(|| user_not_found(format!("`{name}`")))
            })
            .await?;
        Ok(GetUserResponse {
            uin: user.uin,
            name: user.name,
            uid: user.uid,
            remark: Some(user.remark),
            console_login: user.console_login,
            phone_num: user.phone_num,
            country_code: user.country_code,
            email: user.email,
            recently_login_ip: String::new(),
            recently_login_time: String::new(),
        })
    }

    async fn list_users(
        &self,
        _: &RequestContext,
        _: ListUsersRequest,
    ) -> Result<ListUsersResponse, ApiError> {
        let users = self.read(|conn| Ok(rows::users(conn)?)).await?;
        Ok(ListUsersResponse {
            data: users
                .into_iter()
                .map(|u| SubAccountInfo {
                    uin: u.uin,
                    nick_name: u.name.clone(),
                    name: u.name,
                    uid: u.uid,
                    remark: u.remark,
                    console_login: u.console_login,
                    phone_num: u.phone_num,
                    country_code: u.country_code,
                    email: u.email,
                    create_time: datetime(u.created_ms),
                })
                .collect(),
        })
    }

    async fn delete_user(
        &self,
        _: &RequestContext,
        req: DeleteUserRequest,
    ) -> Result<DeleteUserResponse, ApiError> {
        let force = req.force.unwrap_or(0) == 1;
        let name = req.name;
        self.write(move |tx| {
            let user = rows::user_by_name(tx, &name)?
                .ok_or_else(|| user_not_found(format!("`{name}`")))?;
            if !force && !rows::keys_of(tx, user.uin)?.is_empty() {
                return Err(error(
                    ErrorCode::OperationDeniedHaveKeys,
                    format!(
                        "The sub-user `{name}` still has API keys: delete them first, or pass Force=1."
                    ),
                ));
            }
            rows::delete_user(tx, user.uin)?;
            Ok(())
        })
        .await?;
        Ok(DeleteUserResponse {})
    }

    async fn create_access_key(
        &self,
        ctx: &RequestContext,
        req: CreateAccessKeyRequest,
    ) -> Result<CreateAccessKeyResponse, ApiError> {
        let target = self.target(ctx, req.target_uin);
        check_target(ctx, self.owner_uin, target)?;
        if let Some(d) = &req.description {
            let ok = (1..=1024).contains(&d.chars().count())
                && d.chars()
                    .all(|c| c.is_alphanumeric() || "_+=,.@:/-".contains(c));
            if !ok {
                return Err(error(
                    ErrorCode::InvalidParameterParamError,
                    "Description must be 1 to 1024 characters of letters, digits and _+=,.@:/-.",
                ));
            }
        }
        let key = KeyRow {
            secret_id: format!("AKID{}", random_hex()),
            secret_key: random_hex(),
            uin: target,
            active: true,
            description: req.description,
            created_ms: now_ms(),
        };
        let owner = self.owner_uin;
        let configured = self.configured_keys.len();
        let stored = key.clone();
        self.write(move |tx| {
            if target != owner && rows::user_by_uin(tx, target)?.is_none() {
                return Err(user_not_found(target));
            }
            let existing =
                rows::keys_of(tx, target)?.len() + if target == owner { configured } else { 0 };
            if existing >= MAX_KEYS_PER_USER {
                return Err(error(
                    ErrorCode::OperationDeniedAccessKeyOverLimit,
                    format!("Each account has at most {MAX_KEYS_PER_USER} access keys."),
                ));
            }
            rows::insert_key(tx, &stored)?;
            Ok(())
        })
        .await?;
        Ok(CreateAccessKeyResponse {
            access_key: Some(AccessKeyDetail {
                access_key_id: key.secret_id,
                secret_access_key: key.secret_key,
                status: "Active".into(),
                create_time: datetime(key.created_ms),
                description: key.description,
            }),
        })
    }

    async fn list_access_keys(
        &self,
        ctx: &RequestContext,
        req: ListAccessKeysRequest,
    ) -> Result<ListAccessKeysResponse, ApiError> {
        let target = self.target(ctx, req.target_uin);
        check_target(ctx, self.owner_uin, target)?;
        let owner = self.owner_uin;
        let keys = self
            .read(move |conn| {
                if target != owner && rows::user_by_uin(conn, target)?.is_none() {
                    return Err(user_not_found(target));
                }
                Ok(rows::keys_of(conn, target)?)
            })
            .await?;
        let mut listed: Vec<AccessKey> = Vec::new();
        if target == owner {
            listed.extend(self.configured_keys.iter().map(|id| AccessKey {
                access_key_id: id.clone(),
                status: "Active".into(),
                create_time: self.started.clone(),
                description: Some("iai-server configuration".into()),
            }));
        }
        listed.extend(keys.into_iter().map(|k| AccessKey {
            access_key_id: k.secret_id,
            status: if k.active { "Active" } else { "Inactive" }.into(),
            create_time: datetime(k.created_ms),
            description: k.description,
        }));
        Ok(ListAccessKeysResponse {
            access_keys: Some(listed),
        })
    }

    async fn update_access_key(
        &self,
        ctx: &RequestContext,
        req: UpdateAccessKeyRequest,
    ) -> Result<UpdateAccessKeyResponse, ApiError> {
        let active = match req.status.as_str() {
            "Active" => true,
            "Inactive" => false,
            other => {
                return Err(error(
                    ErrorCode::InvalidParameterParamError,
                    format!("Status must be Active or Inactive, not `{other}`."),
                ));
            }
        };
        let target = self.target(ctx, req.target_uin);
        check_target(ctx, self.owner_uin, target)?;
        if self.configured_keys.contains(&req.access_key_id) {
            return Err(unmodifiable("A key from the configuration file"));
        }
        let id = req.access_key_id;
        self.write(move |tx| {
            owned_key(tx, &id, target)?;
            rows::set_key_active(tx, &id, active)?;
            Ok(())
        })
        .await?;
        Ok(UpdateAccessKeyResponse {})
    }

    async fn delete_access_key(
        &self,
        ctx: &RequestContext,
        req: DeleteAccessKeyRequest,
    ) -> Result<DeleteAccessKeyResponse, ApiError> {
        let target = self.target(ctx, req.target_uin);
        check_target(ctx, self.owner_uin, target)?;
        if self.configured_keys.contains(&req.access_key_id) {
            return Err(unmodifiable("A key from the configuration file"));
        }
        let id = req.access_key_id;
        self.write(move |tx| {
            owned_key(tx, &id, target)?;
            rows::delete_key(tx, &id)?;
            Ok(())
        })
        .await?;
        Ok(DeleteAccessKeyResponse {})
    }

    async fn create_policy(
        &self,
        _: &RequestContext,
        req: CreatePolicyRequest,
    ) -> Result<CreatePolicyResponse, ApiError> {
        check_name(
            &req.policy_name,
            128,
            ErrorCode::InvalidParameterPolicyNameError,
            "policy name",
        )?;
        let description = req.description.unwrap_or_default();
        check_description(&description)?;
        check_document(&req.policy_document)?;
        if presets::by_name(&req.policy_name).is_some() {
            return Err(name_in_use(&req.policy_name));
        }
        let now = now_ms();
        let row = PolicyRow {
            policy_id: 0,
            name: req.policy_name,
            description,
            document: req.policy_document,
            tags: serde_json::to_string(&req.tags.unwrap_or_default())
                .unwrap_or_else(|_| "[]".into()),
            created_ms: now,
            updated_ms: now,
        };
        let policy_id = self
            .write(move |tx| {
                if rows::policy_by_name(tx, &row.name)?.is_some() {
                    return Err(name_in_use(&row.name));
                }
                if rows::count_policies(tx)? >= MAX_POLICIES {
                    return Err(error(
                        ErrorCode::FailedOperationPolicyFull,
                        format!("An account has at most {MAX_POLICIES} custom policies."),
                    ));
                }
                Ok(rows::insert_policy(tx, &row)?)
            })
            .await?;
        Ok(CreatePolicyResponse { policy_id })
    }

    async fn get_policy(
        &self,
        _: &RequestContext,
        req: GetPolicyRequest,
    ) -> Result<GetPolicyResponse, ApiError> {
        let p = self
            .read(move |conn| PolicyView::find(conn, req.policy_id))
            .await?;
        Ok(GetPolicyResponse {
            r#type: p.policy_type(),
            policy_name: p.name,
            description: p.description,
            add_time: datetime(p.created_ms),
            update_time: datetime(p.updated_ms),
            policy_document: p.document,
            preset_alias: None,
            is_service_linked_role_policy: 0,
            tags: p.tags,
        })
    }

    async fn list_policies(
        &self,
        _: &RequestContext,
        req: ListPoliciesRequest,
    ) -> Result<ListPoliciesResponse, ApiError> {
        let rp = req.rp.unwrap_or(20);
        let page = req.page.unwrap_or(1);
        if !(1..=200).contains(&rp) || !(1..=200).contains(&page) {
            return Err(error(
                ErrorCode::InvalidParameterParamError,
                "Rp must be 1 to 200 and Page 1 to 200.",
            ));
        }
        let scope = req.scope.unwrap_or_else(|| "All".into());
        let (presets_wanted, custom_wanted) = match scope.as_str() {
            "All" => (true, true),
            "QCS" => (true, false),
            "Local" => (false, true),
            other => {
                return Err(error(
                    ErrorCode::InvalidParameterScopeError,
                    format!("Scope must be All, QCS or Local, not `{other}`."),
                ));
            }
        };
        let keyword = req.keyword.unwrap_or_default();
        let (policies, attachments) = self
            .read(|conn| Ok((rows::policies(conn)?, rows::attachments(conn)?)))
            .await?;
        let mut attached: HashMap<u64, u64> = HashMap::new();
        for a in &attachments {
            *attached.entry(a.policy_id).or_default() += 1;
        }
        let attachments = |id: u64| attached.get(&id).copied().unwrap_or(0);
        let mut all: Vec<PolicyView> = Vec::new();
        if presets_wanted {
            all.extend(presets::PRESETS.iter().map(PolicyView::preset));
        }
        if custom_wanted {
            all.extend(policies.into_iter().map(PolicyView::custom));
        }
        all.retain(|p| p.name.contains(&keyword));
        let total = all.len() as u64;
        let list = all
            .into_iter()
            .skip(((page - 1) * rp) as usize)
            .take(rp as usize)
            .map(|p| StrategyInfo {
                policy_id: p.policy_id,
                attachments: attachments(p.policy_id),
                add_time: datetime(p.created_ms),
                r#type: p.policy_type(),
                create_mode: if p.preset { 1 } else { 2 },
                service_type: p.preset.then(|| "iai".to_owned()),
                is_attached: None,
                deactived: Some(0),
                deactived_detail: Some(Vec::new()),
                is_service_linked_policy: Some(0),
                attach_entity_count: Some(attachments(p.policy_id) as i64),
                attach_entity_boundary_count: Some(0),
                update_time: Some(datetime(p.updated_ms)),
                permission_level: "CloudProduct".into(),
                description: Some(p.description),
                policy_name: p.name,
                tags: p.tags,
            })
            .collect();
        Ok(ListPoliciesResponse {
            total_num: total,
            list,
            service_type_list: Vec::new(),
        })
    }

    async fn update_policy(
        &self,
        _: &RequestContext,
        req: UpdatePolicyRequest,
    ) -> Result<UpdatePolicyResponse, ApiError> {
        if req.policy_id.is_none() && req.policy_name.is_none() {
            return Err(error(
                ErrorCode::InvalidParameterParamError,
                "Give PolicyId or PolicyName.",
            ));
        }
        if let Some(d) = &req.description {
            check_description(d)?;
        }
        if let Some(doc) = &req.policy_document {
            check_document(doc)?;
        }
        let preset = match (req.policy_id, &req.policy_name) {
            (Some(id), _) => presets::by_id(id),
            (None, Some(name)) => presets::by_name(name),
            _ => None,
        };
        if preset.is_some() {
            return Err(unmodifiable("A preset policy"));
        }
        let policy_id = self
            .write(move |tx| {
                let row = match (req.policy_id, &req.policy_name) {
                    (Some(id), _) => {
                        rows::policy_by_id(tx, id)?.ok_or_else(|| policy_not_found(id))?
                    }
                    (None, Some(name)) => rows::policy_by_name(tx, name)?.ok_or_else(|| {
                        error(
                            ErrorCode::ResourceNotFoundPolicyIdNotFound,
                            format!("The policy `{name}` does not exist."),
                        )
                    })?,
                    (None, None) => unreachable!("checked above"),
                };
                let updated = PolicyRow {
                    description: req.description.unwrap_or(row.description.clone()),
                    document: req.policy_document.unwrap_or(row.document.clone()),
                    updated_ms: now_ms(),
                    ..row
                };
                rows::update_policy(tx, &updated)?;
                Ok(updated.policy_id)
            })
            .await?;
        Ok(UpdatePolicyResponse { policy_id })
    }

    async fn delete_policy(
        &self,
        _: &RequestContext,
        req: DeletePolicyRequest,
    ) -> Result<DeletePolicyResponse, ApiError> {
        if req.policy_id.is_empty() {
            return Err(ApiError::missing_parameter("PolicyId"));
        }
        if req.policy_id.iter().any(|id| presets::by_id(*id).is_some()) {
            return Err(unmodifiable("A preset policy"));
        }
        self.write(move |tx| {
            for id in &req.policy_id {
                if rows::policy_by_id(tx, *id)?.is_none() {
                    return Err(policy_not_found(*id));
                }
                rows::delete_policy(tx, *id)?;
            }
            Ok(())
        })
        .await?;
        Ok(DeletePolicyResponse {})
    }

    async fn attach_user_policy(
        &self,
        _: &RequestContext,
        req: AttachUserPolicyRequest,
    ) -> Result<AttachUserPolicyResponse, ApiError> {
        self.write(move |tx| {
            check_attachment(tx, req.policy_id, req.attach_uin)?;
            if rows::attachments_of(tx, req.attach_uin)?.len() >= MAX_ATTACHMENTS_PER_USER {
                return Err(error(
                    ErrorCode::InvalidParameterAttachmentFull,
                    format!("A sub-user has at most {MAX_ATTACHMENTS_PER_USER} policies."),
                ));
            }
            rows::attach(
                tx,
                &AttachmentRow {
                    uin: req.attach_uin,
                    policy_id: req.policy_id,
                    created_ms: now_ms(),
                },
            )?;
            Ok(())
        })
        .await?;
        Ok(AttachUserPolicyResponse {})
    }

    async fn detach_user_policy(
        &self,
        _: &RequestContext,
        req: DetachUserPolicyRequest,
    ) -> Result<DetachUserPolicyResponse, ApiError> {
        self.write(move |tx| {
            check_attachment(tx, req.policy_id, req.detach_uin)?;
            rows::detach(tx, req.detach_uin, req.policy_id)?;
            Ok(())
        })
        .await?;
        Ok(DetachUserPolicyResponse {})
    }

    async fn list_attached_user_policies(
        &self,
        _: &RequestContext,
        req: ListAttachedUserPoliciesRequest,
    ) -> Result<ListAttachedUserPoliciesResponse, ApiError> {
        let rp = req.rp.unwrap_or(20).max(1);
        let page = req.page.unwrap_or(1).max(1);
        let uin = req.target_uin;
        let (attached, total) = self
            .read(move |conn| {
                if rows::user_by_uin(conn, uin)?.is_none() {
                    return Err(user_not_found(uin));
                }
                let attachments = rows::attachments_of(conn, uin)?;
                let total = attachments.len() as u64;
                let mut out = Vec::new();
                for a in attachments
                    .into_iter()
                    .skip(((page - 1) * rp) as usize)
                    .take(rp as usize)
                {
                    out.push((PolicyView::find(conn, a.policy_id)?, a.created_ms));
                }
                Ok((out, total))
            })
            .await?;
        Ok(ListAttachedUserPoliciesResponse {
            total_num: total,
            list: attached
                .into_iter()
                .map(|(p, attached_ms)| AttachPolicyInfo {
                    policy_id: p.policy_id,
                    add_time: datetime(attached_ms),
                    create_mode: if p.preset { 1 } else { 2 },
                    policy_type: if p.preset { "QCS" } else { "User" }.into(),
                    remark: p.description,
                    policy_name: p.name,
                    operate_owner_uin: None,
                    operate_uin: None,
                    operate_uin_type: None,
                    deactived: 0,
                    deactived_detail: Vec::new(),
                })
                .collect(),
        })
    }
}

fn name_in_use(name: &str) -> ApiError {
    error(
        ErrorCode::FailedOperationPolicyNameInUse,
        format!("A policy named `{name}` already exists."),
    )
}

/// A sub-user may manage only its own keys, never the main account's.
fn check_target(ctx: &RequestContext, owner: u64, target: u64) -> Result<(), ApiError> {
    match ctx.principal {
        Principal::User(_) if target == owner => Err(error(
            ErrorCode::OperationDeniedSubUin,
            "A sub-user may not operate the main account's keys.",
        )),
        _ => Ok(()),
    }
}

/// Both ends of an attachment must exist: the policy (custom or preset) and the sub-user.
fn check_attachment(tx: &Transaction, policy_id: u64, uin: u64) -> Result<(), ApiError> {
    PolicyView::find(tx, policy_id)?;
    if rows::user_by_uin(tx, uin)?.is_none() {
        return Err(user_not_found(uin));
    }
    Ok(())
}

/// The key, which must belong to `uin`.
fn owned_key(tx: &Transaction, secret_id: &str, uin: u64) -> Result<KeyRow, ApiError> {
    let key = rows::key_by_id(tx, secret_id)?.ok_or_else(|| {
        error(
            ErrorCode::ResourceNotFoundSecretNotExist,
            format!("The access key `{secret_id}` does not exist."),
        )
    })?;
    if key.uin != uin {
        return Err(error(
            ErrorCode::OperationDeniedUinNotMatch,
            format!("The access key `{secret_id}` does not belong to account {uin}."),
        ));
    }
    Ok(key)
}

/// What the store refused, as Tencent's codes.
impl From<crate::store::cam::Refusal> for ApiError {
    fn from(refusal: crate::store::cam::Refusal) -> Self {
        match refusal {}
    }
}
