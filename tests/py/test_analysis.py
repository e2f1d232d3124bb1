"""Face analysis through the official SDK: DetectFace attributes and quality, QualityControl, AnalyzeFace,
AnalyzeDenseLandmarks, DetectFaceAttributes and DetectFaceSimilarity (2020-03-03)."""

import pytest
from tencentcloud.iai.v20180301 import models
from tencentcloud.iai.v20200303 import models as models_2020

from conftest import make_client
from test_faces import EDGE, FACES, THRESHOLD, b64, error_code

POSE = EDGE / "pose"
WILD = FACES / "calibration" / "wild_extra"
MASKED = EDGE / "occlusion_partial" / "cpp-package__inspireface__test_res__data__bulk__mask2.jpg"
BLURRED = EDGE / "quality_blur" / "cpp-package__inspireface__test_res__data__bulk__blur.jpg"
SHARP = EDGE / "occlusion_partial" / "tests__unit__dataset__img11_reflection.jpg"
ONE_FACE = EDGE / "formats" / "syn_face.png"
GROUP = EDGE / "multi_face" / "syn_collage_3_people.jpg"
CROWD = EDGE / "multi_face" / "examples__faces__bald_guys.jpg"


def pose_file(name):
    return next(POSE.glob(f"*__{name}.*"))


def detect_attributes(client, path, quality=1, attributes=1, **fields):
    req = models.DetectFaceRequest()
    req.Image, req.NeedFaceAttributes, req.NeedQualityDetection = b64(path), attributes, quality
    for k, v in fields.items():
        setattr(req, k, v)
    return client.DetectFace(req)


def test_head_pose_signs_follow_the_pose_photos(client):
    """Yaw > 0 when the face turns towards the image's right, pitch > 0 looking up, roll > 0 clockwise
    (README, "Attributes"); the pose photos are named by where the face points."""
    pose = {name: detect_attributes(client, pose_file(name)).FaceInfos[0].FaceAttributesInfo
            for name in ["left_face", "right_face", "rise_face", "lower_face", "left_wryneck", "right_wryneck"]}
    assert pose["left_face"].Yaw < -15 < 15 < pose["right_face"].Yaw
    assert pose["rise_face"].Pitch > 5 and pose["lower_face"].Pitch < -5
    assert pose["left_wryneck"].Roll < -15 and pose["right_wryneck"].Roll > 15
    for info in pose.values():
        assert -30 <= info.Yaw <= 30 and -30 <= info.Pitch <= 30 and -180 <= info.Roll <= 180


def test_gender_and_expression_from_the_models(client):
    women = ["faceapi_amy", "faceapi_bernadette", "faceapi_penny", "fnp_angelina_jolie", "fnp_kate_siegel",
             "fr_rose_leslie"]
    men = ["faceapi_howard", "faceapi_leonard", "faceapi_raj", "faceapi_sheldon", "fnp_paul_rudd",
           "fr_kit_harington", "fr_lin_manuel_miranda"]
    right = total = 0
    for people, female in [(women, True), (men, False)]:
        for person in people:
            for path in sorted((WILD / person).iterdir())[:3]:
                info = detect_attributes(client, path, quality=0).FaceInfos[0].FaceAttributesInfo
                assert 0 <= info.Gender <= 100
                right += (info.Gender < 50) == female
                total += 1
    print(f"\nDetectFace gender on {total} wild_extra photos: {right} right")
    assert right / total >= 0.85
    smiling = detect_attributes(client, WILD / "faceapi_amy" / "amy1.png").FaceInfos[0].FaceAttributesInfo
    assert smiling.Expression > 50


def test_attributes_that_are_not_modelled_keep_their_neutral_values(client):
    info = detect_attributes(client, ONE_FACE).FaceInfos[0].FaceAttributesInfo
    assert 15 <= info.Age <= 80  # modelled since AgeGenderNet (test_population.py measures it)
    assert info.Beauty == 0 and info.Glass is False
    assert info.Hat is None and info.Hair is None
    assert info.EyeOpen is True and info.Mask is False
    plain = detect_attributes(client, ONE_FACE, quality=0, attributes=0).FaceInfos[0]
    assert plain.FaceQualityInfo is None
    assert plain.FaceAttributesInfo.Gender == 0 and plain.FaceAttributesInfo.Mask is None
    assert plain.FaceAttributesInfo.Age == 0


def test_masks_are_seen_and_lower_the_covered_parts(client):
    masked = detect_attributes(client, MASKED).FaceInfos[0]
    assert masked.FaceAttributesInfo.Mask is True
    parts = masked.FaceQualityInfo.Completeness
    assert parts.Mouth < 50 and parts.Nose < 50 and parts.Eye > 80
    assert detect_attributes(client, SHARP).FaceInfos[0].FaceAttributesInfo.Mask is False


def test_quality_measures_blur_light_and_cut_faces(client):
    blurred = detect_attributes(client, BLURRED).FaceInfos[0].FaceQualityInfo
    sharp = detect_attributes(client, SHARP).FaceInfos[0].FaceQualityInfo
    assert blurred.Sharpness < 40 < 80 <= sharp.Sharpness
    assert blurred.Score < sharp.Score and sharp.Score >= 70
    assert blurred.Brightness < 30 < sharp.Brightness < 70
    cut = EDGE / "occlusion_partial" / "tests__test_images__obama_partial_face2.jpg"
    parts = detect_attributes(client, cut).FaceInfos[0].FaceQualityInfo.Completeness
    assert min(parts.Cheek, parts.Chin, parts.Eyebrow) < 80
    assert all(0 <= v <= 100 for v in [sharp.Score, sharp.Sharpness, sharp.Brightness])


def test_quality_control_refuses_poor_faces(client):
    def compare(a, b, level):
        req = models.CompareFaceRequest()
        req.ImageA, req.ImageB, req.QualityControl = b64(a), b64(b), level
        return client.CompareFace(req)

    assert compare(BLURRED, SHARP, 0).Score >= 0
    assert error_code(lambda: compare(BLURRED, SHARP, 3)) == "FailedOperation.FaceQualityNotQualified"
    assert error_code(lambda: compare(SHARP, MASKED, 1)) == "FailedOperation.FaceQualityNotQualified"
    assert compare(SHARP, SHARP, 1).Score > 90


def test_analyze_face_returns_90_points_per_face(client):
    req = models.AnalyzeFaceRequest()
    req.Image = b64(ONE_FACE)
    got = client.AnalyzeFace(req)
    assert (got.ImageWidth, got.ImageHeight, got.FaceModelVersion) == (348, 522, "3.0")
    shape = got.FaceShapeSet[0]
    counts = [len(shape.FaceProfile), len(shape.LeftEye), len(shape.RightEye), len(shape.LeftEyeBrow),
              len(shape.RightEyeBrow), len(shape.Mouth), len(shape.Nose), len(shape.LeftPupil),
              len(shape.RightPupil)]
    assert counts == [21, 8, 8, 8, 8, 22, 13, 1, 1] and sum(counts) == 90

    def centre(points):
        return sum(p.X for p in points) / len(points), sum(p.Y for p in points) / len(points)

    left, right, mouth = centre(shape.LeftEye), centre(shape.RightEye), centre(shape.Mouth)
    assert left[0] < right[0] and mouth[1] > max(left[1], right[1])
    assert centre(shape.LeftEyeBrow)[1] < left[1]
    assert abs(shape.LeftPupil[0].X - left[0]) < 3
    req.Image, req.Mode = b64(GROUP), 0
    assert len(client.AnalyzeFace(req).FaceShapeSet) == 3
    req.Image = b64(CROWD)
    assert len(client.AnalyzeFace(req).FaceShapeSet) == 10
    req.Mode = 1
    assert len(client.AnalyzeFace(req).FaceShapeSet) == 1
    req.Mode = 2
    assert error_code(lambda: client.AnalyzeFace(req)) == "InvalidParameter.InvalidParameter"


def test_analyze_dense_landmarks(client):
    req = models.AnalyzeDenseLandmarksRequest()
    req.Image = b64(ONE_FACE)
    shape = client.AnalyzeDenseLandmarks(req).DenseFaceShapeSet[0]
    assert shape.Width > 50 and len(shape.MouthOutside) == 20 and len(shape.CentralAxis) == 28
    assert len(shape.LeftPupil) == 1 and len(shape.Forehead) > 0 and len(shape.LeftEyeBags) > 0
    assert shape.Forehead[4].Y < shape.Chin[6].Y
    req.Image, req.Mode = b64(CROWD), 0
    assert len(client.AnalyzeDenseLandmarks(req).DenseFaceShapeSet) == 5
    req.Image, req.Mode, req.FaceModelVersion = b64(ONE_FACE), 0, "2.0"
    assert error_code(lambda: client.AnalyzeDenseLandmarks(req)) == "InvalidParameterValue.FaceModelVersionIllegal"


@pytest.mark.parametrize("name,accepted", [
    ("syn_face_2000px.png", True), ("syn_face_2001px.png", False),
    ("syn_face_4000px.jpg", True), ("syn_face_4001px.jpg", False),
])
def test_long_side_limits_of_the_3_0_analysis_actions(client, name, accepted):
    req = models.DetectFaceAttributesRequest()
    req.Image = b64(EDGE / "large" / name)
    if accepted:
        assert len(client.DetectFaceAttributes(req).FaceDetailInfos) == 1
    else:
        assert error_code(lambda: client.DetectFaceAttributes(req)) == "FailedOperation.ImageResolutionExceed"


def test_detect_face_attributes_fills_what_was_asked(client):
    req = models.DetectFaceAttributesRequest()
    req.Image, req.FaceAttributesType = b64(MASKED), "Gender,HEADPOSE, mask,Eye,mouth,Smile,Emotion,Age"
    got = client.DetectFaceAttributes(req)
    info = got.FaceDetailInfos[0].FaceDetailAttributesInfo
    assert got.FaceModelVersion == "3.0" and got.FaceDetailInfos[0].FaceRect.Width > 0
    assert info.Mask.Type == 4 and info.Mask.Probability > 0.5
    assert info.Gender.Type in (0, 1) and 0.5 <= info.Gender.Probability <= 1
    assert info.HeadPose.Roll != 0 and info.Eye.EyeOpen.Type == 0 and info.Mouth.MouthOpen.Probability > 0
    # An age is given (a mask hides half the face: the model reads this adult as 13); hats are not modelled.
    assert 0 < info.Age <= 100 and info.Hat.Style.Probability == 0
    req.Image, req.FaceAttributesType = b64(WILD / "faceapi_amy" / "amy1.png"), "emotion,smile"
    info = client.DetectFaceAttributes(req).FaceDetailInfos[0].FaceDetailAttributesInfo
    assert info.Emotion.Type == 1 and info.Smile > 50 and info.Gender.Probability == 0 and info.Age == 0
    req.FaceAttributesType = None
    info = client.DetectFaceAttributes(req).FaceDetailInfos[0].FaceDetailAttributesInfo
    assert info.Smile == 0 and info.HeadPose.Yaw == 0
    req.FaceAttributesType = "gender,wings"
    assert error_code(lambda: client.DetectFaceAttributes(req)) == "InvalidParameter.InvalidParameter"
    req.FaceAttributesType, req.MaxFaceNum = "gender", 121
    assert error_code(lambda: client.DetectFaceAttributes(req)) == "LimitExceeded.ErrorFaceNumExceed"
    req.MaxFaceNum, req.Image = 10, b64(CROWD)
    infos = client.DetectFaceAttributes(req).FaceDetailInfos
    assert len(infos) > 5
    # Attributes for the 5 largest faces only.
    assert all(i.FaceDetailAttributesInfo.Gender.Probability > 0 for i in infos[:5])
    assert all(i.FaceDetailAttributesInfo.Gender.Probability == 0 for i in infos[5:])


def test_detect_face_similarity_of_2020_03_03(server):
    client = make_client(server, version="2020-03-03")
    tests = FACES / "tests"
    req = models_2020.DetectFaceSimilarityRequest()
    obama, biden = sorted((tests / "fr_obama").iterdir()), sorted((tests / "fr_biden").iterdir())
    req.ImageA, req.ImageB = b64(obama[0]), b64(obama[1])
    assert client.DetectFaceSimilarity(req).Score >= THRESHOLD["3.0"]
    req.ImageB = b64(biden[0])
    assert client.DetectFaceSimilarity(req).Score < THRESHOLD["3.0"]
    req.QualityControl = 9
    assert error_code(lambda: client.DetectFaceSimilarity(req)) == "InvalidParameterValue.QualityControlIllegal"
