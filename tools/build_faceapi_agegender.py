#!/usr/bin/env python3
"""Build `faceapi_agegender.onnx` (age and gender) from face-api.js's published weights.

Input: the npm package @vladmandic/face-api@1.7.15 unpacked (`package/model/age_gender_model-weights_manifest.json`
and `age_gender_model.bin`). The network is face-api.js's AgeGenderNet: the TinyXception feature extractor of
`src/xception/TinyXception.ts` (two main blocks) and the two fully connected heads of
`src/ageGenderNet/AgeGenderNet.ts`; ../shared/models/README.md ("Age (and a better gender)") describes it. Built
NCHW with onnx.helper (no TensorFlow), opset 13, IR 8: weights dequantised per tensor (q * scale + min, in float32),
HWIO -> OIHW, each depthwise separable convolution as a grouped Conv followed by a 1x1 Conv, TF "same" padding as
SAME_UPPER. Input `input` [N,112,112,3] RGB 0-255 (the mean subtraction and /255 are inside), outputs `age` [N,1]
in years and `gender` [N,2] softmax (column 0 = male). Node and initializer names, their order and the producer
name follow the mirror's build, so the bytes come out the same (tools/fetch_models.py checks the sha256).

    python build_faceapi_agegender.py <package-dir> <out.onnx>      (needs onnx==1.16.2, numpy==1.26.4)
"""


import numpy as np
from onnx import TensorProto, helper

import faceapi_weights

MAIN_BLOCKS = 2  # AgeGenderNet's default TinyXception(2)


class Graph(faceapi_weights.Graph):
    def relu(self, x):
        return self.node("Relu", [x], "relu")

    def conv(self, x, prefix, stride):
        """tf.conv2d(x, filters, stride, 'same') + bias."""
        filters = self.w[f"{prefix}/filters"]
        k = filters.shape[0]
        w = self.init(f"{prefix}/w", np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))
        b = self.init(f"{prefix}/b", self.w[f"{prefix}/bias"])
        if k == 1:  # TF "same" with a 1x1 kernel pads nothing
            return self.node("Conv", [x, w, b], prefix, kernel_shape=[1, 1], pads=[0, 0, 0, 0],
                             strides=[stride, stride])
        return self.node("Conv", [x, w, b], prefix, auto_pad="SAME_UPPER", kernel_shape=[k, k],
                         strides=[stride, stride])

    def separable(self, x, prefix):
        """face-api.js's depthwiseSeparableConv (stride 1, 'same'): depthwise 3x3, pointwise 1x1, bias."""
        depthwise = self.w[f"{prefix}/depthwise_filter"]  # [3, 3, C, 1]
        channels = depthwise.shape[2]
        dw = self.init(f"{prefix}/dw", np.ascontiguousarray(depthwise.transpose(2, 3, 0, 1)))
        pointwise = self.w[f"{prefix}/pointwise_filter"]  # [1, 1, C, C']
        pw = self.init(f"{prefix}/pw", np.ascontiguousarray(pointwise.transpose(3, 2, 0, 1)))
        b = self.init(f"{prefix}/b", self.w[f"{prefix}/bias"])
        y = self.node("Conv", [x, dw], f"{prefix}/dw", group=channels, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return self.node("Conv", [y, pw, b], f"{prefix}/pw", kernel_shape=[1, 1])

    def reduction_block(self, x, block, activate_input=True):
        out = self.relu(x) if activate_input else x
        out = self.separable(out, f"{block}/separable_conv0")
        out = self.separable(self.relu(out), f"{block}/separable_conv1")
        out = self.node("MaxPool", [out], f"{block}/pool", auto_pad="SAME_UPPER", kernel_shape=[3, 3],
                        strides=[2, 2])
        return self.node("Add", [out, self.conv(x, f"{block}/expansion_conv", 2)], f"{block}/add")

    def main_block(self, x, block):
        out = self.separable(self.relu(x), f"{block}/separable_conv0")
        out = self.separable(self.relu(out), f"{block}/separable_conv1")
        out = self.separable(self.relu(out), f"{block}/separable_conv2")
        return self.node("Add", [out, x], f"{block}/add")


def build(weights):
    g = Graph(weights)
    x = g.normalised_input()
    # TinyXception: 112 -> 56 (conv_in) -> 28 -> 14 (entry reductions) -> 7 (exit reduction), 512 channels.
    x = g.relu(g.conv(x, "entry_flow/conv_in", 2))
    x = g.reduction_block(x, "entry_flow/reduction_block_0", activate_input=False)
    x = g.reduction_block(x, "entry_flow/reduction_block_1")
    for idx in range(MAIN_BLOCKS):
        x = g.main_block(x, f"middle_flow/main_block_{idx}")
    x = g.reduction_block(x, "exit_flow/reduction_block")
    x = g.relu(g.separable(x, "exit_flow/separable_conv"))
    # AgeGenderNet: avgPool 7x7/2 'valid' (7x7 -> 1x1), then the two fully connected heads.
    x = g.node("AveragePool", [x], "avgpool", kernel_shape=[7, 7], strides=[2, 2])
    x = g.node("Flatten", [x], "flat")
    g.init("fc_age_w", weights["fc/age/weights"])
    g.init("fc_age_b", weights["fc/age/bias"])
    age = g.node("MatMul", [x, "fc_age_w"], "age_mm")
    g.nodes.append(helper.make_node("Add", [age, "fc_age_b"], ["age"]))
    g.init("fc_gender_w", weights["fc/gender/weights"])
    g.init("fc_gender_b", weights["fc/gender/bias"])
    gender = g.node("MatMul", [x, "fc_gender_w"], "g_mm")
    gender = g.node("Add", [gender, "fc_gender_b"], "g_add")
    g.nodes.append(helper.make_node("Softmax", [gender], ["gender"], axis=1))
    graph = helper.make_graph(
        g.nodes, "faceapi_agegender",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 112, 112, 3])],
        [helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("gender", TensorProto.FLOAT, ["N", 2])],
        g.inits)
    # The producer name is the one the mirror's build wrote; it is part of the pinned bytes.
    return faceapi_weights.model(graph, "attr2/build_faceapi_agegender.py")


if __name__ == "__main__":
    faceapi_weights.main(build, "age_gender_model")
