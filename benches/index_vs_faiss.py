#!/usr/bin/env python3
"""The flat index against faiss-cpu's IndexFlatIP on the same random unit vectors in the same run.

For each size (10k, 100k, 1M vectors of 128 dimensions, model 3.0's), the same 100 queries go one at a time
(as the server searches per request) through `examples/index_timing.rs` and through faiss; prints the median
milliseconds per query, our time / faiss time, and the memory-bandwidth bound of a scan (bytes scanned /
copy bandwidth measured here with numpy). Both return the same top-10 keys (checked).

    python3 -m venv .venv-bench && .venv-bench/bin/pip install faiss-cpu==1.13.2 numpy==2.4.6   # once
    cargo build --release --example index_timing
    .venv-bench/bin/python benches/index_vs_faiss.py [--sizes 10000,100000,1000000]
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import faiss
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIM, K, QUERIES = 128, 10, 100


def unit(rng, n):
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def copy_bandwidth():
    """Bytes per second numpy copies a 1 GiB array (best of 5): the rate a scan can at most read."""
    src = np.ones(256 * 1024 * 1024, np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(5))
    return src.nbytes / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    binary = ROOT / "target" / "release" / "examples" / "index_timing"
    rng = np.random.default_rng(7)
    bandwidth = copy_bandwidth()
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} "
          f"OpenMP threads; {os.cpu_count()} cores")
    print(f"{'vectors':>9} {'ours ms':>9} {'faiss ms':>9} {'ours/faiss':>11} {'bound ms':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            data, queries = unit(rng, n), unit(rng, QUERIES)
            vectors_file, queries_file = pathlib.Path(tmp) / "v.f32", pathlib.Path(tmp) / "q.f32"
            data.tofile(vectors_file)
            queries.tofile(queries_file)
            out = subprocess.run([binary, vectors_file, queries_file, str(DIM), str(K), str(args.repeats)],
                                 check=True, capture_output=True, text=True).stdout.split("\n")
            ours = float(out[0].split()[1])
            ours_top = [int(x) for x in out[1].split()[1:]]
            index = faiss.IndexFlatIP(DIM)
            index.add(data)
            times = []
            for _ in range(args.repeats):
                for q in queries:
                    times.append(_timed(lambda: index.search(q[None, :], K)) * 1e3)
            theirs = statistics.median(times)
            _, faiss_top = index.search(queries[:1], K)
            assert ours_top == faiss_top[0].tolist(), (ours_top, faiss_top[0].tolist())
            bound = data.nbytes / bandwidth * 1e3
            print(f"{n:>9} {ours:>9.3f} {theirs:>9.3f} {ours / theirs:>11.2f} {bound:>9.3f}")


if __name__ == "__main__":
    main()
