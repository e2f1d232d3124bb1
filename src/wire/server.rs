//! The axum service: every path and method lands in `handle`, which reads the body (up to the configured
//! limit), parses and authenticates the call, dispatches it to the `Iai` implementation and wraps the answer.
//! Panics are caught and answered as `InternalError` inside the envelope.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;

use super::auth::KeyRing;
use super::envelope::{self, new_request_id};
use super::request::{self, Auth, Incoming};
use crate::api::{ApiError, ErrorCode, Iai, dispatch};

pub struct WireConfig {
    /// `None` turns signature checking off (logged loudly at start).
    pub keys: Option<KeyRing>,
    pub max_body_bytes: usize,
}

struct AppState<S> {
    service: Arc<S>,
    config: WireConfig,
}

pub fn router<S: Iai>(service: Arc<S>, config: WireConfig) -> Router {
    let state = Arc::new(AppState { service, config });
    Router::new()
        .fallback(handle::<S>)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_panic| {
            envelope::respond(
                &new_request_id(),
                None,
                Err(ApiError::internal("Internal error.")),
            )
        }))
}

async fn handle<S: Iai>(State(state): State<Arc<AppState<S>>>, request: Request<Body>) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let trace_id = parts.headers.get("x-tc-traceid").cloned();
    let result = async {
        let body = axum::body::to_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestSizeLimitExceeded,
                    format!(
                        "The request body is larger than {} bytes.",
                        state.config.max_body_bytes
                    ),
                )
            })?;
        let incoming = Incoming {
            method: &parts.method,
            headers: &parts.headers,
            raw_query: parts.uri.query().unwrap_or(""),
            body: &body,
        };
        let auth = match &state.config.keys {
            Some(keys) => Auth::Verify(keys),
            None => Auth::Off,
        };
        let (mut ctx, params) = request::parse(&incoming, &auth, chrono::Utc::now().timestamp())?;
        ctx.request_id = request_id.clone();
        let action = ctx.action.clone();
        let answer = dispatch(state.service.as_ref(), &ctx, &action, params).await;
        if let Err(e) = &answer {
            tracing::debug!(%action, code = e.code.as_str(), message = %e.message, "action failed");
        }
        answer
    }
    .await;
    if let Err(e) = &result
        && e.code == ErrorCode::InternalError
    {
        tracing::error!(request_id, message = %e.message, "internal error");
    }
    envelope::respond(&request_id, trace_id.as_ref(), result)
}
