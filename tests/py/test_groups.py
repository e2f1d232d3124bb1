"""Group actions through the official Python SDK: every success path and every error code of SPEC.md §7."""

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import common_client


@pytest.fixture
def call(server):
    client = common_client(server)
    return lambda action, params: client.call_json(action, params)["Response"]


def error_code(call, action, params) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call(action, params)
    return info.value.code


def test_create_group_defaults_to_model_3(call, unique):
    gid = unique("g")
    assert call("CreateGroup", {"GroupId": gid, "GroupName": gid})["FaceModelVersion"] == "3.0"
    info = call("GetGroupInfo", {"GroupId": gid})
    assert info["FaceModelVersion"] == "3.0"
    assert info["GroupExDescriptions"] == []
    assert info["Tag"] == ""


@pytest.mark.parametrize("params,code", [
    ({"GroupId": "has space"}, "InvalidParameterValue.GroupIdIllegal"),
    ({"GroupId": "中文"}, "InvalidParameterValue.GroupIdIllegal"),
    ({"GroupId": ""}, "InvalidParameterValue.GroupIdIllegal"),
    ({"GroupId": "a" * 65}, "InvalidParameterValue.GroupIdTooLong"),
    ({"GroupName": ""}, "InvalidParameterValue.GroupNameIllegal"),
    ({"GroupName": "名" * 61}, "InvalidParameterValue.GroupNameTooLong"),
    ({"Tag": "t" * 41}, "InvalidParameterValue.GroupTagTooLong"),
    ({"GroupExDescriptions": ["a", "b", "c", "d", "e", "f"]}, "InvalidParameterValue.GroupExDescriptionsExceed"),
    ({"GroupExDescriptions": ["a", "a"]}, "InvalidParameterValue.GroupExDescriptionsNameIdentical"),
    ({"GroupExDescriptions": ["has space"]}, "InvalidParameterValue.GroupExDescriptionsNameIllegal"),
    ({"GroupExDescriptions": [""]}, "InvalidParameterValue.GroupExDescriptionsNameIllegal"),
    ({"GroupExDescriptions": ["x" * 31]}, "InvalidParameterValue.GroupExDescriptionsNameTooLong"),
    ({"FaceModelVersion": "4.0"}, "InvalidParameterValue.FaceModelVersionIllegal"),
    ({"FaceModelVersion": "3"}, "InvalidParameterValue.FaceModelVersionIllegal"),
])
def test_create_group_rejects_bad_values(call, unique, params, code):
    gid = unique("bad")
    base = {"GroupId": gid, "GroupName": gid}
    base.update(params)
    assert error_code(call, "CreateGroup", base) == code
    if params.get("GroupId") is None:
        assert error_code(call, "GetGroupInfo", {"GroupId": gid}) == "InvalidParameterValue.GroupIdNotExist"


def test_create_group_accepts_the_limits_exactly(call, unique):
    gid = unique("edge") + "-%@#&_"
    gid = gid + "x" * (64 - len(gid))
    params = {"GroupId": gid, "GroupName": "名" * 60, "Tag": "标" * 40,
              "GroupExDescriptions": ["字" * 30, "b", "c", "d", "e"]}
    call("CreateGroup", params)
    info = call("GetGroupInfo", {"GroupId": gid})
    assert info["GroupName"] == params["GroupName"]
    assert info["Tag"] == params["Tag"]
    assert info["GroupExDescriptions"] == params["GroupExDescriptions"]


def test_group_id_and_name_are_unique(call, unique):
    gid, name = unique("dup"), unique("name")
    call("CreateGroup", {"GroupId": gid, "GroupName": name})
    assert error_code(call, "CreateGroup", {"GroupId": gid, "GroupName": unique("other")}) == \
        "InvalidParameterValue.GroupIdAlreadyExist"
    assert error_code(call, "CreateGroup", {"GroupId": unique("other"), "GroupName": name}) == \
        "InvalidParameterValue.GroupNameAlreadyExist"


def test_get_group_list_pages_in_creation_order(server, unique):
    # A fresh look at the whole list: count what is there, add three, page over the end.
    client = common_client(server)
    call = lambda a, p: client.call_json(a, p)["Response"]  # noqa: E731
    before = call("GetGroupList", {"Limit": 1000})["GroupNum"]
    ids = [unique("page") for _ in range(3)]
    for gid in ids:
        call("CreateGroup", {"GroupId": gid, "GroupName": gid})
    total = before + 3
    listed = call("GetGroupList", {"Offset": before, "Limit": 10})
    assert listed["GroupNum"] == total
    assert [g["GroupId"] for g in listed["GroupInfos"]] == ids
    assert [g["GroupId"] for g in call("GetGroupList", {"Offset": before + 1, "Limit": 1})["GroupInfos"]] == [ids[1]]
    default = call("GetGroupList", {})
    assert len(default["GroupInfos"]) == min(10, total)
    g = listed["GroupInfos"][0]
    assert g["CreationTimestamp"] <= g["UpdateTimestamp"]
    assert error_code(call, "GetGroupList", {"Limit": 1001}) == "InvalidParameterValue.LimitExceed"
    assert error_code(call, "GetGroupList", {"Limit": 0}) == "InvalidParameterValue.LimitExceed"
    assert error_code(call, "GetGroupList", {"Offset": total}) == "InvalidParameterValue.OffsetExceed"


def test_modify_group(call, unique):
    gid = unique("mod")
    call("CreateGroup", {"GroupId": gid, "GroupName": gid, "GroupExDescriptions": ["a", "b"], "Tag": "old"})
    new_name = unique("renamed")
    call("ModifyGroup", {"GroupId": gid, "GroupName": new_name, "Tag": "new",
                         "GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 1, "GroupExDescription": "b2"},
                                                     {"GroupExDescriptionIndex": 2, "GroupExDescription": "c"}]})
    info = call("GetGroupInfo", {"GroupId": gid})
    assert (info["GroupName"], info["Tag"], info["GroupExDescriptions"]) == (new_name, "new", ["a", "b2", "c"])
    # Nothing given: nothing changes.
    call("ModifyGroup", {"GroupId": gid})
    assert call("GetGroupInfo", {"GroupId": gid})["GroupName"] == new_name


def test_modify_group_errors(call, unique):
    gid, other = unique("moderr"), unique("other")
    call("CreateGroup", {"GroupId": gid, "GroupName": gid, "GroupExDescriptions": ["a", "b"]})
    call("CreateGroup", {"GroupId": other, "GroupName": other})
    cases = [
        ({"GroupId": unique("missing")}, "InvalidParameterValue.GroupIdNotExist"),
        ({"GroupId": "bad id"}, "InvalidParameterValue.GroupIdIllegal"),
        ({"GroupName": other}, "InvalidParameterValue.GroupNameAlreadyExist"),
        ({"GroupName": "x" * 61}, "InvalidParameterValue.GroupNameTooLong"),
        ({"Tag": "x" * 41}, "InvalidParameterValue.GroupTagTooLong"),
        ({"GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 1, "GroupExDescription": "a"}]},
         "FailedOperation.DuplicatedGroupDescription"),
        ({"GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 0, "GroupExDescription": "a b"}]},
         "InvalidParameterValue.GroupExDescriptionsNameIllegal"),
        ({"GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 5, "GroupExDescription": "f"}]},
         "InvalidParameterValue.GroupExDescriptionsExceed"),
        ({"GroupExDescriptionInfos": [{"GroupExDescriptionIndex": 3, "GroupExDescription": "d"}]},
         "InvalidParameterValue"),
    ]
    for params, code in cases:
        full = {"GroupId": gid}
        full.update(params)
        assert error_code(call, "ModifyGroup", full) == code, params
    # A refused change leaves the group as it was.
    info = call("GetGroupInfo", {"GroupId": gid})
    assert (info["GroupName"], info["GroupExDescriptions"]) == (gid, ["a", "b"])


def test_delete_group(call, unique):
    gid = unique("del")
    call("CreateGroup", {"GroupId": gid, "GroupName": gid})
    call("DeleteGroup", {"GroupId": gid})
    assert error_code(call, "GetGroupInfo", {"GroupId": gid}) == "InvalidParameterValue.GroupIdNotExist"
    assert error_code(call, "DeleteGroup", {"GroupId": gid}) == "InvalidParameterValue.GroupIdNotExist"
    # The name is free again.
    call("CreateGroup", {"GroupId": unique("del2"), "GroupName": gid})


def test_get_person_list_num(call, unique):
    gid = unique("num")
    call("CreateGroup", {"GroupId": gid, "GroupName": gid})
    got = call("GetPersonListNum", {"GroupId": gid})
    assert (got["PersonNum"], got["FaceNum"]) == (0, 0)
    assert error_code(call, "GetPersonListNum", {"GroupId": unique("none")}) == \
        "InvalidParameterValue.GroupIdNotExist"
    assert error_code(call, "GetPersonListNum", {}) == "MissingParameter"


def test_groups_survive_a_restart(server, unique):
    client = common_client(server)
    gid = unique("persist")
    client.call_json("CreateGroup", {"GroupId": gid, "GroupName": gid, "GroupExDescriptions": ["k"], "Tag": "t"})
    before = client.call_json("GetGroupInfo", {"GroupId": gid})["Response"]
    server.restart()
    after = common_client(server).call_json("GetGroupInfo", {"GroupId": gid})["Response"]
    before.pop("RequestId"), after.pop("RequestId")
    assert before == after
