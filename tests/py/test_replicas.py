"""Several replicas on one PostgreSQL (the PostgreSQL pass only): three iai-server processes share one
database on loopback, each with its own data directory. A write through one is searchable on the others
within the staleness bound; a CAM change made through one applies on the others; races sent to different
replicas leave every replica's index equal to the database (`check-index`); a replica killed with SIGKILL
under eight writing clients loses no acknowledged write; an upgrade started on a replica that dies is
finished by another, and a duplicate check resumed by another from its saved progress; PostgreSQL stopped for ten seconds under load gives clear errors, loses nothing
acknowledged, and service comes back by itself."""

import concurrent.futures
import json
import os
import statistics
import subprocess
import threading
import time

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import BACKEND, Server, common_client, make_client, postgres_cluster
from test_audit import call
from test_cam import Team, cam, code_of, iai, policy
from test_faces import b64
from test_persons import ONE_FACE, create_group, photos, search
from test_races import binary, create_face_request, images, sdk, setup  # noqa: F401 (fixture)
from test_similar import caller, download, pairs_of, wait_done
from test_similar import enrol as enrol_similar
from test_similar import result as similar_result
from test_upgrade import IDENTITIES, SLOW, client20, enrol, job_result, upgrade, wait_status

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="several replicas run in the PostgreSQL pass")


class Replicas:
    """`n` servers on one fresh database: `self[0]`, `self[1]`, ... (A, B, C)."""

    def __init__(self, base, n=3, config=""):
        self.url = postgres_cluster().new_database()
        self.servers = []
        for i in range(n):
            name = "abc"[i]
            config_file = base / f"{name}.toml"
            config_file.write_text(f'replica_id = "{name}"\n{config}')
            self.servers.append(Server(base / name / "data", config_file, {"IAI_DATABASE_URL": self.url}))
        # The first to start takes the workers' leases (moving groups, checks).
        for srv in self.servers:
            srv.data_dir.parent.mkdir(parents=True, exist_ok=True)
            srv.start()

    def __getitem__(self, i):
        return self.servers[i]

    def kill(self, i):
        """SIGKILL: no shutdown, no goodbye to the database."""
        self.servers[i].proc.kill()
        self.servers[i].proc.wait(timeout=10)

    def stop(self):
        for srv in self.servers:
            srv.stop()


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    replicas = Replicas(tmp_path_factory.mktemp("trio"))
    yield replicas
    replicas.stop()


@pytest.fixture
def fresh_trio(tmp_path):
    replicas = Replicas(tmp_path)
    yield replicas
    replicas.stop()


def check_index(srv, url, server=None):
    args = [binary(), "check-index", "--data-dir", str(srv.data_dir), "--database-url", url]
    if server:
        args += ["--server", server.endpoint]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr


def create_person(client, group, person, path=ONE_FACE):
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName, req.Image = group, person, person, b64(path)
    return client.CreatePerson(req)


def exists(client, person):
    req = models.GetPersonBaseInfoRequest()
    req.PersonId = person
    try:
        client.GetPersonBaseInfo(req)
        return True
    except TencentCloudSDKException as e:
        assert e.code == "InvalidParameterValue.PersonIdNotExist", e
        return False


def found(client, group, person, path):
    got = search(client, "SearchFaces", [group], path, MaxPersonNum=5)
    return any(c.PersonId == person for r in got.Results for c in r.Candidates)


def test_a_person_created_through_a_is_found_on_b_and_c(trio, unique):
    a, b, c = (make_client(s) for s in trio.servers)
    group = unique("rep")
    create_group(a, group)
    lags = []
    identities = IDENTITIES[:4]
    for identity in identities:
        create_person(a, group, identity + unique(""), photos(identity)[0])
    for identity in identities:
        person = unique("p")
        create_person(a, group, person, photos(identity)[0])
        written = time.monotonic()
        # The writer reads its own write at once.
        assert exists(a, person)
        # The others within the staleness bound (1 s by default).
        for other in (b, c):
            while not exists(other, person):
                assert time.monotonic() - written < 1.0, "not visible on another replica within 1 s"
                time.sleep(0.002)
            lags.append(time.monotonic() - written)
        assert found(b, group, person, photos(identity)[-1])
        assert found(c, group, person, photos(identity)[-1])
    print(f"write-to-visible on another replica: median {statistics.median(lags) * 1000:.1f} ms, "
          f"max {max(lags) * 1000:.1f} ms over {len(lags)}")
    # Every replica reports the log position it applied.
    for srv in trio.servers:
        metrics = requests.get(f"{srv.url}metrics", timeout=10).text
        assert "iai_change_log_applied" in metrics and "iai_change_log_lag_seconds" in metrics


def test_a_cam_change_through_a_applies_on_b(trio, unique):
    team = Team(trio[0], unique)
    uin, key, (pid,) = team.user(policy({"effect": "allow", "action": "iai:GetGroupList", "resource": "*"}))

    def on_b_within_bound(expected):
        deadline = time.monotonic() + 1.0
        while True:
            got = code_of(iai, trio[1], key, "GetGroupList")
            if got == expected or time.monotonic() > deadline:
                return got
            time.sleep(0.01)

    assert on_b_within_bound("OK") == "OK"
    cam(team.main, "DetachUserPolicy", PolicyId=pid, DetachUin=uin)
    assert on_b_within_bound("AuthFailure.UnauthorizedOperation") == "AuthFailure.UnauthorizedOperation"
    cam(team.main, "DeleteAccessKey", TargetUin=uin, AccessKeyId=key[0])
    assert on_b_within_bound("AuthFailure.SecretIdNotFound") == "AuthFailure.SecretIdNotFound"


def test_races_sent_to_different_replicas_leave_every_index_equal_to_the_database(trio, unique, images):
    a, b = make_client(trio[0]), make_client(trio[1])
    for trial in range(8):
        ids, person = setup(a, unique, images, groups=("a", "b"))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            adding = pool.submit(sdk, lambda: a.CreateFace(create_face_request(person, images["more"])))
            time.sleep(0.05 * (trial % 4))
            req = models.DeletePersonFromGroupRequest()
            req.PersonId, req.GroupId = person, ids["a"]
            leaving = pool.submit(sdk, lambda: b.DeletePersonFromGroup(req))
            adding.result(timeout=120), leaving.result(timeout=120)
    status, output = check_index(trio[0], trio.url)
    assert status == 0, output
    assert output.count("equals a rebuild") == 3, output


def test_a_replica_killed_under_eight_writers_loses_no_acknowledged_write(fresh_trio, unique):
    group = unique("kill")
    create_group(make_client(fresh_trio[0]), group)
    acknowledged, stop = [], threading.Event()
    lock = threading.Lock()

    def writer(n):
        client = make_client(fresh_trio[n % 2])  # half on A, half on B
        while not stop.is_set():
            person = unique(f"w{n}")
            try:
                create_person(client, group, person)
                with lock:
                    acknowledged.append(person)
            except Exception:  # noqa: BLE001 (A's clients lose their server: not acknowledged)
                time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for n in range(8):
            pool.submit(writer, n)
        time.sleep(4)
        fresh_trio.kill(0)
        killed_at = len(acknowledged)
        time.sleep(4)
        stop.set()
    assert killed_at > 0 and len(acknowledged) > killed_at, (killed_at, len(acknowledged))
    b, c = make_client(fresh_trio[1]), make_client(fresh_trio[2])
    missing = [p for p in acknowledged if not exists(c, p)]
    assert missing == [], f"{len(missing)} acknowledged persons are missing"
    req = models.GetPersonListNumRequest()
    req.GroupId = group
    assert b.GetPersonListNum(req).PersonNum >= len(acknowledged)
    for survivor in (fresh_trio[1], fresh_trio[2]):
        status, output = check_index(survivor, fresh_trio.url, server=survivor)
        assert status == 0 and "equals a rebuild" in output, output


def test_an_upgrade_started_on_a_is_finished_by_b_after_a_dies(tmp_path, unique):
    replicas = Replicas(tmp_path, n=2, config=SLOW)
    try:
        a, b = make_client(replicas[0]), make_client(replicas[1])
        group = unique("up")
        create_group(a, group, version="2.0")
        enrol(a, group, IDENTITIES)
        job = upgrade(client20(replicas[0]), group)
        jobs_b = client20(replicas[1])
        deadline = time.time() + 60
        while job_result(jobs_b, job).Progress <= 0:
            assert time.time() < deadline, "the upgrade made no progress on A"
            time.sleep(0.1)
        replicas.kill(0)
        done = wait_status(jobs_b, job, 1, timeout=120)
        assert done.ToFaceModelVersion == "3.0"
        got = search(b, "SearchFaces", [group], photos(IDENTITIES[0])[-1], MaxPersonNum=1)
        assert got.FaceModelVersion == "3.0"
        assert got.Results[0].Candidates[0].PersonId == IDENTITIES[0]
    finally:
        replicas.stop()


def test_a_duplicate_check_resumes_on_b_from_where_a_died(tmp_path, unique):
    # A pace of one pair a second: A's first round scores the first row (3 pairs), saves its position and
    # waits; killed then, B takes the checks' lease (15 s) and goes on from the second row.
    replicas = Replicas(tmp_path, n=2, config="similar_max_pairs_per_second = 1.0\n")
    try:
        call_a, call_b = caller(replicas[0]), caller(replicas[1])
        group = unique("dup")
        call_a("CreateGroup", {"GroupId": group, "GroupName": group, "FaceModelVersion": "3.0"})
        for person, paths in [("s3-a", photos("orl_s3")[0:2]), ("s3-b", photos("orl_s3")[5:7]),
                              ("s4", photos("orl_s4")[0:2]), ("s5", photos("orl_s5")[0:2])]:
            enrol_similar(call_a, group, person, paths)
        job = call_a("CheckSimilarPerson", {"GroupIds": [group], "UniquePersonControl": 1})["JobId"]
        deadline = time.time() + 30
        while similar_result(call_b, job)["Progress"] == 0:
            assert time.time() < deadline, "the check made no progress on A"
            time.sleep(0.05)
        replicas.kill(0)
        done = wait_done(call_b, job, timeout=90)
        assert pairs_of(download(replicas[1], done["SimilarPersonsUrl"])) == {(("s3-a", (group,)), ("s3-b", (group,)))}
        log = replicas[1].log_path.read_text()
        assert "duplicate-person check resumed from its saved progress" in log, log[-3000:]
    finally:
        replicas.stop()


def test_postgres_stopped_for_ten_seconds_under_load(tmp_path, unique):
    replicas = Replicas(tmp_path, n=2)
    try:
        group = unique("outage")
        create_group(make_client(replicas[0]), group)
        acknowledged, errors, slowest = [], [], [0.0]
        stop = threading.Event()
        lock = threading.Lock()

        def writer(n):
            client = make_client(replicas[n % 2])
            while not stop.is_set():
                person = unique(f"o{n}")
                started = time.monotonic()
                try:
                    create_person(client, group, person)
                    with lock:
                        acknowledged.append(person)
                except TencentCloudSDKException as e:
                    with lock:
                        errors.append(e.code)
                    time.sleep(0.1)
                with lock:
                    slowest[0] = max(slowest[0], time.monotonic() - started)

        cluster = postgres_cluster()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(writer, n) for n in range(4)]
            time.sleep(3)
            cluster.stop()
            down_at = len(acknowledged)
            time.sleep(10)
            cluster.start()
            up_again = time.monotonic()
            # Service resumes by itself: both replicas take writes again.
            deadline = up_again + 30
            while time.monotonic() < deadline:
                with lock:
                    recent = len(acknowledged)
                time.sleep(2)
                if len(acknowledged) > recent:
                    break
            time.sleep(2)
            stop.set()
            for f in futures:
                f.result(timeout=60)
        assert errors, "no call failed while the database was down"
        # Clear errors in Tencent's envelope, not hangs: a failed call came back within the bounded waits.
        assert set(errors) <= {"InternalError", "ResourceUnavailable", "FailedOperation.RequestTimeout"}, errors
        assert slowest[0] < 45, slowest[0]
        assert len(acknowledged) > down_at, "no write succeeded after the database came back"
        for srv in replicas.servers:
            client = make_client(srv)
            deadline = time.monotonic() + 15
            while True:
                try:
                    missing = [p for p in acknowledged if not exists(client, p)]
                    break
                except TencentCloudSDKException:
                    assert time.monotonic() < deadline
                    time.sleep(0.5)
            assert missing == [], f"{len(missing)} acknowledged persons are missing on {srv.endpoint}"
        status, output = check_index(replicas[0], replicas.url)
        assert status == 0, output
    finally:
        replicas.stop()


def test_the_audit_trail_holds_every_replicas_calls(trio, unique):
    """With PostgreSQL the trail is in the database: the search log, the statistics and `audit export` of
    any replica show the calls every replica answered."""
    group = unique("aud")
    create_group(make_client(trio[0]), group)
    create_person(make_client(trio[0]), group, unique("p"))
    searched = {}
    for name, srv in zip("ab", trio.servers[:2]):
        answer = call(srv, "SearchFaces", GroupIds=[group], Image=b64(ONE_FACE), MaxPersonNum=1)
        assert "Error" not in answer, answer
        searched[answer["RequestId"]] = name
    deadline = time.monotonic() + 10
    while True:
        log = call(trio[2], "DescribeSearchLog", GroupId=group)
        if log.get("Total") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(r["RequestId"] for r in log["Records"]) == sorted(searched), log
    stats = call(trio[2], "DescribeStatInfo")
    assert sum(b["Calls"] for b in stats["Buckets"] if b["Action"] == "SearchFaces") >= 2, stats
    done = subprocess.run([binary(), "audit", "export", "--since", "0"], capture_output=True, text=True,
                          timeout=60, env=trio[1].tool_env())
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert set(searched) <= {r["request_id"] for r in rows}
    # The day's partition holds them.
    parts = trio[0].db("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_calls'::regclass")
    assert int(parts[0][0]) >= 1, parts


def test_qps_limits_hold_for_the_deployment(tmp_path):
    """Three replicas with `search = 12` share it: each admits 4 a second (bursts of 4), so a burst sent to
    all three gets about 12 through, not 36; the refusal names the share."""
    replicas = Replicas(tmp_path, n=3, config="[qps]\nsearch = 12\n")
    try:
        # Every replica has counted the three (heartbeats every 250 ms).
        deadline = time.monotonic() + 10
        while not all("iai_live_replicas 3" in requests.get(f"{s.url}metrics", timeout=5).text
                      for s in replicas.servers):
            assert time.monotonic() < deadline, "the replicas did not see each other"
            time.sleep(0.2)
        started = time.monotonic()
        answers = [call(srv, "SearchFaces", GroupIds=["nonexistent"], Image=b64(ONE_FACE))
                   for srv in replicas.servers for _ in range(12)]
        elapsed = time.monotonic() - started
        admitted = [a for a in answers if a.get("Error") != "RequestLimitExceeded"]
        refused = [a for a in answers if a.get("Error") == "RequestLimitExceeded"]
        # Bursts of 4 on each, plus what 12 a second refills meanwhile.
        assert 12 <= len(admitted) <= 12 + 12 * elapsed + 1, (len(admitted), elapsed)
        assert refused
        for _ in range(10):
            try:
                common_client(replicas[0]).call_json("SearchFaces", {"GroupIds": ["x"], "Image": b64(ONE_FACE)})
            except TencentCloudSDKException as e:
                if e.code == "RequestLimitExceeded":
                    assert "12 calls a second for the deployment" in e.message, e.message
                    assert "one of 3 replicas" in e.message, e.message
                    break
        else:
            raise AssertionError("no call was refused")
        # A replica that stops gives its share back to the others within 5 s of its last heartbeat.
        replicas.kill(2)
        deadline = time.monotonic() + 15
        while "iai_live_replicas 2" not in requests.get(f"{replicas[0].url}metrics", timeout=5).text:
            assert time.monotonic() < deadline, "the dead replica was still counted"
            time.sleep(0.2)
    finally:
        replicas.stop()


def test_an_unreachable_database_at_start_leaves_the_server_up_and_not_ready(tmp_path):
    """Replicas may start before their database: the server listens, /health answers 200, /ready 503 with
    the reason, calls get ServiceUnavailable in Tencent's envelope, and once the database answers the
    server becomes ready by itself."""
    from postgres import Postgres
    pg = Postgres()
    config = tmp_path / "late.toml"
    config.write_text("")
    srv = Server(tmp_path / "late" / "data", config, {"IAI_DATABASE_URL": pg.url})
    srv.data_dir.parent.mkdir(parents=True)
    started = threading.Thread(target=srv.start)
    started.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{srv.url}health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the server did not listen"
            time.sleep(0.1)
        # The reason appears once the first connection attempt has failed (the server listens before it).
        while True:
            ready = requests.get(f"{srv.url}ready", timeout=5)
            assert ready.status_code == 503 and ready.json()["status"] == "waiting for the database", ready.text
            if ready.json()["error"]:
                break
            assert time.monotonic() < deadline, f"no reason given: {ready.text}"
            time.sleep(0.1)
        answer = call(srv, "GetGroupList")
        assert answer["Error"] == "ServiceUnavailable", answer
        pg.start()
        started.join(timeout=60)
        assert requests.get(f"{srv.url}ready", timeout=5).status_code == 200
        assert "Error" not in call(srv, "GetGroupList")
    finally:
        started.join(timeout=60)
        srv.stop()
        pg.destroy()
