//! The legacy signature (HmacSHA1 / HmacSHA256, SPEC.md §4): every parameter but `Signature`, `_` read as
//! `.` in names, sorted by name, joined unencoded as `name=value&...` after `METHOD + host + "/?"`, where
//! host is the Host header as received (with its port). Signature = base64 of the HMAC with the SecretKey.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::{KeyRing, Signer, check_token, equal, parse_timestamp, signature_failure};
use crate::api::ApiError;

/// Verify a v1-signed call; `params` are the decoded form or query pairs, in any order.
pub fn verify(
    keys: &KeyRing,
    method: &str,
    host: &str,
    params: &[(String, String)],
    now: i64,
) -> Result<Signer, ApiError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let secret_id = get("SecretId").ok_or_else(|| ApiError::missing_parameter("SecretId"))?;
    let signature = get("Signature").ok_or_else(|| ApiError::missing_parameter("Signature"))?;
    let key = keys.key(secret_id)?;
    let timestamp = parse_timestamp(get("Timestamp"))?;
    keys.check_skew(timestamp, now)?;
    let method_name = get("SignatureMethod").unwrap_or("HmacSHA1");
    let expected = sign(
        method_name,
        &key.secret_key,
        &string_to_sign(method, host, params),
    )
    .ok_or_else(|| ApiError::invalid_type("SignatureMethod"))?;
    if !equal(expected.as_bytes(), signature.as_bytes()) {
        return Err(signature_failure());
    }
    check_token(&key, get("Token"))?;
    Ok(Signer {
        secret_id: secret_id.to_owned(),
        principal: key.principal,
        signature: signature.to_owned(),
        timestamp,
    })
}

pub fn string_to_sign(method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (k.replace('_', "."), v.as_str()))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}/?{}", joined.join("&"))
}

/// base64 HMAC with the named algorithm; `None` for an unknown SignatureMethod.
pub fn sign(signature_method: &str, secret_key: &str, string_to_sign: &str) -> Option<String> {
    let digest = match signature_method {
        "HmacSHA1" => mac::<Hmac<Sha1>>(secret_key, string_to_sign),
        "HmacSHA256" => mac::<Hmac<Sha256>>(secret_key, string_to_sign),
        _ => return None,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

fn mac<M: Mac + KeyInit>(key: &str, data: &str) -> Vec<u8> {
    let mut mac =
        <M as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}
