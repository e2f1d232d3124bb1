"""The search index never disagrees with the database, whatever lands while a write is being processed.

CreateFace and CreatePerson spend a while on the images before they store anything; membership and
deletion calls that land meanwhile must leave the index exactly as a rebuild from SQLite would make it.
Each race is run 20 times through the official SDK: the slow write starts, the other call lands 0.15 s
later, then the searches the symptoms showed up in are checked, and at the end of each race
`iai-server check-index` compares every group's live index with a rebuild from the database."""

import concurrent.futures
import os
import subprocess
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import ROOT, make_client
from test_faces import b64
from test_persons import create_group, create_person, photos

TRIALS = 20
DELAY = 0.15
IDENTITY = "dlib_John_Salley"
FILLER = "dlib_John_Simm"


def binary():
    return os.environ.get("IAI_BIN", str(ROOT / "target" / "debug" / "iai-server"))


def check_index(server):
    """`iai-server check-index` on the server's data directory: (exit status, output)."""
    done = subprocess.run([binary(), "check-index", "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def sdk(call):
    """The call's answer, or the error code it was refused with (either is a legitimate race outcome)."""
    try:
        return call()
    except TencentCloudSDKException as e:
        return e.code


def request(model, **fields):
    """An SDK request object with these fields."""
    req = getattr(models, f"{model}Request")()
    for name, value in fields.items():
        setattr(req, name, value)
    return req


def create_face_request(person_id, images):
    req = models.CreateFaceRequest()
    req.PersonId, req.Images, req.FaceMatchThreshold = person_id, images, 0
    return req


def candidates(client, group_id, image):
    """PersonIds SearchFaces returns from one group for this image (none when the group has no face)."""
    req = models.SearchFacesRequest()
    req.GroupIds, req.Image, req.MaxPersonNum = [group_id], image, 10
    try:
        got = client.SearchFaces(req)
    except TencentCloudSDKException as e:
        assert e.code in ("InvalidParameterValue.NoFaceInGroups", "InvalidParameterValue.GroupIdNotExist"), e
        return {}
    return {c.PersonId: c.Score for r in got.Results for c in r.Candidates}


def groups_of(client, person_id):
    req = models.GetPersonGroupInfoRequest()
    req.PersonId = person_id
    try:
        return {g.GroupId for g in client.GetPersonGroupInfo(req).PersonGroupInfos}
    except TencentCloudSDKException as e:
        assert e.code == "InvalidParameterValue.PersonIdNotExist", e
        return set()


@pytest.fixture(scope="module")
def images():
    paths = photos(IDENTITY)
    return {"first": b64(paths[0]), "more": [b64(p) for p in paths[1:5]], "filler": b64(photos(FILLER)[0])}


def race(server, slow, other):
    """Start `slow`, let `other` land DELAY s later, return both outcomes."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(slow)
        time.sleep(DELAY)
        second = pool.submit(other)
        return first.result(timeout=120), second.result(timeout=120)


def setup(client, unique, images, groups=("a",), filler=True):
    """Groups (a filler person in each keeps searches meaningful) and a person P with one face in them."""
    ids = {g: unique(f"race-{g}") for g in groups}
    for g in ids.values():
        create_group(client, g)
        if filler:
            req = models.CreatePersonRequest()
            req.GroupId, req.PersonId, req.PersonName, req.Image = g, unique("filler"), "filler", images["filler"]
            client.CreatePerson(req)
    person = unique("p")
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName, req.Image = ids[groups[0]], person, "p", images["first"]
    client.CreatePerson(req)
    for g in groups[1:]:
        req = models.CopyPersonRequest()
        req.PersonId, req.GroupIds = person, [ids[g]]
        client.CopyPerson(req)
    return ids, person


def assert_index_equals_database(server):
    status, output = check_index(server)
    assert status == 0, output
    assert "equals a rebuild" in output, output


def test_create_face_against_delete_person_from_group(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a", "b"))
        race(server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
             lambda: sdk(lambda: client.DeletePersonFromGroup(
                 request("DeletePersonFromGroup", PersonId=person, GroupId=ids["a"]))))
        # GetPersonGroupInfo says P left group a: no search of a may find it (it used to, at score 100).
        assert ids["a"] not in groups_of(client, person)
        assert person not in candidates(client, ids["a"], images["more"][0])
        assert person in candidates(client, ids["b"], images["first"])
    assert_index_equals_database(server)


def test_create_face_against_copy_person(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a", "b"))
        # Start with P in a only; the copy into b lands while CreateFace is processing its images.
        req = models.DeletePersonFromGroupRequest()
        req.PersonId, req.GroupId = person, ids["b"]
        client.DeletePersonFromGroup(req)
        added, copied = race(
            server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
            lambda: sdk(lambda: client.CopyPerson(request("CopyPerson", PersonId=person, GroupIds=[ids["b"]]))))
        assert not isinstance(added, str) and added.SucFaceNum == 4, added
        assert not isinstance(copied, str) and copied.SucGroupNum == 1, copied
        # The new faces are in b too (they used to be missing: 18.7 instead of 100).
        assert candidates(client, ids["b"], images["more"][0]).get(person, 0) > 99
    assert_index_equals_database(server)


def test_create_face_against_delete_person(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a",))
        race(server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
             lambda: sdk(lambda: client.DeletePerson(
                 request("DeletePerson", PersonId=person))))
        assert groups_of(client, person) == set()
        assert person not in candidates(client, ids["a"], images["more"][0])
    assert_index_equals_database(server)


def test_create_face_against_delete_face(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a",))
        req = models.GetPersonBaseInfoRequest()
        req.PersonId = person
        first_face = client.GetPersonBaseInfo(req).FaceIds[0]
        race(server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
             lambda: sdk(lambda: client.DeleteFace(request("DeleteFace", PersonId=person, FaceIds=[first_face]))))
    assert_index_equals_database(server)


def test_create_face_against_delete_group(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a", "b"))
        race(server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
             lambda: sdk(lambda: client.DeleteGroup(
                 request("DeleteGroup", GroupId=ids["a"]))))
        assert groups_of(client, person) == {ids["b"]}
    assert_index_equals_database(server)


def test_create_face_against_modify_person_group_info(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        ids, person = setup(client, unique, images, groups=("a",))
        race(server, lambda: sdk(lambda: client.CreateFace(create_face_request(person, images["more"]))),
             lambda: sdk(lambda: client.ModifyPersonGroupInfo(
                 request("ModifyPersonGroupInfo", PersonId=person, GroupId=ids["a"], PersonExDescriptionInfos=[]))))
    assert_index_equals_database(server)


def create_person_request(group_id, person_id, image):
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName, req.Image = group_id, person_id, "q", image
    return req


def test_create_person_against_delete_group(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        group = unique("race-g")
        create_group(client, group)
        person = unique("q")
        created, _ = race(
            server, lambda: sdk(lambda: client.CreatePerson(create_person_request(group, person, images["first"]))),
            lambda: sdk(lambda: client.DeleteGroup(
                request("DeleteGroup", GroupId=group))))
        # Either the person was created before the group went (and went with it), or the group was gone.
        assert groups_of(client, person) == set()
        assert not isinstance(created, str) or created == "InvalidParameterValue.GroupIdNotExist", created
    assert_index_equals_database(server)


def test_create_person_against_a_group_recreated_with_another_model_version(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        group = unique("race-v")
        create_group(client, group, version="3.0")
        person = unique("q")

        def recreate():
            sdk(lambda: client.DeleteGroup(request("DeleteGroup", GroupId=group)))
            return sdk(lambda: create_group(client, group, version="2.0"))

        created, _ = race(
            server, lambda: sdk(lambda: client.CreatePerson(create_person_request(group, person, images["first"]))),
            recreate)
        # A 3.0 embedding must never be stored in the 2.0 group: the person was created before the group
        # went (and went with it), or refused (group missing, or a 2.0 group now: ConflictOperation).
        assert groups_of(client, person) == set(), created
        assert not isinstance(created, str) or created in (
            "InvalidParameterValue.GroupIdNotExist", "FailedOperation.ConflictOperation"), created
    assert_index_equals_database(server)


def test_create_person_against_delete_person_and_modify(server, unique, images):
    client = make_client(server)
    for _ in range(TRIALS):
        group = unique("race-d")
        create_group(client, group)
        person = unique("q")
        race(server, lambda: sdk(lambda: client.CreatePerson(create_person_request(group, person, images["first"]))),
             lambda: [sdk(lambda: client.DeletePerson(
                      request("DeletePerson", PersonId=person))),
                      sdk(lambda: client.ModifyPersonGroupInfo(request("ModifyPersonGroupInfo", PersonId=person, GroupId=group, PersonExDescriptionInfos=[])))])
        in_group = person in candidates(client, group, images["first"])
        assert in_group == (groups_of(client, person) == {group})
    assert_index_equals_database(server)
