"""What the face-api.js model builders share (tools/build_faceapi_recognition.py, build_faceapi_agegender.py):
reading a tfjs weights manifest and its shard, and naming nodes the way the pinned files were built."""

import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def load_weights(package: pathlib.Path, stem: str):
    """`package/model/{stem}-weights_manifest.json` and `{stem}.bin`: every tensor by name, uint8/uint16
    quantised ones dequantised (q * scale + min) in float32 arithmetic, as the pinned files were built."""
    model = package / "model"
    manifest = json.loads((model / f"{stem}-weights_manifest.json").read_text())
    blob = (model / f"{stem}.bin").read_bytes()
    weights, offset = {}, 0
    for spec in manifest[0]["weights"]:
        count = int(np.prod(spec["shape"])) if spec["shape"] else 1
        quant = spec.get("quantization")
        if quant:
            qdtype = {"uint8": np.uint8, "uint16": np.uint16}[quant["dtype"]]
            q = np.frombuffer(blob, qdtype, count, offset)
            offset += q.nbytes
            value = q.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
        else:
            value = np.frombuffer(blob, np.float32, count, offset).copy()
            offset += value.nbytes
        weights[spec["name"]] = value.reshape(spec["shape"])
    if offset != len(blob):
        raise SystemExit(f"{stem}.bin has {len(blob)} bytes, but its manifest describes {offset}")
    return weights


class Graph:
    """Nodes and initializers in build order; node outputs are named `{stem}_{n}` with one counter."""

    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, stem):
        self.n += 1
        return f"{stem}_{self.n}"

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, stem, **attrs):
        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def normalised_input(self):
        """`input` (NHWC, RGB 0-255) as face-api.js feeds its networks: NCHW, minus the mean, over 255."""
        self.init("mean", np.array([122.782, 117.001, 104.298], np.float32).reshape(1, 3, 1, 1))
        self.init("d255", np.array(255.0, np.float32))
        x = self.node("Transpose", ["input"], "nchw", perm=[0, 3, 1, 2])
        x = self.node("Sub", [x, "mean"], "center")
        return self.node("Div", [x, "d255"], "scale")


def model(graph, producer: str):
    """The ONNX model as the pinned files were written: opset 13, IR 8, `producer` (part of the pinned bytes)."""
    built = helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", 13)])
    built.ir_version = 8
    onnx.checker.check_model(built)
    return built


def main(build, stem: str):
    """`python build_x.py <package-dir> <out.onnx>`: the model `build` makes from the package's `stem` weights."""
    package, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    onnx.save(build(load_weights(package, stem)), out)
