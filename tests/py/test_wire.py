"""Transport, signatures, parsing and the envelope, through the official Python SDK (and raw HTTP only where no
SDK would send the request)."""

import json
import re
import time
import uuid

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import (ROOT, SECRET_ID, SECRET_KEY, TOKEN, TOKEN_SECRET_ID, TOKEN_SECRET_KEY, common_client, make_client,
                      raw_tc3, running_server, spec_actions)

MODES = [
    ("POST", "TC3-HMAC-SHA256"),
    ("GET", "TC3-HMAC-SHA256"),
    ("POST", "HmacSHA256"),
    ("GET", "HmacSHA256"),
    ("POST", "HmacSHA1"),
    ("GET", "HmacSHA1"),
]


def sdk_error(call) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


@pytest.mark.parametrize("method,sign", MODES)
def test_every_signature_method_and_encoding_round_trips(server, unique, method, sign):
    client = make_client(server, method=method, sign=sign)
    gid = unique("mode")
    req = models.CreateGroupRequest()
    req.GroupId = gid
    req.GroupName = f"名字 {gid} A&B=c+d"  # non-ASCII, reserved characters, a space and a plus
    req.GroupExDescriptions = ["部门", "工号", "x_y-z"]
    req.Tag = "tag with spaces"
    req.FaceModelVersion = "2.0"
    assert client.CreateGroup(req).FaceModelVersion == "2.0"

    info_req = models.GetGroupInfoRequest()
    info_req.GroupId = gid
    info = client.GetGroupInfo(info_req)
    assert info.GroupName == req.GroupName
    assert info.GroupExDescriptions == ["部门", "工号", "x_y-z"]
    assert info.Tag == "tag with spaces"
    assert info.FaceModelVersion == "2.0"
    assert abs(info.CreationTimestamp - time.time() * 1000) < 60_000
    assert re.fullmatch(r"[0-9a-f-]{36}", info.RequestId)


def test_wrong_secret_id_is_secret_id_not_found(server):
    err = sdk_error(lambda: make_client(server, secret_id="AKIDunknown").GetGroupList(models.GetGroupListRequest()))
    assert err.code == "AuthFailure.SecretIdNotFound"


@pytest.mark.parametrize("sign", ["TC3-HMAC-SHA256", "HmacSHA256", "HmacSHA1"])
def test_wrong_secret_key_is_signature_failure(server, sign):
    client = make_client(server, sign=sign, secret_key="wrong-key")
    err = sdk_error(lambda: client.GetGroupList(models.GetGroupListRequest()))
    assert err.code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("sign", ["TC3-HMAC-SHA256", "HmacSHA1"])
def test_expired_timestamp_is_signature_expire(server, monkeypatch, sign):
    client = make_client(server, sign=sign)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 301)
    err = sdk_error(lambda: client.GetGroupList(models.GetGroupListRequest()))
    monkeypatch.setattr(time, "time", real)
    assert err.code == "AuthFailure.SignatureExpire"


def test_timestamp_within_five_minutes_is_accepted(server, monkeypatch):
    client = make_client(server)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 250)
    client.GetGroupList(models.GetGroupListRequest())


def test_session_token_is_checked(server):
    ok = make_client(server, secret_id=TOKEN_SECRET_ID, secret_key=TOKEN_SECRET_KEY, token=TOKEN)
    ok.GetGroupList(models.GetGroupListRequest())
    bad = make_client(server, secret_id=TOKEN_SECRET_ID, secret_key=TOKEN_SECRET_KEY, token="other")
    assert sdk_error(lambda: bad.GetGroupList(models.GetGroupListRequest())).code == "AuthFailure.TokenFailure"
    missing = make_client(server, secret_id=TOKEN_SECRET_ID, secret_key=TOKEN_SECRET_KEY, sign="HmacSHA256")
    assert sdk_error(lambda: missing.GetGroupList(models.GetGroupListRequest())).code == "AuthFailure.TokenFailure"


def test_missing_or_garbled_authorization(server):
    headers = {"Content-Type": "application/json", "X-TC-Action": "GetGroupList", "X-TC-Version": "2018-03-01",
               "X-TC-Timestamp": str(int(time.time()))}
    r = requests.post(server.url, data=b"{}", headers=headers, timeout=10)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    headers["Authorization"] = "TC3-HMAC-SHA256 Credential=nonsense"
    r = requests.post(server.url, data=b"{}", headers=headers, timeout=10)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_unknown_action_is_invalid_action(server, method):
    err = sdk_error(lambda: common_client(server, method=method).call_json("NoSuchAction", {}))
    assert err.code == "InvalidAction"


def test_unknown_version_is_no_such_version(server):
    err = sdk_error(lambda: common_client(server, version="2017-01-01").call_json("GetGroupList", {}))
    assert err.code == "NoSuchVersion"


def test_version_2020_03_03_reaches_the_same_handlers(server, unique):
    gid = unique("v2020")
    c2020 = common_client(server, version="2020-03-03")
    c2020.call_json("CreateGroup", {"GroupId": gid, "GroupName": gid})
    got = common_client(server).call_json("GetGroupInfo", {"GroupId": gid})
    assert got["Response"]["GroupId"] == gid
    # 2020-03-03-only actions exist there and not in 2018-03-01.
    err = sdk_error(lambda: common_client(server).call_json("CompareMaskFace", {}))
    assert err.code == "InvalidAction"
    err = sdk_error(lambda: c2020.call_json("CompareMaskFace", {}))
    assert err.code == "InvalidParameterValue.ImageEmpty"


def test_malformed_json_is_invalid_parameter_in_the_envelope(server):
    r = raw_tc3(server, "GetGroupList", b'{"Offset": 0,')
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameter"
    r = raw_tc3(server, "GetGroupList", b"[1, 2]")
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameter"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_wrong_types_are_invalid_parameter_naming_the_field(server, method):
    client = make_client(server, method=method)
    req = models.GetGroupListRequest()
    req.Limit = "ten"
    err = sdk_error(lambda: client.GetGroupList(req))
    assert err.code == "InvalidParameter"
    assert err.message == "The value type of parameter `Limit` is not valid."


def test_wrong_types_in_nested_structures(server, unique):
    gid = unique("nested")
    common_client(server).call_json("CreateGroup", {"GroupId": gid, "GroupName": gid, "GroupExDescriptions": ["a"]})
    err = sdk_error(lambda: common_client(server).call_json(
        "ModifyGroup", {"GroupId": gid, "GroupExDescriptionInfos": [{"GroupExDescriptionIndex": "x",
                                                                     "GroupExDescription": "b"}]}))
    assert err.code == "InvalidParameter"
    assert "GroupExDescriptionInfos.0.GroupExDescriptionIndex" in err.message
    err = sdk_error(lambda: common_client(server).call_json("CreateGroup", {"GroupId": 7, "GroupName": "n"}))
    assert err.code == "InvalidParameter"


def test_missing_required_field_is_missing_parameter(server):
    req = models.CreateGroupRequest()
    req.GroupName = "no id"
    err = sdk_error(lambda: make_client(server).CreateGroup(req))
    assert err.code == "MissingParameter"
    assert "`GroupId`" in err.message


def test_integral_floats_and_python_style_json_are_accepted(server):
    # Python writes `10.0` for floats it was handed and escapes non-ASCII as \\uXXXX.
    r = raw_tc3(server, "GetGroupList", b'{"Offset": 0.0, "Limit": 10.0}')
    assert "Error" not in r.json()["Response"], r.text
    r = raw_tc3(server, "GetGroupInfo", json.dumps({"GroupId": "\u5f20"}).encode())
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameterValue.GroupIdIllegal"


def required_params(action):
    """Each required field of the spec's action, set to its example (or a plain value of its type)."""
    params = {}
    for field in action["request"]:
        if not field["required"]:
            continue
        kind, example = field["type"], field.get("example")
        if kind == "Integer":
            value = int(example) if example is not None else 1
        elif kind == "Float":
            value = float(example) if example is not None else 1.0
        elif kind == "Array of String":
            value = example if isinstance(example, list) else ["x"]
        elif kind.startswith("Array of"):
            value = example if isinstance(example, list) else []
        else:
            value = str(example) if example is not None else "x"
        params[field["name"]] = value
    return params


def test_every_action_of_the_spec_reaches_its_implementation(tmp_path):
    # With its required parameters present, each action gets past decoding into its own method, which
    # answers a result or its own error, never UnsupportedOperation (the trait's default for an action not
    # implemented) nor MissingParameter. A server of its own: the examples create groups and persons.
    spec = spec_actions()
    extras = json.loads((ROOT / "tools" / "api_v20200303.json").read_text())["actions"]
    actions = [(name, a, "2018-03-01") for name, a in {**spec["actions"], **spec["legacy_actions"]}.items()]
    actions += [(name, a, "2020-03-03") for name, a in extras.items()]
    assert len(actions) >= 40
    answered = {}
    with running_server(tmp_path) as srv:
        for name, action, version in actions:
            try:
                common_client(srv, version).call_json(name, required_params(action))
                answered[name] = "OK"
            except TencentCloudSDKException as e:
                answered[name] = e.code
    wrong = {n: c for n, c in answered.items() if c in ("UnsupportedOperation", "MissingParameter")}
    assert wrong == {}, wrong


def test_envelope_is_http_200_with_exact_content_type(server):
    r = raw_tc3(server, "GetGroupInfo", b'{"GroupId": "does-not-exist"}')
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"Response"}
    assert set(body["Response"]) == {"Error", "RequestId"}
    assert set(body["Response"]["Error"]) == {"Code", "Message"}
    uuid.UUID(body["Response"]["RequestId"])
    assert r.headers["X-TC-RequestId"] == body["Response"]["RequestId"]


def test_trace_id_is_echoed(server):
    r = requests.post(server.url, data=b"{}", headers={"X-TC-TraceId": "trace-1", "X-TC-Action": "GetGroupList"},
                      timeout=10)
    assert r.headers.get("X-TC-TraceId") == "trace-1"


def test_body_over_10_mb_is_request_size_limit_exceeded(server):
    body = b'{"GroupId": "' + b"a" * (10 * 1024 * 1024 + 10) + b'"}'
    r = raw_tc3(server, "GetGroupInfo", body)
    assert r.status_code == 200
    assert r.json()["Response"]["Error"]["Code"] == "RequestSizeLimitExceeded"
    # Just under the limit is read, parsed and judged on its merits.
    body = b'{"GroupId": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    assert raw_tc3(server, "GetGroupInfo", body).json()["Response"]["Error"]["Code"] == \
        "InvalidParameterValue.GroupIdTooLong"


def test_no_input_breaks_the_envelope(server):
    """Garbage of every kind gets a JSON envelope with HTTP 200, never a bare error page."""
    cases = [
        ("POST", {}, b""),
        ("GET", {}, b""),
        ("DELETE", {}, b""),
        ("PUT", {"X-TC-Action": "GetGroupList"}, b"{}"),
        ("POST", {"Content-Type": "application/json"}, b"\xff\xfe\x00garbage"),
        ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"Action=GetGroupList&%%%=&=&&"),
        ("POST", {"X-TC-Action": "GetGroupList", "X-TC-Version": "2018-03-01",
                  "Authorization": "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=x-missing, "
                                   "Signature=" + "0" * 64, "X-TC-Timestamp": "notanumber"}, b"{}"),
        ("GET", {}, b"?Action=GetGroupList&Version=2018-03-01&Offset.0.x=1"),
    ]
    for method, headers, body in cases:
        url = server.url
        if body.startswith(b"?"):
            url, body = server.url + body.decode(), b""
        r = requests.request(method, url + "some/path" if method == "DELETE" else url, data=body, headers=headers,
                             timeout=10)
        assert r.status_code == 200, (method, headers, body)
        assert r.headers["Content-Type"] == "application/json"
        assert "Error" in r.json()["Response"], r.text


def test_every_documented_response_field_is_present_with_its_json_type(server, unique):
    """GetGroupInfo and GetGroupList against actions.json: every field, the right JSON kind."""
    spec = spec_actions()
    gid = unique("fields")
    client = common_client(server)
    client.call_json("CreateGroup", {"GroupId": gid, "GroupName": gid, "GroupExDescriptions": ["a"], "Tag": "t"})
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}

    def check(obj, fields, where):
        for f in fields:
            assert f["name"] in obj, f"{where}: {f['name']} missing"
            value = obj[f["name"]]
            if value is None:
                assert f.get("nullable"), f"{where}: {f['name']} is null"
                continue
            assert isinstance(value, kinds[f["json"]]) and not (f["json"] == "integer" and isinstance(value, bool)), \
                f"{where}: {f['name']} = {value!r}"
            if f["json"] == "array" and "struct" in f.get("item", {}):
                for item in value:
                    check(item, spec["structures"][f["item"]["struct"]]["fields"], f["name"])

    for action, params in [("GetGroupInfo", {"GroupId": gid}), ("GetGroupList", {"Limit": 1000}),
                           ("GetPersonListNum", {"GroupId": gid}), ("CreateGroup", {"GroupId": unique("f2"),
                                                                                    "GroupName": unique("f2")})]:
        got = client.call_json(action, params)["Response"]
        check(got, spec["actions"][action]["response"], action)
