"""tccli against the live server: `--endpoint http://127.0.0.1:PORT` (its Host header is then literally
`http://127.0.0.1:PORT`), both API versions, a configured profile, and errors on stderr with exit 255."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from conftest import SECRET_ID, SECRET_KEY

TCCLI = str(pathlib.Path(sys.executable).with_name("tccli"))


@pytest.fixture
def tccli(server, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), TENCENTCLOUD_SECRET_ID=SECRET_ID, TENCENTCLOUD_SECRET_KEY=SECRET_KEY,
               TENCENTCLOUD_REGION="ap-guangzhou", NO_PROXY="127.0.0.1,localhost")

    def run(*args, version="2018-03-01", endpoint=True):
        cmd = [TCCLI, "iai", *args]
        if version:
            cmd += ["--version", version]
        if endpoint:
            cmd += ["--endpoint", f"http://{server.endpoint}"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    run.env = env
    return run


def test_create_and_read_a_group(tccli, unique):
    gid = unique("cli")
    done = tccli("CreateGroup", "--GroupId", gid, "--GroupName", f"组 {gid}", "--GroupExDescriptions",
                 '["部门","工号"]', "--Tag", "cli")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["FaceModelVersion"] == "3.0"
    info = json.loads(tccli("GetGroupInfo", "--GroupId", gid).stdout)
    assert info["GroupName"] == f"组 {gid}"
    assert info["GroupExDescriptions"] == ["部门", "工号"]
    # tccli's default API version is 2020-03-03; the same handlers answer it.
    num = tccli("GetPersonListNum", "--GroupId", gid, version=None)
    assert num.returncode == 0, num.stderr
    assert json.loads(num.stdout)["PersonNum"] == 0
    listed = tccli("GetGroupList", "--Offset", "0", "--Limit", "1000")
    assert gid in [g["GroupId"] for g in json.loads(listed.stdout)["GroupInfos"]]


def test_modify_and_delete_with_structured_arguments(tccli, unique, tmp_path):
    gid = unique("cli2")
    assert tccli("CreateGroup", "--GroupId", gid, "--GroupName", gid, "--GroupExDescriptions", '["a"]').returncode == 0
    params = tmp_path / "modify.json"
    params.write_text(json.dumps({"GroupId": gid, "Tag": "from-file",
                                  "GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 0,
                                                               "GroupExDescription": "renamed"}]}))
    done = tccli("ModifyGroup", "--cli-input-json", f"file://{params}")
    assert done.returncode == 0, done.stderr
    info = json.loads(tccli("GetGroupInfo", "--GroupId", gid).stdout)
    assert (info["Tag"], info["GroupExDescriptions"]) == ("from-file", ["renamed"])
    # Each tccli run is a new connection, and tccli signs the body and a timestamp in seconds, not the
    # action: a DeleteGroup with GetGroupInfo's body within the same second carries its signature, which the
    # replay protection refuses for a write (README, Security). A script waits for the next second.
    refused = tccli("DeleteGroup", "--GroupId", gid)
    if refused.returncode != 0:
        assert "AuthFailure.SignatureFailure" in refused.stdout + refused.stderr
        time.sleep(1 - time.time() % 1 + 0.01)
        assert tccli("DeleteGroup", "--GroupId", gid).returncode == 0
    assert tccli("GetGroupInfo", "--GroupId", gid).returncode == 255


def test_errors_exit_255_with_the_code(tccli, unique):
    done = tccli("GetGroupInfo", "--GroupId", unique("absent"))
    assert done.returncode == 255
    assert "code:InvalidParameterValue.GroupIdNotExist" in done.stderr + done.stdout
    done = tccli("GetGroupList", "--Limit", "5000")
    assert done.returncode == 255
    assert "code:InvalidParameterValue.LimitExceed" in done.stderr + done.stdout


def test_configured_profile(tccli, server, unique):
    configure = subprocess.run(
        [TCCLI, "configure", "set", "iai.endpoint", f"http://{server.endpoint}", "iai.version", "2018-03-01",
         "secretId", SECRET_ID, "secretKey", SECRET_KEY, "region", "ap-guangzhou"],
        env=tccli.env, capture_output=True, text=True, timeout=60)
    assert configure.returncode == 0, configure.stderr
    gid = unique("profile")
    done = tccli("CreateGroup", "--GroupId", gid, "--GroupName", gid, version=None, endpoint=False)
    assert done.returncode == 0, done.stderr
