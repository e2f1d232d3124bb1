//! `CamService`: the CAM actions (users, access keys, policies, attachments) with CAM's rules and error
//! codes, on top of the store's CAM operations (`store::cam`). Every write logs a CAM change, which the
//! directory (`directory::Publisher`, a follower of the store's log) is rebuilt from before the write
//! returns: the next request is checked against the new state.

use iai_policy::{self as policy, PolicyErrorKind};

use super::directory::{self, Publisher, Shared};
use super::presets;
use crate::api::cam::Cam;
use crate::api::cam::types::*;
use crate::api::{ApiError, ErrorCode, Principal, RequestContext};
use crate::store::cam::{Account, KeyRow, PolicyRef, PolicyRow, Refusal, UserRow};
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
}

impl CamService {
    /// Load the directory from the store and follow the store's changes from there.
    pub async fn open(
        store: Store,
        owner_uin: u64,
        configured_keys: Vec<String>,
    ) -> anyhow::Result<Self> {
        let publisher = store
            .follow(move |view| Ok(Publisher::new(owner_uin, &view.cam()?)))
            .await?;
        Ok(Self {
            store,
            directory: publisher.shared().clone(),
            owner_uin,
            configured_keys,
            started: datetime(now_ms()),
        })
    }

    pub fn directory(&self) -> &Shared {
        &self.directory
    }

    /// The uin a call acts on: `TargetUin`, or the caller's own.
    fn target(&self, ctx: &RequestContext, target: Option<u64>) -> u64 {
        match (target, ctx.principal) {
            (Some(uin), _) => uin,
            (None, Principal::Main) => self.owner_uin,
            (None, Principal::User(uin)) => uin,
        }
    }

    /// The account `uin` is: the main account (which has no user row) or a sub-user.
    fn account(&self, uin: u64) -> Account {
        if uin == self.owner_uin {
            Account::Main(uin)
        } else {
            Account::User(uin)
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

    /// The policy `policy_id`: a preset, or else `stored`, the custom policy the store has under that id.
    fn find(policy_id: u64, stored: Option<PolicyRow>) -> Result<Self, ApiError> {
        if let Some(p) = presets::by_id(policy_id) {
            return Ok(Self::preset(p));
        }
        stored
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
            name: req.name,
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
        let (user, key) = self.store.cam_create_user(row, key, MAX_USERS).await?;
        Ok(AddUserResponse {
            uin: user.uin,
            name: user.name,
            password,
            secret_id: key
                .as_ref()
                .map(|k| k.secret_id.clone())
                .unwrap_or_default(),
            secret_key: key.map(|k| k.secret_key).unwrap_or_default(),
            uid: user.uid,
            phone_num_verify_link: String::new(),
        })
    }

    async fn get_user(
        &self,
        _: &RequestContext,
        req: GetUserRequest,
    ) -> Result<GetUserResponse, ApiError> {
        let user = self
            .store
            .cam_user_by_name(req.name.clone())
            .await?
            .ok_or_else(|| user_not_found(format!("`{}`", req.name)))?;
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
        let users = self.store.cam_users().await?;
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
        self.store.cam_delete_user(req.name, force).await?;
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
        let account = self.account(target);
        // The configuration's keys count against the main account's limit.
        let max_keys = match account {
            Account::Main(_) => MAX_KEYS_PER_USER.saturating_sub(self.configured_keys.len()),
            Account::User(_) => MAX_KEYS_PER_USER,
        };
        let key = self
            .store
            .cam_create_access_key(account, key, max_keys)
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
        let account = self.account(target);
        let keys = self.store.cam_access_keys(account).await?;
        let mut listed: Vec<AccessKey> = Vec::new();
        if let Account::Main(_) = account {
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
        self.store
            .cam_set_access_key_active(target, req.access_key_id, active)
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
        self.store
            .cam_delete_access_key(target, req.access_key_id)
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
        let policy_id = self.store.cam_create_policy(row, MAX_POLICIES).await?;
        Ok(CreatePolicyResponse { policy_id })
    }

    async fn get_policy(
        &self,
        _: &RequestContext,
        req: GetPolicyRequest,
    ) -> Result<GetPolicyResponse, ApiError> {
        let id = req.policy_id;
        // Presets are not stored.
        let stored = match presets::by_id(id) {
            Some(_) => None,
            None => self.store.cam_policy(id).await?,
        };
        let p = PolicyView::find(id, stored)?;
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
        let (policies, attached) = self.store.cam_policies().await?;
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
        let policy = match (req.policy_id, req.policy_name) {
            (Some(id), _) => PolicyRef::Id(id),
            (None, Some(name)) => PolicyRef::Name(name),
            (None, None) => {
                return Err(error(
                    ErrorCode::InvalidParameterParamError,
                    "Give PolicyId or PolicyName.",
                ));
            }
        };
        if let Some(d) = &req.description {
            check_description(d)?;
        }
        if let Some(doc) = &req.policy_document {
            check_document(doc)?;
        }
        let preset = match &policy {
            PolicyRef::Id(id) => presets::by_id(*id),
            PolicyRef::Name(name) => presets::by_name(name),
        };
        if preset.is_some() {
            return Err(unmodifiable("A preset policy"));
        }
        let policy_id = self
            .store
            .cam_update_policy(policy, req.description, req.policy_document)
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
        self.store.cam_delete_policies(req.policy_id).await?;
        Ok(DeletePolicyResponse {})
    }

    async fn attach_user_policy(
        &self,
        _: &RequestContext,
        req: AttachUserPolicyRequest,
    ) -> Result<AttachUserPolicyResponse, ApiError> {
        let preset = presets::by_id(req.policy_id).is_some();
        self.store
            .cam_attach_policy(
                req.attach_uin,
                req.policy_id,
                preset,
                MAX_ATTACHMENTS_PER_USER,
            )
            .await?;
        Ok(AttachUserPolicyResponse {})
    }

    async fn detach_user_policy(
        &self,
        _: &RequestContext,
        req: DetachUserPolicyRequest,
    ) -> Result<DetachUserPolicyResponse, ApiError> {
        let preset = presets::by_id(req.policy_id).is_some();
        self.store
            .cam_detach_policy(req.detach_uin, req.policy_id, preset)
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
        let attachments = self.store.cam_attached_policies(req.target_uin).await?;
        let total = attachments.len() as u64;
        let attached = attachments
            .into_iter()
            .skip(((page - 1) * rp) as usize)
            .take(rp as usize)
            .map(|(a, stored)| Ok((PolicyView::find(a.policy_id, stored)?, a.created_ms)))
            .collect::<Result<Vec<_>, ApiError>>()?;
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

/// What the store refused, as Tencent's codes.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NoUserNamed(name) => user_not_found(format!("`{name}`")),
            Refusal::NoUser(uin) => user_not_found(uin),
            Refusal::UserNameInUse(name) => error(
                ErrorCode::InvalidParameterSubUserNameInUse,
                format!("A sub-user named `{name}` already exists."),
            ),
            Refusal::UserLimit => error(
                ErrorCode::InvalidParameterSubUserFull,
                format!("An account has at most {MAX_USERS} sub-users."),
            ),
            Refusal::UserHasKeys(name) => error(
                ErrorCode::OperationDeniedHaveKeys,
                format!(
                    "The sub-user `{name}` still has API keys: delete them first, or pass Force=1."
                ),
            ),
            Refusal::NoKey(secret_id) => error(
                ErrorCode::ResourceNotFoundSecretNotExist,
                format!("The access key `{secret_id}` does not exist."),
            ),
            Refusal::KeyNotOwned { secret_id, uin } => error(
                ErrorCode::OperationDeniedUinNotMatch,
                format!("The access key `{secret_id}` does not belong to account {uin}."),
            ),
            Refusal::KeyLimit => error(
                ErrorCode::OperationDeniedAccessKeyOverLimit,
                format!("Each account has at most {MAX_KEYS_PER_USER} access keys."),
            ),
            Refusal::NoPolicy(policy_id) => policy_not_found(policy_id),
            Refusal::NoPolicyNamed(name) => error(
                ErrorCode::ResourceNotFoundPolicyIdNotFound,
                format!("The policy `{name}` does not exist."),
            ),
            Refusal::PolicyNameInUse(name) => name_in_use(&name),
            Refusal::PolicyLimit => error(
                ErrorCode::FailedOperationPolicyFull,
                format!("An account has at most {MAX_POLICIES} custom policies."),
            ),
            Refusal::AttachmentLimit => error(
                ErrorCode::InvalidParameterAttachmentFull,
                format!("A sub-user has at most {MAX_ATTACHMENTS_PER_USER} policies."),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: u64 = 100_000_000_001;

    async fn service(dir: &tempfile::TempDir) -> CamService {
        let store = Store::open(dir.path()).unwrap();
        CamService::open(store, OWNER, vec!["AKIDconfigured".into()])
            .await
            .unwrap()
    }

    fn refused<T: std::fmt::Debug>(out: Result<T, ApiError>, code: ErrorCode) -> String {
        let e = out.unwrap_err();
        assert_eq!(e.code, code, "{}", e.message);
        e.message
    }

    #[tokio::test]
    async fn writes_publish_the_directory_and_refusals_keep_their_codes() {
        let dir = tempfile::tempdir().unwrap();
        let cam = service(&dir).await;
        let ctx = RequestContext::default();
        let add = |name: &str| AddUserRequest {
            name: name.into(),
            use_api: Some(1),
            ..Default::default()
        };
        let alice = cam.add_user(&ctx, add("alice")).await.unwrap();
        let published = cam.directory().load();
        assert_eq!(published.user_uin("alice"), Some(alice.uin));
        assert!(published.key(&alice.secret_id).is_some());
        let message = refused(
            cam.add_user(&ctx, add("alice")).await,
            ErrorCode::InvalidParameterSubUserNameInUse,
        );
        assert_eq!(message, "A sub-user named `alice` already exists.");

        // The configured key counts: the main account may store one more.
        let create = CreateAccessKeyRequest::default();
        let own = cam.create_access_key(&ctx, create.clone()).await.unwrap();
        refused(
            cam.create_access_key(&ctx, create).await,
            ErrorCode::OperationDeniedAccessKeyOverLimit,
        );
        let message = refused(
            cam.update_access_key(
                &ctx,
                UpdateAccessKeyRequest {
                    access_key_id: own.access_key.unwrap().access_key_id,
                    status: "Inactive".into(),
                    target_uin: Some(alice.uin),
                },
            )
            .await,
            ErrorCode::OperationDeniedUinNotMatch,
        );
        assert!(message.ends_with(&format!("does not belong to account {}.", alice.uin)));

        let attach = |policy_id, attach_uin| AttachUserPolicyRequest {
            policy_id,
            attach_uin,
        };
        let preset = presets::PRESETS[0].policy_id;
        cam.attach_user_policy(&ctx, attach(preset, alice.uin))
            .await
            .unwrap();
        let message = refused(
            cam.attach_user_policy(&ctx, attach(999_999_999, alice.uin))
                .await,
            ErrorCode::ResourceNotFoundPolicyIdNotFound,
        );
        assert_eq!(message, "The policy 999999999 does not exist.");
        refused(
            cam.attach_user_policy(&ctx, attach(preset, 1)).await,
            ErrorCode::ResourceNotFoundUserNotExist,
        );
        let listed = cam
            .list_attached_user_policies(
                &ctx,
                ListAttachedUserPoliciesRequest {
                    target_uin: alice.uin,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.total_num, 1);
        assert_eq!(listed.list[0].policy_id, preset);

        let delete = |force| DeleteUserRequest {
            name: "alice".into(),
            force,
        };
        refused(
            cam.delete_user(&ctx, delete(None)).await,
            ErrorCode::OperationDeniedHaveKeys,
        );
        cam.delete_user(&ctx, delete(Some(1))).await.unwrap();
        let published = cam.directory().load();
        assert_eq!(published.user_uin("alice"), None);
        assert!(published.key(&alice.secret_id).is_none());
        let message = refused(
            cam.delete_user(&ctx, delete(Some(1))).await,
            ErrorCode::ResourceNotFoundUserNotExist,
        );
        assert_eq!(message, "The sub-user `alice` does not exist.");
    }

    #[tokio::test]
    async fn a_second_service_starts_from_what_the_first_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = CamService::open(store.clone(), OWNER, Vec::new())
            .await
            .unwrap();
        let ctx = RequestContext::default();
        let bob = first
            .add_user(
                &ctx,
                AddUserRequest {
                    name: "bob".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let second = CamService::open(store, OWNER, Vec::new()).await.unwrap();
        assert_eq!(second.directory().load().user_uin("bob"), Some(bob.uin));
    }
}
