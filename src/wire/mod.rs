//! The wire layer: everything between HTTP and the `Iai` service trait.
//!
//! `listener` accepts connections (limits and header timeout), `server` is the axum service (body
//! admission and timeouts, dispatch), `auth` verifies signatures, `request` turns an HTTP request into a
//! validated `(context, params)` call, `limits` applies the QPS limits per interface group and principal,
//! `authorize` checks CAM policies, `console` serves the web console's embedded files, `envelope` writes Tencent's `{"Response": ...}` answers, `ops` serves
//! the operator endpoints and `telemetry` the metrics and the access log; `waiting` answers while a shared
//! database cannot be reached at start.

pub mod auth;
pub mod authorize;
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
