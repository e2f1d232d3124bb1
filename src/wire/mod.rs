//! The wire layer: everything between HTTP and the `Iai` service trait.
//!
//! `auth` verifies signatures, `request` turns an HTTP request into a validated `(context, params)` call,
//! `envelope` writes Tencent's `{"Response": ...}` answers, `server` is the axum service that ties them up.

pub mod auth;
pub mod envelope;
pub mod request;
pub mod server;
