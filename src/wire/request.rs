//! From an HTTP request to a validated call: which signature scheme, which service (IAI, or CAM when the
//! version is CAM's or the TC3 credential scope names `cam`), action and version, and the action's
//! parameters as JSON checked against the schema (SPEC.md §2). `authenticate` and `params` are the two
//! halves, so that the QPS limits can refuse a call between them, before its parameters are parsed.
//!
//! - TC3: action and version in `X-TC-*` headers; parameters in a JSON body (POST), a form body, or the
//!   query string (GET).
//! - v1 (HmacSHA1/HmacSHA256): everything, common parameters included, in a form body (POST) or the query
//!   string (GET), flattened as `Name.0.Field=value`.

use axum::http::{HeaderMap, Method, header};
use serde_json::Value;

use std::borrow::Cow;

use super::auth::{KeyRing, tc3, v1};
use super::named::Named;
use crate::api::Service;
use crate::api::schema::{self, VERSION_2018, VERSION_2020};
use crate::api::{ApiError, ErrorCode, RequestContext};

/// Parameters of the v1 scheme that are not the action's own.
const V1_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Token",
    "Language",
    "RequestClient",
];

/// An HTTP request with its body already read.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub raw_query: &'a str,
    pub body: &'a [u8],
}

/// How requests are authenticated: by the key ring, or not at all (an explicit setting).
pub enum Auth<'a> {
    Verify(&'a KeyRing),
    Off,
}

/// An authenticated call whose parameters are not parsed yet.
pub struct Call {
    /// Without request id.
    pub ctx: RequestContext,
    pub service: Service,
    pub spec: &'static schema::ActionSpec,
    /// The signature and the time it was made for; `None` when signature checking is off.
    pub signature: Option<(String, i64)>,
    /// The v1 scheme's decoded pairs (its parameters travel with the signature).
    v1_pairs: Option<Vec<(String, String)>>,
}

/// Parse and authenticate; on success the call's context (without request id) and its validated parameters.
pub fn parse(req: &Incoming, auth: &Auth, now: i64) -> Result<(RequestContext, Value), ApiError> {
    let call = authenticate(req, auth, now)?;
    let params = params(&call, req)?;
    Ok((call.ctx, params))
}

/// Check the method, find the scheme, service and action, and verify the signature.
pub fn authenticate(req: &Incoming, auth: &Auth, now: i64) -> Result<Call, ApiError> {
    if req.method != Method::GET && req.method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::UnsupportedProtocol,
            format!(
                "The HTTP method `{}` is not supported; use GET or POST.",
                req.method
            ),
        ));
    }
    let is_tc3 = req.headers.contains_key("x-tc-action")
        || header(req.headers, "authorization")
            .is_some_and(|a| a.trim_start().starts_with(tc3::ALGORITHM));
    if is_tc3 {
        authenticate_tc3(req, auth, now)
    } else {
        authenticate_v1(req, auth, now)
    }
}

/// Where a call's parameters travel, by scheme, method and content type.
enum Source<'a> {
    /// The v1 scheme's decoded pairs (they travel with the signature).
    V1(&'a [(String, String)]),
    /// Flattened pairs, still encoded: a GET's query string or a form body.
    Form(&'a [u8]),
    /// A JSON body.
    Json(&'a [u8]),
}

fn source<'a>(call: &'a Call, req: &Incoming<'a>) -> Source<'a> {
    if let Some(pairs) = &call.v1_pairs {
        return Source::V1(pairs);
    }
    let content_type = header(req.headers, header::CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if req.method == Method::GET {
        Source::Form(req.raw_query.as_bytes())
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Source::Form(req.body)
    } else {
        Source::Json(req.body)
    }
}

/// The call's parameters, validated against its action's fields.
pub fn params(call: &Call, req: &Incoming) -> Result<Value, ApiError> {
    let fields = call.spec.request;
    match source(call, req) {
        Source::V1(pairs) => schema::from_flat(
            pairs
                .iter()
                .filter(|(k, _)| !V1_COMMON.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str())),
            fields,
        ),
        Source::Form(encoded) => schema::from_flat(
            pairs(encoded).iter().map(|(k, v)| (k.as_str(), v.as_str())),
            fields,
        ),
        Source::Json(body) => json_params(body, fields),
    }
}

/// What the call names that authorisation needs, read without parsing its parameters; `None` when only
/// the full parse can tell (see `named`).
pub fn named(call: &Call, req: &Incoming) -> Option<Named> {
    match source(call, req) {
        Source::V1(pairs) => Named::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))),
        ),
        Source::Form(encoded) => Named::from_pairs(form_urlencoded::parse(encoded)),
        Source::Json(body) => Named::from_json(body),
    }
}

/// The action a request names, for the access log of a request that failed before it was parsed.
pub fn action_hint(req: &Incoming) -> Option<String> {
    header(req.headers, "x-tc-action")
        .map(str::to_owned)
        .or_else(|| v1_value(req, "Action"))
}

/// The SecretId a request claims, for the audit trail of a call refused before it was authenticated.
pub fn secret_id_hint(req: &Incoming) -> Option<String> {
    header(req.headers, "authorization")
        .and_then(tc3::Authorization::parse)
        .map(|auth| auth.secret_id.to_owned())
        .or_else(|| v1_value(req, "SecretId"))
}

/// A parameter as the v1 scheme carries it: in the form body (POST) or the query string (GET).
fn v1_value(req: &Incoming, name: &str) -> Option<String> {
    let source = if req.method == Method::POST {
        req.body
    } else {
        req.raw_query.as_bytes()
    };
    form_urlencoded::parse(source)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn authenticate_tc3(req: &Incoming, auth: &Auth, now: i64) -> Result<Call, ApiError> {
    let mut ctx = RequestContext {
        action: header(req.headers, "x-tc-action")
            .ok_or_else(|| ApiError::missing_parameter("Action"))?
            .to_owned(),
        version: header(req.headers, "x-tc-version")
            .ok_or_else(|| ApiError::missing_parameter("Version"))?
            .to_owned(),
        region: region(header(req.headers, "x-tc-region"))?,
        language: header(req.headers, "x-tc-language").map(str::to_owned),
        ..Default::default()
    };
    let scope_service = header(req.headers, "authorization")
        .and_then(tc3::Authorization::parse)
        .map(|a| a.service);
    let service = route(&ctx.version, scope_service);
    let mut signature = None;
    if let Auth::Verify(keys) = auth {
        let signed = tc3::Tc3Request {
            method: req.method.as_str(),
            raw_query: req.raw_query,
            headers: req.headers,
            body: req.body,
        };
        let signer = tc3::verify(keys, &signed, now)?;
        ctx.secret_id = Some(signer.secret_id);
        ctx.principal = signer.principal;
        signature = Some((signer.signature, signer.timestamp));
    }
    let spec = find_action(&ctx, service)?;
    Ok(Call {
        ctx,
        service,
        spec,
        signature,
        v1_pairs: None,
    })
}

fn authenticate_v1(req: &Incoming, auth: &Auth, now: i64) -> Result<Call, ApiError> {
    let params = if req.method == Method::POST {
        pairs(req.body)
    } else {
        pairs(req.raw_query.as_bytes())
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut ctx = RequestContext {
        action: get("Action").ok_or_else(|| ApiError::missing_parameter("Action"))?,
        version: get("Version").ok_or_else(|| ApiError::missing_parameter("Version"))?,
        region: region(get("Region").as_deref())?,
        language: get("Language"),
        ..Default::default()
    };
    let service = route(&ctx.version, None);
    let mut signature = None;
    if let Auth::Verify(keys) = auth {
        let host = header(req.headers, header::HOST.as_str()).unwrap_or("");
        let signer = v1::verify(keys, req.method.as_str(), host, &params, now)?;
        ctx.secret_id = Some(signer.secret_id);
        ctx.principal = signer.principal;
        signature = Some((signer.signature, signer.timestamp));
    }
    let spec = find_action(&ctx, service)?;
    Ok(Call {
        ctx,
        service,
        spec,
        signature,
        v1_pairs: Some(params),
    })
}

/// The region a call names: a plain region name (`ap-guangzhou`, `ap-shanghai-fsi`, `na-siliconvalley`)
/// or none. Anything else is refused as Tencent refuses a region it does not have: the region becomes a
/// segment of the resources a policy is checked against, and must never carry `:`, `/` or a wildcard.
fn region(sent: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(region) = sent.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if is_plain_region(region) {
        return Ok(Some(region.to_owned()));
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedRegion,
        format!(
            "The region `{}` is not supported: a region is a name such as `ap-guangzhou`.",
            crate::api::clip(region)
        ),
    ))
}

/// Lowercase words of letters and digits joined by single `-`, starting with a letter, at most 40 bytes,
/// with at least one `-` (every Tencent region has one).
fn is_plain_region(region: &str) -> bool {
    region.len() <= 40
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region.contains('-')
        && region.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// CAM's calls carry its version, and TC3 ones name `cam` in the credential scope (the Python SDK and
/// tccli do; the Node SDK names the endpoint's first label, so the version decides there).
fn route(version: &str, scope_service: Option<&str>) -> Service {
    if version == crate::api::cam::VERSION || scope_service == Some("cam") {
        Service::Cam
    } else {
        Service::Iai
    }
}

fn find_action(
    ctx: &RequestContext,
    service: Service,
) -> Result<&'static schema::ActionSpec, ApiError> {
    let no_version = || {
        ApiError::new(
            ErrorCode::NoSuchVersion,
            format!(
                "The requested version `{}` of service `{}` does not exist.",
                ctx.version,
                service.name()
            ),
        )
    };
    match service {
        Service::Iai => {
            if ctx.version != VERSION_2018 && ctx.version != VERSION_2020 {
                return Err(no_version());
            }
            crate::api::find_action(&ctx.action)
                .filter(|spec| spec.offered_in(&ctx.version))
                .ok_or_else(|| ApiError::invalid_action(&ctx.action))
        }
        Service::Cam => {
            if ctx.version != crate::api::cam::VERSION {
                return Err(no_version());
            }
            crate::api::cam::find_action(&ctx.action).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidAction,
                    format!(
                        "The action `{}` does not exist for service `cam`.",
                        ctx.action
                    ),
                )
            })
        }
    }
}

fn json_params(body: &[u8], fields: &[schema::Field]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        let mut empty = Value::Object(Default::default());
        schema::validate(&mut empty, fields)?;
        return Ok(empty);
    }
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "The request body must be a JSON object.",
        ));
    }
    schema::validate(&mut value, fields)?;
    Ok(value)
}

fn pairs(encoded: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded).into_owned().collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_region_names_are_accepted() {
        for ok in [
            "ap-guangzhou",
            "ap-shanghai-fsi",
            "na-siliconvalley",
            "eu-frankfurt",
        ] {
            assert_eq!(region(Some(ok)).unwrap().as_deref(), Some(ok));
        }
        assert_eq!(region(None).unwrap(), None);
        assert_eq!(region(Some("")).unwrap(), None);
        for bad in [
            "ap-guangzhou:uin/100000000001:groupid/test",
            "x:uin/100000000001:groupid/x",
            "ap-guangzhou/x",
            "ap-*",
            "AP-GUANGZHOU",
            "guangzhou",
            "ap--x",
            "-ap",
            "ap-guangzhou ",
        ] {
            assert_eq!(
                region(Some(bad)).unwrap_err().code,
                ErrorCode::UnsupportedRegion,
                "{bad}"
            );
        }
        let long = "a-".repeat(5_000_000) + "b";
        assert!(region(Some(&long)).unwrap_err().message.len() < 200);
    }

    #[test]
    fn cam_is_routed_by_its_version_or_by_the_credential_scope() {
        assert_eq!(route("2019-01-16", None), Service::Cam);
        assert_eq!(route("2019-01-16", Some("127.0.0.1:8080")), Service::Cam);
        assert_eq!(route("2018-03-01", Some("cam")), Service::Cam);
        assert_eq!(route("2018-03-01", Some("iai")), Service::Iai);
        assert_eq!(route("2020-03-03", None), Service::Iai);
        let ctx = RequestContext {
            action: "AddUser".into(),
            version: "2018-03-01".into(),
            ..Default::default()
        };
        let err = find_action(&ctx, Service::Cam).unwrap_err();
        assert_eq!(err.code, ErrorCode::NoSuchVersion);
        assert!(err.message.contains("service `cam`"));
        let ctx = RequestContext {
            action: "SearchFaces".into(),
            version: "2019-01-16".into(),
            ..Default::default()
        };
        assert_eq!(
            find_action(&ctx, Service::Cam).unwrap_err().code,
            ErrorCode::InvalidAction
        );
    }
}
