//! Operator endpoints, unauthenticated and outside Tencent's API (SDKs only ever call `/`):
//! - `GET /health`: the process is up (200 as soon as it listens);
//! - `GET /ready`: models loaded, index loaded and the database answering (200), else 503 with what is
//!   missing;
//! - `GET /metrics`: Prometheus text;
//! - `GET /index/digest`: counts and a hash of every group's live index, taken while no write can happen,
//!   for `iai-server check-index` to compare with a rebuild from the database;
//! - `GET /files/{name}?Expires=..&Signature=..`: the result files of jobs, behind links that expire.
//!
//! `/metrics` and `/index/digest` name groups and their sizes: keep the port on a trusted network, or
//! block those paths in front of the server.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::server::AppState;
use crate::jobs::links::LinkError;

/// What the operator endpoints need from the service behind the wire.
pub trait Operations: Send + Sync + 'static {
    /// `Ok` when calls can be answered (the database answers a query).
    fn check_ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Prometheus text appended to the metrics (figures read at scrape time, such as index sizes).
    fn metrics_text(&self) -> String;
    /// The live index's digest, as JSON.
    fn index_digest(&self) -> impl Future<Output = Result<serde_json::Value, String>> + Send;
    /// A job's result file behind a signed link (`jobs::links`).
    fn result_file(&self, name: &str, expires: i64, signature: &str) -> Result<Vec<u8>, LinkError>;
}

#[derive(serde::Deserialize)]
pub struct LinkQuery {
    #[serde(rename = "Expires")]
    expires: i64,
    #[serde(rename = "Signature")]
    signature: String,
}

/// `GET /files/{name}?Expires=..&Signature=..`: a job's result file (JSON), while its link is valid.
pub async fn result_file<S: Operations>(
    State(state): State<Arc<AppState<S>>>,
    Path(name): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (Some(service), Ok(Query(link))) = (state.service(), query) else {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "the link is not valid"}),
        );
    };
    match service.result_file(&name, link.expires, &link.signature) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            let status = match e {
                LinkError::Invalid => StatusCode::FORBIDDEN,
                LinkError::Expired | LinkError::Gone => StatusCode::GONE,
            };
            json_response(status, json!({"error": e.to_string()}))
        }
    }
}

pub async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "alive"}))
}

pub async fn ready<S: Operations>(State(state): State<Arc<AppState<S>>>) -> Response {
    let Some(service) = state.service() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "starting", "models": false, "index": false, "database": false}),
        );
    };
    match service.check_ready().await {
        Ok(()) => json_response(
            StatusCode::OK,
            json!({"status": "ready", "models": true, "index": true, "database": true}),
        ),
        Err(why) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "models": true, "index": true, "database": false,
                   "error": why}),
        ),
    }
}

pub async fn metrics<S: Operations>(State(state): State<Arc<AppState<S>>>) -> Response {
    let mut text = state.metrics.render();
    if let Some(service) = state.service() {
        text.push_str(&service.metrics_text());
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn index_digest<S: Operations>(State(state): State<Arc<AppState<S>>>) -> Response {
    let Some(service) = state.service() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the server is starting"}),
        );
    };
    match service.index_digest().await {
        Ok(digest) => json_response(StatusCode::OK, digest),
        Err(why) => json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": why})),
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
