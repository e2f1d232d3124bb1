//! CAM authorisation of a call (CONTROL.md §C), after its parameters are known: the main account may do
//! everything; a sub-user needs an allowing statement and no denying one for the action and, for a
//! resource-level IAI action, for every group the call names. A refusal is `AuthFailure.UnauthorizedOperation`
//! in Tencent's message form, naming the action and the first resource refused.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::api::access::{Access, Scope};
use crate::api::{ApiError, ErrorCode, GroupFilter, Principal, RequestContext};
use crate::cam::directory::{Directory, Question, Service};
use crate::cam::policy::{Decision, Effect};

/// What authorisation needs of the request besides its context.
pub struct Facts<'a> {
    pub ctx: &'a RequestContext,
    pub service: Service,
    /// IAI actions only.
    pub access: Option<Access>,
    pub params: &'a Value,
    pub ip: Option<IpAddr>,
    pub now: i64,
}

/// `Ok(None)`: allowed. `Ok(Some(filter))`: a listing allowed for the groups the filter passes.
pub fn authorize(
    directory: &Arc<Directory>,
    facts: &Facts,
) -> Result<Option<GroupFilter>, ApiError> {
    let principal = facts.ctx.principal;
    if principal == Principal::Main {
        return Ok(None);
    }
    let action = facts.ctx.action.as_str();
    let ask = |resource: &str| {
        directory.decide(
            principal,
            &Question {
                service: facts.service,
                action,
                resource,
                ip: facts.ip,
                now: facts.now,
            },
        )
    };
    let refuse = |resource: &str| Err(unauthorized(facts, resource));
    let scope = facts.access.map_or(Scope::Interface, |a| a.scope);
    match scope {
        Scope::Interface => match ask("*") {
            Decision::Allow => Ok(None),
            _ => refuse("*"),
        },
        Scope::Group(field) => {
            let group = facts
                .params
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("");
            let resource = group_resource(directory, facts.ctx, group);
            match ask(&resource) {
                Decision::Allow => Ok(None),
                _ => refuse(&resource),
            }
        }
        Scope::Groups(field) => {
            let groups = facts.params.get(field).and_then(Value::as_array);
            for group in groups.into_iter().flatten() {
                let resource = group_resource(directory, facts.ctx, group.as_str().unwrap_or(""));
                if ask(&resource) != Decision::Allow {
                    return refuse(&resource);
                }
            }
            Ok(None)
        }
        // Groups are checked one by one unless `*` is allowed and nothing could deny any of them.
        Scope::ListedGroups => {
            let question = Question {
                service: facts.service,
                action,
                resource: "*",
                ip: facts.ip,
                now: facts.now,
            };
            match ask("*") {
                Decision::Allow if !directory.may(principal, Effect::Deny, &question) => Ok(None),
                Decision::ExplicitDeny => refuse("*"),
                Decision::ImplicitDeny if !directory.may(principal, Effect::Allow, &question) => {
                    refuse("*")
                }
                Decision::Allow | Decision::ImplicitDeny => {
                    let directory = directory.clone();
                    let region = facts.ctx.region.clone().unwrap_or_default();
                    let (ip, now) = (facts.ip, facts.now);
                    let owner = directory.owner_uin();
                    let action = action.to_owned();
                    Ok(Some(GroupFilter(Arc::new(move |group: &str| {
                        let resource = format!("qcs::iai:{region}:uin/{owner}:groupid/{group}");
                        directory.decide(
                            principal,
                            &Question {
                                service: Service::Iai,
                                action: &action,
                                resource: &resource,
                                ip,
                                now,
                            },
                        ) == Decision::Allow
                    }))))
                }
            }
        }
    }
}

/// `qcs::iai:<region>:uin/<owner>:groupid/<GroupId>`, the six-segment name of a group.
fn group_resource(directory: &Directory, ctx: &RequestContext, group: &str) -> String {
    format!(
        "qcs::iai:{}:uin/{}:groupid/{group}",
        ctx.region.as_deref().unwrap_or(""),
        directory.owner_uin()
    )
}

/// Tencent's refusal: a fixed sentence, then the request id, the action and the resource.
fn unauthorized(facts: &Facts, resource: &str) -> ApiError {
    ApiError::new(
        ErrorCode::AuthFailureUnauthorizedOperation,
        format!(
            "You are not authorized to perform this operation. Check your CAM policies, and ensure that you \
             are using the correct access keys. [[request id:{}]you are not authorized to perform operation \
             ({}:{})\nresource ({resource}) has no permission\n]",
            facts.ctx.request_id,
            facts.service.name(),
            facts.ctx.action
        ),
    )
}
