"""The official Node SDK against the live server (tests/node/drive.js): TC3 POST/GET with the Node quirks
(host signed without its port, service `127` or `localhost:PORT` in the credential scope), HmacSHA256 POST/GET,
HmacSHA1, the 2020-03-03 client, and errors."""

import json
import pathlib
import subprocess

from conftest import SECRET_ID, SECRET_KEY

NODE_DIR = pathlib.Path(__file__).resolve().parents[1] / "node"


def test_node_sdk_drives_the_group_actions(server, unique):
    prefix = unique("js")
    done = subprocess.run(["node", "drive.js", str(server.port), SECRET_ID, SECRET_KEY, prefix], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = {r["case"]: r for r in map(json.loads, done.stdout.splitlines())}
    for name in ["tc3_post_create", "tc3_get_info", "hmacsha256_post_modify", "hmacsha256_get_list",
                 "hmacsha1_post_num", "localhost_tc3_post_info", "localhost_tc3_get_info", "v20200303_info",
                 "tc3_post_delete"]:
        assert results[name]["ok"], results[name]
    gid = f"{prefix}-node"
    assert results["tc3_post_create"]["result"]["FaceModelVersion"] == "3.0"
    info = results["tc3_get_info"]["result"]
    assert info["GroupName"] == f"节点 {gid} A&B=c"
    assert info["GroupExDescriptions"] == ["部门", "工号"]
    assert results["localhost_tc3_post_info"]["result"]["Tag"] == "changed"
    assert results["localhost_tc3_post_info"]["result"]["GroupExDescriptions"] == ["部门", "编号"]
    assert gid in [g["GroupId"] for g in results["hmacsha256_get_list"]["result"]["GroupInfos"]]
    assert results["hmacsha1_post_num"]["result"]["PersonNum"] == 0
    assert results["error_not_found"]["code"] == "InvalidParameterValue.GroupIdNotExist"
    assert results["error_wrong_secret"]["code"] == "AuthFailure.SignatureFailure"
    assert results["after_delete"]["code"] == "InvalidParameterValue.GroupIdNotExist"
