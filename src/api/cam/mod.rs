//! Tencent CAM's API model (service `cam`, version 2019-01-16: sub-users, access keys, policies,
//! attachments), generated from `tools/cam_v20190116.json` by `tools/gen_api.py`: types, field tables and
//! the `Cam` trait, which `crate::cam::CamService` implements. `CamCalls` is the trait as the wire calls it.

#[allow(clippy::all)]
pub mod schema;
#[allow(clippy::all)]
pub mod service;
#[allow(clippy::all)]
pub mod types;

use std::future::Future;
use std::pin::Pin;

use super::{ApiError, RequestContext};
pub use service::{Cam, dispatch};

/// The CAM API version the server answers.
pub const VERSION: &str = "2019-01-16";

/// Whether a CAM action changes stored state (all but the `Get*` and `List*` ones).
pub fn writes(action: &str) -> bool {
    !(action.starts_with("Get") || action.starts_with("List"))
}

/// The CAM action of that exact name.
pub fn find_action(name: &str) -> Option<&'static super::schema::ActionSpec> {
    let actions = schema::ACTIONS;
    actions
        .binary_search_by(|a| a.name.cmp(name))
        .ok()
        .map(|i| &actions[i])
}

/// A CAM call's answer, boxed: the wire holds the implementation as a trait object.
pub type Answer<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, ApiError>> + Send + 'a>>;

/// The `Cam` trait as the wire calls it: one call by action name with validated parameters (the wire
/// holds it as `dyn CamCalls`, so it is not generic over the implementation).
pub trait CamCalls: Send + Sync + 'static {
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        action: &'a str,
        params: serde_json::Value,
    ) -> Answer<'a>;
}

impl<C: Cam> CamCalls for C {
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        action: &'a str,
        params: serde_json::Value,
    ) -> Answer<'a> {
        Box::pin(dispatch(self, ctx, action, params))
    }
}
