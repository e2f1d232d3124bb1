#!/usr/bin/env python3
"""DetectFace and CompareFace end to end through the live server (release build, official Python SDK, TC3 POST)
against the same ONNX files run with ONNX Runtime's Python API on the same images, in the same run.

The baseline does the model work a caller would do by hand: decode with Pillow, resize and pad for YuNet, run
it, decode its outputs; for CompareFace also warp each face onto the template (Pillow affine) and run the
embedding model on the crop and its mirror. The ratio server / baseline is what to read; it includes the
SDK's signing, base64 and HTTP on the server side.

    .venv-tests/bin/pip install onnxruntime==1.31.1 numpy   # once
    cargo build --release && .venv-tests/bin/python benches/live_server.py [--rounds 30]
"""

import argparse
import base64
import io
import os
import pathlib
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "py"))
import conftest  # noqa: E402  (server start-up and SDK client set-up shared with the tests)
from tencentcloud.iai.v20180301 import models  # noqa: E402

FACES = conftest.SHARED / "faces"
IMAGES = [
    FACES / "edge_cases" / "formats" / "syn_face.png",
    FACES / "tests" / "dlib_John_Savage" / "000291_01099214.jpg",
    FACES / "edge_cases" / "multi_face" / "examples__two_people.jpg",
    FACES / "edge_cases" / "rotated" / "cpp-package__inspireface__test_res__data__bulk__r0.jpg",
]
TEMPLATE = np.array([[46.12, 45.32], [100.84, 44.47], [74.32, 78.21], [50.11, 100.47], [100.27, 99.46]], np.float32)


class Baseline:
    def __init__(self, threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        models_dir = ROOT / "models"
        self.yunet = ort.InferenceSession(str(models_dir / "yunet_n_dynamic.onnx"), opts)
        self.embed = ort.InferenceSession(str(models_dir / "faceapi_recognition_128.onnx"), opts)

    def detect(self, data: bytes):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = image.size
        scale = 640 / max(w, h)
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = np.asarray(image.resize((rw, rh), Image.BILINEAR), np.float32)
        pw, ph = -(-rw // 32) * 32, -(-rh // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :rh, :rw] = resized[:, :, ::-1].transpose(2, 0, 1)
        out = dict(zip([o.name for o in self.yunet.get_outputs()], self.yunet.run(None, {"input": blob})))
        faces = []
        for s in (8, 16, 32):
            cols = pw // s
            score = np.sqrt(np.clip(out[f"cls_{s}"][0, :, 0], 0, 1) * np.clip(out[f"obj_{s}"][0, :, 0], 0, 1))
            for i in np.nonzero(score >= 0.7)[0]:
                row, col = divmod(int(i), cols)
                b, k = out[f"bbox_{s}"][0, i], out[f"kps_{s}"][0, i]
                cx, cy, bw, bh = (col + b[0]) * s, (row + b[1]) * s, np.exp(b[2]) * s, np.exp(b[3]) * s
                marks = np.array([[(col + k[2 * j]) * s, (row + k[2 * j + 1]) * s] for j in range(5)]) / scale
                faces.append((score[i], bw * bh / scale / scale, marks))
        faces.sort(key=lambda f: -f[1])
        return image, faces

    def embedding(self, image, marks):
        # Least-squares similarity onto the template, then Pillow's affine warp (it wants output -> input).
        src, dst = marks - marks.mean(0), TEMPLATE - TEMPLATE.mean(0)
        norm = (src ** 2).sum()
        a = (src * dst).sum() / norm
        b = (src[:, 0] * dst[:, 1] - src[:, 1] * dst[:, 0]).sum() / norm
        forward = np.array([[a, -b], [b, a]])
        t = TEMPLATE.mean(0) - forward @ marks.mean(0)
        inverse = np.linalg.inv(forward)
        ti = -inverse @ t
        crop = image.transform((150, 150), Image.AFFINE, (*inverse[0], ti[0], *inverse[1], ti[1]), Image.BILINEAR)
        batch = np.stack([np.asarray(crop, np.float32), np.asarray(crop, np.float32)[:, ::-1]])
        e = self.embed.run(None, {"input": batch})[0].sum(0)
        return e / np.linalg.norm(e)

    def compare(self, a: bytes, b: bytes):
        ea = self.embedding(*self._largest(a))
        eb = self.embedding(*self._largest(b))
        return float(ea @ eb)

    def _largest(self, data):
        image, faces = self.detect(data)
        return image, faces[0][2]


def timed(fn, rounds):
    fn()  # warm-up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    threads = os.cpu_count()
    os.environ["IAI_BIN"] = str(ROOT / "target" / "release" / "iai-server")
    base = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"iai-bench-{os.getpid()}"
    base.mkdir(parents=True)
    config = base / "iai.toml"
    config.write_text(f"inference_threads = {threads}\n")
    server = conftest.Server(base / "data", config)
    server.start()
    client = conftest.make_client(server)
    baseline = Baseline(threads)
    print(f"{'case':<58} {'server ms':>10} {'onnxruntime-python ms':>22} {'ratio':>7}")
    try:
        for path in IMAGES:
            data = path.read_bytes()
            req = models.DetectFaceRequest()
            req.Image = base64.b64encode(data).decode()
            s = timed(lambda: client.DetectFace(req), args.rounds)
            b = timed(lambda: baseline.detect(data), args.rounds)
            print(f"DetectFace {path.name[:46]:<47} {s * 1e3:>10.1f} {b * 1e3:>22.1f} {s / b:>7.2f}")
        a, b_ = IMAGES[0].read_bytes(), IMAGES[3].read_bytes()
        req = models.CompareFaceRequest()
        req.ImageA, req.ImageB = base64.b64encode(a).decode(), base64.b64encode(b_).decode()
        s = timed(lambda: client.CompareFace(req), args.rounds)
        b = timed(lambda: baseline.compare(a, b_), args.rounds)
        print(f"{'CompareFace ' + IMAGES[0].name + ' vs ' + IMAGES[3].name[-6:]:<58} {s * 1e3:>10.1f} {b * 1e3:>22.1f} "
              f"{s / b:>7.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
