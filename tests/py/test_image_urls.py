"""`Url` images: fetched with a timeout and a size cap; private addresses refused unless configured;
Url wins over Image."""

import functools
import http.server
import threading
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import Server, make_client
from test_faces import EDGE, b64


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/formats/syn_face.png")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_host():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(EDGE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def trusting_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("urls")
    config = base / "iai.toml"
    config.write_text("url_allow_private = true\nurl_timeout_secs = 1\n")
    srv = Server(base / "data", config)
    srv.start()
    yield srv
    srv.stop()


def detect_url(server, url, image=None):
    req = models.DetectFaceRequest()
    req.Url = url
    if image:
        req.Image = image
    return make_client(server).DetectFace(req)


def code_of(call):
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value.code


def test_private_addresses_are_refused_by_default(server, image_host):
    assert code_of(lambda: detect_url(server, f"{image_host}/formats/syn_face.png")) == \
        "FailedOperation.ImageDownloadError"
    assert code_of(lambda: detect_url(server, "http://localhost:1/x.jpg")) == "FailedOperation.ImageDownloadError"


def test_url_images_when_allowed(trusting_server, image_host):
    got = detect_url(trusting_server, f"{image_host}/formats/syn_face.png")
    assert (got.ImageWidth, len(got.FaceInfos)) == (348, 1)
    # Url wins over Image.
    got = detect_url(trusting_server, f"{image_host}/formats/syn_face.png",
                     image=b64(EDGE / "no_face" / "syn_grey_640x480.jpg"))
    assert len(got.FaceInfos) == 1
    req = models.CompareFaceRequest()
    req.UrlA, req.UrlB = f"{image_host}/formats/syn_face.png", f"{image_host}/formats/syn_face.bmp"
    assert make_client(trusting_server).CompareFace(req).Score > 90


@pytest.mark.parametrize("path,code", [
    ("/missing.jpg", "FailedOperation.ImageDownloadError"),
    ("/slow", "FailedOperation.ImageDownloadError"),
    ("/redirect", "FailedOperation.ImageDownloadError"),
    ("/large/syn_face_noisy_over_5MB.jpg", "FailedOperation.ImageSizeExceed"),
    ("/formats/syn_face.gif", "FailedOperation.ImageDecodeFailed"),
])
def test_url_failures(trusting_server, image_host, path, code):
    assert code_of(lambda: detect_url(trusting_server, image_host + path)) == code


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "not a url", "http://"])
def test_malformed_urls(trusting_server, url):
    assert code_of(lambda: detect_url(trusting_server, url)) == "InvalidParameterValue.UrlIllegal"
