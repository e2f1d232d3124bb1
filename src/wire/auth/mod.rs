//! Request authentication: TC3-HMAC-SHA256 (`tc3`) and the legacy HmacSHA1/HmacSHA256 signature (`v1`).
//!
//! Both verifiers are pure functions of the request bytes, the key table and the current time, so they are
//! tested directly against requests captured from the official clients.

pub mod tc3;
pub mod v1;

use std::collections::HashMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::access::KeyStore;
use crate::api::{ApiError, ErrorCode, Principal};

pub use crate::config::ApiKey;

/// The keys the server accepts, by SecretId, and the allowed clock skew: the configuration's (the main
/// account's) and, when CAM is on, the keys stored through CAM, asked of the `KeyStore` (`wire::access`) at
/// each call so that a key created, deactivated or deleted applies to the next one.
#[derive(Clone)]
pub struct KeyRing {
    keys: HashMap<String, ApiKey>,
    stored: Option<Arc<dyn KeyStore>>,
    pub max_skew_secs: i64,
}

/// A key found for a SecretId, and the account it signs for.
pub struct Credential {
    pub secret_key: String,
    pub token: Option<String>,
    pub principal: Principal,
}

/// Who signed a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub secret_id: String,
    pub principal: Principal,
    /// The signature as sent, and the time it was signed for (replay protection remembers them).
    pub signature: String,
    pub timestamp: i64,
}

impl KeyRing {
    pub fn new(keys: impl IntoIterator<Item = ApiKey>, max_skew_secs: i64) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.secret_id.clone(), k)).collect(),
            stored: None,
            max_skew_secs,
        }
    }

    /// Also accept the keys stored through CAM.
    pub fn with_stored_keys(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.stored = Some(store);
        self
    }

    /// The SecretIds of the configuration.
    pub fn configured_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn key(&self, secret_id: &str) -> Result<Credential, ApiError> {
        if let Some(k) = self.keys.get(secret_id) {
            return Ok(Credential {
                secret_key: k.secret_key.clone(),
                token: k.token.clone(),
                principal: Principal::Main,
            });
        }
        if let Some(stored) = &self.stored
            && let Some(k) = stored.key(secret_id)
        {
            return Ok(Credential {
                secret_key: k.secret_key,
                token: None,
                principal: k.principal,
            });
        }
        Err(ApiError::new(
            ErrorCode::AuthFailureSecretIdNotFound,
            "The SecretId is not found, please ensure that your SecretId is correct.",
        ))
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
fn check_token(key: &Credential, sent: Option<&str>) -> Result<(), ApiError> {
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
