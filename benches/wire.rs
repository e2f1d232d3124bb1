//! Cost of the wire layer per call: TC3 and v1 signature verification plus parameter validation, next to
//! a baseline measured in the same run (parsing the same JSON body with serde_json alone), so the figure to
//! read is the ratio, not the absolute time. `cargo bench --bench wire`.

use std::hint::black_box;

use axum::http::{HeaderMap, HeaderValue, Method};
use criterion::{Criterion, criterion_group, criterion_main};
use iai_server::wire::auth::{ApiKey, KeyRing, tc3, v1};
use iai_server::wire::request::{Auth, Incoming, parse};

const SECRET_ID: &str = "AKIDBENCH";
const SECRET_KEY: &str = "bench-secret";
const NOW: i64 = 1_795_531_695;

fn keys() -> KeyRing {
    KeyRing::new(
        [ApiKey {
            secret_id: SECRET_ID.into(),
            secret_key: SECRET_KEY.into(),
            token: None,
        }],
        300,
    )
}

/// A signed TC3 POST of CreateGroup, the way the Python SDK builds it.
fn tc3_request(body: &[u8]) -> HeaderMap {
    let date = "2026-11-24";
    let host = "127.0.0.1:8080";
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/json\nhost:{host}\n\ncontent-type;host\n{}",
        tc3::sha256_hex(body)
    );
    let to_sign = tc3::string_to_sign(NOW, date, "iai", &canonical);
    let key = tc3::signing_key(SECRET_KEY, date, "iai");
    let signature = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json".to_string()),
        ("host", host.to_string()),
        ("x-tc-action", "CreateGroup".to_string()),
        ("x-tc-version", "2018-03-01".to_string()),
        ("x-tc-timestamp", NOW.to_string()),
        (
            "authorization",
            format!(
                "TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/iai/tc3_request, SignedHeaders=content-type;host, Signature={signature}"
            ),
        ),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    headers
}

fn bench_wire(c: &mut Criterion) {
    let keys = keys();
    let body = br#"{"GroupId": "TencentShenZhenEmployee", "GroupName": "\u817e\u8baf\u6df1\u5733\u5458\u5de5\u5e93", "GroupExDescriptions": ["a", "b", "c"], "Tag": "t", "FaceModelVersion": "3.0"}"#;
    let headers = tc3_request(body);
    let method = Method::POST;
    let incoming = Incoming {
        method: &method,
        headers: &headers,
        raw_query: "",
        body,
    };
    assert!(parse(&incoming, &Auth::Verify(&keys), NOW).is_ok());

    let mut group = c.benchmark_group("wire");
    group.bench_function("baseline: serde_json parse of the body", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap()))
    });
    group.bench_function("tc3 post: verify + parse + validate", |b| {
        b.iter(|| black_box(parse(black_box(&incoming), &Auth::Verify(&keys), NOW).unwrap()))
    });
    group.bench_function("tc3 post: parse + validate, signature off", |b| {
        b.iter(|| black_box(parse(black_box(&incoming), &Auth::Off, NOW).unwrap()))
    });

    let mut params: Vec<(String, String)> = [
        ("Action", "CreateGroup"),
        ("Version", "2018-03-01"),
        ("Timestamp", "1795531695"),
        ("Nonce", "12345"),
        ("SecretId", SECRET_ID),
        ("SignatureMethod", "HmacSHA256"),
        ("GroupId", "TencentShenZhenEmployee"),
        ("GroupName", "腾讯深圳员工库"),
        ("GroupExDescriptions.0", "a"),
        ("GroupExDescriptions.1", "b"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let to_sign = v1::string_to_sign("POST", "127.0.0.1:8080", &params);
    params.push((
        "Signature".into(),
        v1::sign("HmacSHA256", SECRET_KEY, &to_sign).unwrap(),
    ));
    group.bench_function("v1 HmacSHA256: verify", |b| {
        b.iter(|| {
            black_box(v1::verify(&keys, "POST", "127.0.0.1:8080", black_box(&params), NOW).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_wire);
criterion_main!(benches);
