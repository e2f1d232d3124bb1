"""The legacy duplicate-person checks (CheckSimilarPerson, EstimateCheckSimilarPersonCostTime,
GetCheckSimilarPersonJobIdList, GetSimilarPersonResult; CONTROL.md §A.5-A.8) through the official SDK's generic
client, against a server of their own (its job list starts empty; it is restarted with a scan-rate throttle to
hold a check unfinished)."""

import json
import time
import urllib.parse

import pytest
import requests

from conftest import common_client, running_server
from test_faces import FACES, b64, error_code
from test_persons import photos

TESTS = FACES / "tests"
THROTTLE = "IAI_SIMILAR_MAX_PAIRS_PER_SECOND"
# README "Duplicate-person checks": the score a pair must reach for UniquePersonControl 1 and 2.
THRESHOLD = {1: 60.0, 2: 70.0}
DISTINCT = ["compreface_A", "dlib_John_Salley", "dlib_John_Savage", "dlib_John_Schneider", "dlib_John_Shimkus",
            "dlib_John_Simm", "fr_obama", "orl_s1", "orl_s2", "orl_s3", "orl_s4", "orl_s5"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("similar")) as server:
        yield server


def caller(server):
    """`call(action, params)`: the action's Response from `server`, through the SDK's generic client."""
    client = common_client(server)
    return lambda action, params: client.call_json(action, params)["Response"]


@pytest.fixture(scope="module")
def call(srv):
    return caller(srv)


def enrol(call, group, person, paths, name=None):
    first, *rest = paths
    call("CreatePerson", {"GroupId": group, "PersonId": person, "PersonName": name or person, "Image": b64(first)})
    if rest:
        got = call("CreateFace", {"PersonId": person, "Images": [b64(p) for p in rest], "FaceMatchThreshold": 0})
        assert got["SucFaceNum"] == len(rest)


@pytest.fixture(scope="module")
def groups(call):
    """dup1/dup2: John Salley enrolled in each under another PersonId, John Savage twice in dup1, a person in
    both groups (the same stored person: not a finding) and strangers; distinct: 12 different people; v2: a
    2.0 group; empty: a 3.0 group without persons; slow: 3 persons, one of them twice."""
    for gid, version in [("dup1", "3.0"), ("dup2", "3.0"), ("distinct", "3.0"), ("v2", "2.0"), ("empty", "3.0"),
                         ("slow", "3.0")]:
        call("CreateGroup", {"GroupId": gid, "GroupName": gid, "FaceModelVersion": version})
    salley, savage = photos("dlib_John_Salley"), photos("dlib_John_Savage")
    enrol(call, "dup1", "salley-a", salley[0:2], name="John Salley")
    enrol(call, "dup2", "salley-b", salley[2:4], name="J. Salley")
    enrol(call, "dup1", "savage-a", savage[0:2])
    enrol(call, "dup1", "savage-b", savage[2:4])
    enrol(call, "dup1", "orl1", photos("orl_s1")[0:2])
    enrol(call, "dup2", "orl2", photos("orl_s2")[0:2])
    enrol(call, "dup1", "both", photos("compreface_A")[0:2])
    call("CopyPerson", {"PersonId": "both", "GroupIds": ["dup2"]})
    for identity in DISTINCT:
        enrol(call, "distinct", f"d-{identity}", photos(identity)[-1:])
    enrol(call, "slow", "s3-a", photos("orl_s3")[0:2])
    enrol(call, "slow", "s3-b", photos("orl_s3")[5:7])
    enrol(call, "slow", "s4", photos("orl_s4")[0:2])
    return True


def result(call, job_id):
    return call("GetSimilarPersonResult", {"JobId": job_id})


def wait_done(call, job_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = result(call, job_id)
        if got["Progress"] == 100:
            return got
        assert got["SimilarPersonsUrl"] == ""
        time.sleep(0.1)
    raise AssertionError(f"check {job_id} did not finish: {got}")


def download(srv, url):
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == srv.endpoint and parts.path.endswith(".json"), url
    expires = int(urllib.parse.parse_qs(parts.query)["Expires"][0])
    assert abs(expires - (time.time() + 300)) < 30  # a 5-minute link
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return json.loads(response.content)


def check_schema(elements, threshold):
    assert isinstance(elements, list)
    scores = [e["Score"] for e in elements]
    assert scores == sorted(scores, reverse=True)
    for e in elements:
        assert set(e) == {"Score", "Persons"}
        assert threshold <= e["Score"] <= 100
        assert len(e["Persons"]) == 2
        for p in e["Persons"]:
            assert set(p) == {"PersonId", "PersonName", "GroupIds"}
            assert isinstance(p["PersonName"], str) and p["GroupIds"]
        assert e["Persons"][0]["PersonId"] < e["Persons"][1]["PersonId"]


def pairs_of(elements):
    return {tuple((p["PersonId"], tuple(p["GroupIds"])) for p in e["Persons"]) for e in elements}


def test_the_job_list_of_a_fresh_server_is_empty(call):
    # CONTROL.md §A.7: FailedOperation.JobNotExist "没有人员查重记录" (no duplicate-check records).
    assert error_code(lambda: call("GetCheckSimilarPersonJobIdList", {})) == "FailedOperation.JobNotExist"


def test_a_check_over_two_groups_finds_the_same_person_under_two_ids(srv, call, groups):
    estimate = call("EstimateCheckSimilarPersonCostTime", {"GroupIds": ["dup1", "dup2"]})
    assert estimate["EstimatedTimeCost"] == 1  # a few pairs: the least there is
    job = call("CheckSimilarPerson", {"GroupIds": ["dup1", "dup2"], "UniquePersonControl": 1})["JobId"]
    prefix, _, tail = job.rpartition("_")
    assert prefix.startswith("iai_merge_person_") and len(tail) == 8 and tail.isalnum()
    done = wait_done(call, job)
    elements = download(srv, done["SimilarPersonsUrl"])
    check_schema(elements, THRESHOLD[1])
    # Across the groups (Salley), within one group (Savage); "both" is one person in two groups: no finding.
    assert pairs_of(elements) == {
        (("salley-a", ("dup1",)), ("salley-b", ("dup2",))),
        (("savage-a", ("dup1",)), ("savage-b", ("dup1",))),
    }
    names = {p["PersonId"]: p["PersonName"] for e in elements for p in e["Persons"]}
    assert names["salley-a"] == "John Salley" and names["salley-b"] == "J. Salley"
    # The stricter level finds the same two pairs, and no pair under its threshold.
    strict = call("CheckSimilarPerson", {"GroupIds": ["dup2", "dup1"], "UniquePersonControl": 2})["JobId"]
    stricter = download(srv, wait_done(call, strict)["SimilarPersonsUrl"])
    check_schema(stricter, THRESHOLD[2])
    # Both duplicates were enrolled with two photos each and score far above 70.
    assert pairs_of(stricter) == pairs_of(elements)
    assert all(e["Score"] >= THRESHOLD[2] for e in stricter)


def test_distinct_people_give_an_empty_result(srv, call, groups):
    # 2020-03-03 answers the legacy actions too (the SDKs of 2020-2022 sent them with that version).
    client = common_client(srv, version="2020-03-03")
    job = client.call_json("CheckSimilarPerson", {"GroupIds": ["distinct"], "UniquePersonControl": 1})
    done = wait_done(call, job["Response"]["JobId"])
    assert download(srv, done["SimilarPersonsUrl"]) == []


def test_the_list_is_newest_first_and_pages(call, groups):
    first = call("GetCheckSimilarPersonJobIdList", {})
    assert first["JobIdNum"] >= 3
    every = call("GetCheckSimilarPersonJobIdList", {"Limit": 1000})["JobIdInfos"]
    assert len(every) == first["JobIdNum"] and first["JobIdInfos"] == every[:10]
    starts = [j["StartTime"] for j in every]
    assert starts == sorted(starts, reverse=True)
    assert all(abs(s / 1000 - time.time()) < 600 for s in starts)  # milliseconds
    assert all(j["JobStatus"] == 0 for j in every)  # 0 done
    paged = [call("GetCheckSimilarPersonJobIdList", {"Offset": i, "Limit": 1})["JobIdInfos"][0] for i in range(len(every))]
    assert paged == every
    two = call("GetCheckSimilarPersonJobIdList", {"Offset": 1, "Limit": 2})
    assert two["JobIdInfos"] == every[1:3] and two["JobIdNum"] == len(every)
    past = call("GetCheckSimilarPersonJobIdList", {"Offset": len(every), "Limit": 5})
    assert past["JobIdInfos"] == [] and past["JobIdNum"] == len(every)
    # The newest is the check of the distinct group, started last.
    assert result(call, every[0]["JobId"])["Progress"] == 100


@pytest.mark.parametrize("action", ["CheckSimilarPerson", "EstimateCheckSimilarPersonCostTime"])
def test_group_errors(call, groups, action):
    def code(group_ids):
        params = {"GroupIds": group_ids}
        if action == "CheckSimilarPerson":
            params["UniquePersonControl"] = 1
        return error_code(lambda: call(action, params))

    assert code([f"g{i}" for i in range(11)]) == "InvalidParameterValue.GroupIdsExceed"
    assert code([]) in ("InvalidParameterValue.GroupIdsExceed", "MissingParameter")
    assert code(["dup1", "no-such-group"]) == "InvalidParameterValue.GroupIdNotExist"
    assert code(["bad group"]) == "InvalidParameterValue.GroupIdIllegal"
    assert code(["v2"]) == "InvalidParameterValue.UnsupportedGroupFaceModelVersion"
    assert code(["dup1", "v2"]) == "FailedOperation.AcrossVersionsError"
    assert code(["empty"]) == "InvalidParameterValue.NoFaceInGroups"
    # A group named twice counts once: 10 distinct groups listed with repeats are not too many.
    assert code(["dup1"] * 11 + ["no-such-group"]) == "InvalidParameterValue.GroupIdNotExist"


def test_other_errors(call, groups):
    for control in [0, 3, -1]:
        got = error_code(lambda: call("CheckSimilarPerson", {"GroupIds": ["dup1"], "UniquePersonControl": control}))
        assert got == "InvalidParameterValue.UniquePersonControlIllegal"
    for job in ["no-such-job", "iai_merge_person_1_abcdefgh"]:
        assert error_code(lambda: result(call, job)) == "FailedOperation.JobIdNotExist"
    for limit in [1001, 0]:
        got = error_code(lambda: call("GetCheckSimilarPersonJobIdList", {"Limit": limit}))
        assert got == "InvalidParameterValue.LimitExceed"


def test_a_running_check_blocks_its_groups_and_survives_a_restart(srv, call, groups):
    # So slow that the check stays unfinished: 0.002 pairs per second.
    srv.extra_env[THROTTLE] = "0.002"
    srv.restart()
    try:
        job = call("CheckSimilarPerson", {"GroupIds": ["slow"], "UniquePersonControl": 1})["JobId"]
        # The same groups, in any order and with repeats, while the check is unfinished.
        for group_ids in (["slow"], ["slow", "slow"]):
            got = error_code(lambda: call("CheckSimilarPerson", {"GroupIds": group_ids, "UniquePersonControl": 2}))
            assert got == "FailedOperation.CheckDuplicatePersonTaskNotFinished"
        # 66 pairs at 0.002 per second (plus the queue) is over 5 hours: refused by both actions.
        for action, params in [("EstimateCheckSimilarPersonCostTime", {"GroupIds": ["distinct"]}),
                               ("CheckSimilarPerson", {"GroupIds": ["distinct"], "UniquePersonControl": 1})]:
            assert error_code(lambda: call(action, params)) == "FailedOperation.CheckSimilarPersonTimeExceed"
        # The 3 pairs of `slow` fit: about 3 / 0.002 / 60 = 25 minutes, plus the queued check.
        minutes = call("EstimateCheckSimilarPersonCostTime", {"GroupIds": ["slow"]})["EstimatedTimeCost"]
        assert 25 <= minutes <= 60
        # The first row of the scan is done, then the check waits for its pace.
        deadline = time.time() + 10
        while (got := result(call, job))["Progress"] == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert 0 < got["Progress"] < 100 and got["SimilarPersonsUrl"] == ""
        listed = call("GetCheckSimilarPersonJobIdList", {"Limit": 1})["JobIdInfos"][0]
        assert listed["JobId"] == job and listed["JobStatus"] == 1  # 1 unfinished
    finally:
        del srv.extra_env[THROTTLE]
        srv.restart()
    # It resumes from the position saved after its first round (not from the beginning), at full speed.
    done = wait_done(call, job)
    elements = download(srv, done["SimilarPersonsUrl"])
    check_schema(elements, THRESHOLD[1])
    assert pairs_of(elements) == {(("s3-a", ("slow",)), ("s3-b", ("slow",)))}
    listed = call("GetCheckSimilarPersonJobIdList", {"Limit": 1})["JobIdInfos"][0]
    assert listed["JobId"] == job and listed["JobStatus"] == 0
    log = srv.log_path.read_text()
    assert "duplicate-person check resumed from its saved progress" in log and "from_row=1" in log, log[-3000:]
