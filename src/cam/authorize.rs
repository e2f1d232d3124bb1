//! CAM authorisation of a call (CONTROL.md §C), before its parameters are parsed: the main account may do
//! everything; a sub-user needs an allowing statement and no denying one for the action and, for a
//! resource-level action, for every resource the call names: each group of an IAI call (and, for
//! CopyPerson, each group the person is already in), the target user of a CAM user or key action.
//!
//! The question is built from typed segments (`iai_policy::ResourceName`): service, region, account, kind
//! and id each stay in their own field, and each id is checked for its format first, so nothing a caller
//! sends can reach into another segment. A refusal is `AuthFailure.UnauthorizedOperation` in Tencent's
//! message form, naming the action and the first resource refused (without the owner's uin).

use std::net::IpAddr;
use std::sync::Arc;

use iai_policy::{Decision, Effect, Resource, ResourceName};

use super::CamService;
use super::directory::{Directory, Question};
use crate::api::access::Scope;
use crate::api::ids as rules;
use crate::api::{ApiError, ErrorCode, GroupCheck, GroupFilter, Principal, Service};
use crate::wire::access::{AccessControl, AccessView, Facts, Grant, KeyStore, StoredKey};
use crate::wire::named::MAX_GROUP_IDS;

/// `Ok`: allowed, with what the action must still apply. `Err`: refused, or a named id is malformed.
pub fn authorize(directory: &Arc<Directory>, facts: &Facts) -> Result<Grant, ApiError> {
    let Principal::User(caller) = facts.ctx.principal else {
        return Ok(Grant::default());
    };
    let asker = Asker::new(directory.clone(), facts);
    match facts.service {
        Service::Cam => {
            match cam_target(directory, facts, caller) {
                Some(target) => asker.require(Resource::Named(asker.user(&target)))?,
                None => asker.require(Resource::Interface)?,
            }
            Ok(Grant::default())
        }
        Service::Iai => iai(asker, facts),
    }
}

fn iai(asker: Asker, facts: &Facts) -> Result<Grant, ApiError> {
    let named = facts.named;
    let scope = facts.access.map_or(Scope::Interface, |a| a.scope);
    let mut grant = Grant::default();
    match scope {
        Scope::Interface => asker.require(Resource::Interface)?,
        Scope::Group(field) => {
            let group = named
                .group_id
                .as_deref()
                .ok_or_else(|| ApiError::missing_parameter(field))?;
            rules::check_group_id(group)?;
            asker.require(Resource::Named(asker.group(group)))?;
        }
        Scope::Groups(_) => {
            if named.too_many_groups {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterValueGroupIdsExceed,
                    format!("GroupIds may list at most {MAX_GROUP_IDS} groups."),
                ));
            }
            for group in &named.group_ids {
                rules::check_group_id(group)?;
            }
            let mut asked: Vec<&str> = Vec::with_capacity(named.group_ids.len());
            for group in &named.group_ids {
                if !asked.contains(&group.as_str()) {
                    asker.require(Resource::Named(asker.group(group)))?;
                    asked.push(group);
                }
            }
            if facts.ctx.action == "CopyPerson" {
                let asker = asker.clone();
                grant.existing_groups = Some(GroupCheck(Arc::new(move |group: &str| {
                    asker.require(Resource::Named(asker.group(group)))
                })));
            }
        }
        // Groups are checked one by one unless `*` is allowed and nothing could deny any of them.
        Scope::ListedGroups => {
            let every = Resource::Interface;
            match asker.decide(every) {
                Decision::Allow if !asker.may(Effect::Deny) => {}
                Decision::ExplicitDeny => return Err(asker.refusal(every)),
                Decision::ImplicitDeny if !asker.may(Effect::Allow) => {
                    return Err(asker.refusal(every));
                }
                Decision::Allow | Decision::ImplicitDeny => {
                    grant.visible_groups = Some(GroupFilter(Arc::new(move |group: &str| {
                        rules::check_group_id(group).is_ok()
                            && asker.decide(Resource::Named(asker.group(group))) == Decision::Allow
                    })));
                }
            }
        }
    }
    Ok(grant)
}

/// The user a CAM call acts on, for the user and key actions (resource-level, `uin/<uin>`): by name
/// (GetUser, DeleteUser; an unknown name is the id ``, which only a `*` pattern matches), by
/// `TargetUin`/`AttachUin`/`DetachUin`, or the caller itself where the target is optional. `None`: an
/// interface-level action (AddUser, ListUsers, the policy actions).
fn cam_target(directory: &Directory, facts: &Facts, caller: u64) -> Option<String> {
    let named = facts.named;
    let uin = |u: Option<u64>| u.map_or_else(String::new, |u| u.to_string());
    match facts.ctx.action.as_str() {
        "GetUser" | "DeleteUser" => Some(uin(named
            .user_name
            .as_deref()
            .and_then(|name| directory.user_uin(name)))),
        "CreateAccessKey" | "ListAccessKeys" | "UpdateAccessKey" | "DeleteAccessKey" => {
            Some(named.target_uin.unwrap_or(caller).to_string())
        }
        "ListAttachedUserPolicies" => Some(uin(named.target_uin)),
        "AttachUserPolicy" => Some(uin(named.attach_uin)),
        "DetachUserPolicy" => Some(uin(named.detach_uin)),
        _ => None,
    }
}

/// Asks the directory about one principal, action and request context.
#[derive(Clone)]
struct Asker {
    directory: Arc<Directory>,
    principal: Principal,
    service: Service,
    action: Arc<str>,
    region: Arc<str>,
    request_id: Arc<str>,
    ip: Option<IpAddr>,
    now: i64,
}

impl Asker {
    fn new(directory: Arc<Directory>, facts: &Facts) -> Self {
        Self {
            directory,
            principal: facts.ctx.principal,
            service: facts.service,
            action: facts.ctx.action.as_str().into(),
            region: facts.ctx.region.as_deref().unwrap_or("").into(),
            request_id: facts.ctx.request_id.as_str().into(),
            ip: facts.ip,
            now: facts.now,
        }
    }

    fn group<'a>(&'a self, id: &'a str) -> ResourceName<'a> {
        ResourceName {
            service: "iai",
            region: &self.region,
            account: self.directory.owner_uin(),
            kind: "groupid",
            id,
        }
    }

    fn user<'a>(&self, uin: &'a str) -> ResourceName<'a> {
        ResourceName {
            service: "cam",
            region: "",
            account: self.directory.owner_uin(),
            kind: "uin",
            id: uin,
        }
    }

    fn question<'a>(&'a self, resource: Resource<'a>) -> Question<'a> {
        Question {
            service: self.service,
            action: &self.action,
            resource,
            ip: self.ip,
            now: self.now,
        }
    }

    fn decide(&self, resource: Resource) -> Decision {
        self.directory
            .decide(self.principal, &self.question(resource))
    }

    fn may(&self, effect: Effect) -> bool {
        self.directory
            .may(self.principal, effect, &self.question(Resource::Interface))
    }

    fn require(&self, resource: Resource) -> Result<(), ApiError> {
        match self.decide(resource) {
            Decision::Allow => Ok(()),
            _ => Err(self.refusal(resource)),
        }
    }

    /// Tencent's refusal: a fixed sentence, then the request id, the action and the resource. The account
    /// segment is written `uin/` (the owner, in the policy grammar): the owner's uin is not told.
    fn refusal(&self, resource: Resource) -> ApiError {
        let shown = match resource {
            Resource::Interface => "*".to_owned(),
            Resource::Named(n) => {
                format!("qcs::{}:{}:uin/:{}/{}", n.service, n.region, n.kind, n.id)
            }
        };
        ApiError::new(
            ErrorCode::AuthFailureUnauthorizedOperation,
            format!(
                "You are not authorized to perform this operation. Check your CAM policies, and ensure that \
                 you are using the correct access keys. [[request id:{}]you are not authorized to perform \
                 operation ({}:{})\nresource ({shown}) has no permission\n]",
                self.request_id,
                self.service.name(),
                self.action
            ),
        )
    }
}

/// One loaded state of the directory, as the wire asks it (`wire::access`): every question of one call
/// is answered from it.
struct View(Arc<Directory>);

impl AccessView for View {
    fn user_name(&self, uin: u64) -> Option<&str> {
        self.0.user_name(uin)
    }

    fn user_uin(&self, name: &str) -> Option<u64> {
        self.0.user_uin(name)
    }

    fn authorize(&self, facts: &Facts) -> Result<Grant, ApiError> {
        authorize(&self.0, facts)
    }
}

impl AccessControl for CamService {
    fn view(&self) -> Arc<dyn AccessView> {
        Arc::new(View(self.directory().load_full()))
    }
}

impl KeyStore for CamService {
    fn key(&self, secret_id: &str) -> Option<StoredKey> {
        self.directory().load().key(secret_id).cloned()
    }
}
