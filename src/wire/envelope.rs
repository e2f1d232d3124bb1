//! Tencent's response envelope: always HTTP 200, `Content-Type: application/json` exactly (the Python SDK
//! only notices errors when the header has no charset), `{"Response": {..., "RequestId"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiError;

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The body of an answer: the action's fields plus `RequestId`, or `Error` plus `RequestId`.
pub fn body(request_id: &str, result: Result<Value, ApiError>) -> Value {
    let mut response = match result {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => {
            tracing::error!(?other, "an action answered something other than an object");
            return body(request_id, Err(ApiError::internal("Malformed response.")));
        }
        Err(error) => {
            let mut map = serde_json::Map::new();
            map.insert(
                "Error".into(),
                json!({"Code": error.code.as_str(), "Message": error.message}),
            );
            map
        }
    };
    response.insert("RequestId".into(), Value::String(request_id.to_owned()));
    json!({ "Response": response })
}

/// The HTTP response for an answer; `trace_id` echoes the client's `X-TC-TraceId` (the Node SDK reads it).
pub fn respond(
    request_id: &str,
    trace_id: Option<&HeaderValue>,
    result: Result<Value, ApiError>,
) -> Response {
    let bytes =
        serde_json::to_vec(&body(request_id, result)).expect("a JSON value always serializes");
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-tc-requestid", id);
    }
    if let Some(trace) = trace_id {
        headers.insert("x-tc-traceid", trace.clone());
    }
    response
}
