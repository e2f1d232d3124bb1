//! CAM policy documents (policy grammar version 2.0): parsing, validation and evaluation.
//!
//! This crate owns the policy language: the grammar (with CAM's error code for each way a document is
//! refused), the catalogue through which a document's actions are checked to exist, the typed resource
//! names requests ask about, and the evaluation rules. It depends on nothing of the server, which fills
//! in the catalogue, builds the requests, and stores and attaches the policies.
//!
//! Policies are validated once, when CreatePolicy/UpdatePolicy stores them, so that a malformed
//! document is refused with CAM's own error code then and never fails a request later. The compiled
//! form is immutable and evaluated on every API request: action and resource globs are precompiled
//! and evaluation allocates nothing.
//!
//! Evaluation follows CAM: an explicit deny wins, otherwise any allow grants, otherwise the request is
//! implicitly denied.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::{Map, Value};

/// CAM refuses policy documents longer than this many bytes.
pub const MAX_DOCUMENT_BYTES: usize = 6144;

/// The actions that exist, per service, so that a policy naming an action that does not exist is refused
/// at creation (CAM's `ActionNotExist`) rather than silently never matching.
#[derive(Debug, Clone, Copy)]
pub struct Catalogue<'a> {
    /// Service name (e.g. "iai") → the names of its actions (e.g. "SearchFaces").
    pub services: &'a [(&'a str, &'a [&'a str])],
}

impl<'a> Catalogue<'a> {
    /// The actions of a service, or `None` for a service this catalogue does not know.
    pub fn actions(&self, service: &str) -> Option<&'a [&'a str]> {
        self.services
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, actions)| *actions)
    }
}

/// Why a policy document was refused; `kind` gives CAM's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub kind: PolicyErrorKind,
    pub message: String,
}

/// The CAM error codes a policy document can be refused with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyErrorKind {
    PolicyDocument,
    LengthOverLimit,
    Version,
    Statement,
    Effect,
    Action,
    ActionNotExist,
    Resource,
    Condition,
    ConditionType,
    ConditionContent,
    Principal,
}

impl PolicyErrorKind {
    /// The CAM error code, e.g. "InvalidParameter.PolicyDocumentError".
    pub fn code(self) -> &'static str {
        match self {
            Self::PolicyDocument => "InvalidParameter.PolicyDocumentError",
            Self::LengthOverLimit => "InvalidParameter.PolicyDocumentLengthOverLimit",
            Self::Version => "InvalidParameter.VersionError",
            Self::Statement => "InvalidParameter.StatementError",
            Self::Effect => "InvalidParameter.EffectError",
            Self::Action => "InvalidParameter.ActionError",
            Self::ActionNotExist => "InvalidParameter.ActionNotExist",
            Self::Resource => "InvalidParameter.ResourceError",
            Self::Condition => "InvalidParameter.ConditionError",
            Self::ConditionType => "InvalidParameter.ConditionTypeError",
            Self::ConditionContent => "InvalidParameter.ConditionContentError",
            Self::Principal => "InvalidParameter.PrincipalError",
        }
    }
}

impl PolicyError {
    fn new(kind: PolicyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An error about statement `index` (0-based); messages count statements from 1, as people do.
    fn at(index: usize, kind: PolicyErrorKind, message: impl fmt::Display) -> Self {
        Self::new(kind, format!("statement {}: {message}", index + 1))
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// A compiled, validated policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Box<[Statement]>,
}

impl Policy {
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Convenience for callers that do not precompute per-action statement lists: evaluates the
    /// statements that name `action` ("iai:SearchFaces").
    pub fn evaluate(&self, action: &str, request: &Request) -> Decision {
        evaluate(
            self.statements.iter().filter(|s| s.matches_action(action)),
            request,
        )
    }
}

/// Whether a statement grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One compiled statement: its effect, action patterns, resource patterns and conditions.
#[derive(Debug, Clone)]
pub struct Statement {
    effect: Effect,
    actions: Box<[ActionPattern]>,
    resources: Box<[ResourcePattern]>,
    conditions: Box<[Clause]>,
}

impl Statement {
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the statement names this action ("iai:SearchFaces"); used to precompute, per principal and
    /// action, the statements that can apply.
    pub fn matches_action(&self, action: &str) -> bool {
        let Some(colon) = action.bytes().position(|b| b == b':') else {
            return false;
        };
        let (service, name) = (&action[..colon], &action[colon + 1..]);
        self.actions.iter().any(|pattern| match pattern {
            ActionPattern::All => true,
            ActionPattern::Named {
                service: s,
                action: glob,
            } => short_eq(s.as_bytes(), service.as_bytes()) && glob.matches(name),
            ActionPattern::Never => false,
        })
    }

    /// Whether the statement's resources and conditions hold for this request (the action is assumed to
    /// match already).
    pub fn applies(&self, request: &Request) -> bool {
        self.matches_resource(request) && self.conditions_hold(request)
    }

    /// Whether the statement's conditions hold for this request, whatever its resource (a listing asks
    /// this before it checks each resource).
    pub fn conditions_hold(&self, request: &Request) -> bool {
        self.conditions.iter().all(|c| c.holds(request))
    }

    fn matches_resource(&self, request: &Request) -> bool {
        self.resources
            .iter()
            .any(|pattern| match (pattern, &request.resource) {
                (ResourcePattern::Any, _) => true,
                // A statement limited to specific resources never authorises interface-level actions.
                (ResourcePattern::Qualified(_), Resource::Interface) => false,
                (ResourcePattern::Qualified(q), Resource::Named(name)) => {
                    q.matches(name, request.owner_uin)
                }
            })
    }
}

/// What an action is asked about: the whole interface, or one named resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Interface-level actions: only statements whose resource is `*` apply.
    Interface,
    Named(ResourceName<'a>),
}

/// A resource as typed segments: `qcs::<service>:<region>:uin/<account>:<kind>/<id>`. Each pattern segment
/// is matched against its own segment, so a `*` never reaches across a `:` or a `/`, and nothing a caller
/// sends (a region, an id) can move text from one segment into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceName<'a> {
    pub service: &'a str,
    /// Empty when the call named no region.
    pub region: &'a str,
    /// The account that owns the resource.
    pub account: u64,
    /// `groupid` for IAI groups, `uin` for CAM users.
    pub kind: &'a str,
    pub id: &'a str,
}

/// What a request asks for, as seen by policy evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub resource: Resource<'a>,
    /// The main account that owns the resources: what an account segment of "" or "uin/" stands for.
    pub owner_uin: u64,
    /// The caller's address, if known.
    pub ip: Option<IpAddr>,
    /// The current time, unix seconds.
    pub now: i64,
}

/// The outcome of evaluating a request against statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

/// CAM's evaluation: an explicit deny wins, else any allow grants, else implicit deny.
pub fn evaluate<'a>(
    statements: impl IntoIterator<Item = &'a Statement>,
    request: &Request,
) -> Decision {
    let mut allowed = false;
    for statement in statements {
        match statement.effect {
            Effect::Deny => {
                if statement.applies(request) {
                    return Decision::ExplicitDeny;
                }
            }
            Effect::Allow => {
                if !allowed && statement.applies(request) {
                    allowed = true;
                }
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Parses and validates a policy document, refusing it with CAM's error code as CreatePolicy does.
pub fn parse(document: &str, catalogue: &Catalogue) -> Result<Policy, PolicyError> {
    use PolicyErrorKind as K;
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(PolicyError::new(
            K::LengthOverLimit,
            format!(
                "the policy document is {} bytes long, more than the {MAX_DOCUMENT_BYTES} allowed",
                document.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(document).map_err(|e| {
        PolicyError::new(
            K::PolicyDocument,
            format!("the policy document is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(root) = value else {
        return Err(PolicyError::new(
            K::PolicyDocument,
            "the policy document must be a JSON object",
        ));
    };
    if let Some(key) = root
        .keys()
        .find(|k| !matches!(k.as_str(), "version" | "statement"))
    {
        return Err(PolicyError::new(
            K::PolicyDocument,
            format!(
                "unknown key `{key}` in the policy document (expected `version` and `statement`)"
            ),
        ));
    }
    match root.get("version") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => {
            return Err(PolicyError::new(
                K::Version,
                format!("the version must be \"2.0\", not {other}"),
            ));
        }
        None => return Err(PolicyError::new(K::Version, "the version is missing")),
    }
    let items: &[Value] = match root.get("statement") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(PolicyError::new(
                K::Statement,
                "the statement list is empty",
            ));
        }
        Some(item @ Value::Object(_)) => std::slice::from_ref(item),
        Some(other) => {
            return Err(PolicyError::new(
                K::Statement,
                format!("the statement must be an object or a list of objects, not {other}"),
            ));
        }
        None => return Err(PolicyError::new(K::Statement, "the statement is missing")),
    };
    let statements = items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => parse_statement(index, map, catalogue),
            other => Err(PolicyError::at(
                index,
                K::Statement,
                format_args!("a statement must be an object, not {other}"),
            )),
        })
        .collect::<Result<Box<[_]>, _>>()?;
    Ok(Policy { statements })
}

fn parse_statement(
    index: usize,
    map: &Map<String, Value>,
    catalogue: &Catalogue,
) -> Result<Statement, PolicyError> {
    use PolicyErrorKind as K;
    for key in map.keys() {
        match key.as_str() {
            "effect" | "action" | "resource" | "condition" => {}
            "principal" => {
                return Err(PolicyError::at(
                    index,
                    K::Principal,
                    "`principal` is not allowed in a policy attached to users and groups",
                ));
            }
            other => {
                return Err(PolicyError::at(
                    index,
                    K::Statement,
                    format_args!(
                        "unknown key `{other}` (expected `effect`, `action`, `resource`, `condition`)"
                    ),
                ));
            }
        }
    }

    let effect = match map.get("effect") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("allow") => Effect::Allow,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("deny") => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::at(
                index,
                K::Effect,
                format_args!("the effect must be \"allow\" or \"deny\", not {other}"),
            ));
        }
        None => return Err(PolicyError::at(index, K::Effect, "the effect is missing")),
    };

    let actions = string_list(index, map.get("action"), "action", K::Action)?
        .iter()
        .map(|item| parse_action(index, item, catalogue))
        .collect::<Result<Box<[_]>, _>>()?;

    let resources = string_list(index, map.get("resource"), "resource", K::Resource)?
        .iter()
        .map(|item| parse_resource(index, item))
        .collect::<Result<Box<[_]>, _>>()?;

    let conditions = match map.get("condition") {
        None => Box::default(),
        Some(condition) => parse_condition(index, condition)?,
    };

    Ok(Statement {
        effect,
        actions,
        resources,
        conditions,
    })
}

/// A required field that is a string or a non-empty list of strings.
fn string_list<'v>(
    index: usize,
    value: Option<&'v Value>,
    field: &str,
    kind: PolicyErrorKind,
) -> Result<Vec<&'v str>, PolicyError> {
    match value {
        None => Err(PolicyError::at(
            index,
            kind,
            format_args!("the {field} is missing"),
        )),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) if items.is_empty() => Err(PolicyError::at(
            index,
            kind,
            format_args!("the {field} list is empty"),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(PolicyError::at(
                    index,
                    kind,
                    format_args!("each {field} must be a string, not {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(PolicyError::at(
            index,
            kind,
            format_args!("the {field} must be a string or a list of strings, not {other}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------------
// Globs

/// Byte equality as an inline loop: the strings compared here are a few dozen bytes, where a libc
/// `memcmp` call dominated evaluation.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A precompiled `*` glob (the only wildcard CAM has): literal prefix, literal pieces that must appear in
/// order, literal suffix. Matching allocates nothing.
#[derive(Debug, Clone)]
enum Glob {
    /// No `*`: the text must be equal.
    Exact(Box<str>),
    /// Just `*` (or several): anything, including the empty string.
    Any,
    /// At least one `*` and some literal text.
    Pattern {
        prefix: Box<str>,
        middle: Box<[Box<str>]>,
        suffix: Box<str>,
    },
}

impl Glob {
    fn new(pattern: &str) -> Self {
        if !pattern.contains('*') {
            return Self::Exact(pattern.into());
        }
        if pattern.chars().all(|c| c == '*') {
            return Self::Any;
        }
        let mut parts: Vec<&str> = pattern.split('*').collect();
        // `pattern` contains a `*`, so there are at least two parts.
        let suffix = parts.pop().unwrap_or_default();
        let prefix = if parts.is_empty() {
            ""
        } else {
            parts.remove(0)
        };
        Self::Pattern {
            prefix: prefix.into(),
            middle: parts
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(Box::from)
                .collect(),
            suffix: suffix.into(),
        }
    }

    fn has_wildcard(&self) -> bool {
        !matches!(self, Self::Exact(_))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Self::Exact(exact) => short_eq(exact.as_bytes(), text.as_bytes()),
            Self::Any => true,
            Self::Pattern {
                prefix,
                middle,
                suffix,
            } => {
                let bytes = text.as_bytes();
                if bytes.len() < prefix.len() + suffix.len()
                    || !short_eq(&bytes[..prefix.len()], prefix.as_bytes())
                    || !short_eq(&bytes[bytes.len() - suffix.len()..], suffix.as_bytes())
                {
                    return false;
                }
                // Both ends are literal and checked above, so they fall on character boundaries.
                let Some(mut rest) = text.get(prefix.len()..text.len() - suffix.len()) else {
                    return false;
                };
                // Leftmost matching of each piece is optimal for `*`-only globs.
                for piece in middle.iter() {
                    match rest.find(&**piece) {
                        Some(at) => rest = rest.get(at + piece.len()..).unwrap_or_default(),
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Actions

#[derive(Debug, Clone)]
enum ActionPattern {
    /// "*": every action of every service.
    All,
    /// "name/<svc>:<Action>" or "<svc>:<Action>"; the action may hold wildcards.
    Named { service: Box<str>, action: Glob },
    /// "permid/...": permission sets, which this server does not have; accepted, never matches.
    Never,
}

fn parse_action(
    index: usize,
    item: &str,
    catalogue: &Catalogue,
) -> Result<ActionPattern, PolicyError> {
    use PolicyErrorKind as K;
    let bad =
        |why: &str| PolicyError::at(index, K::Action, format_args!("the action `{item}` {why}"));
    if item == "*" {
        return Ok(ActionPattern::All);
    }
    if let Some(rest) = item.strip_prefix("permid/") {
        return if rest.is_empty() {
            Err(bad("names no permission set"))
        } else {
            Ok(ActionPattern::Never)
        };
    }
    let body = item.strip_prefix("name/").unwrap_or(item);
    let Some((service, action)) = body.split_once(':') else {
        return Err(bad("is not of the form `<service>:<action>`"));
    };
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(bad(
            "has an invalid service name (expected lowercase letters, digits, `_`, `-`)",
        ));
    }
    if action.is_empty()
        || !action
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'*'))
    {
        return Err(bad(
            "has an invalid action name (expected letters, digits, `_`, `-`, `.`, `*`)",
        ));
    }
    let glob = Glob::new(action);
    if let Some(known) = catalogue.actions(service) {
        let exists = if glob.has_wildcard() {
            known.iter().any(|name| glob.matches(name))
        } else {
            known.contains(&action)
        };
        if !exists {
            let why = if glob.has_wildcard() {
                "matches no existing action"
            } else {
                "does not exist"
            };
            return Err(PolicyError::at(
                index,
                K::ActionNotExist,
                format_args!("the action `{item}` {why}"),
            ));
        }
    }
    Ok(ActionPattern::Named {
        service: service.into(),
        action: glob,
    })
}

// ---------------------------------------------------------------------------------------------------
// Resources

#[derive(Debug, Clone)]
enum ResourcePattern {
    /// "*": every resource, and interface-level actions.
    Any,
    /// `qcs:<project>:<service>:<region>:<account>:<resource>`.
    Qualified(Box<QualifiedResource>),
}

#[derive(Debug, Clone)]
struct QualifiedResource {
    /// An empty project matches any project (`Glob::Any`); requests name none.
    project: Glob,
    service: Glob,
    /// An empty region matches any region (`Glob::Any`).
    region: Glob,
    account: AccountPattern,
    resource: NamePattern,
}

#[derive(Debug, Clone)]
enum AccountPattern {
    /// "" or "uin/": the owner account.
    Owner,
    /// "*": any account.
    Any,
    /// `uin/<glob>`: accounts whose uin, in decimal, the glob matches.
    Uin(Glob),
    /// Anything else names no account this server has.
    Never,
}

/// The last segment of a resource pattern: `<kind>/<id>` with a glob on each side of the first `/`.
#[derive(Debug, Clone)]
enum NamePattern {
    /// `*` (or several): every resource.
    Any,
    Typed {
        kind: Glob,
        id: Glob,
    },
    /// A pattern with no `/` that is not `*` names nothing.
    Never,
}

impl QualifiedResource {
    fn matches(&self, name: &ResourceName, owner_uin: u64) -> bool {
        self.service.matches(name.service)
            && self.region.matches(name.region)
            && self.project.matches("")
            && match &self.resource {
                NamePattern::Any => true,
                NamePattern::Typed { kind, id } => kind.matches(name.kind) && id.matches(name.id),
                NamePattern::Never => false,
            }
            && match &self.account {
                AccountPattern::Owner => name.account == owner_uin,
                AccountPattern::Any => true,
                AccountPattern::Uin(glob) => glob.matches(&name.account.to_string()),
                AccountPattern::Never => false,
            }
    }
}

fn parse_resource(index: usize, item: &str) -> Result<ResourcePattern, PolicyError> {
    let bad = |why: &str| {
        PolicyError::at(
            index,
            PolicyErrorKind::Resource,
            format_args!("the resource `{item}` {why}"),
        )
    };
    if item == "*" {
        return Ok(ResourcePattern::Any);
    }
    let mut it = item.splitn(6, ':');
    let mut segments = [""; 6];
    for segment in segments.iter_mut() {
        *segment = it.next().ok_or_else(|| {
            bad("is not of the form `qcs:<project>:<service>:<region>:<account>:<resource>`")
        })?;
    }
    let [qcs, project, service, region, account, resource] = segments;
    if qcs != "qcs" {
        return Err(bad("must start with `qcs:`"));
    }
    if service.is_empty() {
        return Err(bad("names no service"));
    }
    if resource.is_empty() {
        return Err(bad("names no resource (use `*` for all)"));
    }
    let any_if_empty = |s: &str| {
        if s.is_empty() {
            Glob::Any
        } else {
            Glob::new(s)
        }
    };
    Ok(ResourcePattern::Qualified(Box::new(QualifiedResource {
        project: any_if_empty(project),
        service: Glob::new(service),
        region: any_if_empty(region),
        account: if account.is_empty() || account == "uin/" {
            AccountPattern::Owner
        } else if account.bytes().all(|b| b == b'*') {
            AccountPattern::Any
        } else if let Some(uin) = account.strip_prefix("uin/") {
            AccountPattern::Uin(Glob::new(uin))
        } else {
            AccountPattern::Never
        },
        resource: if resource.bytes().all(|b| b == b'*') {
            NamePattern::Any
        } else if let Some((kind, id)) = resource.split_once('/') {
            NamePattern::Typed {
                kind: Glob::new(kind),
                id: Glob::new(id),
            }
        } else {
            NamePattern::Never
        },
    })))
}

// ---------------------------------------------------------------------------------------------------
// Conditions

/// One `<operator>: { <key>: values }` pair; a statement applies only if all its clauses hold.
#[derive(Debug, Clone)]
enum Clause {
    /// `ip_equal` (`negated: false`): the request IP is in one of the blocks; `ip_not_equal`: in none.
    /// Without a request IP neither holds.
    Ip { negated: bool, blocks: Box<[IpNet]> },
    /// `date_*`: compares the request time with each value (unix seconds); the positive operators hold
    /// if any value satisfies them, the `_not_` operators if no value satisfies their positive form.
    Date {
        op: DateOp,
        negated: bool,
        times: Box<[i64]>,
    },
}

#[derive(Debug, Clone, Copy)]
enum DateOp {
    Greater,
    Less,
    Equal,
}

impl DateOp {
    fn test(self, now: i64, value: i64) -> bool {
        match self {
            Self::Greater => now > value,
            Self::Less => now < value,
            Self::Equal => now == value,
        }
    }
}

impl Clause {
    fn holds(&self, request: &Request) -> bool {
        match self {
            Self::Ip { negated, blocks } => {
                let Some(ip) = request.ip else {
                    return false;
                };
                let ip = ip.to_canonical();
                blocks.iter().any(|block| block.contains(&ip)) != *negated
            }
            Self::Date { op, negated, times } => {
                times.iter().any(|&t| op.test(request.now, t)) != *negated
            }
        }
    }
}

/// The operators this server supports, with the one key each accepts and whether it negates.
enum OperatorKind {
    Ip { negated: bool },
    Date { op: DateOp, negated: bool },
}

const IP_KEY: &str = "qcs:ip";
const TIME_KEY: &str = "qcs:current_time";

fn operator_kind(name: &str) -> Option<OperatorKind> {
    use DateOp::*;
    use OperatorKind::*;
    Some(match name {
        "ip_equal" => Ip { negated: false },
        "ip_not_equal" => Ip { negated: true },
        "date_greater_than" => Date {
            op: Greater,
            negated: false,
        },
        "date_less_than" => Date {
            op: Less,
            negated: false,
        },
        "date_equal" => Date {
            op: Equal,
            negated: false,
        },
        "date_not_greater_than" => Date {
            op: Greater,
            negated: true,
        },
        "date_not_less_than" => Date {
            op: Less,
            negated: true,
        },
        "date_not_equal" => Date {
            op: Equal,
            negated: true,
        },
        _ => return None,
    })
}

fn parse_condition(index: usize, condition: &Value) -> Result<Box<[Clause]>, PolicyError> {
    use PolicyErrorKind as K;
    let Value::Object(operators) = condition else {
        return Err(PolicyError::at(
            index,
            K::Condition,
            format_args!("the condition must be an object, not {condition}"),
        ));
    };
    if operators.is_empty() {
        return Err(PolicyError::at(
            index,
            K::Condition,
            "the condition is empty",
        ));
    }
    let mut clauses = Vec::new();
    for (name, body) in operators {
        let Some(kind) = operator_kind(name) else {
            return Err(PolicyError::at(
                index,
                K::ConditionType,
                format_args!("the condition operator `{name}` is not supported"),
            ));
        };
        let Value::Object(keys) = body else {
            return Err(PolicyError::at(
                index,
                K::Condition,
                format_args!("the condition `{name}` must be an object of keys, not {body}"),
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::at(
                index,
                K::Condition,
                format_args!("the condition `{name}` names no key"),
            ));
        }
        for (key, values) in keys {
            let content = |why: fmt::Arguments| {
                PolicyError::at(
                    index,
                    K::ConditionContent,
                    format_args!("condition `{name}` key `{key}`: {why}"),
                )
            };
            let expected_key = match kind {
                OperatorKind::Ip { .. } => IP_KEY,
                OperatorKind::Date { .. } => TIME_KEY,
            };
            if key != expected_key {
                return Err(content(format_args!(
                    "unsupported key for this operator (expected `{expected_key}`)"
                )));
            }
            let strings: Vec<&str> = match values {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) if items.is_empty() => {
                    return Err(content(format_args!("the value list is empty")));
                }
                Value::Array(items) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.as_str()),
                        other => Err(content(format_args!("values must be strings, not {other}"))),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(content(format_args!("values must be strings, not {other}")));
                }
            };
            let clause = match kind {
                OperatorKind::Ip { negated } => Clause::Ip {
                    negated,
                    blocks: strings
                        .iter()
                        .map(|s| {
                            parse_ip_block(s).ok_or_else(|| {
                                content(format_args!("`{s}` is not an IP address or CIDR block"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                },
                OperatorKind::Date { op, negated } => Clause::Date {
                    op,
                    negated,
                    times: strings
                        .iter()
                        .map(|s| {
                            parse_time(s).ok_or_else(|| {
                                content(format_args!(
                                    "`{s}` is not an ISO 8601 time such as 2016-06-01T00:01:00Z"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                },
            };
            clauses.push(clause);
        }
    }
    Ok(clauses.into_boxed_slice())
}

/// An address or CIDR block; a bare address is a /32 or /128. IPv4-mapped IPv6 blocks become IPv4
/// blocks, since request addresses are compared in their canonical form.
fn parse_ip_block(text: &str) -> Option<IpNet> {
    let net = match IpNet::from_str(text) {
        Ok(net) => net,
        Err(_) => IpNet::from(IpAddr::from_str(text).ok()?),
    };
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .ok()
                .map(IpNet::V4),
            None => Some(net),
        },
        _ => Some(net),
    }
}

/// An RFC 3339 / ISO 8601 time with an offset ("Z", "+08:00" or "+0800"), as unix seconds (fractions
/// of a second are dropped, as the request time has whole seconds).
fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests;
