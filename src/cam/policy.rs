//! CAM policy documents (policy grammar version 2.0): parsing, validation and evaluation.
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
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const IAI: &[&str] = &[
        "AnalyzeFace",
        "AnalyzeDenseLandmarks",
        "DetectFace",
        "SearchFaces",
        "GetGroupList",
        "GetGroupInfo",
        "CreateGroup",
    ];
    const CAM: &[&str] = &["AddUser", "ListUsers"];
    const CATALOGUE: Catalogue = Catalogue {
        services: &[("iai", IAI), ("cam", CAM)],
    };
    const OWNER: u64 = 100000000001;
    /// 2026-01-01T00:00:00Z
    const NEW_YEAR_2026: i64 = 1_767_225_600;

    fn policy(document: &str) -> Policy {
        match parse(document, &CATALOGUE) {
            Ok(p) => p,
            Err(e) => panic!("{document} refused: {e:?}"),
        }
    }

    fn error(document: &str) -> PolicyError {
        match parse(document, &CATALOGUE) {
            Ok(p) => panic!("{document} accepted: {p:?}"),
            Err(e) => e,
        }
    }

    fn kind(document: &str) -> PolicyErrorKind {
        error(document).kind
    }

    /// A one-statement document.
    fn one(effect: &str, action: &str, resource: &str, condition: Option<&str>) -> String {
        let condition = condition
            .map(|c| format!(r#","condition":{c}"#))
            .unwrap_or_default();
        format!(
            r#"{{"version":"2.0","statement":[{{"effect":"{effect}","action":{action},"resource":{resource}{condition}}}]}}"#
        )
    }

    fn group(region: &str, group: &str) -> String {
        format!("qcs::iai:{region}:uin/{OWNER}:groupid/{group}")
    }

    /// Tests write resources as text; requests carry them typed.
    fn typed(text: &str) -> Resource<'_> {
        if text == "*" {
            return Resource::Interface;
        }
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        if parts.len() < 6 {
            // Not a resource name: a question that no qualified pattern matches.
            return Resource::Named(ResourceName {
                service: "",
                region: "",
                account: u64::MAX,
                kind: "",
                id: "",
            });
        }
        let (kind, id) = parts[5].split_once('/').unwrap_or((parts[5], ""));
        Resource::Named(ResourceName {
            service: parts[2],
            region: parts[3],
            account: parts[4]
                .strip_prefix("uin/")
                .and_then(|u| u.parse().ok())
                .unwrap_or(u64::MAX),
            kind,
            id,
        })
    }

    fn req(resource: &str) -> Request<'_> {
        Request {
            resource: typed(resource),
            owner_uin: OWNER,
            ip: None,
            now: NEW_YEAR_2026,
        }
    }

    fn decide(policy: &Policy, action: &str, request: &Request) -> Decision {
        policy.evaluate(action, request)
    }

    // --- errors -------------------------------------------------------------------------------------

    #[test]
    fn error_codes() {
        assert_eq!(
            PolicyErrorKind::PolicyDocument.code(),
            "InvalidParameter.PolicyDocumentError"
        );
        assert_eq!(
            PolicyErrorKind::LengthOverLimit.code(),
            "InvalidParameter.PolicyDocumentLengthOverLimit"
        );
        assert_eq!(
            PolicyErrorKind::Version.code(),
            "InvalidParameter.VersionError"
        );
        assert_eq!(
            PolicyErrorKind::Statement.code(),
            "InvalidParameter.StatementError"
        );
        assert_eq!(
            PolicyErrorKind::Effect.code(),
            "InvalidParameter.EffectError"
        );
        assert_eq!(
            PolicyErrorKind::Action.code(),
            "InvalidParameter.ActionError"
        );
        assert_eq!(
            PolicyErrorKind::ActionNotExist.code(),
            "InvalidParameter.ActionNotExist"
        );
        assert_eq!(
            PolicyErrorKind::Resource.code(),
            "InvalidParameter.ResourceError"
        );
        assert_eq!(
            PolicyErrorKind::Condition.code(),
            "InvalidParameter.ConditionError"
        );
        assert_eq!(
            PolicyErrorKind::ConditionType.code(),
            "InvalidParameter.ConditionTypeError"
        );
        assert_eq!(
            PolicyErrorKind::ConditionContent.code(),
            "InvalidParameter.ConditionContentError"
        );
        assert_eq!(
            PolicyErrorKind::Principal.code(),
            "InvalidParameter.PrincipalError"
        );
    }

    #[test]
    fn policy_document_errors() {
        use PolicyErrorKind::PolicyDocument;
        assert_eq!(kind("not json"), PolicyDocument);
        assert_eq!(kind(""), PolicyDocument);
        assert_eq!(kind("[]"), PolicyDocument);
        assert_eq!(kind("\"2.0\""), PolicyDocument);
        assert_eq!(kind("null"), PolicyDocument);
        assert_eq!(
            kind(
                r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}],"id":"x"}"#
            ),
            PolicyDocument
        );
        // Keys are lowercase: "Version" is an unknown key.
        assert_eq!(
            kind(
                r#"{"Version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}"#
            ),
            PolicyDocument
        );
    }

    #[test]
    fn length_over_limit() {
        let padding = " ".repeat(MAX_DOCUMENT_BYTES);
        let long = format!("{}{padding}", one("allow", r#""*""#, r#""*""#, None));
        let e = error(&long);
        assert_eq!(e.kind, PolicyErrorKind::LengthOverLimit);
        assert_eq!(
            e.kind.code(),
            "InvalidParameter.PolicyDocumentLengthOverLimit"
        );
        // Exactly at the limit is fine.
        let doc = one("allow", r#""*""#, r#""*""#, None);
        let exact = format!("{doc}{}", " ".repeat(MAX_DOCUMENT_BYTES - doc.len()));
        assert_eq!(exact.len(), MAX_DOCUMENT_BYTES);
        policy(&exact);
    }

    #[test]
    fn version_errors() {
        use PolicyErrorKind::Version;
        let s = r#"[{"effect":"allow","action":"*","resource":"*"}]"#;
        assert_eq!(kind(&format!(r#"{{"statement":{s}}}"#)), Version);
        assert_eq!(
            kind(&format!(r#"{{"version":"1.0","statement":{s}}}"#)),
            Version
        );
        assert_eq!(
            kind(&format!(r#"{{"version":2.0,"statement":{s}}}"#)),
            Version
        );
        assert_eq!(
            kind(&format!(r#"{{"version":null,"statement":{s}}}"#)),
            Version
        );
        assert_eq!(kind(r#"{}"#), Version);
    }

    #[test]
    fn statement_errors() {
        use PolicyErrorKind::Statement;
        assert_eq!(kind(r#"{"version":"2.0"}"#), Statement);
        assert_eq!(kind(r#"{"version":"2.0","statement":[]}"#), Statement);
        assert_eq!(kind(r#"{"version":"2.0","statement":"allow"}"#), Statement);
        assert_eq!(kind(r#"{"version":"2.0","statement":[1]}"#), Statement);
        assert_eq!(kind(r#"{"version":"2.0","statement":null}"#), Statement);
        // A misspelt key.
        let e = error(
            r#"{"version":"2.0","statement":[{"Effect":"allow","action":"*","resource":"*"}]}"#,
        );
        assert_eq!(e.kind, Statement);
        assert!(
            e.message.contains("statement 1") && e.message.contains("Effect"),
            "{}",
            e.message
        );
    }

    #[test]
    fn single_statement_object_is_accepted() {
        let p = policy(
            r#"{"version":"2.0","statement":{"effect":"allow","action":"iai:DetectFace","resource":"*"}}"#,
        );
        assert_eq!(p.statements().len(), 1);
        assert_eq!(decide(&p, "iai:DetectFace", &req("*")), Decision::Allow);
    }

    #[test]
    fn principal_error() {
        let doc = r#"{"version":"2.0","statement":[{"effect":"allow","principal":{"qcs":["qcs::cam::uin/1:root"]},"action":"*","resource":"*"}]}"#;
        assert_eq!(kind(doc), PolicyErrorKind::Principal);
    }

    #[test]
    fn effect_errors() {
        use PolicyErrorKind::Effect;
        assert_eq!(kind(&one("permit", r#""*""#, r#""*""#, None)), Effect);
        assert_eq!(
            kind(r#"{"version":"2.0","statement":[{"action":"*","resource":"*"}]}"#),
            Effect
        );
        assert_eq!(
            kind(r#"{"version":"2.0","statement":[{"effect":true,"action":"*","resource":"*"}]}"#),
            Effect
        );
        // Any case is accepted.
        assert_eq!(
            policy(&one("Allow", r#""*""#, r#""*""#, None)).statements()[0].effect(),
            super::Effect::Allow
        );
        assert_eq!(
            policy(&one("DENY", r#""*""#, r#""*""#, None)).statements()[0].effect(),
            super::Effect::Deny
        );
    }

    #[test]
    fn action_errors() {
        use PolicyErrorKind::Action;
        for action in [
            r#""""#,
            r#""iai""#,
            r#""name/iai""#,
            r#""IAI:DetectFace""#,
            r#"":DetectFace""#,
            r#""iai:""#,
            r#""i ai:DetectFace""#,
            r#""iai:Detect Face""#,
            r#""permid/""#,
            r#"[]"#,
            r#"[1]"#,
            r#"{"a":1}"#,
            r#"7"#,
        ] {
            assert_eq!(
                kind(&one("allow", action, r#""*""#, None)),
                Action,
                "{action}"
            );
        }
        assert_eq!(
            kind(r#"{"version":"2.0","statement":[{"effect":"allow","resource":"*"}]}"#),
            Action
        );
    }

    #[test]
    fn action_not_exist() {
        let e = error(&one(
            "allow",
            r#"["iai:DetectFace","iai:SerchFaces"]"#,
            r#""*""#,
            None,
        ));
        assert_eq!(e.kind, PolicyErrorKind::ActionNotExist);
        assert_eq!(
            e.message,
            "statement 1: the action `iai:SerchFaces` does not exist"
        );
        assert_eq!(
            kind(&one("allow", r#""name/iai:Delete*""#, r#""*""#, None)),
            PolicyErrorKind::ActionNotExist
        );
        assert_eq!(
            kind(&one("allow", r#""cam:DetectFace""#, r#""*""#, None)),
            PolicyErrorKind::ActionNotExist
        );
        // Exact names are case-sensitive.
        assert_eq!(
            kind(&one("allow", r#""iai:detectface""#, r#""*""#, None)),
            PolicyErrorKind::ActionNotExist
        );
        // The second statement is named in the message.
        let doc = r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"},{"effect":"deny","action":"iai:Nope","resource":"*"}]}"#;
        assert!(error(doc).message.starts_with("statement 2:"));
    }

    #[test]
    fn unknown_services_and_permid_are_accepted_and_never_match() {
        let p = policy(&one(
            "allow",
            r#"["cvm:RunInstances","name/cos:Get*","permid/123"]"#,
            r#""*""#,
            None,
        ));
        let s = &p.statements()[0];
        for action in ["iai:DetectFace", "cam:AddUser", "cvm:Other"] {
            assert!(!s.matches_action(action), "{action}");
        }
        assert!(s.matches_action("cvm:RunInstances"));
        assert!(s.matches_action("cos:GetObject"));
    }

    #[test]
    fn resource_errors() {
        use PolicyErrorKind::Resource;
        for resource in [
            r#""""#,
            r#""qcs::iai:ap-guangzhou:uin/1""#,
            r#""abc::iai:ap-guangzhou:uin/1:groupid/G1""#,
            r#""QCS::iai:ap-guangzhou:uin/1:groupid/G1""#,
            r#""qcs::::uin/1:groupid/G1""#,
            r#""qcs::iai:ap-guangzhou:uin/1:""#,
            r#""groupid/G1""#,
            r#"[]"#,
            r#"[null]"#,
            r#"true"#,
        ] {
            assert_eq!(
                kind(&one("allow", r#""*""#, resource, None)),
                Resource,
                "{resource}"
            );
        }
        assert_eq!(
            kind(r#"{"version":"2.0","statement":[{"effect":"allow","action":"*"}]}"#),
            Resource
        );
    }

    #[test]
    fn condition_errors() {
        use PolicyErrorKind::*;
        let cases = [
            (r#"[]"#, Condition),
            (r#""ip_equal""#, Condition),
            (r#"null"#, Condition),
            (r#"{}"#, Condition),
            (r#"{"ip_equal":"10.0.0.1"}"#, Condition),
            (r#"{"ip_equal":{}}"#, Condition),
            (r#"{"string_equal":{"qcs:ip":"10.0.0.1"}}"#, ConditionType),
            (
                r#"{"ip_equal_if_exist":{"qcs:ip":"10.0.0.1"}}"#,
                ConditionType,
            ),
            (r#"{"IpAddress":{"qcs:ip":"10.0.0.1"}}"#, ConditionType),
            (
                r#"{"ip_equal":{"qcs:current_time":"10.0.0.1"}}"#,
                ConditionContent,
            ),
            (
                r#"{"ip_equal":{"qcs:sourceip":"10.0.0.1"}}"#,
                ConditionContent,
            ),
            (r#"{"ip_equal":{"qcs:ip":"10.0.0.0/33"}}"#, ConditionContent),
            (r#"{"ip_equal":{"qcs:ip":"10.0.0"}}"#, ConditionContent),
            (
                r#"{"ip_equal":{"qcs:ip":["10.0.0.1",5]}}"#,
                ConditionContent,
            ),
            (r#"{"ip_equal":{"qcs:ip":[]}}"#, ConditionContent),
            (r#"{"ip_equal":{"qcs:ip":1}}"#, ConditionContent),
            (
                r#"{"date_less_than":{"qcs:ip":"2016-06-01T00:01:00Z"}}"#,
                ConditionContent,
            ),
            (
                r#"{"date_less_than":{"qcs:current_time":"yesterday"}}"#,
                ConditionContent,
            ),
            (
                r#"{"date_less_than":{"qcs:current_time":"2016-13-01T00:01:00Z"}}"#,
                ConditionContent,
            ),
            (
                r#"{"date_less_than":{"qcs:current_time":1464739260}}"#,
                ConditionContent,
            ),
        ];
        for (condition, expected) in cases {
            assert_eq!(
                kind(&one("allow", r#""*""#, r#""*""#, Some(condition))),
                expected,
                "{condition}"
            );
        }
    }

    #[test]
    fn errors_name_the_offending_value() {
        let e = error(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"ip_equal":{"qcs:ip":"300.1.1.1"}}"#),
        ));
        assert!(
            e.message.contains("300.1.1.1") && e.message.starts_with("statement 1:"),
            "{}",
            e.message
        );
        let e = error(&one("allow", r#""*""#, r#""arn:aws:s3:::b""#, None));
        assert!(e.message.contains("arn:aws:s3:::b"), "{}", e.message);
        assert_eq!(e.to_string(), e.message);
    }

    #[test]
    fn no_panics_on_odd_inputs() {
        for doc in [
            "{",
            "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"iai:\u{00e9}*\",\"resource\":\"*\"}]}",
            "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\",\"resource\":\"qcs:\u{00e9}:\u{4e2d}:*:*:\u{00e9}*\u{4e2d}\"}]}",
            "\u{feff}{}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ] {
            let _ = parse(doc, &CATALOGUE);
        }
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""qcs:*:*:*:*:\u00e9*\u4e2d/*""#,
            None,
        ));
        for resource in [
            "",
            ":",
            "qcs:::::",
            "qcs:::::\u{00e9}",
            "qcs:::::\u{00e9}\u{4e2d}",
            "qcs:::::\u{4e2d}\u{00e9}",
        ] {
            let _ = decide(&p, "iai:DetectFace", &req(resource));
        }
        assert_eq!(
            decide(&p, "iai:DetectFace", &req("qcs:::::\u{00e9}x\u{4e2d}/1")),
            Decision::Allow
        );
    }

    // --- globs --------------------------------------------------------------------------------------

    #[test]
    fn glob_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("*", "", true),
            ("**", "x", true),
            ("a*", "a", true),
            ("a*", "ab", true),
            ("a*", "ba", false),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a**b", "ab", true),
            ("*b*", "abc", true),
            ("*b*", "ac", false),
            ("Get*Info", "GetGroupInfo", true),
            ("Get*Info", "GetGroupList", false),
            ("*ab*ab*", "abab", true),
            ("*ab*ab*", "aba", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    // --- actions ------------------------------------------------------------------------------------

    #[test]
    fn action_globs() {
        let s = policy(&one("allow", r#""name/iai:Analyze*""#, r#""*""#, None));
        let s = &s.statements()[0];
        assert!(s.matches_action("iai:AnalyzeFace"));
        assert!(s.matches_action("iai:AnalyzeDenseLandmarks"));
        assert!(!s.matches_action("iai:DetectFace"));
        assert!(!s.matches_action("cam:AnalyzeFace"));
        assert!(!s.matches_action("AnalyzeFace"));

        let all = policy(&one("allow", r#""*""#, r#""*""#, None));
        assert!(all.statements()[0].matches_action("iai:DetectFace"));
        assert!(all.statements()[0].matches_action("cam:AddUser"));

        let iai = policy(&one("allow", r#""iai:*""#, r#""*""#, None));
        assert!(iai.statements()[0].matches_action("iai:DetectFace"));
        assert!(iai.statements()[0].matches_action("iai:SearchFaces"));
        assert!(!iai.statements()[0].matches_action("cam:AddUser"));

        let bare = policy(&one(
            "allow",
            r#"["iai:DetectFace","name/iai:Get*Info"]"#,
            r#""*""#,
            None,
        ));
        assert!(bare.statements()[0].matches_action("iai:DetectFace"));
        assert!(bare.statements()[0].matches_action("iai:GetGroupInfo"));
        assert!(!bare.statements()[0].matches_action("iai:GetGroupList"));
        assert!(!bare.statements()[0].matches_action("iai:DetectFaces"));
        assert!(!bare.statements()[0].matches_action("iai:detectface"));

        let cam = policy(&one("allow", r#""cam:*""#, r#""*""#, None));
        assert!(!cam.statements()[0].matches_action("iai:DetectFace"));
        assert!(cam.statements()[0].matches_action("cam:ListUsers"));
    }

    #[test]
    fn action_decisions() {
        let p = policy(&one("allow", r#""name/iai:Analyze*""#, r#""*""#, None));
        assert_eq!(decide(&p, "iai:AnalyzeFace", &req("*")), Decision::Allow);
        assert_eq!(
            decide(&p, "iai:AnalyzeDenseLandmarks", &req("*")),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, "iai:DetectFace", &req("*")),
            Decision::ImplicitDeny
        );
    }

    // --- resources ----------------------------------------------------------------------------------

    #[test]
    fn resource_globs() {
        let pattern = format!(r#""qcs::iai:ap-guangzhou:uin/{OWNER}:groupid/test*""#);
        let p = policy(&one("allow", r#""iai:*""#, &pattern, None));
        let test1 = group("ap-guangzhou", "test1");
        let prod = group("ap-guangzhou", "prod");
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&test1)), Decision::Allow);
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&prod)),
            Decision::ImplicitDeny
        );
        // Region mismatch.
        let shanghai = group("ap-shanghai", "test1");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&shanghai)),
            Decision::ImplicitDeny
        );
        // A specific resource never authorises interface-level actions.
        assert_eq!(
            decide(&p, "iai:GetGroupList", &req("*")),
            Decision::ImplicitDeny
        );
        // Matching is case-sensitive.
        let upper = group("ap-guangzhou", "Test1");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&upper)),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn star_resource_matches_everything() {
        let p = policy(&one("allow", r#""iai:*""#, r#""*""#, None));
        assert_eq!(decide(&p, "iai:GetGroupList", &req("*")), Decision::Allow);
        let g = group("ap-beijing", "anything");
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
        // A resource list with "*" also covers interface-level actions.
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#"["qcs::iai::uin/:groupid/a","*"]"#,
            None,
        ));
        assert_eq!(decide(&p, "iai:GetGroupList", &req("*")), Decision::Allow);
    }

    #[test]
    fn all_groups_and_empty_region_and_owner_account() {
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""qcs::iai::uin/:groupid/*""#,
            None,
        ));
        for region in ["ap-guangzhou", "ap-shanghai", "ap-beijing"] {
            let g = group(region, "G1");
            assert_eq!(
                decide(&p, "iai:SearchFaces", &req(&g)),
                Decision::Allow,
                "{region}"
            );
        }
        // Another owner's group does not match "uin/".
        let other = "qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1";
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(other)),
            Decision::ImplicitDeny
        );
        // An empty account segment also means the owner.
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""qcs::iai:::groupid/*""#,
            None,
        ));
        let g = group("ap-guangzhou", "G1");
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(other)),
            Decision::ImplicitDeny
        );
        // As does owner_uin of the request.
        let request = Request {
            owner_uin: 200000000002,
            ..req(other)
        };
        assert_eq!(decide(&p, "iai:SearchFaces", &request), Decision::Allow);
    }

    #[test]
    fn explicit_account_and_service() {
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1""#,
            None,
        ));
        let own = group("ap-guangzhou", "G1");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&own)),
            Decision::ImplicitDeny
        );
        let theirs = "qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1";
        assert_eq!(decide(&p, "iai:SearchFaces", &req(theirs)), Decision::Allow);

        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""qcs::cvm::uin/:groupid/*""#,
            None,
        ));
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&own)),
            Decision::ImplicitDeny
        );

        let p = policy(&one("allow", r#""iai:*""#, r#""qcs:*:*:*:uin/*:*""#, None));
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&own)), Decision::Allow);
        assert_eq!(decide(&p, "iai:SearchFaces", &req(theirs)), Decision::Allow);
        assert_eq!(
            decide(&p, "iai:GetGroupList", &req("*")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn resource_segment_may_contain_colons() {
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""qcs::iai::uin/:groupid/a:b*""#,
            None,
        ));
        let g = group("ap-guangzhou", "a:bc");
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
    }

    // --- evaluation ---------------------------------------------------------------------------------

    #[test]
    fn explicit_deny_wins_across_statements() {
        let doc = format!(
            r#"{{"version":"2.0","statement":[
                {{"effect":"allow","action":"iai:*","resource":"*"}},
                {{"effect":"deny","action":"iai:SearchFaces","resource":"qcs::iai::uin/:groupid/secret*"}},
                {{"effect":"allow","action":"iai:SearchFaces","resource":"{}"}}
            ]}}"#,
            group("ap-guangzhou", "secret1")
        );
        let p = policy(&doc);
        let secret = group("ap-guangzhou", "secret1");
        let public = group("ap-guangzhou", "public");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&secret)),
            Decision::ExplicitDeny
        );
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&public)),
            Decision::Allow
        );
        assert_eq!(decide(&p, "iai:DetectFace", &req(&secret)), Decision::Allow);
        // Order does not matter: the deny first or last.
        let reversed: Vec<&Statement> = p.statements().iter().rev().collect();
        assert_eq!(evaluate(reversed, &req(&secret)), Decision::ExplicitDeny);
    }

    #[test]
    fn implicit_deny_when_nothing_matches() {
        let p = policy(&one("allow", r#""iai:DetectFace""#, r#""*""#, None));
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req("*")),
            Decision::ImplicitDeny
        );
        assert_eq!(evaluate([], &req("*")), Decision::ImplicitDeny);
        // A deny that does not apply is not an explicit deny.
        let p = policy(&one(
            "deny",
            r#""iai:*""#,
            r#""qcs::iai::uin/:groupid/x""#,
            None,
        ));
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req("*")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn twenty_statements() {
        // Statements i = 0..20 allow SearchFaces on group g<i> in alternating regions; statement 7 is a deny.
        let mut statements = Vec::new();
        for i in 0..20 {
            let effect = if i == 7 { "deny" } else { "allow" };
            let region = if i % 2 == 0 {
                "ap-guangzhou"
            } else {
                "ap-shanghai"
            };
            statements.push(format!(
                r#"{{"effect":"{effect}","action":["name/iai:SearchFaces","iai:Get*"],"resource":"qcs::iai:{region}:uin/:groupid/g{i}"}}"#
            ));
        }
        let doc = format!(
            r#"{{"version":"2.0","statement":[{}]}}"#,
            statements.join(",")
        );
        assert!(doc.len() <= MAX_DOCUMENT_BYTES);
        let p = policy(&doc);
        assert_eq!(p.statements().len(), 20);
        for i in 0..20 {
            let right = if i % 2 == 0 {
                "ap-guangzhou"
            } else {
                "ap-shanghai"
            };
            let wrong = if i % 2 == 0 {
                "ap-shanghai"
            } else {
                "ap-guangzhou"
            };
            let expected = if i == 7 {
                Decision::ExplicitDeny
            } else {
                Decision::Allow
            };
            let g = group(right, &format!("g{i}"));
            assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), expected, "{i}");
            assert_eq!(decide(&p, "iai:GetGroupInfo", &req(&g)), expected, "{i}");
            assert_eq!(
                decide(&p, "iai:DetectFace", &req(&g)),
                Decision::ImplicitDeny,
                "{i}"
            );
            let g = group(wrong, &format!("g{i}"));
            assert_eq!(
                decide(&p, "iai:SearchFaces", &req(&g)),
                Decision::ImplicitDeny,
                "{i}"
            );
        }
        assert_eq!(
            decide(&p, "iai:GetGroupList", &req("*")),
            Decision::ImplicitDeny
        );
        let g = group("ap-guangzhou", "g20");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&g)),
            Decision::ImplicitDeny
        );
    }

    // --- conditions ---------------------------------------------------------------------------------

    fn with_ip(ip: Option<IpAddr>) -> Request<'static> {
        Request { ip, ..req("*") }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn ip_equal() {
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"ip_equal":{"qcs:ip":["10.0.0.0/8","192.168.1.7"]}}"#),
        ));
        let s = &p.statements()[0];
        assert!(s.applies(&with_ip(v4(10, 1, 2, 3))));
        assert!(s.applies(&with_ip(v4(192, 168, 1, 7))));
        assert!(!s.applies(&with_ip(v4(192, 168, 1, 8))));
        assert!(!s.applies(&with_ip(v4(11, 0, 0, 1))));
        assert!(!s.applies(&with_ip(None)));
        // IPv4-mapped IPv6 is compared as IPv4.
        let mapped = Ipv4Addr::new(10, 9, 8, 7).to_ipv6_mapped();
        assert!(s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
        let mapped = Ipv4Addr::new(11, 9, 8, 7).to_ipv6_mapped();
        assert!(!s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
    }

    #[test]
    fn ip_equal_single_string_and_ipv6() {
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"ip_equal":{"qcs:ip":"2001:db8::/32"}}"#),
        ));
        let s = &p.statements()[0];
        let inside: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let outside: Ipv6Addr = "2001:db9::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        assert!(s.applies(&with_ip(Some(IpAddr::V6(inside)))));
        assert!(!s.applies(&with_ip(Some(IpAddr::V6(outside)))));
        assert!(!s.applies(&with_ip(v4(32, 1, 13, 184))));

        // A mapped block in the policy also matches plain IPv4 requests.
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"ip_equal":{"qcs:ip":"::ffff:10.0.0.0/104"}}"#),
        ));
        assert!(p.statements()[0].applies(&with_ip(v4(10, 2, 3, 4))));
        assert!(!p.statements()[0].applies(&with_ip(v4(11, 2, 3, 4))));
    }

    #[test]
    fn ip_not_equal() {
        let p = policy(&one(
            "deny",
            r#""*""#,
            r#""*""#,
            Some(r#"{"ip_not_equal":{"qcs:ip":["10.0.0.0/8","172.16.0.0/12"]}}"#),
        ));
        let s = &p.statements()[0];
        assert!(!s.applies(&with_ip(v4(10, 1, 2, 3))));
        assert!(!s.applies(&with_ip(v4(172, 20, 0, 1))));
        assert!(s.applies(&with_ip(v4(8, 8, 8, 8))));
        assert!(!s.applies(&with_ip(None)));
        let mapped = Ipv4Addr::new(10, 9, 8, 7).to_ipv6_mapped();
        assert!(!s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
        assert_eq!(
            evaluate(p.statements(), &with_ip(v4(8, 8, 8, 8))),
            Decision::ExplicitDeny
        );
    }

    fn at(now: i64) -> Request<'static> {
        Request { now, ..req("*") }
    }

    #[test]
    fn date_conditions() {
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"date_greater_than":{"qcs:current_time":"2026-01-01T00:00:00Z"}}"#),
        ));
        let s = &p.statements()[0];
        assert!(!s.applies(&at(NEW_YEAR_2026)));
        assert!(s.applies(&at(NEW_YEAR_2026 + 1)));
        assert!(!s.applies(&at(NEW_YEAR_2026 - 1)));

        // +08:00 is eight hours before the same wall time in UTC.
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(r#"{"date_less_than":{"qcs:current_time":"2026-01-01T08:00:00+08:00"}}"#),
        ));
        let s = &p.statements()[0];
        assert!(s.applies(&at(NEW_YEAR_2026 - 1)));
        assert!(!s.applies(&at(NEW_YEAR_2026)));

        // A window: both clauses must hold.
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(
                r#"{"date_greater_than":{"qcs:current_time":"2016-06-01T00:01:00Z"},"date_less_than":{"qcs:current_time":"2026-01-01T00:00:00+08:00"}}"#,
            ),
        ));
        let s = &p.statements()[0];
        assert!(s.applies(&at(1_464_739_261)));
        assert!(!s.applies(&at(1_464_739_260)));
        assert!(s.applies(&at(NEW_YEAR_2026 - 8 * 3600 - 1)));
        assert!(!s.applies(&at(NEW_YEAR_2026 - 8 * 3600)));
    }

    #[test]
    fn date_negated_and_equal() {
        let cond = |op: &str, values: &str| {
            policy(&one(
                "allow",
                r#""*""#,
                r#""*""#,
                Some(&format!(r#"{{"{op}":{{"qcs:current_time":{values}}}}}"#)),
            ))
        };
        let t = r#""2026-01-01T00:00:00Z""#;
        let ngt = cond("date_not_greater_than", t);
        assert!(ngt.statements()[0].applies(&at(NEW_YEAR_2026)));
        assert!(!ngt.statements()[0].applies(&at(NEW_YEAR_2026 + 1)));
        let nlt = cond("date_not_less_than", t);
        assert!(nlt.statements()[0].applies(&at(NEW_YEAR_2026)));
        assert!(!nlt.statements()[0].applies(&at(NEW_YEAR_2026 - 1)));
        let eq = cond(
            "date_equal",
            r#"["2026-01-01T00:00:00Z","2026-01-01T00:00:10Z"]"#,
        );
        assert!(eq.statements()[0].applies(&at(NEW_YEAR_2026)));
        assert!(eq.statements()[0].applies(&at(NEW_YEAR_2026 + 10)));
        assert!(!eq.statements()[0].applies(&at(NEW_YEAR_2026 + 5)));
        let ne = cond(
            "date_not_equal",
            r#"["2026-01-01T00:00:00Z","2026-01-01T00:00:10Z"]"#,
        );
        assert!(!ne.statements()[0].applies(&at(NEW_YEAR_2026)));
        assert!(!ne.statements()[0].applies(&at(NEW_YEAR_2026 + 10)));
        assert!(ne.statements()[0].applies(&at(NEW_YEAR_2026 + 5)));
        // Offsets without a colon and fractional seconds are accepted too.
        let compact = cond("date_equal", r#""2026-01-01T08:00:00+0800""#);
        assert!(compact.statements()[0].applies(&at(NEW_YEAR_2026)));
        let fraction = cond("date_equal", r#""2026-01-01T00:00:00.250Z""#);
        assert!(fraction.statements()[0].applies(&at(NEW_YEAR_2026)));
    }

    #[test]
    fn any_of_values() {
        // Any of the listed times satisfies a positive operator.
        let p = policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(
                r#"{"date_greater_than":{"qcs:current_time":["2030-01-01T00:00:00Z","2026-01-01T00:00:00Z"]}}"#,
            ),
        ));
        assert!(p.statements()[0].applies(&at(NEW_YEAR_2026 + 1)));
        assert!(!p.statements()[0].applies(&at(NEW_YEAR_2026)));
        // Any of the listed addresses; and all clauses must hold together.
        let p = policy(&one(
            "allow",
            r#""iai:*""#,
            r#""*""#,
            Some(
                r#"{"ip_equal":{"qcs:ip":["1.1.1.1","2.2.2.0/24"]},"date_less_than":{"qcs:current_time":"2026-01-01T00:00:00Z"}}"#,
            ),
        ));
        let request = |ip, now| Request {
            ip,
            now,
            ..req("*")
        };
        assert_eq!(
            decide(
                &p,
                "iai:DetectFace",
                &request(v4(2, 2, 2, 9), NEW_YEAR_2026 - 1)
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &p,
                "iai:DetectFace",
                &request(v4(1, 1, 1, 1), NEW_YEAR_2026 - 1)
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &p,
                "iai:DetectFace",
                &request(v4(2, 2, 2, 9), NEW_YEAR_2026)
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(
                &p,
                "iai:DetectFace",
                &request(v4(3, 3, 3, 3), NEW_YEAR_2026 - 1)
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn conditions_combine_with_resources() {
        let p = policy(&one(
            "allow",
            r#""iai:SearchFaces""#,
            r#""qcs::iai::uin/:groupid/G*""#,
            Some(r#"{"ip_equal":{"qcs:ip":"10.0.0.0/8"}}"#),
        ));
        let g = group("ap-guangzhou", "G1");
        let h = group("ap-guangzhou", "H1");
        let request = |resource, ip| Request {
            ip,
            ..req(resource)
        };
        assert_eq!(
            decide(&p, "iai:SearchFaces", &request(&g, v4(10, 0, 0, 1))),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, "iai:SearchFaces", &request(&g, v4(11, 0, 0, 1))),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&p, "iai:SearchFaces", &request(&h, v4(10, 0, 0, 1))),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn wildcards_stay_in_their_segment() {
        use Decision::{Allow, ImplicitDeny as Deny};
        let named = |region, id| {
            Resource::Named(ResourceName {
                service: "iai",
                region,
                account: OWNER,
                kind: "groupid",
                id,
            })
        };
        let gz = "ap-guangzhou";
        // What a region or id holds is only ever that segment: no text moves into the next one.
        let injected = "ap-guangzhou:uin/100000000001:groupid/test";
        let cases = [
            ("qcs::iai::uin/:groupid/test*", named(gz, "test1"), Allow),
            ("qcs::iai::uin/:groupid/test*", named(gz, "prod"), Deny),
            (
                "qcs::iai::uin/:groupid/test*",
                named(injected, "prod"),
                Deny,
            ),
            ("qcs::iai::uin/:groupid/test*", Resource::Interface, Deny),
            // `*` in the kind or the id does not reach across the `/`; a last segment with neither `/`
            // nor only `*` names nothing.
            ("qcs::iai::uin/:group*", named(gz, "x"), Deny),
            ("qcs::iai::uin/:*/x", named(gz, "x"), Allow),
            ("qcs::iai::uin/:*/x", named(gz, "xy"), Deny),
            // A region glob matches the region alone.
            ("qcs::iai:ap-*:uin/:groupid/*", named(gz, "g"), Allow),
            (
                "qcs::iai:ap-*:uin/:groupid/*",
                named("na-ashburn", "g"),
                Deny,
            ),
            // Accounts: `uin/<glob>` on the uin's digits, `*` any, anything else none.
            ("qcs::iai::uin/1000*:groupid/*", named(gz, "g"), Allow),
            ("qcs::iai::*:groupid/*", named(gz, "g"), Allow),
            ("qcs::iai::owner:groupid/*", named(gz, "g"), Deny),
        ];
        for (pattern, resource, expected) in cases {
            let p = policy(&one("allow", r#""iai:*""#, &format!("\"{pattern}\""), None));
            let request = Request {
                resource,
                ..req("*")
            };
            assert_eq!(
                p.evaluate("iai:GetGroupInfo", &request),
                expected,
                "{pattern} {resource:?}"
            );
        }
    }

    #[test]
    fn policy_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Policy>();
        check::<Statement>();
    }
}
