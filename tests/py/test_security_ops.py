"""Operator-side security, through real HTTP against the live server: `/index/digest` needs the operator
token (which `iai-server check-index` derives from the data directory), the data directory and the files
holding secrets are private to the server's user, a deleted sub-user's uin is never handed out again, and
`Url` images are neither fetched from IPv4-in-IPv6 forms, NAT64, 6to4, site-local, benchmarking or
reserved addresses, nor through a proxy named only by the environment."""

import functools
import hashlib
import hmac
import http.server
import os
import stat
import subprocess
import threading

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import Server, make_client, running_server, sqlite_only
from test_cam import cam, cam_client_for
from test_faces import EDGE
from test_persons import ONE_FACE, create_group, create_person
from test_races import binary, check_index

FACE_PNG = EDGE / "formats" / "syn_face.png"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("secops")) as server:
        yield server


def operator_token(data_dir):
    """What the server derives from its `url.key`: HMAC-SHA256 of a fixed label."""
    key = (data_dir / "url.key").read_bytes()
    return hmac.new(key, b"iai-server operator token v1", hashlib.sha256).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- /index/digest


def test_index_digest_needs_the_operator_token_and_check_index_sends_it(srv, unique):
    client = make_client(srv)
    group = unique("digest")
    create_group(client, group)
    create_person(client, group, unique("p"), ONE_FACE)
    url = srv.url + "index/digest"

    bare = requests.get(url, timeout=10)
    assert bare.status_code == 401
    assert bare.headers["Content-Type"] == "application/json"
    assert "operator token" in bare.json()["error"]
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert group not in bare.text
    for wrong in ["Bearer " + "0" * 64, "Bearer ", "Bearer " + operator_token(srv.data_dir)[:-1]]:
        refused = requests.get(url, headers={"Authorization": wrong}, timeout=10)
        assert refused.status_code in (401, 403), wrong
        assert group not in refused.text
    assert requests.get(url, headers={"Authorization": "Bearer " + "0" * 64}, timeout=10).status_code == 403
    # A signed API key is not the operator token.
    assert requests.get(url, headers={"Authorization": "TC3-HMAC-SHA256 Credential=x"}, timeout=10).status_code \
        == 401

    allowed = requests.get(url, headers={"Authorization": "Bearer " + operator_token(srv.data_dir)}, timeout=30)
    assert allowed.status_code == 200
    digest = allowed.json()["groups"][group]
    assert (digest["faces"], digest["persons"]) == (1, 1)

    status, output = check_index(srv)
    assert status == 0, output
    assert "equals a rebuild" in output


def test_check_index_ignores_a_proxy_in_the_environment(srv):
    """The token goes to the server only: an HTTP_PROXY in check-index's environment is not used."""
    seen, proxy, proxy_server = recording_proxy()
    try:
        env = srv.tool_env(HTTP_PROXY=proxy, ALL_PROXY=proxy, http_proxy=proxy, all_proxy=proxy,
                           NO_PROXY="", no_proxy="")
        done = subprocess.run([binary(), "check-index", "--data-dir", str(srv.data_dir)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert seen == []
    finally:
        proxy_server.shutdown()


# ---- files holding secrets


@sqlite_only("the database file's modes")
def test_the_data_directory_and_its_secrets_are_private_and_loose_modes_are_tightened(tmp_path):
    with running_server(tmp_path) as server:
        # A write, so that the database has its -wal.
        create_group(make_client(server), "modes")
        data = server.data_dir
        assert mode(data) == 0o700
        for name in ["iai.sqlite3", "url.key", "audit.sqlite3"]:
            assert mode(data / name) == 0o600, name
        for side in ["iai.sqlite3-wal", "iai.sqlite3-shm"]:
            if (data / side).exists():
                assert mode(data / side) == 0o600, side
        server.stop()
        os.chmod(data, 0o755)
        for name in ["iai.sqlite3", "url.key", "audit.sqlite3"]:
            os.chmod(data / name, 0o644)
        token = operator_token(data)
        server.start()
        assert mode(data) == 0o700
        for name in ["iai.sqlite3", "url.key", "audit.sqlite3"]:
            assert mode(data / name) == 0o600, name
        # The key itself is kept.
        assert operator_token(data) == token


# ---- uins


def test_a_deleted_users_uin_is_never_given_again(srv, unique):
    main = cam_client_for(srv)
    name = lambda: unique("u").replace("-", "_")  # noqa: E731
    first = cam(main, "AddUser", Name=name())
    last = cam(main, "AddUser", Name=name(), UseApi=1)
    # The newest user goes: its uin was the highest, the one MAX + 1 gave again.
    cam(main, "DeleteUser", Name=last["Name"], Force=1)
    again = cam(main, "AddUser", Name=name())
    assert again["Uin"] > last["Uin"] > first["Uin"]
    assert again["Uid"] > last["Uid"]
    listed = {u["Uin"] for u in cam(main, "ListUsers")["Data"]}
    assert last["Uin"] not in listed and again["Uin"] in listed
    # The deleted user's key is gone, not inherited by the newcomer.
    try:
        common = make_client(srv, secret_id=last["SecretId"], secret_key=last["SecretKey"])
        common.GetGroupList(models.GetGroupListRequest())
        raise AssertionError("a deleted user's key still works")
    except TencentCloudSDKException as e:
        assert e.code == "AuthFailure.SecretIdNotFound"


def test_uins_are_not_reused_across_a_restart(tmp_path):
    with running_server(tmp_path) as server:
        main = cam_client_for(server)
        gone = cam(main, "AddUser", Name="gone")
        cam(main, "DeleteUser", Name="gone")
        server.restart()
        main = cam_client_for(server)
        assert cam(main, "AddUser", Name="next")["Uin"] == gone["Uin"] + 1


# ---- Url images


REFUSED_URLS = [
    "http://[::ffff:0:127.0.0.1]/x.jpg",       # IPv4-translated
    "http://[::127.0.0.1]/x.jpg",              # IPv4-compatible
    "http://[64:ff9b::7f00:1]/x.jpg",          # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/x.jpg",       # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::1]/x.jpg",           # 6to4 of 127.0.0.1
    "http://[fec0::1]/x.jpg",                  # site-local
    "http://198.18.0.1/x.jpg",                 # benchmarking
    "http://198.19.255.1/x.jpg",
    "http://240.0.0.1/x.jpg",                  # reserved
    "http://255.255.255.255/x.jpg",            # broadcast
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_v4_in_v6_and_reserved_addresses_are_refused_as_loopback_is(srv, url):
    def refusal(target):
        req = models.DetectFaceRequest()
        req.Url = target
        with pytest.raises(TencentCloudSDKException) as info:
            make_client(srv).DetectFace(req)
        return info.value

    loopback = refusal("http://127.0.0.1:1/x.jpg")
    got = refusal(url)
    assert got.code == loopback.code == "FailedOperation.ImageDownloadError"
    # Refused before any connection, as loopback is (not a failed connection or a timeout).
    assert "does not fetch from those" in got.message, got.message
    assert "does not fetch from those" in loopback.message


class Recorder(http.server.BaseHTTPRequestHandler):
    """A forward proxy that records the requests it gets and answers each with the test face."""

    seen = None

    def do_GET(self):
        self.seen.append(self.path)
        body = FACE_PNG.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def recording_proxy():
    """(the requests it saw, its address, the server: `.shutdown()` stops it)."""
    seen = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    proxy_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy_server.serve_forever, daemon=True).start()
    return seen, f"http://127.0.0.1:{proxy_server.server_address[1]}", proxy_server


class Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_host():
    handler = functools.partial(Files, directory=str(EDGE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def detect(server, url):
    req = models.DetectFaceRequest()
    req.Url = url
    return make_client(server).DetectFace(req)


def test_a_proxy_in_the_environment_is_not_used_for_url_images(tmp_path, image_host):
    seen, proxy, proxy_server = recording_proxy()
    config = tmp_path / "iai.toml"
    config.write_text("url_allow_private = true\nurl_timeout_secs = 5\n")
    server = Server(tmp_path / "data", config, extra_env={
        "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy,
        "http_proxy": proxy, "https_proxy": proxy, "all_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
    })
    server.start()
    try:
        got = detect(server, f"{image_host}/formats/syn_face.png")
        assert len(got.FaceInfos) == 1
        assert seen == [], "the download went through the environment's proxy"
    finally:
        server.stop()
        proxy_server.shutdown()


def test_a_configured_url_proxy_is_used(tmp_path, image_host):
    seen, proxy, proxy_server = recording_proxy()
    config = tmp_path / "iai.toml"
    config.write_text(f'url_allow_private = true\nurl_timeout_secs = 5\nurl_proxy = "{proxy}"\n')
    server = Server(tmp_path / "data", config)
    server.start()
    try:
        target = f"{image_host}/formats/syn_face.png"
        got = detect(server, target)
        assert len(got.FaceInfos) == 1
        assert seen == [target]
    finally:
        server.stop()
        proxy_server.shutdown()
