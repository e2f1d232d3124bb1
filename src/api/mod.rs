//! The API models: IAI's (types generated from the wire specification, the `Iai` trait with one method per
//! action, error codes, the schema used to validate and coerce incoming parameters) and CAM's (`cam`), with
//! the identifier rules both the wire's authorisation and the actions apply (`ids`), and what a search hands
//! the audit trail's search log (`search_log`).
//!
//! Nothing here knows about HTTP or storage: `wire` turns requests into `(action, params)` and back,
//! `actions` implements the `Iai` trait on top of `store`, `cam` implements the `Cam` trait.

pub mod access;
pub mod cam;
mod error;
pub mod ids;
pub mod schema;
pub mod search_log;

#[allow(clippy::all)]
pub mod generated {
    pub mod error_code;
    pub mod schema;
    pub mod service;
    pub mod types;
}

pub use error::ApiError;
pub use generated::error_code::ErrorCode;
pub use generated::schema::ACTIONS;
pub use generated::service::{Iai, dispatch};
pub use generated::types as model;
pub use search_log::{SearchFacts, SearchFactsSlot};

/// The IAI action of that exact name (names are case-sensitive on the wire).
pub fn find_action(name: &str) -> Option<&'static schema::ActionSpec> {
    ACTIONS
        .binary_search_by(|a| a.name.cmp(name))
        .ok()
        .map(|i| &ACTIONS[i])
}

/// Facts about the call that handlers may need besides the request fields.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    /// The action name as sent (`X-TC-Action` or `Action`).
    pub action: String,
    /// `2018-03-01` or `2020-03-03`.
    pub version: String,
    pub region: Option<String>,
    /// `zh-CN` (default) or `en-US`.
    pub language: Option<String>,
    /// The SecretId that signed the call; `None` when signature checking is turned off.
    pub secret_id: Option<String>,
    /// The Host the client reached the server by (links to result files point there).
    pub host: Option<String>,
    /// Who signed the call: the main account (the configuration's keys) or a CAM sub-user. `Main` when
    /// signature checking is off.
    pub principal: Principal,
    /// For a listing under a group-scoped CAM policy (GetGroupList): the groups the caller may see.
    pub visible_groups: Option<GroupFilter>,
    /// For an action that reaches a person where it already is (CopyPerson) under a sub-user's policy:
    /// refuses each of the person's groups the caller may not act on.
    pub existing_groups: Option<GroupCheck>,
    /// Where a search or verification leaves what the audit trail's search log keeps of it.
    pub search_facts: SearchFactsSlot,
}

/// Which API a call is for: IAI's, or CAM's on the same endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Iai,
    Cam,
}

impl Service {
    /// The service's name in CAM (`qcs::<service>:...`, `<service>:<Action>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Iai => "iai",
            Self::Cam => "cam",
        }
    }
}

/// The account a call acts as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The owner: the keys in the configuration, and keys it created for itself through CAM.
    #[default]
    Main,
    /// A CAM sub-user, by uin.
    User(u64),
}

/// Which groups (by GroupId) a listing may answer.
#[derive(Clone)]
pub struct GroupFilter(pub std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl GroupFilter {
    pub fn allows(&self, group_id: &str) -> bool {
        (self.0)(group_id)
    }
}

impl std::fmt::Debug for GroupFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupFilter")
    }
}

/// The longest text kept of something a caller chose (an action name, a SecretId, a parameter's name, a
/// region) when it is shown in a message or recorded: longer text is cut, so a 10 MB name costs 64 characters.
pub const CLIP_CHARS: usize = 64;

/// `text` cut to `CLIP_CHARS` characters, with `...` where it was cut.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP_CHARS) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}...", &text[..at]),
    }
}

/// CAM's check of one group, `Err` with the refusal the caller gets.
#[derive(Clone)]
pub struct GroupCheck(pub std::sync::Arc<CheckGroup>);

/// The function behind a `GroupCheck`.
pub type CheckGroup = dyn Fn(&str) -> Result<(), ApiError> + Send + Sync;

impl GroupCheck {
    pub fn check(&self, group_id: &str) -> Result<(), ApiError> {
        (self.0)(group_id)
    }
}

impl std::fmt::Debug for GroupCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCheck")
    }
}

/// Turn validated parameters into a request type. Validation has already checked every type, so a failure
/// here is a mismatch between the generated schema and types: report it as a parameter error, not a panic.
pub fn decode<T: serde::de::DeserializeOwned>(params: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(params)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.to_string()))
}

/// Serialize a response type into the JSON object that goes inside `Response`.
pub fn encode<T: serde::Serialize>(response: T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(response)
        .map_err(|e| ApiError::internal(format!("cannot encode response: {e}")))
}
