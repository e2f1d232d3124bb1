#!/usr/bin/env python3
"""Several replicas on PostgreSQL against one server on SQLite, in the same run (official Python SDK, TC3):

- write-to-visible: a person created through replica A, polled for on replica B (GetPersonBaseInfo every
  millisecond): p50 and p99 of the time from A's answer to B's first sight of it;
- CreatePerson per second from 4 clients: one SQLite server, one PostgreSQL replica, and two replicas taking
  turns (the clients split between them);
- SearchFaces per second from 4 clients on one replica of each backend (the index is in memory: it should not
  change).

Each figure is reported with its ratio to the SQLite server measured in the same run.

    cargo build --release && .venv-tests/bin/python benches/replicas.py [--persons 200] [--seconds 10]
"""

import argparse
import concurrent.futures
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "py"))
os.environ.setdefault("IAI_BIN", str(ROOT / "target" / "release" / "iai-server"))
import conftest  # noqa: E402
from postgres import Postgres  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.iai.v20180301 import models  # noqa: E402
from test_faces import b64  # noqa: E402

FACE = b64(conftest.SHARED / "faces" / "edge_cases" / "formats" / "syn_face.png")


def server(base, name, url=None):
    config = base / f"{name}.toml"
    config.write_text(f'replica_id = "{name}"\n')
    env = {"IAI_DATABASE_URL": url} if url else {}
    srv = conftest.Server(base / name / "data", config, env)
    srv.data_dir.parent.mkdir(parents=True, exist_ok=True)
    srv.start()
    return srv


def create_group(client, group):
    req = models.CreateGroupRequest()
    req.GroupId = req.GroupName = group
    client.CreateGroup(req)


def create_person(client, group, person):
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName, req.Image = group, person, person, FACE
    client.CreatePerson(req)


def visible(client, person):
    req = models.GetPersonBaseInfoRequest()
    req.PersonId = person
    try:
        client.GetPersonBaseInfo(req)
        return True
    except TencentCloudSDKException:
        return False


def lag(a, b, group, n):
    """Seconds from A's answer to B's first sight, per person."""
    out = []
    for _ in range(n):
        person = f"lag-{uuid.uuid4().hex[:10]}"
        create_person(a, group, person)
        written = time.perf_counter()
        while not visible(b, person):
            time.sleep(0.001)
        out.append(time.perf_counter() - written)
    return out


def rate(clients, work, seconds):
    """Calls per second of `work(client)` from each client in a thread of its own for `seconds`."""
    stop = time.monotonic() + seconds
    counts = [0] * len(clients)

    def run(i):
        while time.monotonic() < stop:
            work(clients[i])
            counts[i] += 1

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients))))
    return sum(counts) / seconds


def writes(servers, seconds):
    clients = [conftest.make_client(servers[i % len(servers)]) for i in range(4)]
    group = f"bench-{uuid.uuid4().hex[:8]}"
    create_group(clients[0], group)
    return rate(clients, lambda c: create_person(c, group, f"p-{uuid.uuid4().hex[:12]}"), seconds)


def searches(srv, seconds):
    clients = [conftest.make_client(srv) for _ in range(4)]
    group = f"search-{uuid.uuid4().hex[:8]}"
    create_group(clients[0], group)
    for i in range(20):
        create_person(clients[0], group, f"s{i}")
    req = models.SearchFacesRequest()
    req.GroupIds, req.Image, req.MaxPersonNum = [group], FACE, 5
    return rate(clients, lambda c: c.SearchFaces(req), seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    base = pathlib.Path(tempfile.mkdtemp(prefix="iai-replicas-bench-"))
    pg = Postgres().start()
    try:
        url = pg.new_database()
        lite = server(base, "lite")
        a, b = server(base, "a", url), server(base, "b", url)
        try:
            ca, cb = conftest.make_client(a), conftest.make_client(b)
            group = f"lag-{uuid.uuid4().hex[:8]}"
            create_group(ca, group)
            seen = sorted(lag(ca, cb, group, args.persons))
            p50, p99 = seen[len(seen) // 2], seen[min(len(seen) - 1, int(len(seen) * 0.99))]
            # The same loop on one SQLite server (A and B the same server): what the polling itself costs.
            cl = conftest.make_client(lite)
            create_group(cl, group)
            own = sorted(lag(cl, cl, group, args.persons))
            print(f"write-to-visible on another replica: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms "
                  f"({args.persons} persons); same server on SQLite: p50 {own[len(own) // 2] * 1000:.2f} ms")
            base_w = writes([lite], args.seconds)
            one_w = writes([a], args.seconds)
            two_w = writes([a, b], args.seconds)
            print(f"CreatePerson/s, 4 clients: SQLite {base_w:.1f}; PostgreSQL one replica {one_w:.1f} "
                  f"({one_w / base_w:.2f}x), two replicas {two_w:.1f} ({two_w / base_w:.2f}x)")
            base_s = searches(lite, args.seconds)
            pg_s = searches(a, args.seconds)
            print(f"SearchFaces/s, 4 clients: SQLite {base_s:.1f}; PostgreSQL replica {pg_s:.1f} "
                  f"({pg_s / base_s:.2f}x)")
        finally:
            for srv in (lite, a, b):
                srv.stop()
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
