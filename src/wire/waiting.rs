//! What the server answers while it waits for a shared database it cannot reach yet (a deployment may
//! start the replicas before PostgreSQL): `/health` 200, `/ready` 503 with the last connection error,
//! `/metrics`, and every API call Tencent's envelope with `ServiceUnavailable`. Authentication needs the
//! database (stored keys, CAM), so nothing here reads a call's body or signature.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::json;

use super::telemetry::Metrics;
use super::{envelope, ops};
use crate::api::{ApiError, ErrorCode};

/// Why the database is not reached yet (the last connection error), shared with the loop that retries.
#[derive(Clone, Default)]
pub struct Waiting(Arc<Mutex<String>>);

impl Waiting {
    pub fn set(&self, why: String) {
        *self.0.lock() = why;
    }
}

struct WaitingState {
    why: Waiting,
    metrics: Metrics,
}

pub fn router(why: Waiting, metrics: Metrics) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .fallback(refuse)
        .with_state(Arc::new(WaitingState { why, metrics }))
}

async fn ready(State(state): State<Arc<WaitingState>>) -> Response {
    ops::json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"status": "waiting for the database", "models": false, "index": false,
               "database": false, "error": state.why.0.lock().clone()}),
    )
}

async fn metrics_text(State(state): State<Arc<WaitingState>>) -> Response {
    ops::metrics_response(state.metrics.render())
}

async fn refuse(headers: HeaderMap) -> Response {
    envelope::respond(
        &envelope::new_request_id(),
        headers.get("x-tc-traceid"),
        Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The server cannot reach its database yet; retry shortly.",
        )),
    )
}
