"""Persons, faces, search and verification through the official SDK against the live server: enrolment of
real photos, 1:N identification, every rule and error code, concurrency and restarts."""

import concurrent.futures
import json

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import make_client
from test_faces import EDGE, FACES, b64, error_code

TESTS = FACES / "tests"
ENROLLED = ["compreface_A", "dlib_John_Salley", "dlib_John_Savage", "dlib_John_Schneider", "dlib_John_Shimkus",
            "dlib_John_Simm", "fr_obama", "orl_s1", "orl_s2", "orl_s3", "orl_s4", "orl_s5"]
STRANGERS = ["compreface_B", "compreface_C", "compreface_loadtest_FACE_1", "compreface_loadtest_FACE_2",
             "compreface_loadtest_FACE_3", "fr_biden"]
ENROL_PHOTOS = 3
# README "Search": a stranger's best candidate stays under this score in libraries of this size.
SEARCH_THRESHOLD = 50.0
ONE_FACE = EDGE / "formats" / "syn_face.png"


def photos(identity):
    return sorted((TESTS / identity).iterdir())


def create_group(client, group_id, version="3.0", fields=None):
    req = models.CreateGroupRequest()
    req.GroupId, req.GroupName, req.FaceModelVersion = group_id, group_id, version
    req.GroupExDescriptions = fields
    return client.CreateGroup(req)


def create_person(client, group_id, person_id, path, **fields):
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName, req.Image = group_id, person_id, person_id, b64(path)
    for k, v in fields.items():
        setattr(req, k, v)
    return client.CreatePerson(req)


def create_face(client, person_id, paths, threshold=None):
    req = models.CreateFaceRequest()
    req.PersonId, req.Images = person_id, [b64(p) for p in paths]
    req.FaceMatchThreshold = threshold
    return client.CreateFace(req)


def search(client, action, group_ids, path, **fields):
    req = getattr(models, f"{action}Request")()
    req.GroupIds, req.Image = group_ids, b64(path)
    for k, v in fields.items():
        setattr(req, k, v)
    return getattr(client, action)(req)


@pytest.fixture(scope="module")
def library(server, tmp_path_factory):
    """A group with 12 identities, 3 photos each (CreatePerson + CreateFace)."""
    client = make_client(server)
    group = "lib-" + tmp_path_factory.mktemp("x").name[-8:].replace("_", "-")
    create_group(client, group)
    for identity in ENROLLED:
        first, *rest = photos(identity)[:ENROL_PHOTOS]
        create_person(client, group, identity, first)
        got = create_face(client, identity, rest, threshold=0)
        assert got.SucFaceNum == len(rest) and got.RetCode == [0] * len(rest)
    return group


def probes():
    return [(identity, path) for identity in ENROLLED for path in photos(identity)[ENROL_PHOTOS:]]


def test_search_identifies_enrolled_people_and_no_stranger(server, library):
    client = make_client(server)
    wrong, stranger_best = [], []
    for action in ["SearchFaces", "SearchPersons"]:
        for identity, path in probes():
            got = search(client, action, [library], path, MaxPersonNum=3)
            top = got.Results[0].Candidates[0]
            if top.PersonId != identity:
                wrong.append((action, path.name, top.PersonId, top.Score))
        for identity in STRANGERS:
            for path in photos(identity):
                got = search(client, action, [library], path)
                stranger_best.append(got.Results[0].Candidates[0].Score)
    print(f"\n{len(probes())} probes x 2 searches: {len(wrong)} wrong top-1 {wrong}; strangers' best scores: "
          f"{sorted(stranger_best)[-5:]}")
    assert wrong == []
    assert max(stranger_best) < SEARCH_THRESHOLD


def test_search_answers_in_tencents_shape(server, library):
    client = make_client(server)
    probe = photos("fr_obama")[-1]
    got = search(client, "SearchFaces", [library], probe, MaxPersonNum=4, NeedPersonInfo=1)
    assert got.FaceNum == 3 * len(ENROLLED) and got.FaceModelVersion == "3.0"
    result = got.Results[0]
    assert result.RetCode == 0 and result.FaceRect.Width > 0
    scores = [c.Score for c in result.Candidates]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    assert len({c.PersonId for c in result.Candidates}) == 4
    top = result.Candidates[0]
    assert top.FaceId.isdigit() and top.PersonName == "fr_obama" and top.Gender == 0
    assert top.PersonGroupInfos[0].GroupId == library
    plain = search(client, "SearchFaces", [library], probe).Results[0].Candidates[0]
    assert plain.PersonName is None and plain.PersonGroupInfos is None
    high = search(client, "SearchFaces", [library], probe, FaceMatchThreshold=99.9, MaxPersonNum=10)
    assert all(c.Score >= 99.9 for c in high.Results[0].Candidates)
    persons = search(client, "SearchPersons", [library], probe)
    assert persons.PersonNum == len(ENROLLED) and persons.Results[0].Candidates[0].FaceId == ""
    by_group = search(client, "SearchFacesReturnsByGroup", [library], probe, MaxPersonNumPerGroup=2)
    group_result = by_group.ResultsReturnsByGroup[0]
    assert group_result.GroupCandidates[0].GroupId == library
    assert len(group_result.GroupCandidates[0].Candidates) == 2
    assert group_result.GroupCandidates[0].Candidates[0].PersonId == "fr_obama"
    by_group = search(client, "SearchPersonsReturnsByGroup", [library], probe)
    assert by_group.PersonNum == len(ENROLLED)
    assert by_group.ResultsReturnsByGroup[0].GroupCandidates[0].Candidates[0].PersonId == "fr_obama"
    crowd = search(client, "SearchFaces", [library], EDGE / "multi_face" / "syn_collage_3_people.jpg", MaxFaceNum=3)
    assert len(crowd.Results) == 3
    # Persons A, B, C side by side: only A is enrolled.
    tops = [(r.Candidates[0].PersonId, r.Candidates[0].Score) for r in crowd.Results]
    assert [person for person, score in tops if score >= SEARCH_THRESHOLD] == ["compreface_A"], tops


def test_search_errors(server, library, unique):
    client = make_client(server)
    probe = ONE_FACE
    assert error_code(lambda: search(client, "SearchFaces", [library, "no-such-group"], probe)) == \
        "InvalidParameterValue.GroupIdNotExist"
    assert error_code(lambda: search(client, "SearchFaces", [f"g{i}" for i in range(101)], probe)) == \
        "InvalidParameterValue.GroupIdsExceed"
    assert error_code(lambda: search(client, "SearchFacesReturnsByGroup", [f"g{i}" for i in range(61)], probe)) \
        == "InvalidParameterValue.GroupIdsExceed"
    assert error_code(lambda: search(client, "SearchFaces", [library], probe, MaxPersonNum=101)) == \
        "InvalidParameterValue.SearchPersonsExceed"
    assert error_code(lambda: search(client, "SearchFaces", [library], probe, MaxFaceNum=11)) == \
        "LimitExceeded.ErrorFaceNumExceed"
    assert error_code(lambda: search(client, "SearchFaces", [library], probe, FaceMatchThreshold=100)) == \
        "InvalidParameterValue.FaceMatchThresholdIllegal"
    old, empty = unique("v2"), unique("empty")
    create_group(client, old, "2.0")
    create_group(client, empty)
    assert error_code(lambda: search(client, "SearchFaces", [library, old], probe)) == \
        "FailedOperation.AcrossVersionsError"
    assert error_code(lambda: search(client, "SearchFaces", [empty], probe)) == \
        "InvalidParameterValue.NoFaceInGroups"
    create_person(client, old, unique("p"), ONE_FACE)
    assert error_code(lambda: search(client, "SearchPersons", [old], probe)) == \
        "InvalidParameterValue.UnsupportedGroupFaceModelVersion"
    assert search(client, "SearchFaces", [old], probe).FaceModelVersion == "2.0"
    no_face = EDGE / "no_face" / "syn_grey_640x480.jpg"
    assert error_code(lambda: search(client, "SearchFaces", [library], no_face)) == \
        "InvalidParameterValue.NoFaceInPhoto"
    blurred = EDGE / "quality_blur" / "cpp-package__inspireface__test_res__data__bulk__blur.jpg"
    got = search(client, "SearchFaces", [library], blurred, QualityControl=3)
    assert got.Results[0].RetCode == -1601 and got.Results[0].Candidates == []


def test_verify_face_and_person(server, library):
    client = make_client(server)
    for action in ["VerifyFace", "VerifyPerson"]:
        req = getattr(models, f"{action}Request")()
        req.PersonId, req.Image = "fr_obama", b64(photos("fr_obama")[-1])
        same = getattr(client, action)(req)
        assert same.Score >= 40 and same.FaceModelVersion == "3.0"
        req.Image = b64(photos("fr_biden")[0])
        other = getattr(client, action)(req)
        assert other.Score < 40 and other.IsMatch is False
        req.PersonId = "nobody"
        assert error_code(lambda: getattr(client, action)(req)) == "InvalidParameterValue.PersonIdNotExist"


def test_person_lifecycle_and_rules(server, unique):
    client = make_client(server)
    g1, g2, person = unique("g"), unique("g"), unique("p")
    create_group(client, g1, fields=["dept", "badge"])
    create_group(client, g2, fields=["room"])
    info = [models.PersonExDescriptionInfo() for _ in range(2)]
    info[0].PersonExDescriptionIndex, info[0].PersonExDescription = 1, "B-17"
    info[1].PersonExDescriptionIndex, info[1].PersonExDescription = 0, "R&D"
    a = photos("compreface_A")
    got = create_person(client, g1, person, a[0], Gender=2, PersonExDescriptionInfos=info)
    assert got.FaceId.isdigit() and len(got.FaceId) == 19 and got.FaceRect.Width > 0 and got.SimilarPersonId == ""
    assert error_code(lambda: create_person(client, g1, person, a[0])) == \
        "InvalidParameterValue.PersonIdAlreadyExist"
    assert error_code(lambda: create_person(client, "no-group", unique("p"), a[0])) == \
        "InvalidParameterValue.GroupIdNotExist"
    assert error_code(lambda: create_person(client, g1, unique("p"), a[0], Gender=3)) == \
        "InvalidParameterValue.PersonGenderIllegal"
    assert error_code(lambda: create_person(client, g1, "bad id", a[0])) == "InvalidParameterValue.PersonIdIllegal"
    assert error_code(lambda: create_person(client, g1, "x" * 65, a[0])) == "InvalidParameterValue.PersonIdTooLong"
    assert error_code(lambda: create_person(client, g1, unique("p"), EDGE / "no_face" / "syn_grey_640x480.jpg")) \
        == "InvalidParameterValue.NoFaceInPhoto"
    # UniquePersonControl: the same face again is refused with the look-alike's id, nothing is created.
    twin = unique("twin")
    got = create_person(client, g1, twin, a[0], UniquePersonControl=4)
    assert got.SimilarPersonId == person and got.FaceId == ""
    assert error_code(lambda: get_base(client, twin)) == "InvalidParameterValue.PersonIdNotExist"
    # CreateFace: per-image RetCode; FaceMatchThreshold against the person's faces.
    no_face = EDGE / "no_face" / "syn_grey_640x480.jpg"
    got = create_face(client, person, [a[1], no_face, photos("fr_biden")[0]], threshold=40)
    assert got.RetCode == [0, -1101, -1604] and got.SucIndexes == [0] and got.SucFaceNum == 1
    assert len(got.SucFaceRects) == 1
    assert error_code(lambda: create_face(client, person, [a[2]] * 5)) == \
        "InvalidParameterValue.UploadFaceNumExceed"
    create_face(client, person, [a[2], a[3], a[4]], threshold=0)
    assert error_code(lambda: create_face(client, person, [a[5]], threshold=0)) == \
        "InvalidParameterValue.PersonFaceNumExceed"
    base = get_base(client, person)
    assert base.PersonName == person and base.Gender == 2 and len(base.FaceIds) == 5
    # GetPersonList: values listed per custom field, face ids, totals.
    req = models.GetPersonListRequest()
    req.GroupId = g1
    listed = client.GetPersonList(req)
    assert listed.PersonNum == 1 and listed.FaceNum == 5 and listed.FaceModelVersion == "3.0"
    assert listed.PersonInfos[0].PersonExDescriptions == ["R&D", "B-17"]
    assert sorted(listed.PersonInfos[0].FaceIds) == sorted(base.FaceIds)
    assert listed.PersonInfos[0].CreationTimestamp > 1_700_000_000_000
    req.Limit = 1001
    assert error_code(lambda: client.GetPersonList(req)) == "InvalidParameterValue.LimitExceed"
    # CopyPerson and the person's groups.
    copy = models.CopyPersonRequest()
    copy.PersonId, copy.GroupIds = person, [g2]
    assert client.CopyPerson(copy).SucGroupIds == [g2]
    assert search(client, "SearchFaces", [g2], a[5]).Results[0].Candidates[0].PersonId == person
    groups_req = models.GetPersonGroupInfoRequest()
    groups_req.PersonId = person
    groups_of = client.GetPersonGroupInfo(groups_req)
    assert groups_of.GroupNum == 2 and [g.GroupId for g in groups_of.PersonGroupInfos] == [g1, g2]
    assert groups_of.PersonGroupInfos[1].PersonExDescriptions == [""]
    modify = models.ModifyPersonGroupInfoRequest()
    modify.GroupId, modify.PersonId = g2, person
    modify.PersonExDescriptionInfos = [models.PersonExDescriptionInfo()]
    modify.PersonExDescriptionInfos[0].PersonExDescriptionIndex = 0
    modify.PersonExDescriptionInfos[0].PersonExDescription = "301"
    client.ModifyPersonGroupInfo(modify)
    assert client.GetPersonGroupInfo(groups_req).PersonGroupInfos[1].PersonExDescriptions == ["301"]
    modify.PersonExDescriptionInfos[0].PersonExDescriptionIndex = 1
    assert error_code(lambda: client.ModifyPersonGroupInfo(modify)) == \
        "InvalidParameterValue.PersonExDescriptionInfosExceed"
    rename = models.ModifyPersonBaseInfoRequest()
    rename.PersonId, rename.PersonName, rename.Gender = person, "Renamed", 1
    client.ModifyPersonBaseInfo(rename)
    assert (get_base(client, person).PersonName, get_base(client, person).Gender) == ("Renamed", 1)
    rename.Gender = 7
    assert error_code(lambda: client.ModifyPersonBaseInfo(rename)) == "InvalidParameterValue.PersonGenderIllegal"
    # DeleteFace never removes the last face.
    delete = models.DeleteFaceRequest()
    delete.PersonId, delete.FaceIds = person, base.FaceIds[:2] + ["123"]
    got = client.DeleteFace(delete)
    assert got.SucDeletedNum == 2 and sorted(got.SucFaceIds) == sorted(base.FaceIds[:2])
    delete.FaceIds = base.FaceIds[2:]
    assert error_code(lambda: client.DeleteFace(delete)) == "InvalidParameterValue.DeleteFaceNumExceed"
    num = models.GetPersonListNumRequest()
    num.GroupId = g2
    assert (client.GetPersonListNum(num).PersonNum, client.GetPersonListNum(num).FaceNum) == (1, 3)
    # DeletePersonFromGroup: the person goes with its last group.
    leave = models.DeletePersonFromGroupRequest()
    leave.PersonId, leave.GroupId = person, g1
    client.DeletePersonFromGroup(leave)
    assert error_code(lambda: client.DeletePersonFromGroup(leave)) == "FailedOperation.GroupPersonMapNotExist"
    assert get_base(client, person).PersonName == "Renamed"
    leave.GroupId = g2
    client.DeletePersonFromGroup(leave)
    assert error_code(lambda: get_base(client, person)) == "InvalidParameterValue.PersonIdNotExist"
    assert error_code(lambda: search(client, "SearchFaces", [g2], a[5])) == "InvalidParameterValue.NoFaceInGroups"


def get_base(client, person_id):
    req = models.GetPersonBaseInfoRequest()
    req.PersonId = person_id
    return client.GetPersonBaseInfo(req)


def test_delete_person_and_delete_group_update_search(server, unique):
    client = make_client(server)
    g1, g2, shared, only = unique("g"), unique("g"), unique("p"), unique("p")
    create_group(client, g1)
    create_group(client, g2)
    obama, salley = photos("fr_obama"), photos("dlib_John_Salley")
    create_person(client, g1, shared, obama[0])
    create_person(client, g1, only, salley[0])
    copy = models.CopyPersonRequest()
    copy.PersonId, copy.GroupIds = shared, [g2]
    client.CopyPerson(copy)
    deleted = models.DeleteGroupRequest()
    deleted.GroupId = g1
    client.DeleteGroup(deleted)
    assert get_base(client, shared).PersonName == shared
    assert error_code(lambda: get_base(client, only)) == "InvalidParameterValue.PersonIdNotExist"
    assert search(client, "SearchFaces", [g2], obama[1]).Results[0].Candidates[0].PersonId == shared
    req = models.DeletePersonRequest()
    req.PersonId = shared
    client.DeletePerson(req)
    assert error_code(lambda: search(client, "SearchFaces", [g2], obama[1])) == \
        "InvalidParameterValue.NoFaceInGroups"


def test_concurrent_writers_and_searchers_lose_nothing_and_see_every_answered_write(server, unique):
    """Eight writers enrol persons while searchers run; every answered CreatePerson is found by the
    search that follows it, and the totals are exact."""
    group = unique("conc")
    create_group(make_client(server), group)
    people = [("orl_s1", p) for p in photos("orl_s1")] + [("orl_s2", p) for p in photos("orl_s2")]

    def enrol(i):
        client = make_client(server)
        person = f"{group}-p{i}"
        identity, path = people[i]
        got = create_person(client, group, person, path)
        # No stale read after an answered write: the person is searchable at once.
        found = search(client, "SearchFaces", [group], path, MaxPersonNum=100)
        assert person in {c.PersonId for c in found.Results[0].Candidates}
        return got.FaceId

    def searcher(_):
        client = make_client(server)
        for _ in range(5):
            try:
                search(client, "SearchPersons", [group], people[0][1])
            except TencentCloudSDKException as e:
                assert e.code == "InvalidParameterValue.NoFaceInGroups"
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        writes = pool.map(enrol, range(len(people)))
        reads = pool.map(searcher, range(4))
        face_ids = list(writes)
        list(reads)
    assert len(set(face_ids)) == len(people)
    num = models.GetPersonListNumRequest()
    num.GroupId = group
    got = make_client(server).GetPersonListNum(num)
    assert (got.PersonNum, got.FaceNum) == (len(people), len(people))


def test_restart_keeps_persons_faces_and_the_index(server, unique):
    client = make_client(server)
    group, person = unique("keep"), unique("p")
    create_group(client, group)
    create_person(client, group, person, photos("dlib_John_Simm")[0])
    create_face(client, person, photos("dlib_John_Simm")[1:3], threshold=0)
    before = search(client, "SearchPersons", [group], photos("dlib_John_Simm")[5])
    server.restart()
    client = make_client(server)
    after = search(client, "SearchPersons", [group], photos("dlib_John_Simm")[5])
    assert json.loads(after.to_json_string())["Results"] == json.loads(before.to_json_string())["Results"]
    assert len(get_base(client, person).FaceIds) == 3
