//! The wire layer: everything between HTTP and the service traits (`api::Iai`, `api::cam::CamCalls`).
//!
//! `listener` accepts connections (limits and header timeout), `server` is the axum service (body
//! admission and timeouts, dispatch), `auth` verifies signatures, `request` turns an HTTP request into a
//! validated `(context, params)` call, `named` reads what a call names before its full parse, `limits`
//! applies the QPS limits per interface group and principal, `replay` refuses reused signatures, `access`
//! is the interface to access control (stored keys, authorisation; implemented by `cam`), `console`
//! serves the web console's embedded files, `envelope` writes Tencent's `{"Response": ...}` answers,
//! `ops` serves the operator endpoints (the interface `Operations`, implemented by `actions`) and
//! `telemetry` the metrics and the access log; `waiting` answers while a shared database cannot be
//! reached at start. Nothing here names the services behind those interfaces.

pub mod access;
pub mod auth;
pub mod console;
pub mod envelope;
pub mod limits;
pub mod listener;
pub mod named;
pub mod ops;
pub mod replay;
pub mod request;
pub mod server;
pub mod telemetry;
pub mod waiting;
