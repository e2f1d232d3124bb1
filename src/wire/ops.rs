//! Operator endpoints, unsigned and outside Tencent's API (SDKs only ever call `/`):
//! - `GET /health`: the process is up (200 as soon as it listens);
//! - `GET /ready`: models loaded, index loaded and the database answering (200), else 503 with what is
//!   missing;
//! - `GET /metrics`: Prometheus text;
//! - `GET /index/digest`: counts and a hash of every group's live index, as of one moment no write was
//!   half-way through, for `iai-server check-index` to compare with a rebuild from the database. It needs
//!   the operator token (`Authorization: Bearer <token>`; 401 without it, 403 with another), which is
//!   derived by the service from a secret in its data directory: only who can read the data directory can
//!   ask;
//! - `GET /files/{name}?Expires=..&Signature=..`: the result files of jobs, behind links that expire.
//!
//! `/metrics` names groups and their sizes: keep the port on a trusted network, or block that path in
//! front of the server.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a result file is not served: the service's reasons, as the wire answers them (403 or 410).
#[derive(Debug, PartialEq, Eq)]
pub enum FileRefusal {
    /// The link's signature does not hold (403).
    Invalid(String),
    /// The link has expired or the file is gone (410).
    Gone(String),
}

/// What the operator endpoints need from the service behind the wire.
pub trait Operations: Send + Sync + 'static {
    /// `Ok` when calls can be answered (the database answers a query).
    fn check_ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Prometheus text appended to the metrics (figures read at scrape time, such as index sizes).
    fn metrics_text(&self) -> String;
    /// The live index's digest, as JSON.
    fn index_digest(&self) -> impl Future<Output = Result<serde_json::Value, String>> + Send;
    /// Whether `presented` is the operator token `/index/digest` requires (compared in constant time).
    /// None is, unless the service says so.
    fn is_operator_token(&self, presented: &str) -> bool {
        let _ = presented;
        false
    }
    /// A job's result file behind a signed link (`jobs::links`).
    fn result_file(
        &self,
        name: &str,
        expires: i64,
        signature: &str,
    ) -> impl Future<Output = Result<Vec<u8>, FileRefusal>> + Send;
}

/// What the operator endpoints need from the server holding the service: the service once it has loaded,
/// and the server's own metrics (implemented by `server::AppState`).
pub trait OpsHost: Send + Sync + 'static {
    type Service: Operations;
    /// `None` while the service loads.
    fn service(&self) -> Option<&Arc<Self::Service>>;
    /// The server's metrics as Prometheus text.
    fn render_metrics(&self) -> String;
}

#[derive(serde::Deserialize)]
pub struct LinkQuery {
    #[serde(rename = "Expires")]
    expires: i64,
    #[serde(rename = "Signature")]
    signature: String,
}

/// `GET /files/{name}?Expires=..&Signature=..`: a job's result file (JSON), while its link is valid.
pub async fn result_file<H: OpsHost>(
    State(state): State<Arc<H>>,
    Path(name): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (Some(service), Ok(Query(link))) = (state.service(), query) else {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "the link is not valid"}),
        );
    };
    match service
        .result_file(&name, link.expires, &link.signature)
        .await
    {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(FileRefusal::Invalid(why)) => {
            json_response(StatusCode::FORBIDDEN, json!({"error": why}))
        }
        Err(FileRefusal::Gone(why)) => json_response(StatusCode::GONE, json!({"error": why})),
    }
}

pub async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "alive"}))
}

pub async fn ready<H: OpsHost>(State(state): State<Arc<H>>) -> Response {
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

pub async fn metrics<H: OpsHost>(State(state): State<Arc<H>>) -> Response {
    let mut text = state.render_metrics();
    if let Some(service) = state.service() {
        text.push_str(&service.metrics_text());
    }
    metrics_response(text)
}

/// Prometheus text, with its content type.
pub(super) fn metrics_response(text: String) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn index_digest<H: OpsHost>(
    State(state): State<Arc<H>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(service) = state.service() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the server is starting"}),
        );
    };
    let Some(presented) = bearer(&headers) else {
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "the operator token is required (Authorization: Bearer <token>; \
                   `iai-server check-index --data-dir D` sends it)"}),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"iai-server operator\""),
        );
        return response;
    };
    if !service.is_operator_token(presented) {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "the operator token is not valid"}),
        );
    }
    match service.index_digest().await {
        Ok(digest) => json_response(StatusCode::OK, digest),
        Err(why) => json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": why})),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case), if one is there.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub(super) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_authorization_carries_the_operator_token() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer(&headers).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("TC3-HMAC-SHA256 Credential=x"), None);
        assert_eq!(bearer(&axum::http::HeaderMap::new()), None);
    }
}
