//! The in-memory view of CAM that every call is checked against: active keys by SecretId, and for each
//! sub-user the statements of its attached policies, sorted by the action they can apply to. Built from one
//! store snapshot, immutable, swapped whole on each CAM change of the store's log (`Publisher`), so a
//! request sees one consistent state and a change applies to the next request.
//!
//! Precomputing statements per action keeps a decision to a hash lookup plus the few statements that name
//! the action (the wire bench measures it with 3 policies of 20 statements).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use iai_policy::{self as policy, Decision, Effect, Policy, Resource, Statement};

use super::presets;
use crate::api::{Principal, Service};
use crate::store::cam::Snapshot;
use crate::store::{Change, Follower};

/// The directory, shared between the CAM actions (which replace it) and the wire layer (which reads it).
pub type Shared = Arc<ArcSwap<Directory>>;

/// An active access key stored through CAM (as the wire's key store hands it out).
pub use crate::wire::access::StoredKey;

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
    statements: Arc<ByAction>,
}

/// What a build compiles, kept for the next build (`Directory::build_with`): each custom policy's statements
/// by action, with the document they were compiled from (a changed document is compiled again), and each
/// user's union of them, with the compiled policies it was made of. A CAM write then compiles only the
/// policies it changed and unites only the users whose policies changed: the directory is rebuilt inside
/// the store's write lock, after every CAM write (`Publisher`).
#[derive(Debug, Default)]
pub struct Compiled {
    policies: HashMap<u64, (String, Option<Arc<ByAction>>)>,
    users: HashMap<u64, UserUnion>,
}

/// A user's compiled policies (`None`: one that no longer parses) and their union.
type UserUnion = (Vec<Option<Arc<ByAction>>>, Arc<ByAction>);

/// Whether two lists of compiled policies are the same compilations, in the same order.
fn same_policies(a: &[Option<Arc<ByAction>>], b: &[Option<Arc<ByAction>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        })
}

/// The preset policies, compiled once.
fn presets_compiled() -> &'static HashMap<u64, Option<Arc<ByAction>>> {
    static PRESETS: std::sync::LazyLock<HashMap<u64, Option<Arc<ByAction>>>> =
        std::sync::LazyLock::new(|| {
            presets::PRESETS
                .iter()
                .map(|p| (p.policy_id, compile(p.policy_id, &p.document, p.name)))
                .collect()
        });
    &PRESETS
}

/// A policy's statements by action; `None` when a stored policy no longer parses (it was valid when stored):
/// its users are then denied everything rather than granted less or more than it says, and it is logged.
fn compile(id: u64, document: &str, name: &str) -> Option<Arc<ByAction>> {
    match policy::parse(document, &catalogue()) {
        Ok(p) => Some(Arc::new(ByAction::of(&p))),
        Err(e) => {
            tracing::error!(policy_id = id, policy = name, error = %e.message, "stored CAM policy does not parse; its users are denied everything");
            None
        }
    }
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
    pub resource: Resource<'a>,
    pub ip: Option<IpAddr>,
    pub now: i64,
}

/// The actions policies are checked for: IAI's and the CAM actions this server answers.
fn known_actions(service: Service) -> impl Iterator<Item = &'static str> {
    let specs = match service {
        Service::Iai => crate::api::ACTIONS,
        Service::Cam => crate::api::cam::schema::ACTIONS,
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

    /// Build from a store snapshot, compiling every policy. A stored policy that no longer parses (it was
    /// valid when stored) denies its users everything rather than granting less or more than it says: it
    /// is logged.
    pub fn build(owner_uin: u64, snapshot: &Snapshot) -> Self {
        Self::build_with(owner_uin, snapshot, &mut Compiled::default())
    }

    /// `build`, reusing what an earlier build compiled (and keeping what this one does, for the next).
    pub fn build_with(owner_uin: u64, snapshot: &Snapshot, compiled: &mut Compiled) -> Self {
        let presets = presets_compiled();
        let policy_ids: HashSet<u64> = snapshot.policies.iter().map(|p| p.policy_id).collect();
        compiled.policies.retain(|id, _| policy_ids.contains(id));
        for row in &snapshot.policies {
            let fresh = compiled
                .policies
                .get(&row.policy_id)
                .is_some_and(|(document, _)| *document == row.document);
            if !fresh {
                let statements = compile(row.policy_id, &row.document, &row.name);
                compiled
                    .policies
                    .insert(row.policy_id, (row.document.clone(), statements));
            }
        }
        let mut attached: HashMap<u64, Vec<Option<Arc<ByAction>>>> = HashMap::new();
        for attachment in &snapshot.attachments {
            let statements = match presets.get(&attachment.policy_id) {
                Some(statements) => statements,
                None => match compiled.policies.get(&attachment.policy_id) {
                    Some((_, statements)) => statements,
                    None => continue, // a policy deleted in the same snapshot cannot happen (deletes detach)
                },
            };
            attached
                .entry(attachment.uin)
                .or_default()
                .push(statements.clone());
        }
        let uins: HashSet<u64> = snapshot.users.iter().map(|u| u.uin).collect();
        compiled.users.retain(|uin, _| uins.contains(uin));
        let mut users: HashMap<u64, Grants> = HashMap::with_capacity(snapshot.users.len());
        for user in &snapshot.users {
            let policies = attached.remove(&user.uin).unwrap_or_default();
            let statements = match compiled.users.get(&user.uin) {
                Some((made_of, union)) if same_policies(made_of, &policies) => union.clone(),
                _ => {
                    let union = Arc::new(ByAction::union(&policies));
                    compiled.users.insert(user.uin, (policies, union.clone()));
                    union
                }
            };
            users.insert(
                user.uin,
                Grants {
                    name: user.name.clone(),
                    statements,
                },
            );
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

    /// A sub-user's uin by name (GetUser and DeleteUser name their user).
    pub fn user_uin(&self, name: &str) -> Option<u64> {
        self.users
            .iter()
            .find(|(_, g)| g.name == name)
            .map(|(uin, _)| *uin)
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

    /// The statements of all these policies; none at all when one of them does not parse.
    fn union(policies: &[Option<Arc<ByAction>>]) -> Self {
        let mut union = Self::default();
        for policy in policies {
            match policy {
                Some(statements) => union.extend(statements),
                None => return Self::default(),
            }
        }
        union
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

/// The directory as a follower of the store's change log: each CAM change is built into a new directory,
/// published whole.
pub struct Publisher {
    owner_uin: u64,
    shared: Shared,
    /// Locked only by `apply`, which the store calls under its write lock, one change at a time, in commit
    /// order: directories are built and published in that order too.
    compiled: parking_lot::Mutex<Compiled>,
}

impl Publisher {
    /// Start from the CAM tables as `snapshot` holds them.
    pub fn new(owner_uin: u64, snapshot: &Snapshot) -> Self {
        let mut compiled = Compiled::default();
        let directory = Directory::build_with(owner_uin, snapshot, &mut compiled);
        Self {
            owner_uin,
            shared: Directory::shared(directory),
            compiled: parking_lot::Mutex::new(compiled),
        }
    }

    /// The directory as last published.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Follower for Publisher {
    fn apply(&self, seq: u64, change: &Change) {
        match change {
            Change::Cam {
                snapshot: Some(snapshot),
            } => {
                let directory =
                    Directory::build_with(self.owner_uin, snapshot, &mut self.compiled.lock());
                self.shared.store(Arc::new(directory));
            }
            // Only a follower in another process gets a change without its tables (none yet: SQLite's
            // followers are all in the writer's); it will re-read them from the store.
            Change::Cam { snapshot: None } => tracing::error!(
                seq,
                "a CAM change came without the CAM tables: the directory was not rebuilt"
            ),
            _ => {}
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

    /// A question about `group` (a GroupId), or about the whole interface for `*`.
    fn ask<'a>(action: &'a str, group: &'a str) -> Question<'a> {
        let resource = match group {
            "*" => Resource::Interface,
            id => Resource::Named(policy::ResourceName {
                service: "iai",
                region: "ap-guangzhou",
                account: OWNER,
                kind: "groupid",
                id,
            }),
        };
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
        let (g1, secret) = ("g1", "secret1");
        assert_eq!(d.decide(user, &ask("SearchFaces", g1)), Decision::Allow);
        assert_eq!(
            d.decide(user, &ask("SearchFaces", secret)),
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
        let g = "g";
        assert_eq!(d.decide(user, &ask("GetGroupInfo", g)), Decision::Allow);
        assert_eq!(d.decide(user, &ask("SearchPersons", g)), Decision::Allow);
        assert_eq!(
            d.decide(user, &ask("CreatePerson", g)),
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
        assert_eq!(d.decide(user, &ask("CreatePerson", g)), Decision::Allow);
        assert_eq!(d.decide(user, &ask("CreateGroup", "*")), Decision::Allow);
    }

    /// A policy of 20 statements (group-scoped grants and denies, interface-level grants, conditions), as
    /// the wire bench's.
    fn big_policy(p: u64) -> String {
        let statements: Vec<serde_json::Value> = (0..20)
            .map(|i| {
                let actions = match i % 4 {
                    0 => serde_json::json!(["name/iai:Search*", "iai:GetGroupInfo"]),
                    1 => serde_json::json!(["iai:Get*", "iai:CreatePerson"]),
                    2 => serde_json::json!("iai:*"),
                    _ => serde_json::json!(["name/iai:Detect*", "iai:AnalyzeFace"]),
                };
                let deny = i % 7 == 6;
                let mut statement = serde_json::json!({
                    "effect": if deny { "deny" } else { "allow" },
                    "action": actions,
                    "resource": [format!("qcs::iai::uin/:groupid/team{p}-{i}-*")],
                });
                if i % 5 == 0 {
                    statement["condition"] =
                        serde_json::json!({"ip_equal": {"qcs:ip": ["10.0.0.0/8", "127.0.0.1"]}});
                }
                statement
            })
            .collect();
        serde_json::json!({"version": "2.0", "statement": statements}).to_string()
    }

    /// `policies` policies of 20 statements, `users` users with 4 of them each.
    fn big_snapshot(policies: u64, users: u64) -> Snapshot {
        let mut s = Snapshot::default();
        for p in 0..policies {
            s.policies.push(PolicyRow {
                policy_id: 1000 + p,
                name: format!("p{p}"),
                description: String::new(),
                document: big_policy(p),
                tags: "[]".into(),
                created_ms: 0,
                updated_ms: 0,
            });
        }
        for u in 0..users {
            s.users.push(UserRow {
                uin: 10 + u,
                uid: u,
                name: format!("u{u}"),
                ..Default::default()
            });
            for k in 0..4 {
                s.attachments.push(AttachmentRow {
                    uin: 10 + u,
                    policy_id: 1000 + (u * 4 + k) % policies,
                    created_ms: 0,
                });
            }
        }
        s
    }

    /// Every decision of every user on a few actions and groups.
    fn decisions(d: &Directory, users: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        for u in 0..users {
            for action in [
                "SearchFaces",
                "GetGroupInfo",
                "CreatePerson",
                "DeleteGroup",
                "AnalyzeFace",
            ] {
                for group in ["team3-0-x", "team7-2-y", "team9-6-z", "other"] {
                    out.push(d.decide(Principal::User(10 + u), &ask(action, group)));
                }
            }
        }
        out
    }

    #[test]
    fn a_cached_rebuild_decides_as_a_fresh_build_and_recompiles_only_what_changed() {
        let mut s = big_snapshot(12, 6);
        let mut compiled = Compiled::default();
        let first = Directory::build_with(OWNER, &s, &mut compiled);
        assert_eq!(
            decisions(&first, 6),
            decisions(&Directory::build(OWNER, &s), 6)
        );
        let kept = |c: &Compiled, id: u64| c.policies[&id].1.clone().unwrap();
        let (p0, p5) = (kept(&compiled, 1000), kept(&compiled, 1005));
        let user_union = |c: &Compiled, uin: u64| c.users[&uin].1.clone();
        let u12 = user_union(&compiled, 12);

        // Policy 1000 now denies everything; 1001 is deleted (and detached); user 15 gets a preset; a
        // policy that no longer parses is attached to user 14; user 11 goes.
        s.policies[0].document =
            r#"{"version":"2.0","statement":[{"effect":"deny","action":"iai:*","resource":"*"}]}"#
                .into();
        s.policies.remove(1);
        s.attachments.retain(|a| a.policy_id != 1001 && a.uin != 11);
        s.users.retain(|u| u.uin != 11);
        s.attachments.push(AttachmentRow {
            uin: 15,
            policy_id: presets::FULL_ACCESS_ID,
            created_ms: 1,
        });
        s.policies.push(PolicyRow {
            policy_id: 2000,
            name: "broken".into(),
            description: String::new(),
            document: "not json".into(),
            tags: "[]".into(),
            created_ms: 0,
            updated_ms: 0,
        });
        s.attachments.push(AttachmentRow {
            uin: 14,
            policy_id: 2000,
            created_ms: 1,
        });
        let again = Directory::build_with(OWNER, &s, &mut compiled);
        let fresh = Directory::build(OWNER, &s);
        assert_eq!(decisions(&again, 6), decisions(&fresh, 6));
        assert_ne!(decisions(&again, 6), decisions(&first, 6));
        assert!(
            !Arc::ptr_eq(&kept(&compiled, 1000), &p0),
            "changed: compiled again"
        );
        assert!(
            Arc::ptr_eq(&kept(&compiled, 1005), &p5),
            "unchanged: reused"
        );
        assert!(!compiled.policies.contains_key(&1001));
        assert!(!compiled.users.contains_key(&11));
        // User 12 holds 1008..1011, none of which changed: its union is reused.
        assert!(Arc::ptr_eq(&user_union(&compiled, 12), &u12));
        let g = "team17-0-a";
        assert_eq!(
            again.decide(Principal::User(14), &ask("GetGroupInfo", g)),
            Decision::ImplicitDeny,
            "a policy that does not parse denies its user everything"
        );
        assert_eq!(
            again.decide(Principal::User(15), &ask("CreateGroup", "*")),
            Decision::Allow
        );
    }

    /// A CAM write's rebuild at 400 policies of 20 statements and 100 users of 4 policies each, after
    /// one policy changed: compiled whole (before) and with the cache (now).
    /// `cargo test --release cam::directory::tests::rebuild_time -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn rebuild_time() {
        let mut s = big_snapshot(400, 100);
        let mut compiled = Compiled::default();
        Directory::build_with(OWNER, &s, &mut compiled);
        let runs = 10;
        let started = std::time::Instant::now();
        for i in 0..runs {
            s.policies[7].document = big_policy(10_000 + i);
            std::hint::black_box(Directory::build(OWNER, &s));
        }
        let whole = started.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        let started = std::time::Instant::now();
        for i in 0..runs {
            s.policies[7].document = big_policy(20_000 + i);
            std::hint::black_box(Directory::build_with(OWNER, &s, &mut compiled));
        }
        let cached = started.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!(
            "rebuild at 400 policies: whole {whole:.2} ms, cached {cached:.3} ms ({:.0}x)",
            whole / cached
        );
    }
}
