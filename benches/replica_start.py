#!/usr/bin/env python3
"""How long a server takes to start on a large database, PostgreSQL against SQLite, in the same run.

For each size, one group of N synthetic faces (one person each, random unit vectors; `examples/scale.rs`)
is enrolled through the store into a SQLite data directory, and the same rows are copied into a fresh
PostgreSQL database (migrated by the server itself, then the tables loaded with COPY, triggers off for the
load: enrolling a million persons one transaction per 10,000 through the store is not what is measured here,
and benches/replicas.py measures CreatePerson per second on each backend). Then the real server is launched
on each, in turns, and timed from launch to `/ready` answering 200 (models loaded, the index rebuilt from the
database: on PostgreSQL with binary COPY), with its resident memory once ready. Each start is repeated; the
figures are medians, with PostgreSQL's ratio to SQLite.

    cargo build --release --bin iai-server --example scale
    .venv-tests/bin/python benches/replica_start.py [--faces 100000 1000000] [--repeat 3]
"""

import argparse
import os
import sqlite3
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "py"))
from postgres import Postgres, _bin_dir, _free_port  # noqa: E402

# In the order their foreign keys need.
TABLES = ["groups", "persons", "faces", "face_vectors", "group_members"]

SERVER = ROOT / "target" / "release" / "iai-server"
SCALE = ROOT / "target" / "release" / "examples" / "scale"


def enrol(place, faces):
    """Fill `place` (a data directory or a database URL), printing the example's own report."""
    started = time.perf_counter()
    out = subprocess.run([str(SCALE), place, str(faces)], check=True, capture_output=True, text=True).stdout
    print(f"  enrolled in {time.perf_counter() - started:.0f} s (with one rebuild in the example):")
    for line in out.splitlines():
        print(f"    {line}")


def text_field(value):
    """One field of COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_into_postgres(sqlite_dir, url):
    """The rows of the SQLite database's group tables, into the (migrated, empty) PostgreSQL database."""
    started = time.perf_counter()
    lite = sqlite3.connect(f"file:{pathlib.Path(sqlite_dir) / 'iai.sqlite3'}?mode=ro", uri=True)
    psql = [str(_bin_dir() / "psql"), "-q", "-v", "ON_ERROR_STOP=1", url]
    for table in TABLES:
        out = subprocess.run(psql + ["-tAc", f"SELECT column_name FROM information_schema.columns "
                                             f"WHERE table_name = '{table}'"],
                             check=True, capture_output=True, text=True).stdout.split()
        columns = [c[1] for c in lite.execute(f"PRAGMA table_info({table})") if c[1] in out]
        names = ", ".join(columns)
        load = subprocess.Popen(psql + ["-c", "SET session_replication_role = replica",
                                        "-c", f"COPY {table} ({names}) FROM STDIN"],
                                stdin=subprocess.PIPE, text=True)
        for row in lite.execute(f"SELECT {names} FROM {table}"):
            load.stdin.write("\t".join(map(text_field, row)) + "\n")
        load.stdin.close()
        if load.wait() != 0:
            raise SystemExit(f"COPY into {table} failed")
    subprocess.run(psql + ["-c", "VACUUM ANALYZE"], check=True)
    print(f"  copied into PostgreSQL in {time.perf_counter() - started:.0f} s")


def start(place, tmp, expected=None):
    """Seconds from launch to /ready 200, and the resident memory then (MB); the index must then hold
    `expected` faces."""
    port = _free_port()
    args = [str(SERVER), "--disable-signature-check", "--listen", f"127.0.0.1:{port}", "--models-dir",
            str(ROOT / "models")]
    if place.startswith("postgres"):
        args += ["--database-url", place, "--data-dir", str(tmp / f"files-{port}")]
    else:
        args += ["--data-dir", place]
    env = dict(os.environ, IAI_LOG="warn")
    launched = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode}) on {place}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - launched
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        loaded = re.search(r'iai_index_vectors_total\{kind="faces"\} (\d+)', metrics)
        if expected is not None and (not loaded or int(loaded.group(1)) != expected):
            raise SystemExit(f"the server on {place} is ready with {loaded and loaded.group(1)} faces, not {expected}")
        status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
        return seconds, rss
    finally:
        proc.terminate()
        proc.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    for binary in (SERVER, SCALE):
        if not binary.exists():
            raise SystemExit(f"{binary} is missing: cargo build --release --bin iai-server --example scale")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="iai-start-", dir="/tmp"))
    pg = Postgres().start()  # its own folder, which the postgres user can reach
    rows = []
    try:
        for faces in a.faces:
            sqlite_dir = str(tmp / f"sqlite-{faces}")
            url = pg.new_database()
            print(f"{faces} faces, SQLite:")
            enrol(sqlite_dir, faces)
            print(f"{faces} faces, PostgreSQL:")
            start(url, tmp)  # the server makes the schema
            copy_into_postgres(sqlite_dir, url)
            times = {"sqlite": [], "postgres": []}
            memory = {"sqlite": [], "postgres": []}
            for _ in range(a.repeat):
                for name, place in (("sqlite", sqlite_dir), ("postgres", url)):
                    seconds, rss = start(place, tmp, expected=faces)
                    times[name].append(seconds)
                    memory[name].append(rss)
            s, p = statistics.median(times["sqlite"]), statistics.median(times["postgres"])
            ms, mp = statistics.median(memory["sqlite"]), statistics.median(memory["postgres"])
            rows.append((faces, s, p, ms, mp))
            print(f"  start to ready: SQLite {times['sqlite']}, PostgreSQL {times['postgres']}")
    finally:
        pg.destroy()
        subprocess.run(["rm", "-rf", str(tmp)])
    print()
    print("| faces | start to ready, SQLite | start to ready, PostgreSQL | ratio | resident when ready, SQLite / PostgreSQL |")
    print("|---|---|---|---|---|")
    for faces, s, p, ms, mp in rows:
        print(f"| {faces:,} | {s:.1f} s | {p:.1f} s | {p / s:.2f} | {ms:.0f} MB / {mp:.0f} MB |")


if __name__ == "__main__":
    main()
