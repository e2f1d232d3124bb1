"""What operators see: /health and /ready, Prometheus metrics, the access log, quiet start-up logs, and
`iai-server check-index` finding an index that disagrees with its database."""

import re
import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20180301 import models

from conftest import SECRET_ID, Server, make_client
from test_persons import ONE_FACE, create_group, create_person
from test_races import binary, check_index


def scrape(server):
    response = requests.get(server.url + "metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(families, family, name=None, **labels):
    for s in families[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


def test_health_and_ready_answer_without_signature(server):
    health = requests.get(server.url + "health", timeout=5)
    assert (health.status_code, health.json()["status"]) == (200, "alive")
    ready = requests.get(server.url + "ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "models": True, "index": True, "database": True}
    # Only GET is theirs: anything else on those paths is an API call, answered in the envelope.
    posted = requests.post(server.url + "health", data=b"{}", timeout=5)
    assert posted.status_code == 200 and "Error" in posted.json()["Response"]


def test_metrics_parse_and_follow_the_calls(server, client, unique):
    before = scrape(server)
    group = unique("metrics")
    create_group(client, group)
    create_person(client, group, unique("m"), ONE_FACE)
    with pytest.raises(TencentCloudSDKException):
        req = models.GetGroupInfoRequest()
        req.GroupId = unique("missing")
        client.GetGroupInfo(req)
    after = scrape(server)

    def calls(families, **labels):
        try:
            return sample(families, "iai_requests", "iai_requests_total", **labels)
        except KeyError:
            return 0

    assert calls(after, action="CreateGroup", code="OK") == calls(before, action="CreateGroup", code="OK") + 1
    missing = {"action": "GetGroupInfo", "code": "InvalidParameterValue.GroupIdNotExist"}
    assert calls(after, **missing) == calls(before, **missing) + 1
    # Latency histograms per action, with buckets.
    assert sample(after, "iai_request_duration_seconds", "iai_request_duration_seconds_count",
                  action="CreatePerson") >= 1
    assert sample(after, "iai_request_duration_seconds", "iai_request_duration_seconds_bucket",
                  action="CreatePerson", le="+Inf") >= 1
    # Inference time per model: CreatePerson ran the detector and the 3.0 embedder.
    for model in ["yunet_n_dynamic.onnx", "mobilefacenet_192.onnx"]:
        assert sample(after, "iai_inference_duration_seconds", "iai_inference_duration_seconds_count",
                      model=model) >= 1
    # Admission: every gate reports its capacity, what is in use and its queue.
    for gate in ["body", "decode", "inference", "scan", "read"]:
        assert sample(after, "iai_admission_capacity", gate=gate) > 0
        assert sample(after, "iai_admission_queue_depth", gate=gate) == 0
        # Nothing is in flight while /metrics is read (the scrape is not an API call).
        assert sample(after, "iai_admission_in_use", gate=gate) == 0
    # The index of the new group: one face, one person.
    assert sample(after, "iai_index_vectors", group=group, kind="faces") == 1
    assert sample(after, "iai_index_vectors", group=group, kind="persons") == 1
    assert sample(after, "iai_index_vectors_total", kind="faces") >= 1
    assert sample(after, "iai_index_groups") >= 1
    assert sample(after, "process_resident_memory_bytes") > 50e6
    assert sample(after, "iai_connections_open") >= 1


def test_unknown_actions_do_not_become_metric_labels(server, client):
    made_up = "NoSuchAction" + str(time.time_ns())
    from conftest import raw_tc3
    assert raw_tc3(server, made_up, b"{}").json()["Response"]["Error"]["Code"] == "InvalidAction"
    text = requests.get(server.url + "metrics", timeout=10).text
    assert made_up not in text
    assert 'action="unknown",code="InvalidAction"' in text


def log_lines(server):
    return server.log_path.read_text(errors="replace").splitlines()


def test_every_call_has_one_access_log_line_with_its_request_id(server, client):
    answer = client.GetGroupList(models.GetGroupListRequest())
    time.sleep(0.2)
    lines = [l for l in log_lines(server) if answer.RequestId in l]
    access = [l for l in lines if "iai_server::access" in l]
    assert len(access) == 1, lines
    line = access[0]
    for field in [f"secret_id={SECRET_ID}", "action=GetGroupList", "code=OK", "latency_ms=", "client=127.0.0.1:"]:
        assert field in line, line
    # A refused call is logged too, with its code.
    try:
        req = models.GetGroupInfoRequest()
        req.GroupId = "no-such-group-for-the-log"
        client.GetGroupInfo(req)
    except TencentCloudSDKException as e:
        request_id = e.requestId
    time.sleep(0.2)
    refused = [l for l in log_lines(server) if request_id in l and "iai_server::access" in l]
    assert len(refused) == 1 and "code=InvalidParameterValue.GroupIdNotExist" in refused[0], refused


def test_start_up_logs_stay_short_at_info(server):
    start = []
    for line in log_lines(server):
        start.append(line)
        if "ready" in line and "models loaded" in line:
            break
    assert len(start) < 20, "\n".join(start)
    assert not any(re.search(r"\bort(::logging)?\b.*GraphTransformer", l) for l in start)


@pytest.fixture
def own_server(tmp_path):
    config = tmp_path / "iai.toml"
    config.write_text("")
    srv = Server(tmp_path / "data", config)
    srv.start()
    yield srv
    srv.stop()


def test_check_index_finds_an_index_that_disagrees_with_the_database(own_server, unique):
    client = make_client(own_server)
    group = unique("chk")
    create_group(client, group)
    create_person(client, group, unique("a"), ONE_FACE)
    create_person(client, group, unique("b"), ONE_FACE)
    status, output = check_index(own_server)
    assert status == 0 and "equals a rebuild" in output, output
    # Behind the server's back, a stored embedding disappears: the live index still has it.
    own_server.db("DELETE FROM face_vectors WHERE face_id = (SELECT min(face_id) FROM face_vectors)")
    status, output = check_index(own_server)
    assert status == 1, output
    assert f"MISMATCH group {group}" in output and "2 faces" in output and "1 faces" in output, output
    # With no server running, the database is checked on its own.
    own_server.stop()
    done = subprocess.run([binary(), "check-index", "--data-dir", str(own_server.data_dir)],
                          capture_output=True, text=True, timeout=60, env=own_server.tool_env())
    assert done.returncode == 0 and "no server is running" in done.stdout, done.stdout + done.stderr
    own_server.start()


def test_healthcheck_command(server):
    ok = subprocess.run([binary(), "healthcheck", "--url", server.url + "ready"], capture_output=True, timeout=30)
    assert ok.returncode == 0
    bad = subprocess.run([binary(), "healthcheck", "--url", "http://127.0.0.1:9/ready"], capture_output=True,
                         timeout=30)
    assert bad.returncode == 1


def test_caller_text_cannot_forge_access_log_lines(server):
    marker = f"forged{time.time_ns()}"
    answer = requests.post(server.url, data=f"Action=GetGroupList%0A{marker}&Version=2018-03-01",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10).json()
    assert "Error" in answer["Response"]
    time.sleep(0.2)
    lines = [l for l in log_lines(server) if marker in l]
    assert len(lines) == 1 and f"action=GetGroupList?{marker}" in lines[0], lines
