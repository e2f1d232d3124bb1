//! Tencent CAM on the same endpoint: sub-users, their access keys, policies and attachments (the CAM API,
//! service `cam`, version 2019-01-16), and the evaluation of those policies for every IAI call.
//!
//! - `generated`: the CAM API model (types, field tables, the `Cam` trait), generated from
//!   `tools/cam_v20190116.json` by `tools/gen_api.py`;
//! - `policy`: the policy grammar, its validation and CAM's evaluation rules;
//! - `presets`: the built-in policies QcloudFRFullAccess and QcloudFRReadOnlyAccess;
//! - `directory`: the in-memory view the wire layer authenticates and authorises with, a follower of the
//!   store's change log rebuilt on every CAM change (so a change applies to the next call);
//! - `actions`: `CamService`, the `Cam` implementation on top of the store's CAM operations
//!   (`store::cam`).

pub mod actions;
pub mod directory;
pub mod policy;
pub mod presets;

#[allow(clippy::all)]
pub mod generated {
    pub mod schema;
    pub mod service;
    pub mod types;
}

pub use actions::CamService;
pub use directory::Directory;
pub use generated::service::{Cam, dispatch};

/// The CAM API version the server answers.
pub const VERSION: &str = "2019-01-16";

/// Whether a CAM action changes stored state (all but the `Get*` and `List*` ones).
pub fn writes(action: &str) -> bool {
    !(action.starts_with("Get") || action.starts_with("List"))
}

/// The CAM action of that exact name.
pub fn find_action(name: &str) -> Option<&'static crate::api::schema::ActionSpec> {
    let actions = generated::schema::ACTIONS;
    actions
        .binary_search_by(|a| a.name.cmp(name))
        .ok()
        .map(|i| &actions[i])
}
