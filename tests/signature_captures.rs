//! The signature verifiers and the request parser, run over every request that the official Python SDK,
//! tccli and the Node SDK sent in `../shared/spec/captures` (key AKIDTESTSECRETID0001 / TestSecretKey0001).

use std::path::PathBuf;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use iai_server::api::ErrorCode;
use iai_server::wire::auth::{ApiKey, KeyRing};
use iai_server::wire::request::{Auth, Incoming, parse};
use serde_json::Value;

const SECRET_ID: &str = "AKIDTESTSECRETID0001";
const SECRET_KEY: &str = "TestSecretKey0001";

struct Capture {
    name: String,
    method: Method,
    headers: HeaderMap,
    raw_query: String,
    body: Vec<u8>,
    timestamp: i64,
    tc3: bool,
}

fn captures_dir() -> PathBuf {
    std::env::var_os("IAI_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("spec/captures")
}

fn load_captures() -> Vec<Capture> {
    let dir = captures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the captures folder {} is needed: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let c: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut headers = HeaderMap::new();
            for h in c["headers"].as_array().unwrap() {
                let name =
                    HeaderName::from_bytes(h[0].as_str().unwrap().to_ascii_lowercase().as_bytes())
                        .unwrap();
                headers.append(name, HeaderValue::from_str(h[1].as_str().unwrap()).unwrap());
            }
            let body = c["body_text"].as_str().unwrap().as_bytes().to_vec();
            assert_eq!(
                body.len() as u64,
                c["body_len"].as_u64().unwrap(),
                "{}",
                path.display()
            );
            let tc3 = headers.contains_key("authorization");
            let timestamp = if tc3 {
                headers["x-tc-timestamp"].to_str().unwrap().parse().unwrap()
            } else {
                c["decoded_params"]["Timestamp"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            Capture {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                method: c["method"].as_str().unwrap().parse().unwrap(),
                headers,
                raw_query: c["raw_query"].as_str().unwrap().to_owned(),
                body,
                timestamp,
                tc3,
            }
        })
        .collect()
}

fn ring(secret_key: &str) -> KeyRing {
    KeyRing::new(
        [ApiKey {
            secret_id: SECRET_ID.into(),
            secret_key: secret_key.into(),
            token: None,
        }],
        300,
    )
}

fn incoming<'a>(c: &'a Capture, body: &'a [u8]) -> Incoming<'a> {
    Incoming {
        method: &c.method,
        headers: &c.headers,
        raw_query: &c.raw_query,
        body,
    }
}

#[test]
fn every_captured_request_verifies_and_parses() {
    let captures = load_captures();
    assert!(
        captures.len() >= 51,
        "expected the 51 captures, found {}",
        captures.len()
    );
    let keys = ring(SECRET_KEY);
    for c in &captures {
        let (ctx, params) = parse(
            &incoming(c, &c.body),
            &Auth::Verify(&keys),
            c.timestamp + 10,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(ctx.secret_id.as_deref(), Some(SECRET_ID), "{}", c.name);
        assert!(params.is_object(), "{}", c.name);
    }
    let (tc3, v1): (Vec<_>, Vec<_>) = captures.iter().partition(|c| c.tc3);
    assert!(
        tc3.len() >= 30 && v1.len() >= 10,
        "both schemes must be covered"
    );
}

#[test]
fn a_wrong_secret_key_fails_every_capture() {
    let keys = ring("NotTheSecretKey");
    for c in load_captures() {
        let err = parse(&incoming(&c, &c.body), &Auth::Verify(&keys), c.timestamp).unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::AuthFailureSignatureFailure,
            "{}",
            c.name
        );
    }
}

#[test]
fn an_unknown_secret_id_is_reported_as_such() {
    let keys = KeyRing::new(
        [ApiKey {
            secret_id: "AKIDSOMEONEELSE".into(),
            secret_key: SECRET_KEY.into(),
            token: None,
        }],
        300,
    );
    for c in load_captures() {
        let err = parse(&incoming(&c, &c.body), &Auth::Verify(&keys), c.timestamp).unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::AuthFailureSecretIdNotFound,
            "{}",
            c.name
        );
    }
}

#[test]
fn clock_skew_over_300_seconds_expires_the_signature() {
    let keys = ring(SECRET_KEY);
    for c in load_captures() {
        assert!(
            parse(
                &incoming(&c, &c.body),
                &Auth::Verify(&keys),
                c.timestamp - 300
            )
            .is_ok(),
            "{}",
            c.name
        );
        let err = parse(
            &incoming(&c, &c.body),
            &Auth::Verify(&keys),
            c.timestamp + 301,
        )
        .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::AuthFailureSignatureExpire,
            "{}",
            c.name
        );
    }
}

#[test]
fn a_tampered_body_or_query_fails_the_signature() {
    let keys = ring(SECRET_KEY);
    for c in load_captures() {
        let mut tampered = Capture {
            raw_query: c.raw_query.clone(),
            headers: c.headers.clone(),
            ..c
        };
        if tampered.method == Method::GET {
            tampered.raw_query = tampered.raw_query.replacen("p1", "p2", 1);
            if tampered.raw_query == c.raw_query {
                tampered.raw_query.push_str("&Extra=1");
            }
        } else {
            let text = String::from_utf8(tampered.body.clone()).unwrap();
            let changed = text.replacen("g1", "g2", 1).replacen("p1", "p2", 1);
            tampered.body = if changed == text {
                format!("{text} ").into_bytes()
            } else {
                changed.into_bytes()
            };
        }
        let err = parse(
            &incoming(&tampered, &tampered.body),
            &Auth::Verify(&keys),
            tampered.timestamp,
        )
        .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::AuthFailureSignatureFailure,
            "{}",
            tampered.name
        );
    }
}

#[test]
fn captured_parameters_are_coerced_to_their_types() {
    let keys = ring(SECRET_KEY);
    for c in load_captures() {
        let (ctx, params) =
            parse(&incoming(&c, &c.body), &Auth::Verify(&keys), c.timestamp).unwrap();
        if ctx.action == "CreateFace" {
            assert!(params["Urls"].is_array(), "{}: {params}", c.name);
            if let Some(t) = params.get("FaceMatchThreshold") {
                assert!(t.is_number(), "{}", c.name);
            }
        }
        if ctx.action == "CreatePerson" {
            if let Some(gender) = params.get("Gender") {
                assert_eq!(gender, 1, "{}: {params}", c.name);
            }
            assert!(
                params["PersonName"].as_str().unwrap().starts_with('张'),
                "{}",
                c.name
            );
            let infos = params["PersonExDescriptionInfos"].as_array().unwrap();
            assert_eq!(infos[0]["PersonExDescriptionIndex"], 0, "{}", c.name);
        }
    }
}
