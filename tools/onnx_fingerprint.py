#!/usr/bin/env python3
"""A fingerprint of an ONNX model that ignores the names a converter makes up.

tf2onnx names folded constants and helper nodes differently on every run, so two conversions of the same
upstream model differ in bytes (and sha256) while their graphs and weights are the same. This hash covers
what the model computes: every node's operator, attributes and wiring (inputs named by where they come from:
graph input, weight contents or producing node position), every weight's dtype, shape and bytes, the
outputs and the opsets. tools/fetch_models.py accepts a rebuilt file whose fingerprint equals the pinned one.

    python onnx_fingerprint.py <model.onnx>...      (needs onnx)
"""

import hashlib
import sys

import onnx
from onnx import numpy_helper


def fingerprint(path) -> str:
    model = onnx.load(str(path))
    graph = model.graph
    names = {}
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        data = array.tobytes() + str(array.shape).encode() + str(array.dtype).encode()
        names[init.name] = "w:" + hashlib.sha256(data).hexdigest()[:16]
    for k, graph_input in enumerate(graph.input):
        names.setdefault(graph_input.name, f"in{k}")
    outputs = {o.name for o in graph.output}
    lines = []
    for index, node in enumerate(graph.node):
        for k, out in enumerate(node.output):
            names[out] = out if out in outputs else f"n{index}:{k}"
        attrs = sorted((a.name, str(onnx.helper.get_attribute_value(a))) for a in node.attribute)
        wiring = ",".join(names.get(i, i) for i in node.input)
        lines.append(f"{node.op_type}({wiring})->{[names[o] for o in node.output]} {attrs}")
    lines += [f"out {o.name}" for o in graph.output]
    lines += [f"opset {o.domain}:{o.version}" for o in model.opset_import]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(fingerprint(path), path)
