#!/usr/bin/env python3
"""Build `faceapi_recognition_128.onnx` (model version 3.0) from face-api.js's published weights.

Input: the npm package @vladmandic/face-api@1.7.15 unpacked (`package/model/face_recognition_model-weights_manifest.json`
and `face_recognition_model.bin`). The network is dlib's ResNet face descriptor as face-api.js defines it in
`src/faceRecognitionNet/*.ts`; ../shared/models/README.md ("Model version 3.0") describes it. Built NCHW with
onnx.helper (no TensorFlow), opset 13, input `input` [N,150,150,3] RGB 0-255 (the mean subtraction and /255
are inside), output `embedding` [N,128] (not normalised). Node and initializer names and their order follow the
mirror's build, so the bytes come out the same (tools/fetch_models.py checks the sha256).

    python build_faceapi_recognition.py <package-dir> <out.onnx>      (needs onnx==1.16.2, numpy==1.26.4)
"""


import numpy as np
from onnx import TensorProto, helper

import faceapi_weights


class Graph(faceapi_weights.Graph):
    def conv_scale(self, x, prefix, source, stride, pad, relu):
        """conv (+bias) then face-api.js's scale layer (x * weights + biases), optionally ReLU."""
        filters = self.w[f"{source}/conv/filters"].transpose(3, 2, 0, 1)
        k = filters.shape[2]
        w = self.init(f"{prefix}/w", np.ascontiguousarray(filters))
        b = self.init(f"{prefix}/b", self.w[f"{source}/conv/bias"])
        s = self.init(f"{prefix}/s", self.w[f"{source}/scale/weights"].reshape(1, -1, 1, 1))
        sb = self.init(f"{prefix}/sb", self.w[f"{source}/scale/biases"].reshape(1, -1, 1, 1))
        pads = [pad] * 4
        y = self.node("Conv", [x, w, b], f"{prefix}/conv", kernel_shape=[k, k], pads=pads, strides=[stride, stride])
        y = self.node("Mul", [y, s], f"{prefix}/mul")
        y = self.node("Add", [y, sb], f"{prefix}/add")
        return self.node("Relu", [y], f"{prefix}/relu") if relu else y

    def residual(self, x, block):
        y = self.conv_scale(x, f"{block}/conv1", f"{block}/conv1", 1, 1, True)
        y = self.conv_scale(y, f"{block}/conv2", f"{block}/conv2", 1, 1, False)
        y = self.node("Add", [y, x], f"{block}/sum")
        return self.node("Relu", [y], "relu")

    def residual_down(self, x, block, in_channels, in_size):
        y = self.conv_scale(x, f"{block}/conv1", f"{block}/conv1", 2, 0, True)
        y = self.conv_scale(y, f"{block}/conv2", f"{block}/conv2", 1, 1, False)
        out_channels = self.w[f"{block}/conv2/conv/filters"].shape[3]
        conv_size = (in_size - 3) // 2 + 1
        pooled_size = in_size // 2
        if pooled_size > conv_size:
            # The pooled shortcut is one larger: a zero row at the bottom and column at the right.
            out = self.name(f"{block}/padout")
            pads = self.init(self.name("pads"), np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))
            self.nodes.append(helper.make_node("Pad", [y, pads], [out]))
            y = out
        shortcut = self.node("AveragePool", [x], f"{block}/pool", kernel_shape=[2, 2], strides=[2, 2])
        if out_channels > in_channels:
            out = self.name(f"{block}/padc")
            pads = self.init(self.name("padsc"),
                             np.array([0, 0, 0, 0, 0, out_channels - in_channels, 0, 0], np.int64))
            self.nodes.append(helper.make_node("Pad", [shortcut, pads], [out]))
            shortcut = out
        y = self.node("Add", [shortcut, y], f"{block}/sum")
        return self.node("Relu", [y], "relu"), out_channels, max(pooled_size, conv_size)


def build(weights):
    g = Graph(weights)
    x = g.normalised_input()
    x = g.conv_scale(x, "conv32_down", "conv32_down", 2, 0, True)
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2])
    size, channels = 35, 32  # 150 -> 72 (7x7/2 valid) -> 35 (3x3/2 max pool)
    for block in ["conv32_1", "conv32_2", "conv32_3"]:
        x = g.residual(x, block)
    for stage in [("conv64_down", ["conv64_1", "conv64_2", "conv64_3"]), ("conv128_down", ["conv128_1", "conv128_2"]),
                  ("conv256_down", ["conv256_1", "conv256_2"]), ("conv256_down_out", [])]:
        x, channels, size = g.residual_down(x, stage[0], channels, size)
        for block in stage[1]:
            x = g.residual(x, block)
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flat")
    g.init("fc", weights["fc"])
    g.nodes.append(helper.make_node("MatMul", [x, "fc"], ["embedding"]))
    graph = helper.make_graph(
        g.nodes, "faceapi_recognition",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 150, 150, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        g.inits)
    return faceapi_weights.model(graph, "iai-scout")


if __name__ == "__main__":
    faceapi_weights.main(build, "face_recognition_model")
