//! The in-memory view of CAM that every call is checked against: active keys by SecretId, and for each
//! sub-user the statements of its attached policies, sorted by the action they can apply to. Built from one
//! store snapshot, immutable, swapped whole after each CAM write (`Directory::shared`), so a request sees
//! one consistent state and a change applies to the next request.
//!
//! Precomputing statements per action keeps a decision to a hash lookup plus the few statements that name
//! the action (the wire bench measures it with 3 policies of 20 statements).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::policy::{self, Decision, Effect, Policy, Statement};
use super::presets;
use crate::api::Principal;
use crate::store::cam::Snapshot;

/// The directory, shared between the CAM actions (which replace it) and the wire layer (which reads it).
pub type Shared = Arc<ArcSwap<Directory>>;

/// An active access key stored through CAM.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub secret_key: String,
    pub principal: Principal,
}

/// Statements by the action they can apply to, per service: one policy's (matched once when the directory
/// is built), or the union of a principal's policies.
#[derive(Debug, Default)]
struct ByAction {
    iai: HashMap<&'static str, Vec<Arc<Statement>>>,
    cam: HashMap<&'static str, Vec<Arc<Statement>>>,
}

/// The statements that can apply to one principal, by action.
#[derive(Debug, Default)]
struct Grants {
    name: String,
    statements: ByAction,
}

#[derive(Debug, Default)]
pub struct Directory {
    owner_uin: u64,
    keys: HashMap<String, StoredKey>,
    users: HashMap<u64, Grants>,
}

/// What a decision is about: the action of a service, one resource, and the request's context.
pub struct Question<'a> {
    pub service: Service,
    pub action: &'a str,
    /// `*` for interface-level actions, else `qcs::iai:<region>:uin/<owner>:groupid/<GroupId>`.
    pub resource: &'a str,
    pub ip: Option<IpAddr>,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iai,
    Cam,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Iai => "iai",
            Self::Cam => "cam",
        }
    }
}

/// The actions policies are checked for: IAI's and the CAM actions this server answers.
fn known_actions(service: Service) -> impl Iterator<Item = &'static str> {
    let specs = match service {
        Service::Iai => crate::api::schema::ACTIONS,
        Service::Cam => super::generated::schema::ACTIONS,
    };
    specs.iter().map(|a| a.name)
}

/// Policies are validated against IAI's action names; other services' actions (CAM's own, which has many
/// more than this server answers, or any other product) are accepted as written.
pub fn catalogue() -> policy::Catalogue<'static> {
    static IAI: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| known_actions(Service::Iai).collect());
    static SERVICES: std::sync::LazyLock<[(&'static str, &'static [&'static str]); 1]> =
        std::sync::LazyLock::new(|| [("iai", IAI.as_slice())]);
    policy::Catalogue {
        services: SERVICES.as_slice(),
    }
}

impl Directory {
    pub fn shared(directory: Directory) -> Shared {
        Arc::new(ArcSwap::from_pointee(directory))
    }

    /// Build from a store snapshot. A stored policy that no longer parses (it was valid when stored) denies
    /// its users everything rather than granting less or more than it says: it is logged.
    pub fn build(owner_uin: u64, snapshot: &Snapshot) -> Self {
        let mut policies: HashMap<u64, Option<ByAction>> = HashMap::new();
        let catalogue = catalogue();
        let compile = |id: u64, document: &str, name: &str| match policy::parse(
            document, &catalogue,
        ) {
            Ok(p) => Some(ByAction::of(&p)),
            Err(e) => {
                tracing::error!(policy_id = id, policy = name, error = %e.message, "stored CAM policy does not parse; its users are denied everything");
                None
            }
        };
        for preset in presets::PRESETS.iter() {
            let compiled = compile(preset.policy_id, &preset.document, preset.name);
            policies.insert(preset.policy_id, compiled);
        }
        for row in &snapshot.policies {
            let compiled = compile(row.policy_id, &row.document, &row.name);
            policies.insert(row.policy_id, compiled);
        }
        let mut users: HashMap<u64, Grants> = snapshot
            .users
            .iter()
            .map(|u| {
                (
                    u.uin,
                    Grants {
                        name: u.name.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut broken: Vec<u64> = Vec::new();
        for attachment in &snapshot.attachments {
            let Some(grants) = users.get_mut(&attachment.uin) else {
                continue;
            };
            match policies.get(&attachment.policy_id) {
                Some(Some(statements)) => grants.statements.extend(statements),
                Some(None) => broken.push(attachment.uin),
                None => {} // a policy deleted in the same snapshot cannot happen (deletes detach)
            }
        }
        for uin in broken {
            if let Some(grants) = users.get_mut(&uin) {
                grants.statements = ByAction::default();
            }
        }
        let keys = snapshot
            .keys
            .iter()
            .filter(|k| k.active)
            .filter_map(|k| {
                let principal = if k.uin == owner_uin {
                    Principal::Main
                } else if users.contains_key(&k.uin) {
                    Principal::User(k.uin)
                } else {
                    return None;
                };
                Some((
                    k.secret_id.clone(),
                    StoredKey {
                        secret_key: k.secret_key.clone(),
                        principal,
                    },
                ))
            })
            .collect();
        Self {
            owner_uin,
            keys,
            users,
        }
    }

    pub fn owner_uin(&self) -> u64 {
        self.owner_uin
    }

    /// An active key stored through CAM.
    pub fn key(&self, secret_id: &str) -> Option<&StoredKey> {
        self.keys.get(secret_id)
    }

    /// A sub-user's name (per-user QPS settings are by name).
    pub fn user_name(&self, uin: u64) -> Option<&str> {
        self.users.get(&uin).map(|g| g.name.as_str())
    }

    /// CAM's decision for a principal. The main account is always allowed.
    pub fn decide(&self, principal: Principal, question: &Question) -> Decision {
        let Principal::User(uin) = principal else {
            return Decision::Allow;
        };
        let Some(statements) = self.statements(uin, question.service, question.action) else {
            return Decision::ImplicitDeny;
        };
        policy::evaluate(
            statements.iter().map(|s| s.as_ref()),
            &policy::Request {
                resource: question.resource,
                owner_uin: self.owner_uin,
                ip: question.ip,
                now: question.now,
            },
        )
    }

    /// Whether some statement whose conditions hold could allow (`effect` Allow) or deny the action for
    /// some resource: a listing then checks each resource.
    pub fn may(&self, principal: Principal, effect: Effect, question: &Question) -> bool {
        let Principal::User(uin) = principal else {
            return effect == Effect::Allow;
        };
        let request = policy::Request {
            resource: question.resource,
            owner_uin: self.owner_uin,
            ip: question.ip,
            now: question.now,
        };
        self.statements(uin, question.service, question.action)
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s.effect() == effect && s.conditions_hold(&request))
            })
    }

    fn statements(&self, uin: u64, service: Service, action: &str) -> Option<&Vec<Arc<Statement>>> {
        self.users.get(&uin)?.statements.get(service, action)
    }
}

impl ByAction {
    fn of(policy: &Policy) -> Self {
        let statements: Vec<Arc<Statement>> =
            policy.statements().iter().cloned().map(Arc::new).collect();
        let mut index = Self::default();
        for (service, map) in [
            (Service::Iai, &mut index.iai),
            (Service::Cam, &mut index.cam),
        ] {
            for action in known_actions(service) {
                let full = format!("{}:{action}", service.name());
                let matching: Vec<_> = statements
                    .iter()
                    .filter(|s| s.matches_action(&full))
                    .cloned()
                    .collect();
                if !matching.is_empty() {
                    map.insert(action, matching);
                }
            }
        }
        index
    }

    fn extend(&mut self, other: &ByAction) {
        for (mine, theirs) in [(&mut self.iai, &other.iai), (&mut self.cam, &other.cam)] {
            for (action, statements) in theirs {
                mine.entry(action)
                    .or_default()
                    .extend(statements.iter().cloned());
            }
        }
    }

    fn get(&self, service: Service, action: &str) -> Option<&Vec<Arc<Statement>>> {
        match service {
            Service::Iai => self.iai.get(action),
            Service::Cam => self.cam.get(action),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cam::{AttachmentRow, KeyRow, PolicyRow, UserRow};

    const OWNER: u64 = 100_000_000_001;

    fn snapshot(documents: &[&str]) -> Snapshot {
        let mut s = Snapshot::default();
        s.users.push(UserRow {
            uin: 7,
            uid: 1,
            name: "alice".into(),
            ..Default::default()
        });
        for (i, doc) in documents.iter().enumerate() {
            let id = 100 + i as u64;
            s.policies.push(PolicyRow {
                policy_id: id,
                name: format!("p{i}"),
                description: String::new(),
                document: doc.to_string(),
                tags: "[]".into(),
                created_ms: 0,
                updated_ms: 0,
            });
            s.attachments.push(AttachmentRow {
                uin: 7,
                policy_id: id,
                created_ms: 0,
            });
        }
        for (id, uin, active) in [
            ("AKIDA", 7, true),
            ("AKIDB", 7, false),
            ("AKIDC", OWNER, true),
            ("AKIDD", 99, true),
        ] {
            s.keys.push(KeyRow {
                secret_id: id.into(),
                secret_key: "k".into(),
                uin,
                active,
                description: None,
                created_ms: 0,
            });
        }
        s
    }

    fn ask<'a>(action: &'a str, resource: &'a str) -> Question<'a> {
        Question {
            service: Service::Iai,
            action,
            resource,
            ip: None,
            now: 0,
        }
    }

    #[test]
    fn keys_resolve_to_their_principal_and_inactive_or_orphan_keys_do_not() {
        let d = Directory::build(OWNER, &snapshot(&[]));
        assert_eq!(
            d.key("AKIDA").map(|k| k.principal),
            Some(Principal::User(7))
        );
        assert!(d.key("AKIDB").is_none());
        assert_eq!(d.key("AKIDC").map(|k| k.principal), Some(Principal::Main));
        assert!(d.key("AKIDD").is_none());
        assert_eq!(d.user_name(7), Some("alice"));
    }

    #[test]
    fn decisions_follow_the_attached_policies() {
        let allow = r#"{"version":"2.0","statement":[{"effect":"allow","action":["name/iai:Analyze*","iai:SearchFaces"],"resource":"*"}]}"#;
        let deny = r#"{"version":"2.0","statement":[{"effect":"deny","action":"iai:SearchFaces","resource":"qcs::iai::uin/:groupid/secret*"}]}"#;
        let d = Directory::build(OWNER, &snapshot(&[allow, deny]));
        let user = Principal::User(7);
        assert_eq!(d.decide(user, &ask("AnalyzeFace", "*")), Decision::Allow);
        assert_eq!(
            d.decide(user, &ask("DetectFace", "*")),
            Decision::ImplicitDeny
        );
        let g1 = format!("qcs::iai:ap-guangzhou:uin/{OWNER}:groupid/g1");
        let secret = format!("qcs::iai:ap-guangzhou:uin/{OWNER}:groupid/secret1");
        assert_eq!(d.decide(user, &ask("SearchFaces", &g1)), Decision::Allow);
        assert_eq!(
            d.decide(user, &ask("SearchFaces", &secret)),
            Decision::ExplicitDeny
        );
        assert_eq!(
            d.decide(Principal::Main, &ask("DetectFace", "*")),
            Decision::Allow
        );
        assert!(d.may(user, Effect::Allow, &ask("SearchFaces", "*")));
        assert!(d.may(user, Effect::Deny, &ask("SearchFaces", "*")));
        assert!(!d.may(user, Effect::Allow, &ask("GetGroupList", "*")));
        assert_eq!(
            d.decide(
                user,
                &Question {
                    service: Service::Cam,
                    ..ask("AddUser", "*")
                }
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn presets_grant_what_their_names_say() {
        let mut s = snapshot(&[]);
        s.attachments.push(AttachmentRow {
            uin: 7,
            policy_id: presets::READ_ONLY_ID,
            created_ms: 0,
        });
        let d = Directory::build(OWNER, &s);
        let user = Principal::User(7);
        let g = format!("qcs::iai:ap-guangzhou:uin/{OWNER}:groupid/g");
        assert_eq!(d.decide(user, &ask("GetGroupInfo", &g)), Decision::Allow);
        assert_eq!(d.decide(user, &ask("SearchPersons", &g)), Decision::Allow);
        assert_eq!(
            d.decide(user, &ask("CreatePerson", &g)),
            Decision::ImplicitDeny
        );
        assert_eq!(
            d.decide(user, &ask("CreateGroup", "*")),
            Decision::ImplicitDeny
        );
        s.attachments.push(AttachmentRow {
            uin: 7,
            policy_id: presets::FULL_ACCESS_ID,
            created_ms: 0,
        });
        let d = Directory::build(OWNER, &s);
        assert_eq!(d.decide(user, &ask("CreatePerson", &g)), Decision::Allow);
        assert_eq!(d.decide(user, &ask("CreateGroup", "*")), Decision::Allow);
    }
}
