//! The axum service: the operator endpoints (`ops`) on their own paths, and every other path and method in
//! `handle`, which reads the body (charging it to the body gate), parses and authenticates the call, dispatches it to the `Iai`
//! implementation and wraps the answer. Panics are caught and answered as `InternalError` inside the
//! envelope. Bodies are read under two timers (tower-http): a deadline for the whole body and a limit on
//! how long it may stall.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::{RequestBodyDeadlineLayer, RequestBodyTimeoutLayer};
use tracing::Instrument;

use super::access::{AccessControl, AccessView, Facts};
use super::auth::KeyRing;
use super::console;
use super::envelope::{self, new_request_id};
use super::limits::{FailureLimits, QpsConfig, RateLimits, Share};
use super::named::Named;
use super::ops::{self, Operations};
use super::replay::{self, ReplayGuard};
use super::request::{self, Auth, Incoming};
use super::telemetry;
use crate::admission::{Gate, Ticket};
use crate::api::Service;
use crate::api::cam::CamCalls;
use crate::api::{self, ApiError, ErrorCode, Iai, Principal, access, dispatch};
use crate::audit;

pub struct WireConfig {
    /// `None` turns signature checking off (logged loudly at start).
    pub keys: Option<KeyRing>,
    pub max_body_bytes: usize,
    /// Request bodies being read or held at once, in bytes (the body gate; small bodies are not counted).
    pub body_budget_bytes: u64,
    /// The whole body must arrive within this.
    pub body_timeout: Duration,
    /// The body may not stall (no bytes) for longer than this.
    pub body_idle_timeout: Duration,
    /// QPS limits per interface group and principal.
    pub qps: QpsConfig,
    /// How many replicas share the QPS limits now (each enforces its share).
    pub qps_share: Share,
    /// Which second uses of a signature are refused (`replay`); `None`: none.
    pub replay_protection: Option<replay::Mode>,
    /// Failed authentications per client address and second (0: no limit).
    pub auth_failures_per_second: u32,
}

/// CAM on this server, as the wire calls it: its API and the access control it implements (one object,
/// `cam::CamService`).
pub trait CamBackend: CamCalls + AccessControl {}

impl<T: CamCalls + AccessControl> CamBackend for T {}

/// The service behind the wire, set once it has loaded (the server listens before, to answer `/health`
/// and `/ready` while the index and models load).
pub struct AppState<S> {
    service: OnceLock<Arc<S>>,
    /// CAM (sub-users and policies); `None` answers CAM calls `UnsupportedOperation` and lets every key do
    /// everything.
    cam: Option<Arc<dyn CamBackend>>,
    /// The audit trail; `None` when turned off.
    audit: Option<Arc<audit::Trail>>,
    limits: RateLimits,
    failures: Option<FailureLimits>,
    replay: Option<ReplayGuard>,
    config: WireConfig,
    body_gate: Arc<Gate>,
    pub(super) metrics: telemetry::Metrics,
}

impl<S> AppState<S> {
    pub fn new(
        config: WireConfig,
        metrics: telemetry::Metrics,
        cam: Option<Arc<dyn CamBackend>>,
        audit: Option<Arc<audit::Trail>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            body_gate: Gate::bytes("body", config.body_budget_bytes),
            service: OnceLock::new(),
            cam,
            audit,
            limits: RateLimits::shared(config.qps.clone(), config.qps_share.clone()),
            failures: FailureLimits::new(config.auth_failures_per_second),
            replay: match (&config.keys, config.replay_protection) {
                (Some(keys), Some(mode)) => Some(ReplayGuard::new(
                    mode,
                    keys.max_skew_secs,
                    replay::DEFAULT_CAPACITY,
                )),
                _ => None,
            },
            config,
            metrics,
        })
    }

    /// Start answering calls with `service` (once loaded).
    pub fn set_service(&self, service: Arc<S>) {
        let _ = self.service.set(service);
    }

    pub(super) fn service(&self) -> Option<&Arc<S>> {
        self.service.get()
    }
}

impl<S: Operations> ops::OpsHost for AppState<S> {
    type Service = S;

    fn service(&self) -> Option<&Arc<S>> {
        self.service.get()
    }

    fn render_metrics(&self) -> String {
        self.metrics.render()
    }
}

pub fn router<S: Iai + Operations>(state: Arc<AppState<S>>) -> Router {
    let body_timeout = state.config.body_timeout;
    let body_idle_timeout = state.config.body_idle_timeout;
    Router::new()
        .route("/health", get(ops::health).fallback(handle::<S>))
        .route(
            "/ready",
            get(ops::ready::<AppState<S>>).fallback(handle::<S>),
        )
        .route(
            "/metrics",
            get(ops::metrics::<AppState<S>>).fallback(handle::<S>),
        )
        .route(
            "/index/digest",
            get(ops::index_digest::<AppState<S>>).fallback(handle::<S>),
        )
        .route(
            "/files/{name}",
            get(ops::result_file::<AppState<S>>).fallback(handle::<S>),
        )
        .route("/console", get(console::root).fallback(handle::<S>))
        .route("/console/", get(console::index).fallback(handle::<S>))
        .route(
            "/console/{*path}",
            get(console::asset).fallback(handle::<S>),
        )
        .fallback(handle::<S>)
        .with_state(state)
        .layer(RequestBodyTimeoutLayer::new(body_idle_timeout))
        .layer(RequestBodyDeadlineLayer::new(body_timeout))
        .layer(CatchPanicLayer::custom(|_panic| {
            envelope::respond(
                &new_request_id(),
                None,
                Err(ApiError::internal("Internal error.")),
            )
        }))
}

/// What the access log and the metrics record of a call.
#[derive(Default)]
struct CallFacts {
    action: Option<String>,
    secret_id: Option<String>,
    /// `None` until the call is authenticated.
    principal: Option<Principal>,
    interface_group: Option<&'static str>,
    /// The GroupIds the call named.
    groups: Vec<String>,
    /// What a search or verification found (the action's `SearchFacts`).
    search: Option<api::SearchFacts>,
}

async fn handle<S: Iai>(State(state): State<Arc<AppState<S>>>, request: Request<Body>) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let span = tracing::info_span!("request", request_id = %request_id);
    let (parts, body) = request.into_parts();
    let trace_id = parts.headers.get("x-tc-traceid").cloned();
    let mut facts = CallFacts::default();
    // An address whose calls keep failing authentication is refused before its body is read.
    let admitted = match (&state.failures, client) {
        (Some(failures), Some(client)) => failures.admit(client.ip()),
        _ => Ok(()),
    };
    let result = match admitted {
        Ok(()) => {
            answer(&state, &parts, body, &request_id, client, &mut facts)
                .instrument(span.clone())
                .await
        }
        Err(e) => Err(e),
    };
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code.as_str(),
    };
    if let Err(e) = &result
        && e.code == ErrorCode::InternalError
    {
        span.in_scope(|| tracing::error!(message = %e.message, "internal error"));
    }
    let latency = started.elapsed();
    telemetry::record_call(
        &span,
        &telemetry::Call {
            action: facts.action.as_deref(),
            secret_id: facts.secret_id.as_deref(),
            code,
            latency,
            client,
        },
    );
    if let Some(trail) = &state.audit {
        let (face_num, candidates) = match (&result, facts.search) {
            (Ok(_), Some(found)) => (Some(found.face_num), Some(found.candidates)),
            _ => (None, None),
        };
        trail.record(audit::Record {
            time_ms: chrono::Utc::now().timestamp_millis(),
            request_id: request_id.clone(),
            principal: match facts.principal {
                Some(Principal::Main) => "main".into(),
                Some(Principal::User(uin)) => uin.to_string(),
                None => String::new(),
            },
            secret_id: facts.secret_id,
            action: facts.action,
            interface_group: facts.interface_group.map(str::to_owned),
            groups: facts.groups,
            client: client.map(|c| c.ip().to_string()),
            code: code.to_owned(),
            latency_us: latency.as_micros() as u64,
            face_num,
            candidates,
        });
    }
    envelope::respond(&request_id, trace_id.as_ref(), result)
}

async fn answer<S: Iai>(
    state: &AppState<S>,
    parts: &axum::http::request::Parts,
    body: Body,
    request_id: &str,
    client: Option<SocketAddr>,
    facts: &mut CallFacts,
) -> Result<serde_json::Value, ApiError> {
    let max = state.config.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let (body, _body_ticket) = read_body(body, declared, max, &state.body_gate).await?;
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
    let now = chrono::Utc::now().timestamp();
    let mut call = request::authenticate(&incoming, &auth, now).inspect_err(|e| {
        // What a refused call claims is recorded cut short: it is unauthenticated input.
        facts.action = request::action_hint(&incoming).map(|a| api::clip(&a));
        facts.secret_id = request::secret_id_hint(&incoming).map(|id| api::clip(&id));
        if let (Some(failures), Some(client)) = (&state.failures, client)
            && failed_authentication(e.code)
        {
            failures.failed(client.ip());
        }
    })?;
    facts.action = Some(call.ctx.action.clone());
    facts.secret_id = call.ctx.secret_id.clone();
    facts.principal = Some(call.ctx.principal);
    let access = match call.service {
        Service::Iai => access::of(call.spec.name),
        Service::Cam => None,
    };
    // One state of access control for the whole call.
    let acl: Option<Arc<dyn AccessView>> = state.cam.as_ref().map(|c| c.view());
    // QPS limits before anything of the parameters is parsed: a refused call costs next to nothing.
    let principal = call.ctx.principal;
    let user_name = || match (principal, &acl) {
        (Principal::User(uin), Some(d)) => d.user_name(uin).map(str::to_owned),
        _ => None,
    };
    match access {
        Some(access) => {
            state
                .limits
                .check(principal, user_name, &call.ctx.action, access)?;
            facts.interface_group = Some(access.group.key());
        }
        None => state.limits.check_cam(principal, user_name)?,
    }
    // A reused signature (replay protection) after the limits: a flood of replays is limited like any.
    if let (Some(guard), Some((signature, timestamp))) = (&state.replay, &call.signature) {
        guard.check(
            &replay::Use {
                signature,
                origin: client,
                timestamp: *timestamp,
                service: call.service,
                action: call.spec.name,
                writes: match access {
                    Some(access) => access.writes,
                    None => crate::api::cam::writes(call.spec.name),
                },
            },
            now,
        )?;
    }
    // Authorisation reads only what the call names; the parameters are parsed once it is allowed (or
    // first, when only the full parse can tell what the call names).
    let (named, mut params) = match request::named(&call, &incoming) {
        Some(named) => (named, None),
        None => {
            let params = request::params(&call, &incoming)?;
            (Named::from_params(&params), Some(params))
        }
    };
    if state.audit.is_some() {
        facts.groups = named_groups(&named);
    }
    let service_kind = call.service;
    // The context moves out; the call keeps what the full parse below needs (its action's fields).
    let mut ctx = std::mem::take(&mut call.ctx);
    ctx.request_id = request_id.to_owned();
    if state.audit.is_some() {
        // The search log keeps what searches found: the actions hand it over only when asked.
        ctx.search_facts = api::SearchFactsSlot::wanted();
    }
    ctx.host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    if let Some(view) = &acl {
        let grant = view.authorize(&Facts {
            ctx: &ctx,
            service: service_kind,
            access,
            named: &named,
            ip: client.map(|c| c.ip()),
            now,
        })?;
        ctx.visible_groups = grant.visible_groups;
        ctx.existing_groups = grant.existing_groups;
    }
    let params = match params.take() {
        Some(params) => params,
        None => request::params(&call, &incoming)?,
    };
    // The parameters now own what the call needs; the raw bytes go (the ticket stays, for the parameters).
    drop(body);
    // A deleted sub-user's QPS cells go with it.
    let deleted_user = match (service_kind, &acl) {
        (Service::Cam, Some(view)) if ctx.action == "DeleteUser" => named
            .user_name
            .as_deref()
            .and_then(|name| view.user_uin(name)),
        _ => None,
    };
    let action = ctx.action.clone();
    let answer = match service_kind {
        Service::Cam => match &state.cam {
            Some(cam) => cam.call(&ctx, &action, params).await,
            None => Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                "CAM is not available on this server (signature checking is off).",
            )),
        },
        Service::Iai => {
            let Some(service) = state.service() else {
                return Err(ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "The server is starting (loading the search index and the models); retry shortly.",
                ));
            };
            dispatch(service.as_ref(), &ctx, &action, params).await
        }
    };
    facts.search = ctx.search_facts.take();
    if let Err(e) = &answer {
        tracing::debug!(%action, code = e.code.as_str(), message = %e.message, "action failed");
    }
    if let (Some(uin), Ok(_)) = (deleted_user, &answer) {
        state.limits.forget(uin);
    }
    answer
}

/// Errors of a call that did not prove who sent it (counted per client address).
fn failed_authentication(code: ErrorCode) -> bool {
    code.as_str().starts_with("AuthFailure")
        || matches!(
            code,
            ErrorCode::MissingParameter
                | ErrorCode::UnsupportedRegion
                | ErrorCode::InvalidParameter
        )
}

/// The groups a call names (`GroupId`, `GroupIds`, at most `named::MAX_GROUP_IDS` of them), for the audit
/// trail.
fn named_groups(named: &Named) -> Vec<String> {
    named
        .group_ids
        .iter()
        .chain(&named.group_id)
        .map(|g| api::clip(g))
        .collect()
}

/// Bodies up to this size are not charged to the body gate: small calls (group and person management,
/// searches by Url) are never refused for memory, and what they hold is bounded by the connection limit.
const FREE_BODY_BYTES: usize = 64 * 1024;

/// Read a body of at most `max` bytes into one buffer of the declared size (no growth copies, one allocation
/// to give back). What it holds beyond `FREE_BODY_BYTES` is charged to the body gate as it arrives, never
/// ahead of time (a client that declares 10 MB and trickles holds only what it sent), and without waiting:
/// when the gate is full the call is refused, so no request waits on memory held by another that is itself
/// waiting for its client.
async fn read_body(
    body: Body,
    declared: Option<u64>,
    max: usize,
    gate: &Arc<Gate>,
) -> Result<(Vec<u8>, Option<Ticket>), ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buffer = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(max));
    let mut ticket: Option<Ticket> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_error)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > max {
            return Err(too_large(max));
        }
        let charged_before = buffer.len().max(FREE_BODY_BYTES);
        buffer.extend_from_slice(&data);
        let to_charge = buffer.len().saturating_sub(charged_before);
        if to_charge > 0 {
            let more = gate.try_enter_bytes(to_charge as u64).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ResourceInsufficient,
                    "The server is receiving too many large request bodies at once; retry shortly.",
                )
            })?;
            match ticket.as_mut() {
                Some(held) => held.merge(more),
                None => ticket = Some(more),
            }
        }
    }
    Ok((buffer, ticket))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::RequestSizeLimitExceeded,
        format!("The request body is larger than {max} bytes."),
    )
}

/// Why a body could not be read, as the client should hear it: too slow, or malformed.
fn body_error(e: axum::Error) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cause {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                ErrorCode::FailedOperationRequestTimeout,
                "The request body did not arrive in time.",
            );
        }
        cause = err.source();
    }
    tracing::debug!(error = %e, "request body unreadable");
    ApiError::new(
        ErrorCode::InvalidRequest,
        "The request body could not be read (malformed or interrupted transfer).",
    )
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    /// A service whose every action is the trait's default (`UnsupportedOperation`).
    struct Stub;
    impl Iai for Stub {}
    impl Operations for Stub {
        async fn check_ready(&self) -> Result<(), String> {
            Ok(())
        }
        fn metrics_text(&self) -> String {
            String::new()
        }
        async fn index_digest(&self) -> Result<serde_json::Value, String> {
            Ok(serde_json::json!({"groups": {}}))
        }
        async fn result_file(&self, _: &str, _: i64, _: &str) -> Result<Vec<u8>, ops::FileRefusal> {
            Err(ops::FileRefusal::Gone("the file no longer exists".into()))
        }
    }

    fn state() -> Arc<AppState<Stub>> {
        state_with(1000)
    }

    fn state_with(max_body_bytes: usize) -> Arc<AppState<Stub>> {
        AppState::new(
            WireConfig {
                keys: None,
                max_body_bytes,
                body_budget_bytes: 1 << 20,
                body_timeout: Duration::from_secs(5),
                body_idle_timeout: Duration::from_millis(200),
                qps: QpsConfig::default(),
                qps_share: Arc::new(|| 1),
                replay_protection: Some(replay::Mode::Writes),
                auth_failures_per_second: 20,
            },
            telemetry::Metrics::install(),
            None,
            None,
        )
    }

    fn call(body: Body) -> Request<Body> {
        Request::post("/")
            .header("x-tc-action", "GetGroupList")
            .header("x-tc-version", "2018-03-01")
            .body(body)
            .unwrap()
    }

    async fn answer_of(router: Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn calls_before_the_service_has_loaded_are_service_unavailable_in_the_envelope() {
        let state = state();
        let router = router(state.clone());
        let (status, body) = answer_of(router.clone(), call(Body::from("{}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["Response"]["Error"]["Code"], "ServiceUnavailable");
        let (status, _) = answer_of(
            router.clone(),
            Request::get("/health").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, ready) = answer_of(
            router.clone(),
            Request::get("/ready").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (status, ready["status"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("starting"))
        );
        state.set_service(Arc::new(Stub));
        let (status, _) = answer_of(
            router.clone(),
            Request::get("/ready").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = answer_of(router, call(Body::from("{}"))).await;
        assert_eq!(body["Response"]["Error"]["Code"], "UnsupportedOperation");
    }

    #[tokio::test]
    async fn body_failures_answer_what_happened() {
        let state = state();
        state.set_service(Arc::new(Stub));
        let router = router(state);
        // Too large, declared.
        let (_, body) = answer_of(router.clone(), call(Body::from(vec![b' '; 2000]))).await;
        assert_eq!(
            body["Response"]["Error"]["Code"],
            "RequestSizeLimitExceeded"
        );
        // A body that breaks off with an error (a malformed chunk, a reset) is not "too large".
        let broken = futures_stream(vec![
            Ok(axum::body::Bytes::from_static(b"{")),
            Err(std::io::Error::other("malformed chunk")),
        ]);
        let (_, body) = answer_of(router.clone(), call(broken)).await;
        assert_eq!(body["Response"]["Error"]["Code"], "InvalidRequest");
        // A body that stalls past the idle timeout.
        let stalled = Body::from_stream(async_stream_stall());
        let (_, body) = answer_of(router, call(stalled)).await;
        assert_eq!(
            body["Response"]["Error"]["Code"],
            "FailedOperation.RequestTimeout"
        );
    }

    #[tokio::test]
    async fn a_full_body_gate_refuses_large_bodies_at_once_and_lets_small_calls_through() {
        let state = state_with(1 << 20);
        state.set_service(Arc::new(Stub));
        let router = router(state.clone());
        // Other callers hold the whole gate.
        let held = state.body_gate.try_enter_bytes(1 << 20).unwrap();
        let (_, small) = answer_of(router.clone(), call(Body::from("{}"))).await;
        assert_eq!(small["Response"]["Error"]["Code"], "UnsupportedOperation");
        let large = format!("{{\"Pad\": \"{}\"}}", "x".repeat(200_000));
        let (_, refused) = answer_of(router.clone(), call(Body::from(large.clone()))).await;
        assert_eq!(refused["Response"]["Error"]["Code"], "ResourceInsufficient");
        drop(held);
        // Read whole and parsed: `Pad` is not a parameter of GetGroupList.
        let (_, accepted) = answer_of(router, call(Body::from(large))).await;
        assert_eq!(accepted["Response"]["Error"]["Code"], "UnknownParameter");
        assert_eq!(state.body_gate.in_use(), 0, "the body's charge came back");
    }

    fn futures_stream(items: Vec<Result<axum::body::Bytes, std::io::Error>>) -> Body {
        Body::from_stream(futures_util::stream::iter(items))
    }

    /// One byte, then nothing for a second (longer than the idle timeout of `state()`).
    fn async_stream_stall()
    -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
        futures_util::stream::unfold(0, |step| async move {
            match step {
                0 => Some((Ok(axum::body::Bytes::from_static(b"{")), 1)),
                _ => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    None
                }
            }
        })
    }
}
