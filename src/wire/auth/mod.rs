//! Request authentication: TC3-HMAC-SHA256 (`tc3`) and the legacy HmacSHA1/HmacSHA256 signature (`v1`).
//!
//! Both verifiers are pure functions of the request bytes, the key table and the current time, so they are
//! tested directly against requests captured from the official clients.

pub mod tc3;
pub mod v1;

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use crate::api::{ApiError, ErrorCode};

/// One API key pair. A key with a `token` only accepts calls that carry that token (temporary credentials).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ApiKey {
    pub secret_id: String,
    pub secret_key: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// The keys the server accepts, by SecretId, and the allowed clock skew.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: HashMap<String, ApiKey>,
    pub max_skew_secs: i64,
}

impl KeyRing {
    pub fn new(keys: impl IntoIterator<Item = ApiKey>, max_skew_secs: i64) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.secret_id.clone(), k)).collect(),
            max_skew_secs,
        }
    }

    fn key(&self, secret_id: &str) -> Result<&ApiKey, ApiError> {
        self.keys.get(secret_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::AuthFailureSecretIdNotFound,
                "The SecretId is not found, please ensure that your SecretId is correct.",
            )
        })
    }

    fn check_skew(&self, timestamp: i64, now: i64) -> Result<(), ApiError> {
        if (now - timestamp).abs() > self.max_skew_secs {
            return Err(ApiError::new(
                ErrorCode::AuthFailureSignatureExpire,
                format!(
                    "Signature expired. Timestamp {timestamp} differs from the server time {now} by more than {} seconds.",
                    self.max_skew_secs
                ),
            ));
        }
        Ok(())
    }
}

/// Temporary credentials: a key with a token needs the same token on the call.
fn check_token(key: &ApiKey, sent: Option<&str>) -> Result<(), ApiError> {
    match &key.token {
        Some(expected)
            if sent.map(|s| s.as_bytes().ct_eq(expected.as_bytes()).into()) != Some(true) =>
        {
            Err(ApiError::new(
                ErrorCode::AuthFailureTokenFailure,
                "The token is invalid for this SecretId.",
            ))
        }
        _ => Ok(()),
    }
}

fn signature_failure() -> ApiError {
    ApiError::new(
        ErrorCode::AuthFailureSignatureFailure,
        "The provided credentials could not be validated. Please check your signature is correct.",
    )
}

fn parse_timestamp(text: Option<&str>) -> Result<i64, ApiError> {
    let text = text.ok_or_else(|| ApiError::missing_parameter("Timestamp"))?;
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid_type("Timestamp"))
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
