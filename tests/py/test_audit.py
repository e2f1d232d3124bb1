"""The audit trail through the live server: every call recorded (refused ones too, with the SecretId they
claimed), searches and verifications with FaceNum and their top candidates, the console's statistics and
search log read from it, `iai-server audit export` as JSON lines, and a server with the trail turned off."""

import json
import os
import subprocess
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import SECRET_ID, SECRET_KEY, common_client, running_server
from test_faces import b64
from test_console import OTHER_PERSON_PHOTO, PERSON_PHOTO, SAME_PERSON_OTHER_PHOTO


def photos_of_one_person():
    """Two photos of one person, and one of another."""
    return PERSON_PHOTO, SAME_PERSON_OTHER_PHOTO, OTHER_PERSON_PHOTO

MAIN = (SECRET_ID, SECRET_KEY)


def call(server, action, key=MAIN, **params):
    client = common_client(server, secret_id=key[0], secret_key=key[1])
    try:
        return client.call_json(action, params)["Response"]
    except TencentCloudSDKException as e:
        return {"Error": e.code, "RequestId": e.requestId}


def export(server, since=0):
    binary = os.environ.get("IAI_BIN")
    done = subprocess.run([binary, "audit", "export", "--data-dir", str(server.data_dir), "--since", str(since)],
                          capture_output=True, text=True, timeout=60, env=server.tool_env())
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def rows_for(server, request_ids, timeout=10):
    """The exported rows of these calls, once the writer has flushed them (batches every 200 ms)."""
    deadline = time.time() + timeout
    while True:
        rows = {r["request_id"]: r for r in export(server) if r["request_id"] in request_ids}
        if len(rows) == len(request_ids) or time.time() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("audit")) as server:
        yield server


def test_every_call_is_recorded_with_its_outcome(srv, unique):
    gid = unique("aud")
    first, second, other = photos_of_one_person()
    created = call(srv, "CreateGroup", GroupId=gid, GroupName=gid)
    pid = unique("p")
    call(srv, "CreatePerson", GroupId=gid, PersonId=pid, PersonName="x", Image=b64(first))
    call(srv, "CreatePerson", GroupId=gid, PersonId=unique("q"), PersonName="y", Image=b64(other))
    search = call(srv, "SearchFaces", GroupIds=[gid], Image=b64(second), MaxPersonNum=3)
    verify = call(srv, "VerifyFace", PersonId=pid, Image=b64(second))
    missing = call(srv, "GetGroupInfo", GroupId=unique("none"))
    refused = call(srv, "GetGroupList", key=("AKIDnobody", "wrong"))
    assert missing["Error"] == "InvalidParameterValue.GroupIdNotExist"
    assert refused["Error"] == "AuthFailure.SecretIdNotFound"
    ids = [created["RequestId"], search["RequestId"], missing["RequestId"], refused["RequestId"], verify["RequestId"]]
    rows = rows_for(srv, set(ids))
    assert set(rows) == set(ids)

    row = rows[created["RequestId"]]
    assert (row["action"], row["code"], row["principal"], row["secret_id"]) == ("CreateGroup", "OK", "main", SECRET_ID)
    assert row["interface_group"] == "group_management" and row["groups"] == [gid]
    assert row["client"] == "127.0.0.1" and row["latency_us"] > 0

    row = rows[search["RequestId"]]
    assert (row["action"], row["code"], row["interface_group"]) == ("SearchFaces", "OK", "search")
    assert row["face_num"] == search["FaceNum"] >= 1
    candidates = search["Results"][0]["Candidates"]
    assert [c["PersonId"] for c in row["candidates"]] == [c["PersonId"] for c in candidates][:5]
    assert row["candidates"][0]["Score"] == pytest.approx(candidates[0]["Score"])

    assert rows[missing["RequestId"]]["code"] == "InvalidParameterValue.GroupIdNotExist"
    row = rows[refused["RequestId"]]
    assert (row["code"], row["secret_id"], row["principal"], row["action"]) == \
        ("AuthFailure.SecretIdNotFound", "AKIDnobody", "", "GetGroupList")
    row = rows[verify["RequestId"]]
    assert (row["action"], row["face_num"], row["interface_group"]) == ("VerifyFace", 1, "verification")
    assert row["candidates"] == [{"PersonId": pid, "Score": pytest.approx(verify["Score"])}]


def test_the_console_reads_statistics_and_the_search_log(srv, unique):
    gid = unique("log")
    first, second, _ = photos_of_one_person()
    call(srv, "CreateGroup", GroupId=gid, GroupName=gid)
    pid = unique("p")
    call(srv, "CreatePerson", GroupId=gid, PersonId=pid, PersonName="x", Image=b64(first))
    found = call(srv, "SearchPersons", GroupIds=[gid], Image=b64(second))
    failed = call(srv, "SearchFaces", GroupIds=[unique("none")], Image=b64(second))
    assert failed["Error"] == "InvalidParameterValue.GroupIdNotExist"
    rows_for(srv, {found["RequestId"], failed["RequestId"]})

    log = call(srv, "DescribeSearchLog", GroupId=gid)
    assert [r["RequestId"] for r in log["Records"]] == [found["RequestId"]] and log["Total"] == 1
    record = log["Records"][0]
    assert (record["Action"], record["Code"], record["GroupIds"]) == ("SearchPersons", "OK", [gid])
    assert record["FaceNum"] == len(found["Results"]) >= 1
    assert record["Candidates"][0]["PersonId"] == pid and record["SecretId"] == SECRET_ID
    errors = call(srv, "DescribeSearchLog", Code="InvalidParameterValue.GroupIdNotExist")
    assert failed["RequestId"] in [r["RequestId"] for r in errors["Records"]]
    assert call(srv, "DescribeSearchLog", SecretId="AKIDnobody")["Total"] == 0
    assert found["RequestId"] in [r["RequestId"] for r in call(srv, "DescribeSearchLog", Principal="main")["Records"]]
    assert call(srv, "DescribeSearchLog", Principal="200000000001")["Total"] == 0
    newest_first = call(srv, "DescribeSearchLog", Limit=100)["Records"]
    assert [r["Time"] for r in newest_first] == sorted((r["Time"] for r in newest_first), reverse=True)

    stats = call(srv, "DescribeStatInfo")
    searches = [b for b in stats["Buckets"] if b["Action"] == "SearchPersons"]
    assert sum(b["Calls"] for b in searches) >= 1
    assert all(b["Time"] % 300 == 0 and b["LatencyP99Ms"] >= b["LatencyP50Ms"] > 0 for b in searches)
    faces = [b for b in stats["Buckets"] if b["Action"] == "SearchFaces"]
    assert sum(b["Errors"] for b in faces) >= 1
    assert stats["Totals"]["GroupNum"] >= 1 and stats["Totals"]["FaceNum"] >= 1
    assert {limit["InterfaceGroup"] for limit in stats["Limits"]} >= {"search", "group_management"}
    assert call(srv, "DescribeStatInfo", StartTime=100, EndTime=50)["Error"] == "InvalidParameterValue"


def test_a_trail_turned_off_records_nothing(tmp_path):
    with running_server(tmp_path, "audit_enabled = false\n") as server:
        assert "GroupNum" in call(server, "GetGroupList")
        assert call(server, "DescribeStatInfo")["Error"] == "UnsupportedOperation"
        assert not (server.data_dir / "audit.sqlite3").exists()
