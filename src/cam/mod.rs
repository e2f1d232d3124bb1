//! Tencent CAM on the same endpoint: sub-users, their access keys, policies and attachments (the CAM API,
//! service `cam`, version 2019-01-16, modelled in `api::cam`), and the evaluation of those policies for
//! every call: `CamService` is the wire's key store and access control (`wire::access`).
//!
//! - the policy grammar, its validation and CAM's evaluation rules are the `iai-policy` crate
//!   (`crates/iai-policy`);
//! - `presets`: the built-in policies QcloudFRFullAccess and QcloudFRReadOnlyAccess;
//! - `directory`: the in-memory view the wire layer authenticates and authorises with, a follower of the
//!   store's change log rebuilt on every CAM change (so a change applies to the next call);
//! - `authorize`: a call's question to the directory, built from typed segments, and Tencent's refusal;
//! - `actions`: `CamService`, the `Cam` implementation on top of the store's CAM operations
//!   (`store::cam`).

pub mod actions;
pub mod authorize;
pub mod directory;
pub mod presets;
#[cfg(test)]
mod tests;

pub use actions::CamService;
pub use directory::Directory;
