"""QPS limits per interface group and principal (CONTROL.md §B) against live servers with their own `[qps]`
settings: a burst from one principal gets about the limit and `RequestLimitExceeded` for the rest, while
another principal and another interface group are unaffected; per-sub-user settings; 0 turns a limit off;
UpgradeGroupFaceModelVersion's own 10 a second answers `FailedOperation.RequestLimitExceeded`."""

import concurrent.futures
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import SECRET_ID, SECRET_KEY, common_client, running_server
from test_cam import Team, cam, policy

MAIN = (SECRET_ID, SECRET_KEY)
ALL = policy({"effect": "allow", "action": "iai:*", "resource": "*"})


def burst(server, key, action, n, params=None, version="2018-03-01"):
    """`n` calls at once from one principal (16 threads, clients made beforehand, so that signing and
    connecting are not what spreads them out); returns (codes, seconds from first send to last answer)."""
    clients = [common_client(server, version, secret_id=key[0], secret_key=key[1]) for _ in range(16)]

    def one(i):
        try:
            clients[i % 16].call_json(action, params or {})
            return "OK"
        except TencentCloudSDKException as e:
            return e.code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        started = time.monotonic()
        codes = list(pool.map(one, range(n)))
        return codes, time.monotonic() - started


def assert_about(codes, seconds, limit, refused="RequestLimitExceeded"):
    """GCRA: the whole second's quota at once, then one call per 1/limit s while the burst lasts."""
    passed = sum(c != refused for c in codes)
    assert limit <= passed <= limit + limit * seconds + 2, (passed, seconds, limit)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    config = "[qps]\ngroup_management = 50\n[qps.users.slow]\ngroup_management = 5\n"
    with running_server(tmp_path_factory.mktemp("limits"), config) as server:
        yield server


def test_a_burst_of_120_gets_about_50_and_others_are_unaffected(limited, unique):
    team = Team(limited, unique)
    _, other, _ = team.user(ALL)
    codes, seconds = burst(limited, MAIN, "GetGroupList", 120)
    print(f"main burst: {codes.count('OK')} OK of 120 in {seconds:.2f} s")
    assert_about(codes, seconds, 50)
    assert codes.count("RequestLimitExceeded") >= 120 - 50 - 50 * seconds - 2
    # Right after: another principal, and the same principal in another interface group, still have theirs.
    codes, seconds = burst(limited, other, "GetGroupList", 40)
    assert codes.count("OK") == 40, codes
    codes, seconds = burst(limited, MAIN, "DetectFace", 40, {"Url": ""})
    assert "RequestLimitExceeded" not in codes, codes


def test_a_sub_user_has_its_own_settings(limited, unique):
    team = Team(limited, unique)
    added = cam(team.main, "AddUser", Name="slow", UseApi=1)
    pid = cam(team.main, "CreatePolicy", PolicyName=unique("all"), PolicyDocument=ALL)["PolicyId"]
    cam(team.main, "AttachUserPolicy", PolicyId=pid, AttachUin=added["Uin"])
    codes, seconds = burst(limited, (added["SecretId"], added["SecretKey"]), "GetGroupList", 30)
    assert_about(codes, seconds, 5)


def test_zero_turns_a_limit_off_and_upgrades_have_their_own_ten(tmp_path):
    config = "[qps]\ngroup_management = 0\n"
    with running_server(tmp_path, config) as server:
        codes, _ = burst(server, MAIN, "GetGroupList", 150)
        assert codes.count("OK") == 150, set(codes)
        codes, seconds = burst(server, MAIN, "UpgradeGroupFaceModelVersion", 40,
                               {"GroupId": "no-such-group", "FaceModelVersion": "3.0"})
        passed = sum(c != "FailedOperation.RequestLimitExceeded" for c in codes)
        assert 10 <= passed <= 10 + 10 * seconds + 2, (passed, seconds)
        assert "RequestLimitExceeded" not in codes


def test_the_refusal_is_tencents_envelope(limited):
    client = common_client(limited, secret_id=SECRET_ID, secret_key=SECRET_KEY)
    for _ in range(200):
        try:
            client.call_json("GetPersonListNum", {"GroupId": "x"})
        except TencentCloudSDKException as e:
            if e.code == "RequestLimitExceeded":
                assert "group_management" in e.message and e.requestId
                return
    pytest.fail("never limited")


def test_the_default_is_fifty(tmp_path):
    with running_server(tmp_path, "[qps]\n") as server:
        codes, seconds = burst(server, MAIN, "SearchFaces", 120, {"GroupIds": ["none"], "Url": ""})
        assert_about(codes, seconds, 50)


def test_cam_calls_have_a_limit_of_their_own(tmp_path):
    """CAM's calls count against one limit per principal (`[qps] cam`), apart from IAI's interface groups."""
    from tencentcloud.cam.v20190116 import cam_client
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    with running_server(tmp_path, "[qps]\ncam = 5\n") as server:
        clients = [cam_client.CamClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou",
                                        ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint,
                                                                              protocol="http")))
                   for _ in range(8)]

        def one(i):
            try:
                cam(clients[i % 8], "ListUsers")
                return "OK"
            except TencentCloudSDKException as e:
                return e.code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            started = time.monotonic()
            codes = list(pool.map(one, range(30)))
            seconds = time.monotonic() - started
        assert_about(codes, seconds, 5)
        # IAI's groups are not charged for CAM's calls.
        assert "GroupNum" in common_client(server).call_json("GetGroupList", {})["Response"]
