"""Start the real iai-server binary on a free port with a fresh data directory, and hand tests the official
clients pointed at it. Nothing is mocked: real HTTP, a real SQLite file, the real SDKs."""

import contextlib
import hashlib
import json
import os
import pathlib
import socket
import sqlite3
import subprocess
import time
import uuid

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.iai.v20180301 import iai_client
from tencentcloud.iai.v20200303 import iai_client as iai_client_2020

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("IAI_SHARED_DIR", ROOT.parent / "shared"))
SECRET_ID = "AKIDiaiServerTest0001"
SECRET_KEY = "iai-server-test-secret-key"
# A second key from the configuration file, with a session token (temporary credentials).
TOKEN_SECRET_ID = "AKIDiaiServerToken002"
TOKEN_SECRET_KEY = "iai-server-token-secret"
TOKEN = "session-token-0002"


QPS_OFF = "[qps]\n" + "".join(f"{g} = 0\n" for g in (
    "detection", "landmarks", "comparison", "verification", "group_management", "search", "liveness",
    "liveness_accurate", "similar_person", "upgrade_group_face_model_version", "cam"))


# The store backend the suite runs on: "sqlite" (the default) or "postgres" (a throwaway cluster started
# here; each server gets a database of its own, as each gets a data directory of its own).
BACKEND = os.environ.get("IAI_TEST_BACKEND", "sqlite")
_postgres = None


def postgres_cluster():
    global _postgres
    if _postgres is None:
        import atexit

        from postgres import Postgres
        _postgres = Postgres().start()
        atexit.register(_postgres.destroy)
    return _postgres


def sqlite_only(reason):
    """Skip a test that inspects or damages the SQLite file itself when the suite runs on PostgreSQL."""
    return pytest.mark.skipif(BACKEND != "sqlite", reason=f"SQLite only: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One iai-server process; `restart()` keeps the data directory."""

    def __init__(self, data_dir: pathlib.Path, config_file: pathlib.Path, extra_env=None):
        self.data_dir = data_dir
        self.config_file = config_file
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.proc = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        if BACKEND == "postgres" and "IAI_DATABASE_URL" not in self.extra_env:
            self.extra_env["IAI_DATABASE_URL"] = postgres_cluster().new_database()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}/"

    def start(self):
        binary = os.environ.get("IAI_BIN", str(ROOT / "target" / "debug" / "iai-server"))
        # Tests and benchmarks drive the server faster than Tencent's 50 calls a second per interface group;
        # unless a configuration sets its own `[qps]` (test_cam_limits.py does), the limits are off.
        text = self.config_file.read_text() if self.config_file.exists() else ""
        if "[qps" not in text:
            self.config_file.write_text(text + "\n" + QPS_OFF)
        env = dict(os.environ)
        env.update(
            IAI_LISTEN=self.endpoint,
            IAI_DATA_DIR=str(self.data_dir),
            IAI_SECRET_ID=SECRET_ID,
            IAI_SECRET_KEY=SECRET_KEY,
            IAI_CONFIG=str(self.config_file),
            IAI_MODELS_DIR=str(ROOT / "models"),
            IAI_LOG="info",
        )
        env.update(self.extra_env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        # The server listens at once and answers /ready with 200 once the index and models are loaded.
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"iai-server exited: {self.log_path.read_text()}")
            try:
                if requests.get(f"http://{self.endpoint}/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("iai-server did not become ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def tool_env(self, **extra):
        """The environment of an `iai-server` tool run beside this server (its database included)."""
        env = dict(os.environ)
        env.update({k: v for k, v in self.extra_env.items() if k == "IAI_DATABASE_URL"})
        env.update(extra)
        return env

    def db(self, sql, params=()):
        """Rows of `sql` (`?` placeholders) run on this server's database behind its back: the SQLite file,
        or the PostgreSQL database through psql (values then come back as text)."""
        url = self.extra_env.get("IAI_DATABASE_URL")
        if url is None:
            with sqlite3.connect(self.data_dir / "iai.sqlite3") as db:
                return db.execute(sql, params).fetchall()

        def literal(v):
            if v is None:
                return "NULL"
            if isinstance(v, (int, float)):
                return str(v)
            if isinstance(v, bytes):
                return f"'\\x{v.hex()}'::bytea"
            return "'" + str(v).replace("'", "''") + "'"
        parts = sql.split("?")
        text = parts[0] + "".join(literal(p) + rest for p, rest in zip(params, parts[1:]))
        done = subprocess.run([str(postgres_cluster().bin / "psql"), url, "-tAq", "-F", "\t", "-c", text],
                              capture_output=True, text=True, check=True)
        return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line]


@contextlib.contextmanager
def running_server(base: pathlib.Path, config_text: str = ""):
    """A server of a test's own, on `base/data`, configured by `config_text` (TOML); stopped afterwards."""
    config = base / "iai.toml"
    config.write_text(config_text)
    srv = Server(base / "data", config)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("iai")
    config = base / "iai.toml"
    config.write_text(
        f'[[keys]]\nsecret_id = "{TOKEN_SECRET_ID}"\nsecret_key = "{TOKEN_SECRET_KEY}"\ntoken = "{TOKEN}"\n'
    )
    srv = Server(base / "data", config)
    srv.start()
    yield srv
    srv.stop()


def make_client(server, method="POST", sign="TC3-HMAC-SHA256", secret_id=SECRET_ID, secret_key=SECRET_KEY,
                token=None, language="zh-CN", version="2018-03-01"):
    """The official Python SDK client, exactly as a user would configure it (SPEC.md §9.1)."""
    cred = credential.Credential(secret_id, secret_key, token)
    http = HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod=method)
    profile = ClientProfile(httpProfile=http, signMethod=sign, language=language)
    module = iai_client if version == "2018-03-01" else iai_client_2020
    return module.IaiClient(cred, "ap-guangzhou", profile)


def common_client(server, version="2018-03-01", **kw):
    cred = credential.Credential(kw.get("secret_id", SECRET_ID), kw.get("secret_key", SECRET_KEY))
    http = HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod=kw.get("method", "POST"))
    return CommonClient("iai", version, cred, "ap-guangzhou", profile=ClientProfile(httpProfile=http))


@pytest.fixture
def client(server):
    return make_client(server)


@pytest.fixture
def unique():
    """A fresh id for each use, so tests sharing the server never collide."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:12]}"


def tc3_headers(server, action, body: bytes, version="2018-03-01", timestamp=None,
                content_type="application/json", secret_key=SECRET_KEY, method="POST", query=""):
    """TC3 headers for a request built by hand, signed with the SDK's own signing function."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    host = server.endpoint
    canonical = "\n".join([method, "/", query, f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), f"{date}/iai/tc3_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = Sign.sign_tc3(secret_key, date, "iai", to_sign)
    return {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "Authorization": f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/iai/tc3_request, "
                         f"SignedHeaders=content-type;host, Signature={signature}",
    }


def raw_tc3(server, action, body: bytes, version="2018-03-01", timestamp=None, content_type="application/json",
            secret_key=SECRET_KEY, method="POST", query=""):
    """A TC3 request for bodies no SDK would send (malformed JSON, oversized payloads)."""
    headers = tc3_headers(server, action, body, version, timestamp, content_type, secret_key, method, query)
    url = server.url + (f"?{query}" if query else "")
    return requests.request(method, url, data=body, headers=headers, timeout=30)


def spec_actions():
    return json.loads((SHARED / "spec" / "actions.json").read_text())
