//! What the server tells its operators: Prometheus metrics (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`; process figures by `metrics-process`) and one access-log line per call.
//!
//! Label values come only from fixed sets (known action names, Tencent's error codes, model file names, gate
//! names), never from what a caller typed, so a hostile client cannot grow the metrics without bound. (The
//! index gauges name groups, which only key holders create, and only the largest groups: `actions`.)

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api;

/// Latency buckets in seconds: from a group lookup (~1 ms) to a queued search on a busy machine (~10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Model calls: from a 0.5 ms classifier to a 1280 px detection.
const INFERENCE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The installed recorder, to render at `/metrics`; `None` when another recorder was installed first
/// (several servers in one test process).
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    process: std::sync::Arc<metrics_process::Collector>,
}

impl Metrics {
    /// Install the process-wide recorder (once per process).
    pub fn install() -> Self {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("iai_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("iai_inference_duration_seconds".into()),
                    INFERENCE_BUCKETS,
                )
            })
            .and_then(|b| b.install_recorder())
            .inspect_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
            .ok();
        let process = metrics_process::Collector::default();
        process.describe();
        describe();
        Self {
            handle,
            process: std::sync::Arc::new(process),
        }
    }

    /// The Prometheus text of every metric, process figures refreshed now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }
}

fn describe() {
    metrics::describe_counter!(
        "iai_requests_total",
        "Calls answered, by action and Tencent error code (OK for success)."
    );
    metrics::describe_histogram!(
        "iai_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from the request's arrival to its answer, by action."
    );
    metrics::describe_histogram!(
        "iai_inference_duration_seconds",
        metrics::Unit::Seconds,
        "Time of one ONNX Runtime call, by model file."
    );
    metrics::describe_gauge!(
        "iai_admission_capacity",
        "Capacity of an admission gate: bytes for body and decode, concurrent calls for inference and scan."
    );
    metrics::describe_gauge!(
        "iai_admission_in_use",
        "What an admission gate has granted now (same unit as its capacity)."
    );
    metrics::describe_gauge!(
        "iai_admission_queue_depth",
        "Requests waiting at an admission gate."
    );
    metrics::describe_gauge!("iai_connections_open", "Client connections open now.");
}

/// This server's name among replicas, in every access-log line (`set_replica`, once at start).
static REPLICA: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Name this server in the access log (the configuration's `replica_id`, or host and port).
pub fn set_replica(name: String) {
    let _ = REPLICA.set(name);
}

/// One answered call, for the access log and the metrics.
pub struct Call<'a> {
    pub action: Option<&'a str>,
    pub secret_id: Option<&'a str>,
    pub code: &'a str,
    pub latency: Duration,
    pub client: Option<SocketAddr>,
}

/// The metrics' name for an action: itself when it exists, else "unknown" (callers choose what they send).
fn action_label(action: Option<&str>) -> &'static str {
    action
        .and_then(api::find_action)
        .map_or("unknown", |spec| spec.name)
}

/// Count the call and write its access-log line (in the request's span, so it carries the request id).
pub fn record_call(span: &tracing::Span, call: &Call) {
    let action = action_label(call.action);
    metrics::counter!("iai_requests_total", "action" => action, "code" => call.code.to_owned())
        .increment(1);
    metrics::histogram!("iai_request_duration_seconds", "action" => action)
        .record(call.latency.as_secs_f64());
    let secret_id = printable(call.secret_id.unwrap_or("-"));
    let requested = printable(call.action.unwrap_or("-"));
    span.in_scope(|| {
        tracing::info!(
            target: "iai_server::access",
            replica = %REPLICA.get().map_or("-", String::as_str),
            secret_id = %secret_id,
            action = %requested,
            code = %call.code,
            latency_ms = (call.latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
            client = %call.client.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            "call"
        )
    });
}

/// What a caller sent, fit for one log line: at most 64 characters, control characters (a newline would
/// forge a log line) shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_actions_become_labels() {
        assert_eq!(action_label(Some("SearchFaces")), "SearchFaces");
        assert_eq!(action_label(Some("../../etc/passwd")), "unknown");
        assert_eq!(action_label(None), "unknown");
    }

    #[test]
    fn caller_text_cannot_forge_log_lines() {
        assert_eq!(printable("A\nINFO forged\r"), "A?INFO forged?");
        assert_eq!(printable(&"x".repeat(100)).len(), 64);
    }
}
