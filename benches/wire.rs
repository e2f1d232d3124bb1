//! Cost of the wire layer per call: TC3 and v1 signature verification plus parameter validation, next to
//! a baseline measured in the same run (parsing the same JSON body with serde_json alone), so the figure to
//! read is the ratio, not the absolute time. `cargo bench --bench wire`.
//!
//! `cam` measures what sub-accounts add to a call: the QPS limiter and CAM authorisation of a two-group
//! SearchFaces for a sub-user with 3 attached policies of 20 statements, next to TC3 verification alone.

use std::hint::black_box;

use axum::http::{HeaderMap, HeaderValue, Method};
use criterion::{Criterion, criterion_group, criterion_main};
use iai_server::api::{Principal, RequestContext, Service, access};
use iai_server::cam::Directory;
use iai_server::cam::authorize::authorize;
use iai_server::store::cam::{AttachmentRow, PolicyRow, Snapshot, UserRow};
use iai_server::wire::access::Facts;
use iai_server::wire::auth::{ApiKey, KeyRing, tc3, v1};
use iai_server::wire::limits::{QpsConfig, RateLimits};
use iai_server::wire::named::Named;
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

/// A sub-user with 3 policies of 20 statements: group-scoped grants and denies, interface-level grants,
/// ip and date conditions; half of them name SearchFaces (through `Search*` or `*`).
fn directory() -> Directory {
    let user = UserRow {
        uin: 200_000_000_001,
        uid: 1,
        name: "bench".into(),
        ..Default::default()
    };
    let mut snapshot = Snapshot {
        users: vec![user],
        ..Default::default()
    };
    for p in 0..3u64 {
        let statements: Vec<serde_json::Value> = (0..20)
            .map(|i| {
                let actions = match i % 4 {
                    0 => serde_json::json!(["name/iai:Search*", "iai:GetGroupInfo"]),
                    1 => serde_json::json!(["iai:Get*", "iai:CreatePerson"]),
                    2 => serde_json::json!("iai:*"),
                    _ => serde_json::json!(["name/iai:Detect*", "iai:AnalyzeFace"]),
                };
                let deny = i % 7 == 6;
                let team = format!("qcs::iai::uin/:groupid/team{p}-{i}-*");
                let resource = if deny {
                    serde_json::json!([team])
                } else {
                    serde_json::json!([team, "qcs::iai:ap-guangzhou::groupid/shared*"])
                };
                let mut statement = serde_json::json!({
                    "effect": if deny { "deny" } else { "allow" },
                    "action": actions,
                    "resource": resource,
                });
                if i % 5 == 0 {
                    statement["condition"] = serde_json::json!({
                        "ip_equal": {"qcs:ip": ["10.0.0.0/8", "127.0.0.1"]},
                        "date_less_than": {"qcs:current_time": "2100-01-01T00:00:00Z"}
                    });
                }
                statement
            })
            .collect();
        snapshot.policies.push(PolicyRow {
            policy_id: 100 + p,
            name: format!("p{p}"),
            description: String::new(),
            document: serde_json::json!({"version": "2.0", "statement": statements}).to_string(),
            tags: "[]".into(),
            created_ms: 0,
            updated_ms: 0,
        });
        snapshot.attachments.push(AttachmentRow {
            uin: 200_000_000_001,
            policy_id: 100 + p,
            created_ms: 0,
        });
    }
    Directory::build(100_000_000_001, &snapshot)
}

fn bench_cam(c: &mut Criterion) {
    let keys = keys();
    let body = br#"{"GroupIds": ["shared-a", "shared-b"], "Url": "http://example.com/face.jpg"}"#;
    let headers = tc3_request(body);
    let method = Method::POST;
    let signed = tc3::Tc3Request {
        method: method.as_str(),
        raw_query: "",
        headers: &headers,
        body,
    };
    assert!(tc3::verify(&keys, &signed, NOW).is_ok());

    let shared = Directory::shared(directory());
    let directory = shared.load_full();
    let limits = RateLimits::new(QpsConfig {
        groups: [("search".to_owned(), 1_000_000_000)].into(),
        ..Default::default()
    });
    let named = Named::from_json(body).unwrap();
    let ctx = RequestContext {
        request_id: "bench".into(),
        action: "SearchFaces".into(),
        version: "2018-03-01".into(),
        region: Some("ap-guangzhou".into()),
        principal: Principal::User(200_000_000_001),
        ..Default::default()
    };
    let access = access::of("SearchFaces");
    let facts = Facts {
        ctx: &ctx,
        service: Service::Iai,
        access,
        named: &named,
        ip: Some("127.0.0.1".parse().unwrap()),
        now: NOW,
    };
    assert!(authorize(&directory, &facts).is_ok());
    let denied = RequestContext {
        action: "DeleteGroup".into(),
        ..ctx.clone()
    };
    assert!(
        authorize(
            &directory,
            &Facts {
                ctx: &denied,
                access: access::of("DeleteGroup"),
                ..facts
            }
        )
        .is_err()
    );

    let mut group = c.benchmark_group("cam");
    group.bench_function("baseline: tc3 verify", |b| {
        b.iter(|| black_box(tc3::verify(&keys, black_box(&signed), NOW).unwrap()))
    });
    group.bench_function(
        "limit + read names + authorise SearchFaces, 2 groups, 3x20 statements",
        |b| {
            b.iter(|| {
                // As a call does it: the current directory, the limiter, what the call names (read from
                // the body, image skipped), then the policies.
                let directory = shared.load_full();
                limits
                    .check(ctx.principal, || None, "SearchFaces", access.unwrap())
                    .unwrap();
                let named = Named::from_json(black_box(body)).unwrap();
                black_box(
                    authorize(
                        &directory,
                        &Facts {
                            named: &named,
                            ..facts
                        },
                    )
                    .is_ok(),
                )
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench_wire, bench_cam);
criterion_main!(benches);
