//! TC3-HMAC-SHA256 (SPEC.md §3), with the quirks of the official clients: the Node SDK signs the host
//! without its port and uses the endpoint's first label as the service; tccli signs a Host of
//! `http://127.0.0.1:PORT`. The raw query string and raw body bytes are what is hashed.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::{KeyRing, Signer, check_token, equal, parse_timestamp, signature_failure};
use crate::api::{ApiError, ErrorCode};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parts of `Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub secret_id: &'a str,
    pub date: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    pub fn parse(header: &'a str) -> Option<Self> {
        let rest = header.trim().strip_prefix(ALGORITHM)?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => return None,
            }
        }
        // The service may contain ':' (Node sends `localhost:8765`) but never '/'.
        let mut scope = credential?.split('/');
        let (secret_id, date, service, terminator) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        if scope.next().is_some() || terminator != "tc3_request" || secret_id.is_empty() {
            return None;
        }
        let signed_headers: Vec<&str> = signed?.split(';').filter(|h| !h.is_empty()).collect();
        let signature = signature?;
        if signed_headers.is_empty()
            || signature.len() != 64
            || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Self {
            secret_id,
            date,
            service,
            signed_headers,
            signature,
        })
    }
}

/// What a TC3 check needs from the HTTP request.
pub struct Tc3Request<'a> {
    pub method: &'a str,
    /// The query string exactly as received, without `?`.
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Verify the request's signature; on success, who signed it.
pub fn verify(keys: &KeyRing, req: &Tc3Request, now: i64) -> Result<Signer, ApiError> {
    let authorization = header(req.headers, "authorization")
        .ok_or_else(|| invalid_authorization("The Authorization header is missing."))?;
    let auth = Authorization::parse(authorization)
        .ok_or_else(|| invalid_authorization("The Authorization header is malformed."))?;
    let key = keys.key(auth.secret_id)?;
    let timestamp = parse_timestamp(header(req.headers, "x-tc-timestamp"))?;
    keys.check_skew(timestamp, now)?;
    if utc_date(timestamp).as_deref() != Some(auth.date) {
        return Err(ApiError::new(
            ErrorCode::AuthFailureSignatureFailure,
            "The date in the credential scope does not match X-TC-Timestamp.",
        ));
    }

    let payload_hash = if header(req.headers, "x-tc-content-sha256") == Some(UNSIGNED_PAYLOAD) {
        sha256_hex(UNSIGNED_PAYLOAD.as_bytes())
    } else {
        sha256_hex(req.body)
    };
    let signed = auth.signed_headers.join(";");
    let signing_key = signing_key(&key.secret_key, auth.date, auth.service);
    let mut matched = false;
    for strip_port in [false, true] {
        let Some(block) = canonical_headers(req.headers, &auth.signed_headers, strip_port) else {
            return Err(invalid_authorization(
                "A header listed in SignedHeaders is missing.",
            ));
        };
        let canonical = [
            req.method,
            "/",
            req.raw_query,
            &block,
            &signed,
            &payload_hash,
        ]
        .join("\n");
        let to_sign = string_to_sign(timestamp, auth.date, auth.service, &canonical);
        if equal(
            hex::encode(hmac(&signing_key, to_sign.as_bytes())).as_bytes(),
            auth.signature.as_bytes(),
        ) {
            matched = true;
            break;
        }
    }
    if !matched {
        return Err(signature_failure());
    }
    check_token(&key, header(req.headers, "x-tc-token"))?;
    Ok(Signer {
        secret_id: auth.secret_id.to_owned(),
        principal: key.principal,
        signature: auth.signature.to_owned(),
        timestamp,
    })
}

/// `name:value\n` for each signed header, values trimmed; `host` without its port on the second try (Node).
fn canonical_headers(headers: &HeaderMap, names: &[&str], strip_port: bool) -> Option<String> {
    let mut block = String::new();
    for name in names {
        let name = name.to_ascii_lowercase();
        let mut value = header(headers, &name)?.trim();
        if strip_port && name == "host" {
            value = strip_host_port(value);
        }
        block.push_str(&name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    Some(block)
}

/// `127.0.0.1:8080` -> `127.0.0.1`; `[::1]:8080` -> `[::1]`; `http://h:1` -> `http://h`.
fn strip_host_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i)
            if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !host[..i].ends_with(':') =>
        {
            &host[..i]
        }
        _ => host,
    }
}

pub fn string_to_sign(
    timestamp: i64,
    date: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signing_key(secret_key: &str, date: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    hmac(&k_service, b"tc3_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn utc_date(timestamp: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(timestamp, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid_authorization(message: &str) -> ApiError {
    ApiError::new(ErrorCode::AuthFailureInvalidAuthorization, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_node_credential_scope_with_a_port() {
        let auth = Authorization::parse(
            "TC3-HMAC-SHA256 Credential=AKID/2026-11-24/localhost:8765/tc3_request, SignedHeaders=content-type;host, Signature=81d521fdb86c7b03e04d84679b80e4f1d3cd091aa1f7ecd68380c16f6aa21a31",
        )
        .unwrap();
        assert_eq!(auth.service, "localhost:8765");
        assert_eq!(auth.signed_headers, vec!["content-type", "host"]);
    }

    #[test]
    fn rejects_garbled_authorization() {
        for bad in [
            "",
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256 Credential=AKID/2026-11-24/iai, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKID/2026-11-24/iai/tc3_request, SignedHeaders=host, Signature=zz",
            "HMAC-SHA1 Credential=AKID/2026-11-24/iai/tc3_request, SignedHeaders=host, Signature=00",
        ] {
            assert!(Authorization::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn strips_ports_only() {
        assert_eq!(strip_host_port("127.0.0.1:8765"), "127.0.0.1");
        assert_eq!(strip_host_port("http://127.0.0.1:8765"), "http://127.0.0.1");
        assert_eq!(strip_host_port("localhost"), "localhost");
        assert_eq!(strip_host_port("[::1]:80"), "[::1]");
    }
}
