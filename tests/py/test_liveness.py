"""Static liveness (DetectLiveFaceAccurate of 2020-03-03, legacy DetectLiveFace) through the SDK's CommonClient:
a photo of a screen is refused, real camera photos pass at the documented threshold (50)."""

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import common_client
from test_faces import EDGE, FACES, b64

SPOOF = EDGE / "spoof" / "cpp-package__inspireface__test_res__data__bulk__rgb_fake.jpg"
LIVE = [
    EDGE / "rotated" / "cpp-package__inspireface__test_res__data__bulk__r0.jpg",
    EDGE / "multi_face" / "examples__two_people.jpg",
    EDGE / "multi_face" / "examples__knn_examples__test__kit_with_rose.jpg",
    FACES / "calibration" / "wild_extra" / "deepface_p01" / "img2.jpg",
    FACES / "calibration" / "wild_extra" / "deepface_p03" / "img48.jpg",
]


def accurate(server, path):
    return common_client(server, version="2020-03-03").call_json("DetectLiveFaceAccurate", {"Image": b64(path)})


def test_a_photo_of_a_screen_is_not_live(server):
    assert accurate(server, SPOOF)["Response"]["Score"] < 50
    legacy = common_client(server).call_json("DetectLiveFace", {"Image": b64(SPOOF)})["Response"]
    assert legacy["IsLiveness"] is False and legacy["FaceModelVersion"] == "3.0"


@pytest.mark.parametrize("path", LIVE, ids=lambda p: p.name)
def test_camera_photos_are_live(server, path):
    got = accurate(server, path)["Response"]
    assert 50 <= got["Score"] <= 100
    assert common_client(server).call_json("DetectLiveFace", {"Image": b64(path)})["Response"]["IsLiveness"] is True


def test_liveness_errors(server):
    with pytest.raises(TencentCloudSDKException) as info:
        accurate(server, EDGE / "no_face" / "syn_grey_640x480.jpg")
    assert info.value.code == "InvalidParameterValue.NoFaceInPhoto"
    with pytest.raises(TencentCloudSDKException) as info:
        common_client(server).call_json("DetectLiveFaceAccurate", {"Image": b64(SPOOF)})
    assert info.value.code == "InvalidAction"
