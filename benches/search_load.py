#!/usr/bin/env python3
"""SearchFaces through the live server on a large group, driven by the HTTP load tool `oha`.

The group holds `--faces` synthetic faces (random unit vectors enrolled through the store by
`examples/scale.rs`) plus one real person enrolled through the SDK; the query is another photo of that
person, so every answer must name them (checked once through the SDK before the load). Each concurrency
level sends the same TC3-signed request (signed once per level; the server allows 300 s of clock skew) for
`--duration` seconds. Errors: non-200 answers counted by oha plus Tencent error envelopes, which the server
logs as "action failed" (counted in its log). Figures: latency p50/p99 and throughput per level, and where
a request's time goes, stage by stage (mean ms per request, from the server's `iai_stage_duration_seconds`
and `iai_inference_duration_seconds` in /metrics, read before and after each level).

`--config LABEL=TOML` (repeatable) runs the same levels once per server configuration on the same data, in the
same run, e.g. the defaults against `inference_threads = 2` with `max_concurrent_inference = 1` (the defaults
before they were tuned): `--config "tuned=" --config "old=inference_threads = 2
max_concurrent_inference = 1"`.

    cargo install oha --locked --version 1.12.1                       # once
    cargo build --release --example scale && cargo build --release
    .venv-tests/bin/python benches/search_load.py [--faces 100000] [--duration 20] [--server-bin PATH]
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "py"))
import conftest  # noqa: E402
from tencentcloud.iai.v20180301 import models  # noqa: E402

PHOTOS = sorted((conftest.SHARED / "faces" / "tests" / "fr_obama").iterdir())
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--server-bin", default=str(TARGET / "release" / "iai-server"),
                    help="the server binary (e.g. an older build, to compare in the same run)")
    ap.add_argument("--config", action="append", default=[],
                    help="LABEL=TOML: a server configuration to measure (repeatable; default: the defaults)")
    args = ap.parse_args()
    configs = [c.split("=", 1) for c in args.config] or [["defaults", ""]]
    oha = shutil.which("oha") or str(pathlib.Path.home() / ".cargo" / "bin" / "oha")
    base = pathlib.Path(tempfile.mkdtemp(prefix="iai-load-"))
    data = base / "data"
    print(subprocess.run([TARGET / "release" / "examples" / "scale", data, str(args.faces)],
                         check=True, capture_output=True, text=True).stdout.strip())
    os.environ["IAI_BIN"] = args.server_bin
    body_file = base / "body.json"
    try:
        for n, (label, toml) in enumerate(configs):
            config = base / f"iai-{n}.toml"
            config.write_text(toml.replace("\\n", "\n") + "\n")
            server = conftest.Server(data, config, {"IAI_LOG": "info,iai_server::wire::server=debug"})
            server.start()
            try:
                if n == 0:
                    enrol_the_real_person(server, body_file, args.faces)
                print(f"\n[{label}] {toml.strip() or '(defaults)'}".replace("\n", " ", 2))
                measure(server, oha, body_file, args)
            finally:
                server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def enrol_the_real_person(server, body_file, faces):
    client = conftest.make_client(server)
    req = models.CreatePersonRequest()
    req.GroupId, req.PersonId, req.PersonName = "scale", "real-person", "real"
    req.Image = base64.b64encode(PHOTOS[0].read_bytes()).decode()
    client.CreatePerson(req)
    body = json.dumps({"GroupIds": ["scale"], "MaxPersonNum": 5,
                       "Image": base64.b64encode(PHOTOS[1].read_bytes()).decode()}).encode()
    check = models.SearchFacesRequest()
    check.from_json_string(body.decode())
    top = client.SearchFaces(check).Results[0].Candidates[0]
    assert top.PersonId == "real-person", top
    body_file.write_bytes(body)
    print(f"SearchFaces on a group of {faces + 1} faces, top candidate {top.PersonId} ({top.Score}); "
          f"{os.cpu_count()} cores shared by server and load tool")


def stage_sums(server):
    """(seconds, count) per stage and per model call, and SearchFaces calls, from /metrics."""
    text = requests.get(f"http://{server.endpoint}/metrics", timeout=10).text
    sums = {}
    for line in text.splitlines():
        for metric, label in [("iai_stage_duration_seconds", "stage"), ("iai_inference_duration_seconds", "model")]:
            for part, slot in [("_sum", 0), ("_count", 1)]:
                if line.startswith(metric + part + "{"):
                    name = line.split(f'{label}="', 1)[1].split('"', 1)[0]
                    entry = sums.setdefault(name, [0.0, 0.0])
                    entry[slot] = float(line.rsplit(" ", 1)[1])
        if line.startswith("iai_requests_total{") and 'action="SearchFaces"' in line:
            sums.setdefault("requests", [0.0, 0.0])[1] += float(line.rsplit(" ", 1)[1])
    return sums


def measure(server, oha, body_file, args):
    body = body_file.read_bytes()
    print(f"{'concurrency':>11} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}   "
          "mean ms per request, by stage")
    for level in [int(x) for x in args.levels.split(",")]:
        failed_before = server.log_path.read_text(errors="replace").count("action failed")
        before = stage_sums(server)
        headers = conftest.tc3_headers(server, "SearchFaces", body)
        cmd = [oha, "-z", f"{args.duration}s", "-c", str(level), "--no-tui", "--output-format", "json",
               "-m", "POST", "-D", str(body_file)]
        for k, v in headers.items():
            if k != "Host":
                cmd += ["-H", f"{k}: {v}"]
        out = json.loads(subprocess.run(cmd + [server.url], check=True, capture_output=True, text=True).stdout)
        after = stage_sums(server)
        codes = out.get("statusCodeDistribution", {})
        ok = codes.get("200", 0)
        # Requests still in flight when the duration ends are cancelled by oha ("aborted due to deadline"),
        # not errors of the server.
        transport = {k: v for k, v in out.get("errorDistribution", {}).items() if "deadline" not in k}
        errors = sum(codes.values()) - ok + sum(transport.values())
        errors += server.log_path.read_text(errors="replace").count("action failed") - failed_before
        p = out["latencyPercentiles"]
        calls = max(after.get("requests", [0, 0])[1] - before.get("requests", [0, 0])[1], 1)
        stages = []
        for name in ["decode", "inference_wait", "inference", "yunet_n_dynamic.onnx", "mobilefacenet_192.onnx",
                     "scan_wait", "scan"]:
            spent = after.get(name, [0, 0])[0] - before.get(name, [0, 0])[0]
            stages.append(f"{name.removesuffix('.onnx')} {spent / calls * 1e3:.1f}")
        print(f"{level:>11} {ok:>9} {out['summary']['requestsPerSec']:>7.1f} {p['p50'] * 1e3:>7.1f} "
              f"{p['p99'] * 1e3:>7.1f} {errors:>6}   " + ", ".join(stages))


if __name__ == "__main__":
    main()
