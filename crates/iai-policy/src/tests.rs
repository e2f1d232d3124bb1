//! Unit tests of the policy language, against a small catalogue of their own.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const IAI: &[&str] = &[
    "AnalyzeFace",
    "AnalyzeDenseLandmarks",
    "DetectFace",
    "SearchFaces",
    "GetGroupList",
    "GetGroupInfo",
    "CreateGroup",
];
const CAM: &[&str] = &["AddUser", "ListUsers"];
const CATALOGUE: Catalogue = Catalogue {
    services: &[("iai", IAI), ("cam", CAM)],
};
const OWNER: u64 = 100000000001;
/// 2026-01-01T00:00:00Z
const NEW_YEAR_2026: i64 = 1_767_225_600;

fn policy(document: &str) -> Policy {
    match parse(document, &CATALOGUE) {
        Ok(p) => p,
        Err(e) => panic!("{document} refused: {e:?}"),
    }
}

fn error(document: &str) -> PolicyError {
    match parse(document, &CATALOGUE) {
        Ok(p) => panic!("{document} accepted: {p:?}"),
        Err(e) => e,
    }
}

fn kind(document: &str) -> PolicyErrorKind {
    error(document).kind
}

/// A one-statement document.
fn one(effect: &str, action: &str, resource: &str, condition: Option<&str>) -> String {
    let condition = condition
        .map(|c| format!(r#","condition":{c}"#))
        .unwrap_or_default();
    format!(
        r#"{{"version":"2.0","statement":[{{"effect":"{effect}","action":{action},"resource":{resource}{condition}}}]}}"#
    )
}

fn group(region: &str, group: &str) -> String {
    format!("qcs::iai:{region}:uin/{OWNER}:groupid/{group}")
}

/// Tests write resources as text; requests carry them typed.
fn typed(text: &str) -> Resource<'_> {
    if text == "*" {
        return Resource::Interface;
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    if parts.len() < 6 {
        // Not a resource name: a question that no qualified pattern matches.
        return Resource::Named(ResourceName {
            service: "",
            region: "",
            account: u64::MAX,
            kind: "",
            id: "",
        });
    }
    let (kind, id) = parts[5].split_once('/').unwrap_or((parts[5], ""));
    Resource::Named(ResourceName {
        service: parts[2],
        region: parts[3],
        account: parts[4]
            .strip_prefix("uin/")
            .and_then(|u| u.parse().ok())
            .unwrap_or(u64::MAX),
        kind,
        id,
    })
}

fn req(resource: &str) -> Request<'_> {
    Request {
        resource: typed(resource),
        owner_uin: OWNER,
        ip: None,
        now: NEW_YEAR_2026,
    }
}

fn decide(policy: &Policy, action: &str, request: &Request) -> Decision {
    policy.evaluate(action, request)
}

// --- errors -------------------------------------------------------------------------------------

#[test]
fn error_codes() {
    assert_eq!(
        PolicyErrorKind::PolicyDocument.code(),
        "InvalidParameter.PolicyDocumentError"
    );
    assert_eq!(
        PolicyErrorKind::LengthOverLimit.code(),
        "InvalidParameter.PolicyDocumentLengthOverLimit"
    );
    assert_eq!(
        PolicyErrorKind::Version.code(),
        "InvalidParameter.VersionError"
    );
    assert_eq!(
        PolicyErrorKind::Statement.code(),
        "InvalidParameter.StatementError"
    );
    assert_eq!(
        PolicyErrorKind::Effect.code(),
        "InvalidParameter.EffectError"
    );
    assert_eq!(
        PolicyErrorKind::Action.code(),
        "InvalidParameter.ActionError"
    );
    assert_eq!(
        PolicyErrorKind::ActionNotExist.code(),
        "InvalidParameter.ActionNotExist"
    );
    assert_eq!(
        PolicyErrorKind::Resource.code(),
        "InvalidParameter.ResourceError"
    );
    assert_eq!(
        PolicyErrorKind::Condition.code(),
        "InvalidParameter.ConditionError"
    );
    assert_eq!(
        PolicyErrorKind::ConditionType.code(),
        "InvalidParameter.ConditionTypeError"
    );
    assert_eq!(
        PolicyErrorKind::ConditionContent.code(),
        "InvalidParameter.ConditionContentError"
    );
    assert_eq!(
        PolicyErrorKind::Principal.code(),
        "InvalidParameter.PrincipalError"
    );
}

#[test]
fn policy_document_errors() {
    use PolicyErrorKind::PolicyDocument;
    assert_eq!(kind("not json"), PolicyDocument);
    assert_eq!(kind(""), PolicyDocument);
    assert_eq!(kind("[]"), PolicyDocument);
    assert_eq!(kind("\"2.0\""), PolicyDocument);
    assert_eq!(kind("null"), PolicyDocument);
    assert_eq!(
        kind(
            r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}],"id":"x"}"#
        ),
        PolicyDocument
    );
    // Keys are lowercase: "Version" is an unknown key.
    assert_eq!(
        kind(r#"{"Version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}"#),
        PolicyDocument
    );
}

#[test]
fn length_over_limit() {
    let padding = " ".repeat(MAX_DOCUMENT_BYTES);
    let long = format!("{}{padding}", one("allow", r#""*""#, r#""*""#, None));
    let e = error(&long);
    assert_eq!(e.kind, PolicyErrorKind::LengthOverLimit);
    assert_eq!(
        e.kind.code(),
        "InvalidParameter.PolicyDocumentLengthOverLimit"
    );
    // Exactly at the limit is fine.
    let doc = one("allow", r#""*""#, r#""*""#, None);
    let exact = format!("{doc}{}", " ".repeat(MAX_DOCUMENT_BYTES - doc.len()));
    assert_eq!(exact.len(), MAX_DOCUMENT_BYTES);
    policy(&exact);
}

#[test]
fn version_errors() {
    use PolicyErrorKind::Version;
    let s = r#"[{"effect":"allow","action":"*","resource":"*"}]"#;
    assert_eq!(kind(&format!(r#"{{"statement":{s}}}"#)), Version);
    assert_eq!(
        kind(&format!(r#"{{"version":"1.0","statement":{s}}}"#)),
        Version
    );
    assert_eq!(
        kind(&format!(r#"{{"version":2.0,"statement":{s}}}"#)),
        Version
    );
    assert_eq!(
        kind(&format!(r#"{{"version":null,"statement":{s}}}"#)),
        Version
    );
    assert_eq!(kind(r#"{}"#), Version);
}

#[test]
fn statement_errors() {
    use PolicyErrorKind::Statement;
    assert_eq!(kind(r#"{"version":"2.0"}"#), Statement);
    assert_eq!(kind(r#"{"version":"2.0","statement":[]}"#), Statement);
    assert_eq!(kind(r#"{"version":"2.0","statement":"allow"}"#), Statement);
    assert_eq!(kind(r#"{"version":"2.0","statement":[1]}"#), Statement);
    assert_eq!(kind(r#"{"version":"2.0","statement":null}"#), Statement);
    // A misspelt key.
    let e =
        error(r#"{"version":"2.0","statement":[{"Effect":"allow","action":"*","resource":"*"}]}"#);
    assert_eq!(e.kind, Statement);
    assert!(
        e.message.contains("statement 1") && e.message.contains("Effect"),
        "{}",
        e.message
    );
}

#[test]
fn single_statement_object_is_accepted() {
    let p = policy(
        r#"{"version":"2.0","statement":{"effect":"allow","action":"iai:DetectFace","resource":"*"}}"#,
    );
    assert_eq!(p.statements().len(), 1);
    assert_eq!(decide(&p, "iai:DetectFace", &req("*")), Decision::Allow);
}

#[test]
fn principal_error() {
    let doc = r#"{"version":"2.0","statement":[{"effect":"allow","principal":{"qcs":["qcs::cam::uin/1:root"]},"action":"*","resource":"*"}]}"#;
    assert_eq!(kind(doc), PolicyErrorKind::Principal);
}

#[test]
fn effect_errors() {
    use PolicyErrorKind::Effect;
    assert_eq!(kind(&one("permit", r#""*""#, r#""*""#, None)), Effect);
    assert_eq!(
        kind(r#"{"version":"2.0","statement":[{"action":"*","resource":"*"}]}"#),
        Effect
    );
    assert_eq!(
        kind(r#"{"version":"2.0","statement":[{"effect":true,"action":"*","resource":"*"}]}"#),
        Effect
    );
    // Any case is accepted.
    assert_eq!(
        policy(&one("Allow", r#""*""#, r#""*""#, None)).statements()[0].effect(),
        super::Effect::Allow
    );
    assert_eq!(
        policy(&one("DENY", r#""*""#, r#""*""#, None)).statements()[0].effect(),
        super::Effect::Deny
    );
}

#[test]
fn action_errors() {
    use PolicyErrorKind::Action;
    for action in [
        r#""""#,
        r#""iai""#,
        r#""name/iai""#,
        r#""IAI:DetectFace""#,
        r#"":DetectFace""#,
        r#""iai:""#,
        r#""i ai:DetectFace""#,
        r#""iai:Detect Face""#,
        r#""permid/""#,
        r#"[]"#,
        r#"[1]"#,
        r#"{"a":1}"#,
        r#"7"#,
    ] {
        assert_eq!(
            kind(&one("allow", action, r#""*""#, None)),
            Action,
            "{action}"
        );
    }
    assert_eq!(
        kind(r#"{"version":"2.0","statement":[{"effect":"allow","resource":"*"}]}"#),
        Action
    );
}

#[test]
fn action_not_exist() {
    let e = error(&one(
        "allow",
        r#"["iai:DetectFace","iai:SerchFaces"]"#,
        r#""*""#,
        None,
    ));
    assert_eq!(e.kind, PolicyErrorKind::ActionNotExist);
    assert_eq!(
        e.message,
        "statement 1: the action `iai:SerchFaces` does not exist"
    );
    assert_eq!(
        kind(&one("allow", r#""name/iai:Delete*""#, r#""*""#, None)),
        PolicyErrorKind::ActionNotExist
    );
    assert_eq!(
        kind(&one("allow", r#""cam:DetectFace""#, r#""*""#, None)),
        PolicyErrorKind::ActionNotExist
    );
    // Exact names are case-sensitive.
    assert_eq!(
        kind(&one("allow", r#""iai:detectface""#, r#""*""#, None)),
        PolicyErrorKind::ActionNotExist
    );
    // The second statement is named in the message.
    let doc = r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"},{"effect":"deny","action":"iai:Nope","resource":"*"}]}"#;
    assert!(error(doc).message.starts_with("statement 2:"));
}

#[test]
fn unknown_services_and_permid_are_accepted_and_never_match() {
    let p = policy(&one(
        "allow",
        r#"["cvm:RunInstances","name/cos:Get*","permid/123"]"#,
        r#""*""#,
        None,
    ));
    let s = &p.statements()[0];
    for action in ["iai:DetectFace", "cam:AddUser", "cvm:Other"] {
        assert!(!s.matches_action(action), "{action}");
    }
    assert!(s.matches_action("cvm:RunInstances"));
    assert!(s.matches_action("cos:GetObject"));
}

#[test]
fn resource_errors() {
    use PolicyErrorKind::Resource;
    for resource in [
        r#""""#,
        r#""qcs::iai:ap-guangzhou:uin/1""#,
        r#""abc::iai:ap-guangzhou:uin/1:groupid/G1""#,
        r#""QCS::iai:ap-guangzhou:uin/1:groupid/G1""#,
        r#""qcs::::uin/1:groupid/G1""#,
        r#""qcs::iai:ap-guangzhou:uin/1:""#,
        r#""groupid/G1""#,
        r#"[]"#,
        r#"[null]"#,
        r#"true"#,
    ] {
        assert_eq!(
            kind(&one("allow", r#""*""#, resource, None)),
            Resource,
            "{resource}"
        );
    }
    assert_eq!(
        kind(r#"{"version":"2.0","statement":[{"effect":"allow","action":"*"}]}"#),
        Resource
    );
}

#[test]
fn condition_errors() {
    use PolicyErrorKind::*;
    let cases = [
        (r#"[]"#, Condition),
        (r#""ip_equal""#, Condition),
        (r#"null"#, Condition),
        (r#"{}"#, Condition),
        (r#"{"ip_equal":"10.0.0.1"}"#, Condition),
        (r#"{"ip_equal":{}}"#, Condition),
        (r#"{"string_equal":{"qcs:ip":"10.0.0.1"}}"#, ConditionType),
        (
            r#"{"ip_equal_if_exist":{"qcs:ip":"10.0.0.1"}}"#,
            ConditionType,
        ),
        (r#"{"IpAddress":{"qcs:ip":"10.0.0.1"}}"#, ConditionType),
        (
            r#"{"ip_equal":{"qcs:current_time":"10.0.0.1"}}"#,
            ConditionContent,
        ),
        (
            r#"{"ip_equal":{"qcs:sourceip":"10.0.0.1"}}"#,
            ConditionContent,
        ),
        (r#"{"ip_equal":{"qcs:ip":"10.0.0.0/33"}}"#, ConditionContent),
        (r#"{"ip_equal":{"qcs:ip":"10.0.0"}}"#, ConditionContent),
        (
            r#"{"ip_equal":{"qcs:ip":["10.0.0.1",5]}}"#,
            ConditionContent,
        ),
        (r#"{"ip_equal":{"qcs:ip":[]}}"#, ConditionContent),
        (r#"{"ip_equal":{"qcs:ip":1}}"#, ConditionContent),
        (
            r#"{"date_less_than":{"qcs:ip":"2016-06-01T00:01:00Z"}}"#,
            ConditionContent,
        ),
        (
            r#"{"date_less_than":{"qcs:current_time":"yesterday"}}"#,
            ConditionContent,
        ),
        (
            r#"{"date_less_than":{"qcs:current_time":"2016-13-01T00:01:00Z"}}"#,
            ConditionContent,
        ),
        (
            r#"{"date_less_than":{"qcs:current_time":1464739260}}"#,
            ConditionContent,
        ),
    ];
    for (condition, expected) in cases {
        assert_eq!(
            kind(&one("allow", r#""*""#, r#""*""#, Some(condition))),
            expected,
            "{condition}"
        );
    }
}

#[test]
fn errors_name_the_offending_value() {
    let e = error(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"ip_equal":{"qcs:ip":"300.1.1.1"}}"#),
    ));
    assert!(
        e.message.contains("300.1.1.1") && e.message.starts_with("statement 1:"),
        "{}",
        e.message
    );
    let e = error(&one("allow", r#""*""#, r#""arn:aws:s3:::b""#, None));
    assert!(e.message.contains("arn:aws:s3:::b"), "{}", e.message);
    assert_eq!(e.to_string(), e.message);
}

#[test]
fn no_panics_on_odd_inputs() {
    for doc in [
        "{",
        "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"iai:\u{00e9}*\",\"resource\":\"*\"}]}",
        "{\"version\":\"2.0\",\"statement\":[{\"effect\":\"allow\",\"action\":\"*\",\"resource\":\"qcs:\u{00e9}:\u{4e2d}:*:*:\u{00e9}*\u{4e2d}\"}]}",
        "\u{feff}{}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ] {
        let _ = parse(doc, &CATALOGUE);
    }
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""qcs:*:*:*:*:\u00e9*\u4e2d/*""#,
        None,
    ));
    for resource in [
        "",
        ":",
        "qcs:::::",
        "qcs:::::\u{00e9}",
        "qcs:::::\u{00e9}\u{4e2d}",
        "qcs:::::\u{4e2d}\u{00e9}",
    ] {
        let _ = decide(&p, "iai:DetectFace", &req(resource));
    }
    assert_eq!(
        decide(&p, "iai:DetectFace", &req("qcs:::::\u{00e9}x\u{4e2d}/1")),
        Decision::Allow
    );
}

// --- globs --------------------------------------------------------------------------------------

#[test]
fn glob_matching() {
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("abc", "abd", false),
        ("*", "", true),
        ("**", "x", true),
        ("a*", "a", true),
        ("a*", "ab", true),
        ("a*", "ba", false),
        ("*a", "ba", true),
        ("*a", "ab", false),
        ("a*a", "a", false),
        ("a*a", "aa", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "acb", false),
        ("a**b", "ab", true),
        ("*b*", "abc", true),
        ("*b*", "ac", false),
        ("Get*Info", "GetGroupInfo", true),
        ("Get*Info", "GetGroupList", false),
        ("*ab*ab*", "abab", true),
        ("*ab*ab*", "aba", false),
    ];
    for &(pattern, text, expected) in cases {
        assert_eq!(
            Glob::new(pattern).matches(text),
            expected,
            "{pattern} ~ {text}"
        );
    }
}

// --- actions ------------------------------------------------------------------------------------

#[test]
fn action_globs() {
    let s = policy(&one("allow", r#""name/iai:Analyze*""#, r#""*""#, None));
    let s = &s.statements()[0];
    assert!(s.matches_action("iai:AnalyzeFace"));
    assert!(s.matches_action("iai:AnalyzeDenseLandmarks"));
    assert!(!s.matches_action("iai:DetectFace"));
    assert!(!s.matches_action("cam:AnalyzeFace"));
    assert!(!s.matches_action("AnalyzeFace"));

    let all = policy(&one("allow", r#""*""#, r#""*""#, None));
    assert!(all.statements()[0].matches_action("iai:DetectFace"));
    assert!(all.statements()[0].matches_action("cam:AddUser"));

    let iai = policy(&one("allow", r#""iai:*""#, r#""*""#, None));
    assert!(iai.statements()[0].matches_action("iai:DetectFace"));
    assert!(iai.statements()[0].matches_action("iai:SearchFaces"));
    assert!(!iai.statements()[0].matches_action("cam:AddUser"));

    let bare = policy(&one(
        "allow",
        r#"["iai:DetectFace","name/iai:Get*Info"]"#,
        r#""*""#,
        None,
    ));
    assert!(bare.statements()[0].matches_action("iai:DetectFace"));
    assert!(bare.statements()[0].matches_action("iai:GetGroupInfo"));
    assert!(!bare.statements()[0].matches_action("iai:GetGroupList"));
    assert!(!bare.statements()[0].matches_action("iai:DetectFaces"));
    assert!(!bare.statements()[0].matches_action("iai:detectface"));

    let cam = policy(&one("allow", r#""cam:*""#, r#""*""#, None));
    assert!(!cam.statements()[0].matches_action("iai:DetectFace"));
    assert!(cam.statements()[0].matches_action("cam:ListUsers"));
}

#[test]
fn action_decisions() {
    let p = policy(&one("allow", r#""name/iai:Analyze*""#, r#""*""#, None));
    assert_eq!(decide(&p, "iai:AnalyzeFace", &req("*")), Decision::Allow);
    assert_eq!(
        decide(&p, "iai:AnalyzeDenseLandmarks", &req("*")),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, "iai:DetectFace", &req("*")),
        Decision::ImplicitDeny
    );
}

// --- resources ----------------------------------------------------------------------------------

#[test]
fn resource_globs() {
    let pattern = format!(r#""qcs::iai:ap-guangzhou:uin/{OWNER}:groupid/test*""#);
    let p = policy(&one("allow", r#""iai:*""#, &pattern, None));
    let test1 = group("ap-guangzhou", "test1");
    let prod = group("ap-guangzhou", "prod");
    assert_eq!(decide(&p, "iai:SearchFaces", &req(&test1)), Decision::Allow);
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&prod)),
        Decision::ImplicitDeny
    );
    // Region mismatch.
    let shanghai = group("ap-shanghai", "test1");
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&shanghai)),
        Decision::ImplicitDeny
    );
    // A specific resource never authorises interface-level actions.
    assert_eq!(
        decide(&p, "iai:GetGroupList", &req("*")),
        Decision::ImplicitDeny
    );
    // Matching is case-sensitive.
    let upper = group("ap-guangzhou", "Test1");
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&upper)),
        Decision::ImplicitDeny
    );
}

#[test]
fn star_resource_matches_everything() {
    let p = policy(&one("allow", r#""iai:*""#, r#""*""#, None));
    assert_eq!(decide(&p, "iai:GetGroupList", &req("*")), Decision::Allow);
    let g = group("ap-beijing", "anything");
    assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
    // A resource list with "*" also covers interface-level actions.
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#"["qcs::iai::uin/:groupid/a","*"]"#,
        None,
    ));
    assert_eq!(decide(&p, "iai:GetGroupList", &req("*")), Decision::Allow);
}

#[test]
fn all_groups_and_empty_region_and_owner_account() {
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""qcs::iai::uin/:groupid/*""#,
        None,
    ));
    for region in ["ap-guangzhou", "ap-shanghai", "ap-beijing"] {
        let g = group(region, "G1");
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&g)),
            Decision::Allow,
            "{region}"
        );
    }
    // Another owner's group does not match "uin/".
    let other = "qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1";
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(other)),
        Decision::ImplicitDeny
    );
    // An empty account segment also means the owner.
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""qcs::iai:::groupid/*""#,
        None,
    ));
    let g = group("ap-guangzhou", "G1");
    assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(other)),
        Decision::ImplicitDeny
    );
    // As does owner_uin of the request.
    let request = Request {
        owner_uin: 200000000002,
        ..req(other)
    };
    assert_eq!(decide(&p, "iai:SearchFaces", &request), Decision::Allow);
}

#[test]
fn explicit_account_and_service() {
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1""#,
        None,
    ));
    let own = group("ap-guangzhou", "G1");
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&own)),
        Decision::ImplicitDeny
    );
    let theirs = "qcs::iai:ap-guangzhou:uin/200000000002:groupid/G1";
    assert_eq!(decide(&p, "iai:SearchFaces", &req(theirs)), Decision::Allow);

    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""qcs::cvm::uin/:groupid/*""#,
        None,
    ));
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&own)),
        Decision::ImplicitDeny
    );

    let p = policy(&one("allow", r#""iai:*""#, r#""qcs:*:*:*:uin/*:*""#, None));
    assert_eq!(decide(&p, "iai:SearchFaces", &req(&own)), Decision::Allow);
    assert_eq!(decide(&p, "iai:SearchFaces", &req(theirs)), Decision::Allow);
    assert_eq!(
        decide(&p, "iai:GetGroupList", &req("*")),
        Decision::ImplicitDeny
    );
}

#[test]
fn resource_segment_may_contain_colons() {
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""qcs::iai::uin/:groupid/a:b*""#,
        None,
    ));
    let g = group("ap-guangzhou", "a:bc");
    assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), Decision::Allow);
}

// --- evaluation ---------------------------------------------------------------------------------

#[test]
fn explicit_deny_wins_across_statements() {
    let doc = format!(
        r#"{{"version":"2.0","statement":[
                {{"effect":"allow","action":"iai:*","resource":"*"}},
                {{"effect":"deny","action":"iai:SearchFaces","resource":"qcs::iai::uin/:groupid/secret*"}},
                {{"effect":"allow","action":"iai:SearchFaces","resource":"{}"}}
            ]}}"#,
        group("ap-guangzhou", "secret1")
    );
    let p = policy(&doc);
    let secret = group("ap-guangzhou", "secret1");
    let public = group("ap-guangzhou", "public");
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&secret)),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&public)),
        Decision::Allow
    );
    assert_eq!(decide(&p, "iai:DetectFace", &req(&secret)), Decision::Allow);
    // Order does not matter: the deny first or last.
    let reversed: Vec<&Statement> = p.statements().iter().rev().collect();
    assert_eq!(evaluate(reversed, &req(&secret)), Decision::ExplicitDeny);
}

#[test]
fn implicit_deny_when_nothing_matches() {
    let p = policy(&one("allow", r#""iai:DetectFace""#, r#""*""#, None));
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req("*")),
        Decision::ImplicitDeny
    );
    assert_eq!(evaluate([], &req("*")), Decision::ImplicitDeny);
    // A deny that does not apply is not an explicit deny.
    let p = policy(&one(
        "deny",
        r#""iai:*""#,
        r#""qcs::iai::uin/:groupid/x""#,
        None,
    ));
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req("*")),
        Decision::ImplicitDeny
    );
}

#[test]
fn twenty_statements() {
    // Statements i = 0..20 allow SearchFaces on group g<i> in alternating regions; statement 7 is a deny.
    let mut statements = Vec::new();
    for i in 0..20 {
        let effect = if i == 7 { "deny" } else { "allow" };
        let region = if i % 2 == 0 {
            "ap-guangzhou"
        } else {
            "ap-shanghai"
        };
        statements.push(format!(
            r#"{{"effect":"{effect}","action":["name/iai:SearchFaces","iai:Get*"],"resource":"qcs::iai:{region}:uin/:groupid/g{i}"}}"#
        ));
    }
    let doc = format!(
        r#"{{"version":"2.0","statement":[{}]}}"#,
        statements.join(",")
    );
    assert!(doc.len() <= MAX_DOCUMENT_BYTES);
    let p = policy(&doc);
    assert_eq!(p.statements().len(), 20);
    for i in 0..20 {
        let right = if i % 2 == 0 {
            "ap-guangzhou"
        } else {
            "ap-shanghai"
        };
        let wrong = if i % 2 == 0 {
            "ap-shanghai"
        } else {
            "ap-guangzhou"
        };
        let expected = if i == 7 {
            Decision::ExplicitDeny
        } else {
            Decision::Allow
        };
        let g = group(right, &format!("g{i}"));
        assert_eq!(decide(&p, "iai:SearchFaces", &req(&g)), expected, "{i}");
        assert_eq!(decide(&p, "iai:GetGroupInfo", &req(&g)), expected, "{i}");
        assert_eq!(
            decide(&p, "iai:DetectFace", &req(&g)),
            Decision::ImplicitDeny,
            "{i}"
        );
        let g = group(wrong, &format!("g{i}"));
        assert_eq!(
            decide(&p, "iai:SearchFaces", &req(&g)),
            Decision::ImplicitDeny,
            "{i}"
        );
    }
    assert_eq!(
        decide(&p, "iai:GetGroupList", &req("*")),
        Decision::ImplicitDeny
    );
    let g = group("ap-guangzhou", "g20");
    assert_eq!(
        decide(&p, "iai:SearchFaces", &req(&g)),
        Decision::ImplicitDeny
    );
}

// --- conditions ---------------------------------------------------------------------------------

fn with_ip(ip: Option<IpAddr>) -> Request<'static> {
    Request { ip, ..req("*") }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

#[test]
fn ip_equal() {
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"ip_equal":{"qcs:ip":["10.0.0.0/8","192.168.1.7"]}}"#),
    ));
    let s = &p.statements()[0];
    assert!(s.applies(&with_ip(v4(10, 1, 2, 3))));
    assert!(s.applies(&with_ip(v4(192, 168, 1, 7))));
    assert!(!s.applies(&with_ip(v4(192, 168, 1, 8))));
    assert!(!s.applies(&with_ip(v4(11, 0, 0, 1))));
    assert!(!s.applies(&with_ip(None)));
    // IPv4-mapped IPv6 is compared as IPv4.
    let mapped = Ipv4Addr::new(10, 9, 8, 7).to_ipv6_mapped();
    assert!(s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
    let mapped = Ipv4Addr::new(11, 9, 8, 7).to_ipv6_mapped();
    assert!(!s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
}

#[test]
fn ip_equal_single_string_and_ipv6() {
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"ip_equal":{"qcs:ip":"2001:db8::/32"}}"#),
    ));
    let s = &p.statements()[0];
    let inside: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    let outside: Ipv6Addr = "2001:db9::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    assert!(s.applies(&with_ip(Some(IpAddr::V6(inside)))));
    assert!(!s.applies(&with_ip(Some(IpAddr::V6(outside)))));
    assert!(!s.applies(&with_ip(v4(32, 1, 13, 184))));

    // A mapped block in the policy also matches plain IPv4 requests.
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"ip_equal":{"qcs:ip":"::ffff:10.0.0.0/104"}}"#),
    ));
    assert!(p.statements()[0].applies(&with_ip(v4(10, 2, 3, 4))));
    assert!(!p.statements()[0].applies(&with_ip(v4(11, 2, 3, 4))));
}

#[test]
fn ip_not_equal() {
    let p = policy(&one(
        "deny",
        r#""*""#,
        r#""*""#,
        Some(r#"{"ip_not_equal":{"qcs:ip":["10.0.0.0/8","172.16.0.0/12"]}}"#),
    ));
    let s = &p.statements()[0];
    assert!(!s.applies(&with_ip(v4(10, 1, 2, 3))));
    assert!(!s.applies(&with_ip(v4(172, 20, 0, 1))));
    assert!(s.applies(&with_ip(v4(8, 8, 8, 8))));
    assert!(!s.applies(&with_ip(None)));
    let mapped = Ipv4Addr::new(10, 9, 8, 7).to_ipv6_mapped();
    assert!(!s.applies(&with_ip(Some(IpAddr::V6(mapped)))));
    assert_eq!(
        evaluate(p.statements(), &with_ip(v4(8, 8, 8, 8))),
        Decision::ExplicitDeny
    );
}

fn at(now: i64) -> Request<'static> {
    Request { now, ..req("*") }
}

#[test]
fn date_conditions() {
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"date_greater_than":{"qcs:current_time":"2026-01-01T00:00:00Z"}}"#),
    ));
    let s = &p.statements()[0];
    assert!(!s.applies(&at(NEW_YEAR_2026)));
    assert!(s.applies(&at(NEW_YEAR_2026 + 1)));
    assert!(!s.applies(&at(NEW_YEAR_2026 - 1)));

    // +08:00 is eight hours before the same wall time in UTC.
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(r#"{"date_less_than":{"qcs:current_time":"2026-01-01T08:00:00+08:00"}}"#),
    ));
    let s = &p.statements()[0];
    assert!(s.applies(&at(NEW_YEAR_2026 - 1)));
    assert!(!s.applies(&at(NEW_YEAR_2026)));

    // A window: both clauses must hold.
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(
            r#"{"date_greater_than":{"qcs:current_time":"2016-06-01T00:01:00Z"},"date_less_than":{"qcs:current_time":"2026-01-01T00:00:00+08:00"}}"#,
        ),
    ));
    let s = &p.statements()[0];
    assert!(s.applies(&at(1_464_739_261)));
    assert!(!s.applies(&at(1_464_739_260)));
    assert!(s.applies(&at(NEW_YEAR_2026 - 8 * 3600 - 1)));
    assert!(!s.applies(&at(NEW_YEAR_2026 - 8 * 3600)));
}

#[test]
fn date_negated_and_equal() {
    let cond = |op: &str, values: &str| {
        policy(&one(
            "allow",
            r#""*""#,
            r#""*""#,
            Some(&format!(r#"{{"{op}":{{"qcs:current_time":{values}}}}}"#)),
        ))
    };
    let t = r#""2026-01-01T00:00:00Z""#;
    let ngt = cond("date_not_greater_than", t);
    assert!(ngt.statements()[0].applies(&at(NEW_YEAR_2026)));
    assert!(!ngt.statements()[0].applies(&at(NEW_YEAR_2026 + 1)));
    let nlt = cond("date_not_less_than", t);
    assert!(nlt.statements()[0].applies(&at(NEW_YEAR_2026)));
    assert!(!nlt.statements()[0].applies(&at(NEW_YEAR_2026 - 1)));
    let eq = cond(
        "date_equal",
        r#"["2026-01-01T00:00:00Z","2026-01-01T00:00:10Z"]"#,
    );
    assert!(eq.statements()[0].applies(&at(NEW_YEAR_2026)));
    assert!(eq.statements()[0].applies(&at(NEW_YEAR_2026 + 10)));
    assert!(!eq.statements()[0].applies(&at(NEW_YEAR_2026 + 5)));
    let ne = cond(
        "date_not_equal",
        r#"["2026-01-01T00:00:00Z","2026-01-01T00:00:10Z"]"#,
    );
    assert!(!ne.statements()[0].applies(&at(NEW_YEAR_2026)));
    assert!(!ne.statements()[0].applies(&at(NEW_YEAR_2026 + 10)));
    assert!(ne.statements()[0].applies(&at(NEW_YEAR_2026 + 5)));
    // Offsets without a colon and fractional seconds are accepted too.
    let compact = cond("date_equal", r#""2026-01-01T08:00:00+0800""#);
    assert!(compact.statements()[0].applies(&at(NEW_YEAR_2026)));
    let fraction = cond("date_equal", r#""2026-01-01T00:00:00.250Z""#);
    assert!(fraction.statements()[0].applies(&at(NEW_YEAR_2026)));
}

#[test]
fn any_of_values() {
    // Any of the listed times satisfies a positive operator.
    let p = policy(&one(
        "allow",
        r#""*""#,
        r#""*""#,
        Some(
            r#"{"date_greater_than":{"qcs:current_time":["2030-01-01T00:00:00Z","2026-01-01T00:00:00Z"]}}"#,
        ),
    ));
    assert!(p.statements()[0].applies(&at(NEW_YEAR_2026 + 1)));
    assert!(!p.statements()[0].applies(&at(NEW_YEAR_2026)));
    // Any of the listed addresses; and all clauses must hold together.
    let p = policy(&one(
        "allow",
        r#""iai:*""#,
        r#""*""#,
        Some(
            r#"{"ip_equal":{"qcs:ip":["1.1.1.1","2.2.2.0/24"]},"date_less_than":{"qcs:current_time":"2026-01-01T00:00:00Z"}}"#,
        ),
    ));
    let request = |ip, now| Request {
        ip,
        now,
        ..req("*")
    };
    assert_eq!(
        decide(
            &p,
            "iai:DetectFace",
            &request(v4(2, 2, 2, 9), NEW_YEAR_2026 - 1)
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &p,
            "iai:DetectFace",
            &request(v4(1, 1, 1, 1), NEW_YEAR_2026 - 1)
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &p,
            "iai:DetectFace",
            &request(v4(2, 2, 2, 9), NEW_YEAR_2026)
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &p,
            "iai:DetectFace",
            &request(v4(3, 3, 3, 3), NEW_YEAR_2026 - 1)
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn conditions_combine_with_resources() {
    let p = policy(&one(
        "allow",
        r#""iai:SearchFaces""#,
        r#""qcs::iai::uin/:groupid/G*""#,
        Some(r#"{"ip_equal":{"qcs:ip":"10.0.0.0/8"}}"#),
    ));
    let g = group("ap-guangzhou", "G1");
    let h = group("ap-guangzhou", "H1");
    let request = |resource, ip| Request {
        ip,
        ..req(resource)
    };
    assert_eq!(
        decide(&p, "iai:SearchFaces", &request(&g, v4(10, 0, 0, 1))),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, "iai:SearchFaces", &request(&g, v4(11, 0, 0, 1))),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, "iai:SearchFaces", &request(&h, v4(10, 0, 0, 1))),
        Decision::ImplicitDeny
    );
}

#[test]
fn wildcards_stay_in_their_segment() {
    use Decision::{Allow, ImplicitDeny as Deny};
    let named = |region, id| {
        Resource::Named(ResourceName {
            service: "iai",
            region,
            account: OWNER,
            kind: "groupid",
            id,
        })
    };
    let gz = "ap-guangzhou";
    // What a region or id holds is only ever that segment: no text moves into the next one.
    let injected = "ap-guangzhou:uin/100000000001:groupid/test";
    let cases = [
        ("qcs::iai::uin/:groupid/test*", named(gz, "test1"), Allow),
        ("qcs::iai::uin/:groupid/test*", named(gz, "prod"), Deny),
        (
            "qcs::iai::uin/:groupid/test*",
            named(injected, "prod"),
            Deny,
        ),
        ("qcs::iai::uin/:groupid/test*", Resource::Interface, Deny),
        // `*` in the kind or the id does not reach across the `/`; a last segment with neither `/`
        // nor only `*` names nothing.
        ("qcs::iai::uin/:group*", named(gz, "x"), Deny),
        ("qcs::iai::uin/:*/x", named(gz, "x"), Allow),
        ("qcs::iai::uin/:*/x", named(gz, "xy"), Deny),
        // A region glob matches the region alone.
        ("qcs::iai:ap-*:uin/:groupid/*", named(gz, "g"), Allow),
        (
            "qcs::iai:ap-*:uin/:groupid/*",
            named("na-ashburn", "g"),
            Deny,
        ),
        // Accounts: `uin/<glob>` on the uin's digits, `*` any, anything else none.
        ("qcs::iai::uin/1000*:groupid/*", named(gz, "g"), Allow),
        ("qcs::iai::*:groupid/*", named(gz, "g"), Allow),
        ("qcs::iai::owner:groupid/*", named(gz, "g"), Deny),
    ];
    for (pattern, resource, expected) in cases {
        let p = policy(&one("allow", r#""iai:*""#, &format!("\"{pattern}\""), None));
        let request = Request {
            resource,
            ..req("*")
        };
        assert_eq!(
            p.evaluate("iai:GetGroupInfo", &request),
            expected,
            "{pattern} {resource:?}"
        );
    }
}

#[test]
fn policy_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Policy>();
    check::<Statement>();
}
