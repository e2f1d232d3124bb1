"""Model-version jobs (CONTROL.md §A.1-A.4) and re-extraction, through the official Python SDK against the live
server: a 2.0 group upgraded to 3.0 while another client keeps adding persons and searching, reverted once, a
restart in the middle of an upgrade, faces that cannot be upgraded, a group whose network changed (the stored
crops are embedded again in the background), and every error path of the four actions."""

import concurrent.futures
import re
import threading
import time

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models as models20

from conftest import make_client, running_server
from test_faces import error_code
from test_persons import create_face, create_group, create_person, photos, search
from test_races import check_index

# Slow the background re-embedding down (one face per batch, a pause after each) so that the tests can
# write, search and restart while a job runs.
SLOW = "reembed_batch_persons = 1\nreembed_pause_ms = 250\n"
IDENTITIES = ["compreface_A", "dlib_John_Salley", "dlib_John_Savage", "dlib_John_Schneider", "fr_obama", "orl_s1"]
LATECOMERS = ["dlib_John_Shimkus", "dlib_John_Simm", "orl_s2", "orl_s3", "orl_s4", "orl_s5"]


@pytest.fixture
def slow_server(tmp_path):
    with running_server(tmp_path, SLOW) as srv:
        yield srv


def client20(server):
    return make_client(server, version="2020-03-03")


def upgrade(client, group, version="3.0"):
    req = models20.UpgradeGroupFaceModelVersionRequest()
    req.GroupId, req.FaceModelVersion = group, version
    return client.UpgradeGroupFaceModelVersion(req).JobId


def revert(client, job_id):
    req = models20.RevertGroupFaceModelVersionRequest()
    req.JobId = job_id
    return client.RevertGroupFaceModelVersion(req)


def job_result(client, job_id):
    req = models20.GetUpgradeGroupFaceModelVersionResultRequest()
    req.JobId = job_id
    return client.GetUpgradeGroupFaceModelVersionResult(req)


def job_list(client, offset=None, limit=None):
    req = models20.GetUpgradeGroupFaceModelVersionJobListRequest()
    req.Offset, req.Limit = offset, limit
    return client.GetUpgradeGroupFaceModelVersionJobList(req)


def wait_status(client, job_id, status, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = job_result(client, job_id)
        if got.Status == status:
            return got
        assert got.Status != 3, got  # an upgrade that was meant to succeed failed
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach status {status}: {job_result(client, job_id)}")


def group_version(client, group):
    from tencentcloud.iai.v20180301 import models
    req = models.GetGroupInfoRequest()
    req.GroupId = group
    return client.GetGroupInfo(req).FaceModelVersion


def enrol(client, group, identities, with_second_face=True):
    for identity in identities:
        first, second, *_ = photos(identity)
        create_person(client, group, identity, first)
        if with_second_face:
            create_face(client, identity, [second], threshold=0)


def top(client, group, path):
    """(person id, score, FaceModelVersion) of the best candidate."""
    got = search(client, "SearchFaces", [group], path, MaxPersonNum=1)
    best = got.Results[0].Candidates[0]
    return best.PersonId, best.Score, got.FaceModelVersion


def probe(identity):
    return photos(identity)[-1]


def test_upgrade_while_writing_and_searching_then_revert_once(slow_server, unique):
    client, jobs = make_client(slow_server), client20(slow_server)
    group = unique("up")
    create_group(client, group, version="2.0")
    enrol(client, group, IDENTITIES)
    before = {i: top(client, group, probe(i)) for i in IDENTITIES}
    assert all(p == i and v == "2.0" for i, (p, _, v) in before.items()), before

    job = upgrade(jobs, group)
    assert re.fullmatch(r"iai_upgrade_group_\d+_[0-9a-z]{8}", job), job
    running = job_result(jobs, job)
    assert (running.Status, running.GroupId, running.FromFaceModelVersion, running.ToFaceModelVersion) == \
        (0, group, "2.0", "3.0")
    assert 0 <= running.Progress < 100 and running.EndTimestamp >= running.StartTime
    assert running.FailedFacesUrl == ""
    # The group answers on its old version while the job runs.
    assert group_version(client, group) == "2.0"
    assert error_code(lambda: upgrade(jobs, group)) == "FailedOperation.GroupCannotUpgrade"
    assert error_code(lambda: revert(jobs, job)) == "FailedOperation.JobCannnotRollback"

    # Another client keeps adding persons and searching until the switch.
    done, errors, seen_versions, added = threading.Event(), [], [], []

    def writer():
        for identity in LATECOMERS[:-2]:
            try:
                create_person(client, group, identity, photos(identity)[0])
                # The job's status once the write was answered: writes must land while it runs.
                added.append((identity, job_result(jobs, job).Status))
            except TencentCloudSDKException as e:
                errors.append(("CreatePerson", identity, e.code, e.message))
            time.sleep(0.3)

    def searcher():
        while not done.is_set():
            identity = IDENTITIES[len(seen_versions) % len(IDENTITIES)]
            try:
                person, _, version = top(client, group, probe(identity))
                seen_versions.append(version)
                if person != identity:
                    errors.append(("SearchFaces", identity, person, version))
            except TencentCloudSDKException as e:
                errors.append(("SearchFaces", identity, e.code, e.message))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        writing, searching = pool.submit(writer), pool.submit(searcher)
        progress = []
        while True:
            got = job_result(jobs, job)
            progress.append(got.Progress)
            if got.Status != 0:
                break
            time.sleep(0.2)
        # Keep searching a little after the switch.
        time.sleep(1.0)
        done.set()
        writing.result(), searching.result()
    assert got.Status == 1 and got.Progress == 100 and got.FailedFacesUrl == "", got
    assert progress == sorted(progress) and any(0 < p < 100 for p in progress), progress
    assert errors == [], errors
    # Searches ran on both sides of the switch, each answer on one version.
    assert "2.0" in seen_versions and seen_versions[-1] == "3.0", seen_versions
    assert seen_versions.index("3.0") > 0 and "2.0" not in seen_versions[seen_versions.index("3.0"):]
    assert group_version(client, group) == "3.0"
    # Nothing lost: every person, those added during the job too, is found by another photo of them.
    assert sorted(i for i, _ in added) == sorted(LATECOMERS[:-2])
    assert any(status == 0 for _, status in added), added
    # Two more persons once the group serves 3.0 (they have no 2.0 embedding: a revert embeds them).
    for identity in LATECOMERS[-2:]:
        create_person(client, group, identity, photos(identity)[0])
    for identity in IDENTITIES + LATECOMERS:
        person, score, version = top(client, group, photos(identity)[1])
        assert (person, version) == (identity, "3.0") and score > 40, (identity, person, score)
    status, output = check_index(slow_server)
    assert status == 0, output
    listed = [j for j in job_list(jobs).JobInfos if j.JobId == job]
    assert [(j.GroupId, j.FromFaceModelVersion, j.ToFaceModelVersion, j.Status) for j in listed] == \
        [(group, "2.0", "3.0", 1)]

    # One revert: back to 2.0 (its embeddings were kept; persons added after the switch are embedded).
    revert(jobs, job)
    reverted = wait_status(jobs, job, 2)
    assert reverted.Progress == 100, reverted
    assert group_version(client, group) == "2.0"
    for identity in IDENTITIES + LATECOMERS:
        person, _, version = top(client, group, probe(identity))
        assert (person, version) == (identity, "2.0"), identity
    assert error_code(lambda: revert(jobs, job)) == "FailedOperation.JobCannnotRollback"
    # Upgraded again, the group cannot be rolled back a second time.
    again = upgrade(jobs, group)
    wait_status(jobs, again, 1)
    assert group_version(client, group) == "3.0"
    assert error_code(lambda: revert(jobs, again)) == "FailedOperation.JobCannnotRollback"
    assert [j.JobId for j in job_list(jobs).JobInfos][:2] == [again, job]
    status, output = check_index(slow_server)
    assert status == 0, output


def test_a_restart_in_the_middle_of_an_upgrade_resumes_it(slow_server, unique):
    client, jobs = make_client(slow_server), client20(slow_server)
    group = unique("resume")
    create_group(client, group, version="2.0")
    enrol(client, group, IDENTITIES + LATECOMERS)
    job = upgrade(jobs, group)
    deadline = time.time() + 30
    while job_result(jobs, job).Progress <= 0 and time.time() < deadline:
        time.sleep(0.1)
    halfway = job_result(jobs, job)
    assert halfway.Status == 0 and 0 < halfway.Progress < 100, halfway
    slow_server.restart()
    after_restart = job_result(jobs, job)
    assert after_restart.Status == 0 and after_restart.Progress >= halfway.Progress, after_restart
    assert group_version(client, group) == "2.0"
    finished = wait_status(jobs, job, 1)
    assert finished.Progress == 100
    for identity in IDENTITIES + LATECOMERS:
        assert top(client, group, probe(identity))[::2] == (identity, "3.0")
    status, output = check_index(slow_server)
    assert status == 0, output


def test_deleting_a_group_in_the_middle_of_its_upgrade_fails_the_job(slow_server, unique):
    client, jobs = make_client(slow_server), client20(slow_server)
    group = unique("gone")
    create_group(client, group, version="2.0")
    enrol(client, group, IDENTITIES)
    job = upgrade(jobs, group)
    from tencentcloud.iai.v20180301 import models
    req = models.DeleteGroupRequest()
    req.GroupId = group
    client.DeleteGroup(req)
    failed = job_result(jobs, job)
    assert (failed.Status, failed.Progress, failed.FailedFacesUrl) == (3, 100, ""), failed
    assert error_code(lambda: revert(jobs, job)) == "InvalidParameterValue.GroupIdNotExist"
    # The worker moves on: another group's upgrade finishes.
    other = unique("after")
    create_group(client, other, version="2.0")
    enrol(client, other, IDENTITIES[:2], with_second_face=False)
    wait_status(jobs, upgrade(jobs, other), 1)


def break_a_crop(server, person_id):
    """Behind the server's back, one stored crop of the person becomes unreadable. Returns its FaceId."""
    server.stop()
    ((face_id,),) = server.db("SELECT face_id FROM faces WHERE person_id = ? ORDER BY face_id LIMIT 1",
                              (person_id,))
    server.db("UPDATE faces SET crop_png = ? WHERE face_id = ?", (b"\x00", face_id))
    server.start()
    return face_id


def test_faces_that_cannot_be_upgraded_fail_the_job_and_are_listed(slow_server, unique):
    client, jobs = make_client(slow_server), client20(slow_server)
    group = unique("lost")
    create_group(client, group, version="2.0")
    enrol(client, group, IDENTITIES[:3], with_second_face=False)
    lost = break_a_crop(slow_server, IDENTITIES[1])
    job = upgrade(jobs, group)
    failed = wait_status(jobs, job, 3)
    assert failed.Progress == 100 and failed.FailedFacesUrl.startswith(f"http://{slow_server.endpoint}/files/")
    listed = requests.get(failed.FailedFacesUrl, timeout=10)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [{"person_id": IDENTITIES[1], "face_id": lost, "type": 1}]
    # The link is signed: another file name or a changed expiry is refused.
    assert requests.get(failed.FailedFacesUrl.replace("Expires=", "Expires=1"), timeout=10).status_code == 403
    # The group stays on 2.0 with every face, and keeps answering.
    assert group_version(client, group) == "2.0"
    assert top(client, group, probe(IDENTITIES[0]))[::2] == (IDENTITIES[0], "2.0")
    assert error_code(lambda: revert(jobs, job)) == "FailedOperation.JobCannnotRollback"
    status, output = check_index(slow_server)
    assert status == 0, output


def metric(server, name, **labels):
    text = requests.get(f"http://{server.endpoint}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_changed_network_is_applied_by_embedding_the_stored_crops_again(slow_server, unique):
    """A data directory from before MobileFaceNet: its 3.0 groups serve dlib's embeddings (migration 0002 maps
    them so). Made here by relabelling a 2.0 group (which serves dlib's network) as 3.0 behind the server's
    back. At start the server embeds the stored crops with MobileFaceNet in the background, answering on the
    old embeddings meanwhile, then switches; a crop that cannot be embedded is reported, kept and counted."""
    client = make_client(slow_server)
    group = unique("legacy")
    create_group(client, group, version="2.0")
    enrol(client, group, IDENTITIES)
    broken = break_a_crop(slow_server, IDENTITIES[2])
    slow_server.stop()
    assert slow_server.db("SELECT serving_model FROM groups WHERE group_id = ?", (group,)) == \
        [("faceapi_recognition_128.onnx",)]
    slow_server.db("UPDATE groups SET face_model_version = '3.0' WHERE group_id = ?", (group,))
    slow_server.start()
    # Answering on the old embeddings while it moves (scores of dlib's curve, FaceModelVersion 3.0).
    assert top(client, group, probe(IDENTITIES[0]))[::2] == (IDENTITIES[0], "3.0")
    deadline = time.time() + 90
    while time.time() < deadline:
        ((serving,),) = slow_server.db("SELECT serving_model FROM groups WHERE group_id = ?", (group,))
        if serving == "mobilefacenet_192.onnx":
            break
        time.sleep(0.3)
    assert serving == "mobilefacenet_192.onnx"
    assert metric(slow_server, "iai_reembedded_faces_total", model="mobilefacenet_192.onnx") == \
        2 * len(IDENTITIES) - 1
    assert metric(slow_server, "iai_reembed_failures_total", model="mobilefacenet_192.onnx") == 1
    assert metric(slow_server, "iai_groups_moving") == 0
    log = slow_server.log_path.read_text(errors="replace")
    assert "a stored face could not be embedded" in log and broken in log
    assert "the group now serves its new network" in log
    # Every person is found with the new network; the broken face is still stored.
    for identity in IDENTITIES:
        person, score, version = top(client, group, probe(identity))
        assert (person, version) == (identity, "3.0") and score > 40, (identity, person, score)
    from tencentcloud.iai.v20180301 import models
    req = models.GetPersonBaseInfoRequest()
    req.PersonId = IDENTITIES[2]
    assert broken in client.GetPersonBaseInfo(req).FaceIds
    status, output = check_index(slow_server)
    assert status == 0, output


def test_upgrade_job_errors(server, unique):
    client, jobs = make_client(server), client20(server)
    v3, v2 = unique("e3"), unique("e2")
    create_group(client, v3)
    create_group(client, v2, version="2.0")
    assert error_code(lambda: upgrade(jobs, v3)) == "FailedOperation.GroupCannotUpgrade"
    assert error_code(lambda: upgrade(jobs, v2, "2.0")) == "FailedOperation.GroupCannotUpgrade"
    assert error_code(lambda: upgrade(jobs, v2, "4.0")) == "InvalidParameterValue.FaceModelVersionIllegal"
    assert error_code(lambda: upgrade(jobs, unique("nope"))) == "InvalidParameterValue.GroupIdNotExist"
    assert error_code(lambda: upgrade(jobs, "bad id!")) == "InvalidParameterValue.GroupIdIllegal"
    assert error_code(lambda: upgrade(jobs, None)) == "MissingParameter"
    for call in (lambda: revert(jobs, "iai_upgrade_group_1_nosuchjb"),
                 lambda: job_result(jobs, "iai_upgrade_group_1_nosuchjb")):
        assert error_code(call) == "FailedOperation.UpgradeJobIdNotExist"
    assert error_code(lambda: revert(jobs, "x" * 200)) == "InvalidParameter.InvalidParameter"
    assert error_code(lambda: job_list(jobs, limit=1001)) == "InvalidParameterValue.LimitExceed"
    assert error_code(lambda: job_list(jobs, limit=0)) == "InvalidParameterValue.LimitExceed"
    total = job_list(jobs).JobNum
    assert error_code(lambda: job_list(jobs, offset=total + 5)) == "InvalidParameterValue.OffsetExceed"
    # A duplicate-check JobId is not an upgrade job.
    assert error_code(lambda: job_result(jobs, "iai_merge_person_1_abcdefgh")) == \
        "FailedOperation.UpgradeJobIdNotExist"
    # Version 2018-03-01 answers the same actions.
    from tencentcloud.iai.v20180301 import models
    req = models.GetUpgradeGroupFaceModelVersionJobListRequest()
    assert client.GetUpgradeGroupFaceModelVersionJobList(req).JobNum == total
