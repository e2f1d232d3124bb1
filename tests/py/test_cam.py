"""Sub-accounts through Tencent's own CAM clients (tencentcloud-sdk-python-cam and tccli) against the live
server, and the IAI SDK with the sub-users' keys allowed and refused exactly as their policies say
(CONTROL.md §C): action and group wildcards, deny over allow, multi-group searches, GetGroupList filtering,
ip and date conditions, presets, key states, and policy changes applied to the very next call."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from tencentcloud.cam.v20190116 import cam_client
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from tencentcloud.iai.v20180301 import models as iai_models

from conftest import SECRET_ID, SECRET_KEY, common_client, make_client, running_server
from test_faces import EDGE, b64

OWNER_UIN = 100000000001
ONE_FACE = EDGE / "formats" / "syn_face.png"
TCCLI = str(pathlib.Path(sys.executable).with_name("tccli"))
UNAUTHORIZED = "AuthFailure.UnauthorizedOperation"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("cam")) as server:
        yield server


def cam_client_for(server, secret_id=SECRET_ID, secret_key=SECRET_KEY):
    cred = credential.Credential(secret_id, secret_key)
    http = HttpProfile(endpoint=server.endpoint, protocol="http")
    return cam_client.CamClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))


def cam(client, action, **params):
    """A typed CAM call: the SDK's request model, method and response model."""
    req = getattr(cam_models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return json.loads(getattr(client, action)(req).to_json_string())


_clients = {}


def iai(server, key, action, version="2018-03-01", **params):
    """A call through one SDK client per server, key and version, kept as an application keeps its client:
    its connection stays open, so calls that share a body within one second (the SDK signs the body and a
    timestamp in seconds, not the action) are its own and not a replay (README, Security)."""
    client = _clients.get((server.endpoint, key, version))
    if client is None:
        client = _clients[(server.endpoint, key, version)] = common_client(
            server, version, secret_id=key[0], secret_key=key[1])
    return client.call_json(action, params)["Response"]


def code_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except TencentCloudSDKException as e:
        return e.code
    return "OK"


def refusal(fn, *args, **kw):
    with pytest.raises(TencentCloudSDKException) as caught:
        fn(*args, **kw)
    assert caught.value.code == UNAUTHORIZED, caught.value
    return caught.value.message


def policy(*statements):
    return json.dumps({"version": "2.0", "statement": list(statements)})


class Team:
    """The main account's CAM client and helpers to make sub-users with policies."""

    def __init__(self, server, unique):
        self.server = server
        self.unique = unique
        self.main = cam_client_for(server)

    def user(self, *documents, presets=()):
        """A sub-user with an API key and `documents` as attached custom policies; (uin, (id, key), names)."""
        added = cam(self.main, "AddUser", Name=self.unique("u").replace("-", "_"), UseApi=1)
        ids = []
        for doc in documents:
            ids.append(cam(self.main, "CreatePolicy", PolicyName=self.unique("p"), PolicyDocument=doc)["PolicyId"])
        for name in presets:
            listed = cam(self.main, "ListPolicies", Scope="QCS", Keyword=name)["List"]
            ids.append(next(p["PolicyId"] for p in listed if p["PolicyName"] == name))
        for pid in ids:
            cam(self.main, "AttachUserPolicy", PolicyId=pid, AttachUin=added["Uin"])
        return added["Uin"], (added["SecretId"], added["SecretKey"]), ids

    def groups(self, *names):
        for name in names:
            iai(self.server, (SECRET_ID, SECRET_KEY), "CreateGroup", GroupId=name, GroupName=name)
        return names


@pytest.fixture
def team(srv, unique):
    return Team(srv, unique)


def test_users_keys_and_policies_through_the_python_sdk(team, srv):
    main = team.main
    uin, key, _ = team.user()
    name = cam(main, "ListUsers")["Data"]
    user = next(u for u in name if u["Uin"] == uin)
    got = cam(main, "GetUser", Name=user["Name"])
    assert (got["Uin"], got["Name"], got["ConsoleLogin"]) == (uin, user["Name"], 0)
    assert code_of(cam, main, "GetUser", Name="nobody") == "ResourceNotFound.UserNotExist"
    assert code_of(cam, main, "AddUser", Name=user["Name"]) == "InvalidParameter.SubUserNameInUse"
    assert code_of(cam, main, "AddUser", Name="bad name!") == "InvalidParameter.UserNameIllegal"
    # The secret is shown once: at creation, never in a listing.
    second = cam(main, "CreateAccessKey", TargetUin=uin, Description="second")["AccessKey"]
    assert second["Status"] == "Active" and len(second["SecretAccessKey"]) == 32
    listed = cam(main, "ListAccessKeys", TargetUin=uin)["AccessKeys"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted([key[0], second["AccessKeyId"]])
    assert all("SecretAccessKey" not in k for k in listed)
    assert code_of(cam, main, "CreateAccessKey", TargetUin=uin) == "OperationDenied.AccessKeyOverLimit"
    # The configuration's keys are the main account's: listed, never changed through CAM.
    mine = cam(main, "ListAccessKeys")["AccessKeys"]
    assert SECRET_ID in [k["AccessKeyId"] for k in mine]
    assert code_of(cam, main, "UpdateAccessKey", AccessKeyId=SECRET_ID, Status="Inactive") == \
        "FailedOperation.Unmodifiable"
    # A user with keys is deleted only by force.
    assert code_of(cam, main, "DeleteUser", Name=user["Name"]) == "OperationDenied.HaveKeys"
    cam(main, "DeleteUser", Name=user["Name"], Force=1)
    assert code_of(iai, srv, key, "GetGroupList") == "AuthFailure.SecretIdNotFound"
    assert code_of(cam, main, "GetUser", Name=user["Name"]) == "ResourceNotFound.UserNotExist"


def test_policies_crud_and_malformed_documents_refused_at_creation(team):
    main = team.main
    name = team.unique("pol")
    doc = policy({"effect": "allow", "action": ["name/iai:Get*"], "resource": "*"})
    pid = cam(main, "CreatePolicy", PolicyName=name, PolicyDocument=doc, Description="readers")["PolicyId"]
    got = cam(main, "GetPolicy", PolicyId=pid)
    assert (got["PolicyName"], got["Type"], got["Description"]) == (name, 1, "readers")
    assert json.loads(got["PolicyDocument"]) == json.loads(doc)
    assert code_of(cam, main, "CreatePolicy", PolicyName=name, PolicyDocument=doc) == "FailedOperation.PolicyNameInUse"
    local = cam(main, "ListPolicies", Scope="Local", Keyword=name)
    assert local["TotalNum"] == 1 and local["List"][0]["PolicyId"] == pid
    presets = {p["PolicyName"]: p for p in cam(main, "ListPolicies", Scope="QCS")["List"]}
    assert set(presets) == {"QcloudFRFullAccess", "QcloudFRReadOnlyAccess"}
    assert all(p["Type"] == 2 for p in presets.values())
    assert code_of(cam, main, "DeletePolicy", PolicyId=[presets["QcloudFRFullAccess"]["PolicyId"]]) == \
        "FailedOperation.Unmodifiable"

    bad = {
        "not json": "InvalidParameter.PolicyDocumentError",
        json.dumps({"version": "1.0", "statement": [{"effect": "allow", "action": "*", "resource": "*"}]}):
            "InvalidParameter.VersionError",
        json.dumps({"version": "2.0", "statement": []}): "InvalidParameter.StatementError",
        policy({"effect": "permit", "action": "*", "resource": "*"}): "InvalidParameter.EffectError",
        policy({"effect": "allow", "action": "iai:SerchFaces", "resource": "*"}): "InvalidParameter.ActionNotExist",
        policy({"effect": "allow", "action": "", "resource": "*"}): "InvalidParameter.ActionError",
        policy({"effect": "allow", "action": "iai:*", "resource": "cos::x"}): "InvalidParameter.ResourceError",
        policy({"effect": "allow", "action": "iai:*", "resource": "*",
                "condition": {"ip_like": {"qcs:ip": "10.0.0.1"}}}): "InvalidParameter.ConditionTypeError",
        policy({"effect": "allow", "action": "iai:*", "resource": "*",
                "condition": {"ip_equal": {"qcs:ip": "10.0.0.300/8"}}}): "InvalidParameter.ConditionContentError",
        policy({"effect": "allow", "action": "iai:*", "resource": "*",
                "condition": {"date_less_than": {"qcs:current_time": "tomorrow"}}}):
            "InvalidParameter.ConditionContentError",
    }
    for document, code in bad.items():
        assert code_of(cam, main, "CreatePolicy", PolicyName=team.unique("bad"), PolicyDocument=document) == code, \
            document
        assert code_of(cam, main, "UpdatePolicy", PolicyId=pid, PolicyDocument=document) == code, document
    # Nothing malformed was stored: the policy is as it was.
    assert json.loads(cam(main, "GetPolicy", PolicyId=pid)["PolicyDocument"]) == json.loads(doc)
    cam(main, "DeletePolicy", PolicyId=[pid])
    assert code_of(cam, main, "GetPolicy", PolicyId=pid) == "ResourceNotFound.PolicyIdNotFound"


def test_interface_grant_with_an_action_wildcard(team, srv):
    """Tencent's example: `name/iai:Analyze*` grants the two landmark interfaces and nothing else."""
    _, key, _ = team.user(policy({"effect": "allow", "action": ["name/iai:Analyze*"], "resource": "*"}))
    face = b64(ONE_FACE)
    assert iai(srv, key, "AnalyzeFace", Image=face)["FaceShapeSet"]
    assert iai(srv, key, "AnalyzeDenseLandmarks", Image=face, version="2020-03-03")["DenseFaceShapeSet"]
    message = refusal(iai, srv, key, "DetectFace", Image=face)
    assert "you are not authorized to perform operation (iai:DetectFace)" in message
    assert "resource (*) has no permission" in message and "[[request id:" in message
    refusal(iai, srv, key, "GetGroupList")


def test_group_wildcard_grant_with_its_interface_level_companion(team, srv, unique):
    """Tencent's resource-level example: `groupid/test*` for the group-scoped actions, and a second statement
    with resource `*` for the interface-level ones (a specific resource never grants those)."""
    tag = unique("").strip("-")
    test1, test2, prod = team.groups(f"test{tag}a", f"test{tag}b", f"prod{tag}")
    group_actions = ["name/iai:GetGroupInfo", "name/iai:GetGroupList", "name/iai:GetPersonList",
                     "name/iai:CreatePerson", "name/iai:SearchFaces", "name/iai:DeleteGroup"]
    scoped = {"effect": "allow", "action": group_actions, "resource": [f"qcs::iai::uin/{OWNER_UIN}:groupid/test*"]}
    _, only_groups, _ = team.user(policy(scoped, {"effect": "allow", "action": ["name/iai:CreateGroup"],
                                                  "resource": [f"qcs::iai::uin/{OWNER_UIN}:groupid/test*"]}))
    _, key, _ = team.user(policy(scoped, {"effect": "allow", "action": ["name/iai:CreateGroup",
                                                                        "name/iai:DetectFace"], "resource": "*"}))
    assert iai(srv, key, "GetGroupInfo", GroupId=test1)["GroupId"] == test1
    message = refusal(iai, srv, key, "GetGroupInfo", GroupId=prod)
    # The refusal names the resource with the owner written `uin/`: the owner's uin is not told.
    assert f"resource (qcs::iai:ap-guangzhou:uin/:groupid/{prod}) has no permission" in message
    assert str(OWNER_UIN) not in message
    assert iai(srv, key, "CreatePerson", GroupId=test2, PersonId=unique("p"), PersonName="x", Image=b64(ONE_FACE))
    refusal(iai, srv, key, "CreatePerson", GroupId=prod, PersonId=unique("p"), PersonName="x", Image=b64(ONE_FACE))
    # Interface-level: granted by the `*` statement, not by the group-scoped one.
    new = f"test{tag}c"
    assert iai(srv, key, "CreateGroup", GroupId=new, GroupName=new)["FaceModelVersion"] == "3.0"
    refusal(iai, srv, only_groups, "CreateGroup", GroupId=f"test{tag}d", GroupName="d")
    refusal(iai, srv, key, "CreateFace", PersonId="any", Images=[b64(ONE_FACE)])
    # A search needs every group it names.
    found = iai(srv, key, "SearchFaces", GroupIds=[test1, test2], Image=b64(ONE_FACE))
    assert found["Results"][0]["Candidates"]
    message = refusal(iai, srv, key, "SearchFaces", GroupIds=[test1, prod], Image=b64(ONE_FACE))
    assert f"groupid/{prod})" in message
    # GetGroupList lists and counts only the permitted groups.
    listed = iai(srv, key, "GetGroupList", Limit=1000)
    ids = [g["GroupId"] for g in listed["GroupInfos"]]
    assert {test1, test2, new} <= set(ids) and prod not in ids
    assert all(i.startswith("test") for i in ids) and listed["GroupNum"] == len(ids)
    first = iai(srv, key, "GetGroupList", Offset=0, Limit=1)
    assert len(first["GroupInfos"]) == 1 and first["GroupNum"] == len(ids)
    main_listed = iai(srv, (SECRET_ID, SECRET_KEY), "GetGroupList", Limit=1000)
    assert prod in [g["GroupId"] for g in main_listed["GroupInfos"]]


def test_an_explicit_deny_wins_over_allows_in_other_policies(team, srv, unique):
    tag = unique("").strip("-")
    open_group, secret = team.groups(f"open{tag}", f"secret{tag}")
    _, key, _ = team.user(
        policy({"effect": "allow", "action": "iai:*", "resource": "*"}),
        policy({"effect": "deny", "action": ["iai:GetGroupInfo", "iai:SearchFaces", "iai:GetGroupList"],
                "resource": [f"qcs::iai::uin/:groupid/secret*"]}),
    )
    assert iai(srv, key, "GetGroupInfo", GroupId=open_group)["GroupId"] == open_group
    refusal(iai, srv, key, "GetGroupInfo", GroupId=secret)
    refusal(iai, srv, key, "SearchFaces", GroupIds=[open_group, secret], Image=b64(ONE_FACE))
    ids = [g["GroupId"] for g in iai(srv, key, "GetGroupList", Limit=1000)["GroupInfos"]]
    assert open_group in ids and secret not in ids
    _, denied, _ = team.user(policy({"effect": "allow", "action": "iai:*", "resource": "*"}),
                             policy({"effect": "deny", "action": "iai:GetGroupList", "resource": "*"}))
    refusal(iai, srv, denied, "GetGroupList")


def test_ip_and_date_conditions(team, srv):
    here = {"ip_equal": {"qcs:ip": ["127.0.0.0/8", "::1"]}}
    elsewhere = {"ip_equal": {"qcs:ip": "10.0.0.0/8"}}
    _, local, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*",
                                    "condition": here}))
    _, remote, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*",
                                     "condition": elsewhere}))
    _, blocked, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"},
                                     {"effect": "deny", "action": "iai:*", "resource": "*",
                                      "condition": {"ip_not_equal": {"qcs:ip": "10.0.0.0/8"}}}))
    assert "GroupNum" in iai(srv, local, "GetGroupList")
    refusal(iai, srv, remote, "GetGroupList")
    refusal(iai, srv, blocked, "GetGroupList")
    _, until_2100, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*",
                                         "condition": {"date_less_than": {"qcs:current_time": "2100-01-01T00:00:00Z"}}}))
    _, from_2100, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*",
                                        "condition": {"date_greater_than": {"qcs:current_time": "2100-01-01T00:00:00+08:00"}}}))
    assert "GroupNum" in iai(srv, until_2100, "GetGroupList")
    refusal(iai, srv, from_2100, "GetGroupList")


def test_presets_read_only_and_full_access(team, srv, unique):
    gid, = team.groups(unique("preset"))
    _, reader, _ = team.user(presets=["QcloudFRReadOnlyAccess"])
    assert iai(srv, reader, "GetGroupInfo", GroupId=gid)["GroupId"] == gid
    # Allowed: the search reaches the group (which has no face yet).
    assert code_of(iai, srv, reader, "SearchFaces", GroupIds=[gid], Image=b64(ONE_FACE)) == \
        "InvalidParameterValue.NoFaceInGroups"
    refusal(iai, srv, reader, "CreateGroup", GroupId=unique("g"), GroupName="g")
    refusal(iai, srv, reader, "CreatePerson", GroupId=gid, PersonId=unique("p"), PersonName="x",
            Image=b64(ONE_FACE))
    refusal(iai, srv, reader, "DeleteGroup", GroupId=gid)
    _, writer, _ = team.user(presets=["QcloudFRFullAccess"])
    assert iai(srv, writer, "CreateGroup", GroupId=unique("g"), GroupName=unique("n"))
    # Neither grants CAM.
    refusal(cam, cam_client_for(srv, *writer), "ListUsers")


def test_changes_apply_to_the_next_call(team, srv):
    main = team.main
    uin, key, (pid,) = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))
    assert "GroupNum" in iai(srv, key, "GetGroupList")
    cam(main, "UpdatePolicy", PolicyId=pid,
        PolicyDocument=policy({"effect": "allow", "action": "iai:GetGroupInfo", "resource": "*"}))
    refusal(iai, srv, key, "GetGroupList")
    cam(main, "UpdatePolicy", PolicyId=pid,
        PolicyDocument=policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))
    assert "GroupNum" in iai(srv, key, "GetGroupList")
    cam(main, "DetachUserPolicy", PolicyId=pid, DetachUin=uin)
    refusal(iai, srv, key, "GetGroupList")
    cam(main, "AttachUserPolicy", PolicyId=pid, AttachUin=uin)
    attached = cam(main, "ListAttachedUserPolicies", TargetUin=uin)
    assert attached["TotalNum"] == 1 and attached["List"][0]["PolicyId"] == pid
    assert attached["List"][0]["PolicyType"] == "User"
    assert "GroupNum" in iai(srv, key, "GetGroupList")
    # A deactivated key is unknown at once; reactivated it works again; deleted it is gone.
    cam(main, "UpdateAccessKey", TargetUin=uin, AccessKeyId=key[0], Status="Inactive")
    assert code_of(iai, srv, key, "GetGroupList") == "AuthFailure.SecretIdNotFound"
    assert cam(main, "ListAccessKeys", TargetUin=uin)["AccessKeys"][0]["Status"] == "Inactive"
    cam(main, "UpdateAccessKey", TargetUin=uin, AccessKeyId=key[0], Status="Active")
    assert "GroupNum" in iai(srv, key, "GetGroupList")
    cam(main, "DeleteAccessKey", TargetUin=uin, AccessKeyId=key[0])
    assert code_of(iai, srv, key, "GetGroupList") == "AuthFailure.SecretIdNotFound"
    # Deleting a policy detaches it.
    _, other, (pid2,) = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))
    cam(main, "DeletePolicy", PolicyId=[pid2])
    refusal(iai, srv, other, "GetGroupList")


def test_cam_itself_needs_a_cam_grant(team, srv):
    _, iai_only, _ = team.user(policy({"effect": "allow", "action": "iai:*", "resource": "*"}))
    message = refusal(cam, cam_client_for(srv, *iai_only), "ListUsers")
    assert "(cam:ListUsers)" in message
    uin, admin, _ = team.user(policy({"effect": "allow", "action": ["cam:List*", "cam:CreateAccessKey"],
                                      "resource": "*"}))
    admin_client = cam_client_for(srv, *admin)
    assert uin in [u["Uin"] for u in cam(admin_client, "ListUsers")["Data"]]
    refusal(cam, admin_client, "AddUser", Name="mallory")
    # A sub-user may create its own keys (with the grant) but never the main account's.
    assert cam(admin_client, "CreateAccessKey")["AccessKey"]["Status"] == "Active"
    assert code_of(cam, admin_client, "CreateAccessKey", TargetUin=OWNER_UIN) == "OperationDenied.SubUin"


def test_legacy_signature_and_tc3_get_carry_the_sub_user_too(team, srv):
    _, key, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))
    for method, sign in (("GET", "TC3-HMAC-SHA256"), ("POST", "HmacSHA256"), ("GET", "HmacSHA1")):
        client = make_client(srv, method=method, sign=sign, secret_id=key[0], secret_key=key[1])
        assert client.GetGroupList(iai_models.GetGroupListRequest()).GroupNum is not None
        req = iai_models.GetGroupInfoRequest()
        req.GroupId = "anything"
        with pytest.raises(TencentCloudSDKException) as refused:
            client.GetGroupInfo(req)
        assert refused.value.code == UNAUTHORIZED, (method, sign)


def test_users_and_keys_survive_a_restart(tmp_path, unique):
    with running_server(tmp_path) as server:
        team = Team(server, unique)
        _, key, _ = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))
        server.restart()
        assert "GroupNum" in iai(server, key, "GetGroupList")
        refusal(iai, server, key, "GetGroupInfo", GroupId="g")


def test_tccli_walkthrough(srv, tmp_path, unique):
    """The README's walk-through, with tccli: a user with a key, a policy, attached; then the key at work."""
    env = dict(os.environ, HOME=str(tmp_path), TENCENTCLOUD_SECRET_ID=SECRET_ID, TENCENTCLOUD_SECRET_KEY=SECRET_KEY,
               TENCENTCLOUD_REGION="ap-guangzhou", NO_PROXY="127.0.0.1,localhost")

    def tccli(*args, secret=None):
        run_env = dict(env)
        if secret:
            run_env.update(TENCENTCLOUD_SECRET_ID=secret[0], TENCENTCLOUD_SECRET_KEY=secret[1])
        done = subprocess.run([TCCLI, *args, "--endpoint", f"http://{srv.endpoint}"], env=run_env,
                              capture_output=True, text=True, timeout=60)
        return done

    def ok(*args, secret=None):
        done = tccli(*args, secret=secret)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    name = unique("app").replace("-", "_")
    user = ok("cam", "AddUser", "--Name", name, "--UseApi", "1", "--Remark", "search only")
    key = (user["SecretId"], user["SecretKey"])
    gid = unique("cli")
    ok("iai", "CreateGroup", "--GroupId", gid, "--GroupName", gid, "--version", "2018-03-01")
    document = policy({"effect": "allow", "action": ["name/iai:SearchFaces", "name/iai:GetGroupInfo"],
                       "resource": [f"qcs::iai::uin/{OWNER_UIN}:groupid/{gid}"]})
    pid = ok("cam", "CreatePolicy", "--PolicyName", name, "--PolicyDocument", document)["PolicyId"]
    ok("cam", "AttachUserPolicy", "--PolicyId", str(pid), "--AttachUin", str(user["Uin"]))
    listed = ok("cam", "ListAttachedUserPolicies", "--TargetUin", str(user["Uin"]))
    assert [p["PolicyName"] for p in listed["List"]] == [name]
    assert ok("iai", "GetGroupInfo", "--GroupId", gid, secret=key)["GroupId"] == gid
    refused = tccli("iai", "GetGroupList", secret=key)
    assert refused.returncode != 0 and UNAUTHORIZED in refused.stdout + refused.stderr
    ok("cam", "UpdateAccessKey", "--TargetUin", str(user["Uin"]), "--AccessKeyId", key[0], "--Status", "Inactive")
    gone = tccli("iai", "GetGroupInfo", "--GroupId", gid, secret=key)
    assert "AuthFailure.SecretIdNotFound" in gone.stdout + gone.stderr
    ok("cam", "DeleteUser", "--Name", name, "--Force", "1")
    assert name not in [u["Name"] for u in ok("cam", "ListUsers")["Data"]]


def test_console_grants_for_groups_test_star(team, srv, unique):
    """The sub-account document's console grant: the console actions on `groupid/test*` show and search only
    those groups; the interface-level console actions need a `*` statement of their own."""
    tag = unique("").strip("-")
    test1, prod = team.groups(f"test{tag}x", f"prod{tag}x")
    _, key, _ = team.user(policy({"effect": "allow", "action": ["name/iai:Console*"],
                                  "resource": [f"qcs::iai::uin/{OWNER_UIN}:groupid/test*"]}))
    ids = [g["GroupId"] for g in iai(srv, key, "ConsoleGetGroupList", Limit=1000)["GroupInfos"]]
    assert test1 in ids and prod not in ids and all(i.startswith("test") for i in ids)
    assert iai(srv, key, "ConsoleGetPersonList", GroupId=test1)["PersonNum"] == 0
    refusal(iai, srv, key, "ConsoleGetPersonList", GroupId=prod)
    assert iai(srv, key, "ConsoleCalibrateGroup", GroupId=test1)["ImpostorPairs"] == 0
    refusal(iai, srv, key, "ConsoleCalibrateGroup", GroupId=prod)
    assert code_of(iai, srv, key, "ConsoleSearchFaces", GroupIds=[test1], Image=b64(ONE_FACE)) == \
        "InvalidParameterValue.NoFaceInGroups"
    refusal(iai, srv, key, "ConsoleSearchFaces", GroupIds=[prod], Image=b64(ONE_FACE))
    refusal(iai, srv, key, "DescribeStatInfo")
