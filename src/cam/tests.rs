//! The CAM actions (`CamService`) against a real SQLite store in a temporary directory (in /dev/shm when
//! it can be written), one rule per test: users, access keys, policies and attachments with CAM's codes,
//! and the directory every call is authenticated and authorised with, which must follow each write.

use iai_policy::{Decision, Resource, ResourceName};
use tempfile::TempDir;

use super::CamService;
use super::directory::Question;
use super::presets::{self, FULL_ACCESS_ID, READ_ONLY_ID};
use crate::api::cam::Cam;
use crate::api::cam::types::*;
use crate::api::{ApiError, Principal, RequestContext, Service};
use crate::store::{Store, now_ms};
use crate::wire::access::KeyStore;

const OWNER: u64 = 100_000_000_001;
/// The main account's key from the configuration: listed by CAM, never changed through it.
const CONFIGURED: &str = "AKIDconfigured";

/// A service on its own store; the store's directory is removed after the service is dropped.
struct Fixture {
    cam: CamService,
    _dir: TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = CamService;

    fn deref(&self) -> &CamService {
        &self.cam
    }
}

async fn open() -> Fixture {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cam = CamService::open(store, OWNER, vec![CONFIGURED.into()])
        .await
        .unwrap();
    Fixture { cam, _dir: dir }
}

/// A call signed by the main account.
fn main_account() -> RequestContext {
    RequestContext::default()
}

/// A call signed by the sub-user `uin`.
fn sub_user(uin: u64) -> RequestContext {
    RequestContext {
        principal: Principal::User(uin),
        ..Default::default()
    }
}

/// The error's code as Tencent spells it (`code`); returns its message.
fn refused<T: std::fmt::Debug>(out: Result<T, ApiError>, code: &str) -> String {
    let e = out.unwrap_err();
    assert_eq!(e.code.as_str(), code, "{}", e.message);
    e.message
}

async fn add_user(cam: &CamService, name: &str, with_key: bool) -> AddUserResponse {
    let req = AddUserRequest {
        name: name.into(),
        use_api: Some(u64::from(with_key)),
        ..Default::default()
    };
    cam.add_user(&main_account(), req).await.unwrap()
}

async fn create_key(
    cam: &CamService,
    ctx: &RequestContext,
    target: Option<u64>,
) -> AccessKeyDetail {
    let req = CreateAccessKeyRequest {
        target_uin: target,
        description: None,
    };
    cam.create_access_key(ctx, req)
        .await
        .unwrap()
        .access_key
        .unwrap()
}

/// `(AccessKeyId, Status)` of the keys ListAccessKeys shows.
async fn listed_keys(
    cam: &CamService,
    ctx: &RequestContext,
    target: Option<u64>,
) -> Vec<(String, String)> {
    let req = ListAccessKeysRequest { target_uin: target };
    let listed = cam.list_access_keys(ctx, req).await.unwrap();
    let keys = listed.access_keys.unwrap();
    keys.into_iter()
        .map(|k| (k.access_key_id, k.status))
        .collect()
}

async fn set_key_status(
    cam: &CamService,
    secret_id: &str,
    status: &str,
    target: Option<u64>,
) -> Result<UpdateAccessKeyResponse, ApiError> {
    let req = UpdateAccessKeyRequest {
        access_key_id: secret_id.into(),
        status: status.into(),
        target_uin: target,
    };
    cam.update_access_key(&main_account(), req).await
}

/// What the wire's key store (`CamService` as `wire::access::KeyStore`) resolves a SecretId to now: its
/// principal and its SecretKey.
fn authenticate(cam: &CamService, secret_id: &str) -> Option<(Principal, String)> {
    KeyStore::key(cam, secret_id).map(|k| (k.principal, k.secret_key))
}

/// A policy document of one statement.
fn document(statement: serde_json::Value) -> String {
    serde_json::json!({"version": "2.0", "statement": [statement]}).to_string()
}

async fn create_policy(cam: &CamService, name: &str, document: &str) -> u64 {
    let req = CreatePolicyRequest {
        policy_name: name.into(),
        policy_document: document.into(),
        description: Some("for tests".into()),
        tags: None,
    };
    cam.create_policy(&main_account(), req)
        .await
        .unwrap()
        .policy_id
}

async fn try_create_policy(
    cam: &CamService,
    name: &str,
    document: &str,
) -> Result<CreatePolicyResponse, ApiError> {
    let req = CreatePolicyRequest {
        policy_name: name.into(),
        policy_document: document.into(),
        ..Default::default()
    };
    cam.create_policy(&main_account(), req).await
}

async fn attach(cam: &CamService, policy_id: u64, uin: u64) -> Result<(), ApiError> {
    let req = AttachUserPolicyRequest {
        policy_id,
        attach_uin: uin,
    };
    cam.attach_user_policy(&main_account(), req).await.map(drop)
}

/// `(PolicyId, PolicyName, PolicyType)` of the policies attached to `uin`.
async fn attached(cam: &CamService, uin: u64) -> Vec<(u64, String, String)> {
    let req = ListAttachedUserPoliciesRequest {
        target_uin: uin,
        ..Default::default()
    };
    let listed = cam
        .list_attached_user_policies(&main_account(), req)
        .await
        .unwrap();
    assert_eq!(listed.total_num as usize, listed.list.len());
    listed
        .list
        .into_iter()
        .map(|p| (p.policy_id, p.policy_name, p.policy_type))
        .collect()
}

async fn list_policies(cam: &CamService, scope: &str) -> ListPoliciesResponse {
    let req = ListPoliciesRequest {
        scope: Some(scope.into()),
        ..Default::default()
    };
    cam.list_policies(&main_account(), req).await.unwrap()
}

/// The directory's decision, as a call's authorisation asks it, for the sub-user `uin` calling the IAI
/// `action` on the group `group`.
fn decide_on_group(cam: &CamService, uin: u64, action: &str, group: &str) -> Decision {
    let resource = Resource::Named(ResourceName {
        service: "iai",
        region: "ap-guangzhou",
        account: OWNER,
        kind: "groupid",
        id: group,
    });
    decide(cam, Principal::User(uin), Service::Iai, action, resource)
}

fn decide(
    cam: &CamService,
    principal: Principal,
    service: Service,
    action: &str,
    resource: Resource,
) -> Decision {
    let question = Question {
        service,
        action,
        resource,
        ip: None,
        now: now_ms(),
    };
    cam.directory().load().decide(principal, &question)
}

// ---------------------------------------------------------------------------------------------------
// Users

#[tokio::test]
async fn a_sub_user_is_created_then_read_back_by_get_user_and_list_users() {
    let cam = open().await;
    let req = AddUserRequest {
        name: "alice".into(),
        remark: Some("the first".into()),
        console_login: Some(1),
        ..Default::default()
    };
    let added = cam.add_user(&main_account(), req).await.unwrap();
    assert_eq!(added.name, "alice");
    assert_ne!(added.uin, OWNER);
    // Console sign-in without a password: one is generated and reported; no API key without UseApi.
    assert_eq!(added.password.len(), 36);
    assert!(added.password.ends_with("Aa1!"), "{}", added.password);
    assert_eq!(
        (added.secret_id.as_str(), added.secret_key.as_str()),
        ("", "")
    );

    let got = cam
        .get_user(
            &main_account(),
            GetUserRequest {
                name: "alice".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (got.uin, got.uid, got.name.as_str(), got.console_login),
        (added.uin, added.uid, "alice", 1)
    );
    assert_eq!(got.remark.as_deref(), Some("the first"));

    let bob = add_user(&cam, "bob", false).await;
    let listed = cam
        .list_users(&main_account(), ListUsersRequest {})
        .await
        .unwrap();
    let mut users: Vec<(u64, String, String)> = listed
        .data
        .into_iter()
        .map(|u| (u.uin, u.name, u.remark))
        .collect();
    users.sort();
    let mut expected = vec![
        (added.uin, "alice".to_owned(), "the first".to_owned()),
        (bob.uin, "bob".to_owned(), String::new()),
    ];
    expected.sort();
    assert_eq!(users, expected);
    assert_eq!(cam.directory().load().user_uin("bob"), Some(bob.uin));
}

#[tokio::test]
async fn a_taken_user_name_is_refused_with_sub_user_name_in_use() {
    let cam = open().await;
    let first = add_user(&cam, "alice", false).await;
    let again = AddUserRequest {
        name: "alice".into(),
        ..Default::default()
    };
    let message = refused(
        cam.add_user(&main_account(), again).await,
        "InvalidParameter.SubUserNameInUse",
    );
    assert_eq!(message, "A sub-user named `alice` already exists.");
    let listed = cam
        .list_users(&main_account(), ListUsersRequest {})
        .await
        .unwrap();
    let uins: Vec<u64> = listed.data.iter().map(|u| u.uin).collect();
    assert_eq!(uins, [first.uin]);
}

#[tokio::test]
async fn an_illegal_user_name_is_refused_with_user_name_illegal() {
    let cam = open().await;
    let too_long = "x".repeat(65);
    for name in ["bad name!", "", too_long.as_str()] {
        let req = AddUserRequest {
            name: name.into(),
            ..Default::default()
        };
        refused(
            cam.add_user(&main_account(), req).await,
            "InvalidParameter.UserNameIllegal",
        );
    }
    let listed = cam
        .list_users(&main_account(), ListUsersRequest {})
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 0);
}

#[tokio::test]
async fn a_deleted_user_is_gone_from_get_user_and_the_directory() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let delete = || DeleteUserRequest {
        name: "alice".into(),
        force: None,
    };
    cam.delete_user(&main_account(), delete()).await.unwrap();
    let message = refused(
        cam.get_user(
            &main_account(),
            GetUserRequest {
                name: "alice".into(),
            },
        )
        .await,
        "ResourceNotFound.UserNotExist",
    );
    assert_eq!(message, "The sub-user `alice` does not exist.");
    assert_eq!(cam.directory().load().user_name(alice.uin), None);
    refused(
        cam.delete_user(&main_account(), delete()).await,
        "ResourceNotFound.UserNotExist",
    );
}

#[tokio::test]
async fn a_user_holding_keys_is_deleted_only_by_force_and_its_keys_go_with_it() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", true).await;
    assert_eq!(
        authenticate(&cam, &alice.secret_id).map(|(p, _)| p),
        Some(Principal::User(alice.uin))
    );
    let delete = |force| DeleteUserRequest {
        name: "alice".into(),
        force,
    };
    refused(
        cam.delete_user(&main_account(), delete(None)).await,
        "OperationDenied.HaveKeys",
    );
    assert!(authenticate(&cam, &alice.secret_id).is_some());
    cam.delete_user(&main_account(), delete(Some(1)))
        .await
        .unwrap();
    assert_eq!(authenticate(&cam, &alice.secret_id), None);
    assert_eq!(cam.directory().load().user_uin("alice"), None);
}

// ---------------------------------------------------------------------------------------------------
// Access keys

#[tokio::test]
async fn a_user_has_at_most_two_access_keys_and_the_third_is_refused() {
    let cam = open().await;
    // AddUser with UseApi made the first.
    let alice = add_user(&cam, "alice", true).await;
    let second = create_key(&cam, &main_account(), Some(alice.uin)).await;
    assert_eq!(second.status, "Active");
    assert_eq!(second.secret_access_key.len(), 32);
    assert!(second.access_key_id.starts_with("AKID"));
    let third = CreateAccessKeyRequest {
        target_uin: Some(alice.uin),
        description: None,
    };
    let message = refused(
        cam.create_access_key(&main_account(), third).await,
        "OperationDenied.AccessKeyOverLimit",
    );
    assert_eq!(message, "Each account has at most 2 access keys.");
    let mut listed = listed_keys(&cam, &main_account(), Some(alice.uin)).await;
    listed.sort();
    let mut expected = vec![
        (alice.secret_id.clone(), "Active".to_owned()),
        (second.access_key_id, "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn a_new_key_authenticates_on_the_very_next_call() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let key = create_key(&cam, &main_account(), Some(alice.uin)).await;
    assert_eq!(
        authenticate(&cam, &key.access_key_id),
        Some((Principal::User(alice.uin), key.secret_access_key))
    );
}

#[tokio::test]
async fn a_deactivated_key_stops_authenticating_and_a_reactivated_one_resumes() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", true).await;
    let id = alice.secret_id.as_str();
    set_key_status(&cam, id, "Inactive", Some(alice.uin))
        .await
        .unwrap();
    assert_eq!(authenticate(&cam, id), None);
    assert_eq!(
        listed_keys(&cam, &main_account(), Some(alice.uin)).await,
        [(id.to_owned(), "Inactive".to_owned())]
    );
    set_key_status(&cam, id, "Active", Some(alice.uin))
        .await
        .unwrap();
    assert_eq!(
        authenticate(&cam, id),
        Some((Principal::User(alice.uin), alice.secret_key.clone()))
    );
    assert_eq!(
        listed_keys(&cam, &main_account(), Some(alice.uin)).await,
        [(id.to_owned(), "Active".to_owned())]
    );
    refused(
        set_key_status(&cam, id, "Disabled", Some(alice.uin)).await,
        "InvalidParameter.ParamError",
    );
}

#[tokio::test]
async fn a_deleted_key_stops_authenticating_and_is_no_longer_listed() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", true).await;
    let delete = || DeleteAccessKeyRequest {
        access_key_id: alice.secret_id.clone(),
        target_uin: Some(alice.uin),
    };
    cam.delete_access_key(&main_account(), delete())
        .await
        .unwrap();
    assert_eq!(authenticate(&cam, &alice.secret_id), None);
    let listed = listed_keys(&cam, &main_account(), Some(alice.uin)).await;
    assert!(listed.is_empty(), "{listed:?}");
    refused(
        cam.delete_access_key(&main_account(), delete()).await,
        "ResourceNotFound.SecretNotExist",
    );
}

#[tokio::test]
async fn the_configured_key_is_listed_counts_against_the_limit_and_cannot_be_changed() {
    let cam = open().await;
    let mine = create_key(&cam, &main_account(), None).await;
    // The main account's own keys authenticate as the main account.
    assert_eq!(
        authenticate(&cam, &mine.access_key_id).map(|(p, _)| p),
        Some(Principal::Main)
    );
    let ids: Vec<String> = listed_keys(&cam, &main_account(), None)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, [CONFIGURED.to_owned(), mine.access_key_id]);
    refused(
        cam.create_access_key(&main_account(), CreateAccessKeyRequest::default())
            .await,
        "OperationDenied.AccessKeyOverLimit",
    );
    refused(
        set_key_status(&cam, CONFIGURED, "Inactive", None).await,
        "FailedOperation.Unmodifiable",
    );
    let delete = DeleteAccessKeyRequest {
        access_key_id: CONFIGURED.into(),
        target_uin: None,
    };
    refused(
        cam.delete_access_key(&main_account(), delete).await,
        "FailedOperation.Unmodifiable",
    );
}

// ---------------------------------------------------------------------------------------------------
// Policies and attachments

#[tokio::test]
async fn a_valid_policy_is_created_and_read_back_as_a_custom_policy() {
    let cam = open().await;
    let doc = document(serde_json::json!({
        "effect": "allow", "action": ["name/iai:Get*"], "resource": "*"
    }));
    let id = create_policy(&cam, "readers", &doc).await;
    assert!(
        presets::by_id(id).is_none(),
        "custom ids are not the presets'"
    );
    let got = cam
        .get_policy(&main_account(), GetPolicyRequest { policy_id: id })
        .await
        .unwrap();
    assert_eq!(
        (
            got.policy_name.as_str(),
            got.r#type,
            got.description.as_str()
        ),
        ("readers", 1, "for tests")
    );
    assert_eq!(got.policy_document, doc);
    let local = list_policies(&cam, "Local").await;
    assert_eq!(local.total_num, 1);
    assert_eq!(
        (local.list[0].policy_id, local.list[0].policy_name.as_str()),
        (id, "readers")
    );
    assert_eq!(local.list[0].attachments, 0);
}

#[tokio::test]
async fn malformed_policy_documents_are_refused_with_cams_codes_and_not_stored() {
    let cam = open().await;
    let ip_like = serde_json::json!({"ip_like": {"qcs:ip": "10.0.0.1"}});
    let bad_cidr = serde_json::json!({"ip_equal": {"qcs:ip": "10.0.0.300/8"}});
    let cases = [
        (
            "not json".to_owned(),
            "InvalidParameter.PolicyDocumentError",
        ),
        (
            serde_json::json!({"version": "1.0", "statement": [
                {"effect": "allow", "action": "*", "resource": "*"}
            ]})
            .to_string(),
            "InvalidParameter.VersionError",
        ),
        (
            serde_json::json!({"version": "2.0", "statement": []}).to_string(),
            "InvalidParameter.StatementError",
        ),
        (
            document(serde_json::json!({"effect": "permit", "action": "*", "resource": "*"})),
            "InvalidParameter.EffectError",
        ),
        (
            document(serde_json::json!({"effect": "allow", "action": "", "resource": "*"})),
            "InvalidParameter.ActionError",
        ),
        (
            document(
                serde_json::json!({"effect": "allow", "action": "iai:SerchFaces", "resource": "*"}),
            ),
            "InvalidParameter.ActionNotExist",
        ),
        (
            document(
                serde_json::json!({"effect": "allow", "action": "iai:*", "resource": "cos::x"}),
            ),
            "InvalidParameter.ResourceError",
        ),
        (
            document(serde_json::json!({
                "effect": "allow", "action": "iai:*", "resource": "*", "condition": ip_like
            })),
            "InvalidParameter.ConditionTypeError",
        ),
        (
            document(serde_json::json!({
                "effect": "allow", "action": "iai:*", "resource": "*", "condition": bad_cidr
            })),
            "InvalidParameter.ConditionContentError",
        ),
    ];
    for (i, (doc, code)) in cases.iter().enumerate() {
        let out = try_create_policy(&cam, &format!("bad{i}"), doc).await;
        let e = out.unwrap_err();
        assert_eq!(e.code.as_str(), *code, "{doc}: {}", e.message);
    }
    assert_eq!(list_policies(&cam, "Local").await.total_num, 0);
}

#[tokio::test]
async fn a_taken_policy_name_is_refused_with_policy_name_in_use_presets_included() {
    let cam = open().await;
    let doc = document(serde_json::json!({
        "effect": "allow", "action": "iai:GetGroupList", "resource": "*"
    }));
    let id = create_policy(&cam, "listers", &doc).await;
    let message = refused(
        try_create_policy(&cam, "listers", &doc).await,
        "FailedOperation.PolicyNameInUse",
    );
    assert_eq!(message, "A policy named `listers` already exists.");
    refused(
        try_create_policy(&cam, "QcloudFRFullAccess", &doc).await,
        "FailedOperation.PolicyNameInUse",
    );
    let local = list_policies(&cam, "Local").await;
    let ids: Vec<u64> = local.list.iter().map(|p| p.policy_id).collect();
    assert_eq!(ids, [id]);
}

#[tokio::test]
async fn a_policy_is_attached_listed_with_its_count_and_detached() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let doc = document(serde_json::json!({
        "effect": "allow", "action": "iai:GetGroupList", "resource": "*"
    }));
    let id = create_policy(&cam, "listers", &doc).await;
    attach(&cam, id, alice.uin).await.unwrap();
    // Attaching again changes nothing.
    attach(&cam, id, alice.uin).await.unwrap();
    assert_eq!(
        attached(&cam, alice.uin).await,
        [(id, "listers".to_owned(), "User".to_owned())]
    );
    assert_eq!(list_policies(&cam, "Local").await.list[0].attachments, 1);

    let detach = DetachUserPolicyRequest {
        policy_id: id,
        detach_uin: alice.uin,
    };
    cam.detach_user_policy(&main_account(), detach)
        .await
        .unwrap();
    let left = attached(&cam, alice.uin).await;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(list_policies(&cam, "Local").await.list[0].attachments, 0);
}

#[tokio::test]
async fn attaching_to_an_unknown_user_or_an_unknown_policy_is_refused() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let message = refused(
        attach(&cam, 999_999_999, alice.uin).await,
        "ResourceNotFound.PolicyIdNotFound",
    );
    assert_eq!(message, "The policy 999999999 does not exist.");
    refused(
        attach(&cam, FULL_ACCESS_ID, 1).await,
        "ResourceNotFound.UserNotExist",
    );
    let left = attached(&cam, alice.uin).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn deleting_an_attached_policy_detaches_it_and_withdraws_its_grant() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let doc = document(serde_json::json!({
        "effect": "allow", "action": "iai:GetGroupInfo", "resource": "*"
    }));
    let id = create_policy(&cam, "readers", &doc).await;
    attach(&cam, id, alice.uin).await.unwrap();
    assert_eq!(
        decide_on_group(&cam, alice.uin, "GetGroupInfo", "team"),
        Decision::Allow
    );

    let delete = || DeletePolicyRequest {
        policy_id: vec![id],
    };
    cam.delete_policy(&main_account(), delete()).await.unwrap();
    let left = attached(&cam, alice.uin).await;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        decide_on_group(&cam, alice.uin, "GetGroupInfo", "team"),
        Decision::ImplicitDeny
    );
    refused(
        cam.get_policy(&main_account(), GetPolicyRequest { policy_id: id })
            .await,
        "ResourceNotFound.PolicyIdNotFound",
    );
    refused(
        cam.delete_policy(&main_account(), delete()).await,
        "ResourceNotFound.PolicyIdNotFound",
    );
}

#[tokio::test]
async fn the_presets_are_listed_and_can_be_neither_deleted_nor_changed() {
    let cam = open().await;
    let qcs = list_policies(&cam, "QCS").await;
    let listed: Vec<(u64, &str, u64)> = qcs
        .list
        .iter()
        .map(|p| (p.policy_id, p.policy_name.as_str(), p.r#type))
        .collect();
    assert_eq!(
        listed,
        [
            (FULL_ACCESS_ID, "QcloudFRFullAccess", 2),
            (READ_ONLY_ID, "QcloudFRReadOnlyAccess", 2)
        ]
    );
    let got = cam
        .get_policy(
            &main_account(),
            GetPolicyRequest {
                policy_id: READ_ONLY_ID,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (got.policy_name.as_str(), got.r#type),
        ("QcloudFRReadOnlyAccess", 2)
    );

    for id in [FULL_ACCESS_ID, READ_ONLY_ID] {
        let delete = DeletePolicyRequest {
            policy_id: vec![id],
        };
        let message = refused(
            cam.delete_policy(&main_account(), delete).await,
            "FailedOperation.Unmodifiable",
        );
        assert_eq!(message, "A preset policy cannot be changed.");
    }
    let update = UpdatePolicyRequest {
        policy_name: Some("QcloudFRFullAccess".into()),
        description: Some("mine now".into()),
        ..Default::default()
    };
    refused(
        cam.update_policy(&main_account(), update).await,
        "FailedOperation.Unmodifiable",
    );
    assert_eq!(list_policies(&cam, "QCS").await.total_num, 2);
}

#[tokio::test]
async fn a_preset_attaches_like_any_policy_and_grants_what_its_name_says() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    attach(&cam, READ_ONLY_ID, alice.uin).await.unwrap();
    assert_eq!(
        attached(&cam, alice.uin).await,
        [(
            READ_ONLY_ID,
            "QcloudFRReadOnlyAccess".to_owned(),
            "QCS".to_owned()
        )]
    );
    assert_eq!(
        decide_on_group(&cam, alice.uin, "GetPersonListNum", "team"),
        Decision::Allow
    );
    assert_eq!(
        decide_on_group(&cam, alice.uin, "CreatePerson", "team"),
        Decision::ImplicitDeny
    );
}

// ---------------------------------------------------------------------------------------------------
// Authorisation through the directory

#[tokio::test]
async fn a_policy_on_one_action_and_one_group_allows_that_and_nothing_else() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let doc = document(serde_json::json!({
        "effect": "allow",
        "action": "iai:SearchFaces",
        "resource": "qcs::iai::uin/:groupid/team-a",
    }));
    let id = create_policy(&cam, "search-team-a", &doc).await;
    // Nothing attached yet: a sub-user may do nothing; the main account everything.
    assert_eq!(
        decide_on_group(&cam, alice.uin, "SearchFaces", "team-a"),
        Decision::ImplicitDeny
    );
    attach(&cam, id, alice.uin).await.unwrap();
    assert_eq!(
        decide_on_group(&cam, alice.uin, "SearchFaces", "team-a"),
        Decision::Allow
    );
    assert_eq!(
        decide_on_group(&cam, alice.uin, "SearchFaces", "team-b"),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_on_group(&cam, alice.uin, "DeletePerson", "team-a"),
        Decision::ImplicitDeny
    );
    let everything = Resource::Interface;
    let main = decide(
        &cam,
        Principal::Main,
        Service::Iai,
        "DeleteGroup",
        everything,
    );
    assert_eq!(main, Decision::Allow);
}

#[tokio::test]
async fn an_explicit_deny_in_another_policy_wins_over_an_allow() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let deny = document(serde_json::json!({
        "effect": "deny", "action": "iai:SearchFaces", "resource": "qcs::iai::uin/:groupid/secret*"
    }));
    let id = create_policy(&cam, "no-secrets", &deny).await;
    attach(&cam, FULL_ACCESS_ID, alice.uin).await.unwrap();
    attach(&cam, id, alice.uin).await.unwrap();
    assert_eq!(
        decide_on_group(&cam, alice.uin, "SearchFaces", "secret-1"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_on_group(&cam, alice.uin, "SearchFaces", "public"),
        Decision::Allow
    );
}

// ---------------------------------------------------------------------------------------------------
// Whose keys a call acts on (`TargetUin`)

#[tokio::test]
async fn the_main_account_acts_on_the_sub_user_its_target_uin_names() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let key = create_key(&cam, &main_account(), Some(alice.uin)).await;
    assert_eq!(
        authenticate(&cam, &key.access_key_id).map(|(p, _)| p),
        Some(Principal::User(alice.uin))
    );
    let alices = listed_keys(&cam, &main_account(), Some(alice.uin)).await;
    assert_eq!(alices, [(key.access_key_id.clone(), "Active".to_owned())]);
    // Without TargetUin the main account lists its own: the configured key only.
    let own = listed_keys(&cam, &main_account(), None).await;
    assert_eq!(own, [(CONFIGURED.to_owned(), "Active".to_owned())]);
    let unknown = ListAccessKeysRequest {
        target_uin: Some(42),
    };
    refused(
        cam.list_access_keys(&main_account(), unknown).await,
        "ResourceNotFound.UserNotExist",
    );
}

#[tokio::test]
async fn a_key_is_changed_only_under_the_uin_that_holds_it() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", true).await;
    let bob = add_user(&cam, "bob", false).await;
    let message = refused(
        set_key_status(&cam, &alice.secret_id, "Inactive", Some(bob.uin)).await,
        "OperationDenied.UinNotMatch",
    );
    assert!(
        message.ends_with(&format!("does not belong to account {}.", bob.uin)),
        "{message}"
    );
    // Bob, signing himself, cannot reach Alice's key either: without TargetUin he acts on his own.
    let delete = DeleteAccessKeyRequest {
        access_key_id: alice.secret_id.clone(),
        target_uin: None,
    };
    refused(
        cam.delete_access_key(&sub_user(bob.uin), delete).await,
        "OperationDenied.UinNotMatch",
    );
    assert!(authenticate(&cam, &alice.secret_id).is_some());
}

#[tokio::test]
async fn a_sub_user_acts_on_its_own_keys_and_never_on_the_main_accounts() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let me = sub_user(alice.uin);
    let key = create_key(&cam, &me, None).await;
    assert_eq!(
        authenticate(&cam, &key.access_key_id).map(|(p, _)| p),
        Some(Principal::User(alice.uin))
    );
    let mine = listed_keys(&cam, &me, None).await;
    assert_eq!(mine, [(key.access_key_id, "Active".to_owned())]);

    let main = Some(OWNER);
    let create = CreateAccessKeyRequest {
        target_uin: main,
        description: None,
    };
    let message = refused(
        cam.create_access_key(&me, create).await,
        "OperationDenied.SubUin",
    );
    assert_eq!(
        message,
        "A sub-user may not operate the main account's keys."
    );
    let list = ListAccessKeysRequest { target_uin: main };
    refused(
        cam.list_access_keys(&me, list).await,
        "OperationDenied.SubUin",
    );
    let update = UpdateAccessKeyRequest {
        access_key_id: CONFIGURED.into(),
        status: "Inactive".into(),
        target_uin: main,
    };
    refused(
        cam.update_access_key(&me, update).await,
        "OperationDenied.SubUin",
    );
    let delete = DeleteAccessKeyRequest {
        access_key_id: CONFIGURED.into(),
        target_uin: main,
    };
    refused(
        cam.delete_access_key(&me, delete).await,
        "OperationDenied.SubUin",
    );
}

/// The actions refuse a sub-user only the main account's keys; another sub-user's are a matter of policy,
/// which the directory decides on the resource `qcs::cam::uin/:uin/<uin>`, as a call's authorisation asks.
#[tokio::test]
async fn a_sub_user_reaches_another_sub_users_keys_only_as_its_policy_allows() {
    let cam = open().await;
    let alice = add_user(&cam, "alice", false).await;
    let bob = add_user(&cam, "bob", false).await;
    let carol = add_user(&cam, "carol", false).await;
    let doc = document(serde_json::json!({
        "effect": "allow",
        "action": "cam:CreateAccessKey",
        "resource": format!("qcs::cam::uin/:uin/{}", bob.uin),
    }));
    let id = create_policy(&cam, "keys-for-bob", &doc).await;
    attach(&cam, id, alice.uin).await.unwrap();
    let on_user = |uin: &str| {
        let user = Resource::Named(ResourceName {
            service: "cam",
            region: "",
            account: OWNER,
            kind: "uin",
            id: uin,
        });
        decide(
            &cam,
            Principal::User(alice.uin),
            Service::Cam,
            "CreateAccessKey",
            user,
        )
    };
    assert_eq!(on_user(&bob.uin.to_string()), Decision::Allow);
    assert_eq!(on_user(&carol.uin.to_string()), Decision::ImplicitDeny);
    assert_eq!(on_user(&OWNER.to_string()), Decision::ImplicitDeny);

    let key = create_key(&cam, &sub_user(alice.uin), Some(bob.uin)).await;
    assert_eq!(
        authenticate(&cam, &key.access_key_id).map(|(p, _)| p),
        Some(Principal::User(bob.uin))
    );
}
