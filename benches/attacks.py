#!/usr/bin/env python3
"""Hostile clients against live servers, two builds compared in one run (issue: hardening).

For each binary given (e.g. the previous release and this one), a fresh server is started and:
1. bombs: 16 DetectFace calls at once, each a 17 KB PNG declaring 8000x8000 pixels, while one client calls
   GetGroupList in a loop: peak resident memory, GetGroupList p50/p99, time until every bomb is answered;
2. stalled bodies: 40 connections declare 10 MB bodies, send 9.9 MB and stop: resident memory while they
   are held, how many the server has answered or closed after 15 s, memory 5 s after that;
3. half header: a connection sends half a request head and waits: whether the server closed it after 40 s
   (the default header timeout is 30 s);
4. keyless flood (issue 16): 150 keyless v1 POSTs with a 10 MB `Action=`, 8 at a time: growth of the audit
   files and of resident memory, how many were refused by the per-address limit, and the size of
   DescribeStatInfo's answer afterwards;
5. oversized group list (issue 16): a sub-user limited to `groupid/test*` by 10 policies sends SearchFaces
   with 150,000 GroupIds it may search (test0 ... test149999), two at once, while /health is probed: time to the answer, /health's worst latency.
Settings are the defaults of each build (a setting the old build does not know is simply not there).

    .venv-tests/bin/python benches/attacks.py OLD_BINARY NEW_BINARY
"""

import argparse
import base64
import concurrent.futures
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "py"))
import conftest  # noqa: E402
from test_hostile import MIB, Sampler, png_bomb, rss_bytes  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.iai.v20180301 import models  # noqa: E402


def start(binary, base):
    """Start `binary` on a fresh data directory; ready when /ready says so, or (older builds without it)
    when the port answers at all (they listened only once loaded)."""
    os.environ["IAI_BIN"] = str(binary)
    config = base / "iai.toml"
    # A `[qps]` of its own keeps the default limits and spares the old build the test suite's QPS keys.
    config.write_text("[qps]\n")
    server = conftest.Server(base / "data", config)
    try:
        server.start()
    except RuntimeError:
        if server.proc.poll() is not None:
            raise
    return server


def bombs(server):
    image = base64.b64encode(png_bomb()).decode()
    latencies, stop = [], threading.Event()
    probe_client = conftest.make_client(server)

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            probe_client.GetGroupList(models.GetGroupListRequest())
            latencies.append(time.perf_counter() - t)
            time.sleep(0.02)

    def attack(_):
        req = models.DetectFaceRequest()
        req.Image = image
        try:
            conftest.make_client(server).DetectFace(req)
        except TencentCloudSDKException:
            pass

    before = rss_bytes(server.proc.pid)
    with Sampler(server.proc.pid) as sampler:
        prober = threading.Thread(target=probe)
        prober.start()
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(attack, range(16)))
        took = time.perf_counter() - started
        stop.set()
        prober.join()
    q = statistics.quantiles(latencies, n=100)
    return {"bombs: rss before MB": before / MIB, "bombs: rss peak MB": sampler.peak / MIB,
            "bombs: GetGroupList p50 ms": q[49] * 1e3, "bombs: GetGroupList p99 ms": q[98] * 1e3,
            "bombs: all 16 answered s": took}


def stalled(server):
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-TC-Action: GetGroupList\r\n"
            b"X-TC-Version: 2018-03-01\r\nContent-Length: 10000000\r\n\r\n")
    chunk = b" " * MIB
    before = rss_bytes(server.proc.pid)
    socks = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(head)
        left = 9_900_000
        while left:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
        socks.append(s)
    held = rss_bytes(server.proc.pid)
    time.sleep(15)
    ended = 0
    for s in socks:
        s.setblocking(False)
        try:
            ended += 1 if s.recv(65536) is not None else 0
        except BlockingIOError:
            pass
        except OSError:
            ended += 1
    time.sleep(5)
    after = rss_bytes(server.proc.pid)
    for s in socks:
        s.close()
    return {"stalled: rss before MB": before / MIB, "stalled: rss held MB": held / MIB,
            "stalled: answered/closed after 15 s": ended, "stalled: rss 20 s later MB": after / MIB}


def half_header(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-TC-Action: GetGroupList\r\n")
    s.settimeout(40)
    started = time.monotonic()
    try:
        while s.recv(65536):
            pass
        closed = f"closed after {time.monotonic() - started:.0f} s"
    except (socket.timeout, TimeoutError):
        closed = "still open after 40 s"
    s.close()
    return {"half header": closed}


def keyless_flood(server):
    from test_security import audit_bytes, code

    body = b"Action=" + b"A" * 10_000_000 + b"&Version=2018-03-01"
    before_disk, before_rss = audit_bytes(server), rss_bytes(server.proc.pid)
    codes = []

    def one(_):
        try:
            answer = requests.post(server.url, data=body, timeout=60,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
            codes.append(code(answer.json()["Response"]))
        except requests.RequestException:
            codes.append("connection")

    with Sampler(server.proc.pid) as sampler:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(150)))
        took = time.perf_counter() - started
    time.sleep(2)  # the audit writer's batch
    stats = conftest.common_client(server).call_json("DescribeStatInfo", {})
    return {"flood: 150 x 10 MB took s": took, "flood: audit growth MB": (audit_bytes(server) - before_disk) / MIB,
            "flood: rss peak growth MB": (sampler.peak - before_rss) / MIB,
            "flood: refused unread": sum(c == "RequestLimitExceeded" for c in codes),
            "flood: DescribeStatInfo KB": len(str(stats)) / 1024}


def oversized_groups(server):
    """The attack of test_security's `test_an_oversized_group_list_is_refused_before_authorisation`, timed."""
    from test_cam import Team
    from test_security import code, compact, many_resources, signed_headers

    team = Team(server, lambda prefix="t": f"{prefix}{time.time_ns()}")
    _, key, _ = team.user(*[many_resources(k, last=k == 9) for k in range(10)])
    body = compact({"GroupIds": [f"test{i}" for i in range(150_000)], "Url": "http://x/y.jpg"})
    worst, stop = [0.0], threading.Event()

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            requests.get(f"http://{server.endpoint}/health", timeout=60)
            worst[0] = max(worst[0], time.perf_counter() - t)
            time.sleep(0.02)

    def attack(_):
        t = time.perf_counter()
        headers = signed_headers(server, key, "SearchFaces", body)
        answer = requests.post(server.url, data=body, headers=headers, timeout=120).json()["Response"]
        return time.perf_counter() - t, code(answer)

    prober = threading.Thread(target=probe)
    prober.start()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(attack, range(2)))
    stop.set()
    prober.join()
    return {"groups: 150,000 answered s (max of 2)": max(a[0] for a in answers),
            "groups: code": answers[0][1], "groups: /health worst ms": worst[0] * 1e3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    results = {}
    for binary in args.binaries:
        base = pathlib.Path(tempfile.mkdtemp(prefix="iai-attack-"))
        server = start(binary, base)
        try:
            figures = {}
            figures.update(bombs(server))
            figures.update(stalled(server))
            figures.update(half_header(server))
            figures.update(keyless_flood(server))
            figures.update(oversized_groups(server))
            results[binary] = figures
        finally:
            server.stop()
            shutil.rmtree(base, ignore_errors=True)
    names = list(results)
    print(f"{'':38}" + "".join(f"{pathlib.Path(n).name:>22}" for n in names))
    for key in results[names[0]]:
        row = f"{key:38}"
        for n in names:
            v = results[n][key]
            row += f"{v:>22.1f}" if isinstance(v, float) else f"{v!s:>22}"
        print(row)


if __name__ == "__main__":
    main()
