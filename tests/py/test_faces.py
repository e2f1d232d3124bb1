"""DetectFace and CompareFace through the official Python SDK on the real photos of ../shared/faces."""

import base64
import concurrent.futures
import csv
import io
import re
import threading

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from PIL import Image
from tencentcloud.iai.v20180301 import models

from conftest import SHARED, common_client, make_client

FACES = SHARED / "faces"
EDGE = FACES / "edge_cases"

# Documented same-person thresholds (README, "Scores"): the FAR 1e-3 knots.
THRESHOLD = {"3.0": 40.0, "2.0": 70.0}


def b64(path) -> str:
    """The file as a client sends it; PGM (not an image type Tencent accepts) is converted to PNG first."""
    if path.suffix == ".pgm":
        out = io.BytesIO()
        Image.open(path).save(out, format="PNG")
        return base64.b64encode(out.getvalue()).decode()
    return base64.b64encode(path.read_bytes()).decode()


def detect(client, path, **fields):
    req = models.DetectFaceRequest()
    req.Image = b64(path)
    for k, v in fields.items():
        setattr(req, k, v)
    return client.DetectFace(req)


def manifest(folder):
    with open(folder / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def error_code(call):
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value.code


def test_detect_face_on_one_face(client):
    got = detect(client, EDGE / "formats" / "syn_face.png")
    assert (got.ImageWidth, got.ImageHeight) == (348, 522)
    assert len(got.FaceInfos) == 1
    face = got.FaceInfos[0]
    assert 0 <= face.X < 348 and 0 <= face.Y < 522 and 60 < face.Width < 348 and 60 < face.Height < 522
    assert got.FaceModelVersion == "3.0"


def test_detect_face_finds_the_annotated_faces_largest_first(client):
    rows = [r for r in manifest(EDGE) if r["path"].startswith("multi_face/") and "expected_faces=" in r["note"]]
    assert len(rows) >= 8
    for row in rows:
        expected = int(re.search(r"expected_faces=(\d+)", row["note"]).group(1))
        got = detect(client, EDGE / row["path"], MaxFaceNum=120, MinFaceSize=20)
        assert len(got.FaceInfos) == expected, row["path"]
        areas = [f.Width * f.Height for f in got.FaceInfos]
        assert areas == sorted(areas, reverse=True), row["path"]
        # MaxFaceNum keeps the largest.
        assert len(detect(client, EDGE / row["path"], MaxFaceNum=1, MinFaceSize=20).FaceInfos) == 1


def test_min_face_size_and_max_face_num_limits(client):
    path = EDGE / "formats" / "syn_face.png"
    assert error_code(lambda: detect(client, path, MinFaceSize=2000)) == "FailedOperation.FaceSizeTooSmall"
    assert error_code(lambda: detect(client, path, MaxFaceNum=121)) == "LimitExceeded.ErrorFaceNumExceed"
    assert error_code(lambda: detect(client, path, FaceModelVersion="1.0")) == \
        "InvalidParameterValue.FaceModelVersionIllegal"
    assert error_code(lambda: client.DetectFace(models.DetectFaceRequest())) == "InvalidParameterValue.ImageEmpty"


# What each edge case must answer: a Tencent error code, or "ok" (faces found).
EDGE_EXPECT = {
    "formats/syn_face.gif": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face_animated.gif": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face.webp": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face_lossless.webp": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face.tiff": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face.jp2": "FailedOperation.ImageDecodeFailed",
    "formats/syn_face.bmp": "ok",
    "formats/syn_face.png": "ok",
    "formats/syn_face_rgba.png": "ok",
    # 16-bit samples holding only 5..255 of 65535: rendered faithfully the picture is black.
    "formats/syn_face_16bit_gray.png": "InvalidParameterValue.NoFaceInPhoto",
    "formats/syn_face_cmyk.jpg": "ok",
    "formats/syn_face_progressive.jpg": "ok",
    "formats_mismatched_ext/syn_png_data.jpg": "ok",
    "formats_mismatched_ext/syn_gif_data_no_extension": "FailedOperation.ImageDecodeFailed",
    "formats_mismatched_ext/syn_webp_data.jpg": "FailedOperation.ImageDecodeFailed",
    "grayscale/att_faces__s1__1.pgm": "FailedOperation.ImageDecodeFailed",
    "grayscale/syn_face_gray.jpg": "ok",
    "grayscale/syn_face_gray.png": "ok",
    "large/syn_face_noisy_base64_over_5MiB.jpg": "FailedOperation.ImageSizeExceed",
    "large/syn_face_noisy_over_5MB.jpg": "FailedOperation.ImageSizeExceed",
    "large/syn_pixel_bomb_20000x20000.png": "FailedOperation.ImageResolutionExceed",
    "large/syn_face_4001px.jpg": "ok",
    "large/embedding-calculator__sample_images__001_A.jpg": "ok",
    "no_face/syn_grey_640x480.jpg": "InvalidParameterValue.NoFaceInPhoto",
    "no_face/syn_noise_640x480.png": "InvalidParameterValue.NoFaceInPhoto",
    "no_face/embedding-calculator__sample_images__017_0.jpg": "InvalidParameterValue.NoFaceInPhoto",
    "non_image_or_corrupt/syn_empty.jpg": "InvalidParameterValue.ImageEmpty",
    "non_image_or_corrupt/syn_html.png": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/syn_minimal.pdf": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/syn_random_4096.bin": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/syn_random_4096.jpg": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/syn_soi_only.jpg": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/syn_text.jpg": "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/embedding-calculator__src__services__imgtools__test__files__empty.png":
        "FailedOperation.ImageDecodeFailed",
    "non_image_or_corrupt/embedding-calculator__src__services__imgtools__test__files__corrupted.png":
        "FailedOperation.ImageDecodeFailed",
    "tiny/syn_1x1.png": "FailedOperation.ImageResolutionTooSmall",
    "tiny/syn_face_40px.jpg": "FailedOperation.ImageResolutionTooSmall",
    "rotated_exif/syn_face_exif_orientation3.jpg": "ok",
    "rotated_exif/syn_face_exif_orientation6.jpg": "ok",
    "rotated_exif/syn_face_exif_orientation8.jpg": "ok",
    "rotated/syn_face_rot30ccw.jpg": "ok",
    "occlusion_partial/cpp-package__inspireface__test_res__data__bulk__mask2.jpg": "ok",
    "quality_blur/cpp-package__inspireface__test_res__data__bulk__blur.jpg": "ok",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.bmp": "ok",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.gif":
        "FailedOperation.ImageDecodeFailed",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.ico":
        "FailedOperation.ImageDecodeFailed",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.jpeg": "ok",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.png": "ok",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.tiff":
        "FailedOperation.ImageDecodeFailed",
    "formats/embedding-calculator__src__services__imgtools__test__files__einstein.webp":
        "FailedOperation.ImageDecodeFailed",
    "formats/tests__test_images__32bit.png": "ok",
    "formats_mismatched_ext/cpp-package__inspireface__test_res__data__bulk__jntm.jpg": "ok",
    "large/embedding-calculator__sample_images__002_A.jpg": "ok",
    "large/embedding-calculator__sample_images__003_A.jpg": "ok",
    "large/syn_face_2000px.png": "ok",
    "large/syn_face_4000px.jpg": "ok",
    "large/syn_face_2001px.png": "ok",
    "no_face/cpp-package__inspireface__test_res__data__bulk__view.jpg": "InvalidParameterValue.NoFaceInPhoto",
    "no_face/cpp-package__inspireface__test_res__data__crop__no_face.png": "InvalidParameterValue.NoFaceInPhoto",
    # YuNet scores the dogs' faces up to 0.82; the face mesh's face flag turns them down.
    "no_face/examples__faces__dogs.jpg": "InvalidParameterValue.NoFaceInPhoto",
    # Truncated JPEGs: the decoder pads the missing rows (as lenient decoders do) and the face is there.
    "non_image_or_corrupt/embedding-calculator__src__services__imgtools__test__files__truncated.jpg": "ok",
    "non_image_or_corrupt/syn_truncated_half.jpg": "ok",
    # 200 inverted bytes smear the picture below them; what is left shows no face.
    "non_image_or_corrupt/syn_bitflipped.jpg": "InvalidParameterValue.NoFaceInPhoto",
    # A drawn face is a face to the detector, as for Tencent's.
    "non_photo_face/cpp-package__inspireface__test_res__data__bulk__kun_cartoon_crop.jpg": "ok",
    "occlusion_partial/tests__test_images__obama_partial_face.jpg": "ok",
    "occlusion_partial/tests__test_images__obama_partial_face2.jpg": "ok",
    "occlusion_partial/tests__unit__dataset__img11_reflection.jpg": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__left_face.jpeg": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__left_wryneck.png": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__lower_face.jpeg": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__right_face.png": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__right_wryneck.png": "ok",
    "pose/cpp-package__inspireface__test_res__data__pose__rise_face.jpeg": "ok",
    # Detection does not depend on liveness (DetectLiveFace tells this photo of a screen apart).
    "spoof/cpp-package__inspireface__test_res__data__bulk__rgb_fake.jpg": "ok",
    "tiny/Brian_Thomas_Smith__b036a881b3a3a16203d4fbe2102a7b160c1780a3.jpg": "FailedOperation.ImageResolutionTooSmall",
    "tiny/Lydia_Shum__f9444029424626fefcc041cbaf02420bd5e82d59.jpg": "FailedOperation.ImageResolutionTooSmall",
    "tiny/syn_face_20px.jpg": "FailedOperation.ImageResolutionTooSmall",
    "tiny/syn_face_64px.jpg": "FailedOperation.ImageResolutionTooSmall",
    # A 25 px face is found but is below the default MinFaceSize of 34 px.
    "tiny/syn_tiny_face_in_1920x1080.jpg": "FailedOperation.FaceSizeTooSmall",
    "tiny/yaleB01_P00A+000E+00.pgm": "FailedOperation.ImageDecodeFailed",
    "tiny/yaleB05_P00A+000E+00.pgm": "FailedOperation.ImageDecodeFailed",
}
# Turned pixels without EXIF: found with NeedRotateDetection (test_need_rotate_detection_finds_turned_faces).
ROTATED = sorted(p.name for p in (EDGE / "rotated").iterdir() if p.name != "syn_face_rot30ccw.jpg")
# Several faces: counts in test_detect_face_finds_the_annotated_faces_largest_first and
# test_every_multi_face_photo_shows_several_faces.
MULTI_FACE = sorted(p.name for p in (EDGE / "multi_face").iterdir())


def test_every_edge_case_file_has_an_expectation():
    files = {str(p.relative_to(EDGE)) for p in EDGE.rglob("*") if p.is_file() and p.name != "MANIFEST.tsv"}
    covered = set(EDGE_EXPECT) | {f"rotated/{n}" for n in ROTATED} | {f"multi_face/{n}" for n in MULTI_FACE}
    assert files - covered == set()


@pytest.mark.parametrize("name", ROTATED)
def test_turned_photos_are_found_with_need_rotate_detection(client, name):
    assert len(detect(client, EDGE / "rotated" / name, NeedRotateDetection=1).FaceInfos) == 1


@pytest.mark.parametrize("name", MULTI_FACE)
def test_every_multi_face_photo_shows_several_faces(client, name):
    got = detect(client, EDGE / "multi_face" / name, MaxFaceNum=120, MinFaceSize=20)
    assert len(got.FaceInfos) >= 2
    sizes = [f.Width * f.Height for f in got.FaceInfos]
    # Largest first (sorted by the unrounded box, so integer areas may tie or swap by a pixel's worth).
    assert all(b <= a * 1.02 for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("relative,expected", sorted(EDGE_EXPECT.items()))
def test_edge_cases(server, relative, expected):
    client = make_client(server)
    path = EDGE / relative
    if relative.endswith(".pgm"):
        # Sent as the raw file, not converted: PGM is not an accepted format.
        req = models.DetectFaceRequest()
        req.Image = base64.b64encode(path.read_bytes()).decode()
        assert error_code(lambda: client.DetectFace(req)) == expected
    elif expected == "ok":
        got = detect(client, path)
        assert len(got.FaceInfos) == 1
    else:
        assert error_code(lambda: detect(client, path)) == expected


def test_exif_orientation_is_applied(client):
    # Orientation 6 stores the pixels rotated; once applied the image is portrait like the original.
    got = detect(client, EDGE / "rotated_exif" / "syn_face_exif_orientation6.jpg")
    assert got.ImageHeight > got.ImageWidth


def compare(client, a, b, version="3.0"):
    req = models.CompareFaceRequest()
    req.ImageA, req.ImageB, req.FaceModelVersion = b64(a), b64(b), version
    return client.CompareFace(req)


# Measured through the SDK on this machine (README, "Scores"), less a small margin for runtime differences.
PAIRS_ACCURACY = {"3.0": 0.9952 - 0.003, "2.0": 0.9923 - 0.003}


@pytest.mark.parametrize("version", ["3.0", "2.0"])
def test_compare_face_separates_same_and_different_persons(server, version):
    """Every pair of tests/pairs.tsv through the SDK: accuracy at the documented threshold (printed). Three
    calls in flight: the server runs one model call per core (`max_concurrent_inference`), one thread each."""
    tests = FACES / "tests"
    with open(tests / "pairs.tsv", newline="") as f:
        pairs = list(csv.DictReader(f, delimiter="\t"))
    clients = threading.local()

    def score(pair):
        if not hasattr(clients, "client"):
            clients.client = make_client(server)
        try:
            return compare(clients.client, tests / pair["path_a"], tests / pair["path_b"], version).Score
        except TencentCloudSDKException as e:
            # Photos whose face the detector misses are counted as errors of the verification.
            assert e.code in ("InvalidParameterValue.NoFaceInPhoto", "FailedOperation.ImageDecodeFailed"), e
            return None

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        scores = list(pool.map(score, pairs))
    usable = sum(s is not None for s in scores)
    right = sum((s >= THRESHOLD[version]) == (pair["same"] == "1")
                for s, pair in zip(scores, pairs) if s is not None)
    accuracy = right / len(pairs)
    print(f"\nCompareFace {version} on tests/pairs.tsv: {right}/{len(pairs)} right at score {THRESHOLD[version]} "
          f"({accuracy:.4f}); {len(pairs) - usable} pairs with an image that is not accepted")
    assert accuracy >= PAIRS_ACCURACY[version]


def test_compare_face_scores_and_errors(server, client):
    a = EDGE / "formats" / "syn_face.png"
    got = compare(client, a, EDGE / "formats" / "syn_face.bmp")
    assert got.Score > 90 and got.FaceModelVersion == "3.0"
    assert 0 <= compare(client, a, EDGE / "formats" / "syn_face.bmp", "2.0").Score <= 100
    no_face = EDGE / "no_face" / "syn_grey_640x480.jpg"
    assert error_code(lambda: compare(client, a, no_face)) == "InvalidParameterValue.NoFaceInPhoto"
    req = models.CompareFaceRequest()
    req.ImageA = b64(a)
    assert error_code(lambda: client.CompareFace(req)) == "InvalidParameterValue.ImageEmpty"
    req.ImageB, req.QualityControl = b64(a), 5
    assert error_code(lambda: client.CompareFace(req)) == "InvalidParameterValue.QualityControlIllegal"
    got = common_client(server, version="2020-03-03").call_json("CompareMaskFace", {"ImageA": b64(a), "ImageB": b64(a)})
    assert got["Response"]["Score"] > 90


@pytest.mark.parametrize("turn", ["r90", "r180", "r270"])
def test_need_rotate_detection_finds_turned_faces(client, turn):
    rotated = EDGE / "rotated"
    upright = rotated / "cpp-package__inspireface__test_res__data__bulk__r0.jpg"
    turned = rotated / f"cpp-package__inspireface__test_res__data__bulk__{turn}.jpg"
    got = detect(client, turned, NeedRotateDetection=1)
    assert len(got.FaceInfos) == 1
    face = got.FaceInfos[0]
    assert -face.Width / 2 < face.X < got.ImageWidth and -face.Height / 2 < face.Y < got.ImageHeight
    req = models.CompareFaceRequest()
    req.ImageA, req.ImageB, req.NeedRotateDetection = b64(upright), b64(turned), 1
    assert client.CompareFace(req).Score > 80
