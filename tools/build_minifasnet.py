#!/usr/bin/env python3
"""Build a MiniFASNet liveness model (`minifasnet_*.onnx`) from its upstream PyTorch state dict.

Input: `2.7_80x80_MiniFASNetV2.pth` or `4_0_0_80x80_MiniFASNetV1SE.pth` from GitHub
minivision-ai/Silent-Face-Anti-Spoofing @b6d5f04ad78778917853b25c778acef6d5626d15 (`resources/anti_spoof_models/`,
Apache-2.0). The network is that repository's `src/model_lib/MiniFASNet.py`: the builder follows its module tree,
reading channel counts and kernel sizes from the weights, and takes the squeeze-excitation blocks (V1SE) from the
keys present. No PyTorch: the .pth is read with a restricted unpickler and numpy, the graph is written with
onnx.helper, opset 13, input `input` [N,3,80,80] BGR 0-255, output `logits` [N,3] (softmax it; class 1 = real).
Node and initializer names and their order follow the mirror's build, so the bytes come out the same
(tools/fetch_models.py checks the sha256).

    python build_minifasnet.py <model.pth> <out.onnx>      (needs onnx==1.16.2, numpy==1.26.4)
"""

import collections
import pathlib
import pickle
import re
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The storage classes a state dict names, and the element type each holds.
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Storage:
    """A storage named by the pickle; its bytes follow the pickle in the file and are read afterwards."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


def rebuild_tensor(storage, offset, size, stride, *_):
    """torch._utils._rebuild_tensor_v2, deferred: the storage's bytes are only read after the pickle."""
    return lambda: np.lib.stride_tricks.as_strided(
        storage.array[offset:], tuple(size), tuple(s * storage.array.itemsize for s in stride)).copy()


class StateDictUnpickler(pickle.Unpickler):
    """Resolves only what a plain state dict needs, so the .pth cannot run code."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a state dict")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid[:5]
        if kind != "storage" or (len(pid) > 5 and pid[5] is not None):
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        return self.storages.setdefault(key, Storage(dtype, numel))


def load_state_dict(path: pathlib.Path):
    """A torch.save file of the legacy (pre-1.6, non-zip) format, as upstream's are: magic, protocol, system info,
    the state dict pickle, the list of storage keys, then each storage as an int64 count and its raw bytes."""
    with open(path, "rb") as f:
        if StateDictUnpickler(f).load() != LEGACY_MAGIC or StateDictUnpickler(f).load() != 1001:
            raise ValueError(f"{path} is not a legacy torch.save file")
        if not StateDictUnpickler(f).load().get("little_endian"):
            raise ValueError(f"{path} was saved big-endian")
        unpickler = StateDictUnpickler(f)
        state = unpickler.load()
        for key in StateDictUnpickler(f).load():
            storage = unpickler.storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel:
                raise ValueError(f"{path}: storage {key} holds {numel} elements, the pickle says {storage.numel}")
            data = f.read(numel * np.dtype(storage.dtype).itemsize)
            storage.array = np.frombuffer(data, storage.dtype, numel)
        if f.read(1):
            raise ValueError(f"{path} has trailing bytes")
    # Saved from nn.DataParallel: every key starts with "module.".
    return {re.sub(r"^module\.", "", k): v() for k, v in state.items()}


class Graph:
    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, stem, **attrs):
        self.n += 1
        out = f"{stem}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x, prefix, stride=1, channels=None):
        """Conv2d without bias; `channels` (the input's) is given for grouped (depthwise) convolutions."""
        w = self.w[f"{prefix}.weight"]
        k = w.shape[2]
        group = (channels or w.shape[1]) // w.shape[1]
        # MiniFASNet pads its 3x3 convolutions by 1; the 1x1 ones and conv_6_dw (5x5 at 80x80) are unpadded.
        pad = 1 if k == 3 else 0
        return self.node("Conv", [x, self.init(f"{prefix}.weight", w)], prefix, group=group, kernel_shape=[k, k],
                         pads=[pad] * 4, strides=[stride, stride])

    def bn(self, x, prefix):
        inputs = [x] + [self.init(f"{prefix}.{short}", self.w[f"{prefix}.{key}"])
                        for short, key in [("w", "weight"), ("b", "bias"), ("m", "running_mean"), ("v", "running_var")]]
        return self.node("BatchNormalization", inputs, prefix, epsilon=1e-5)

    def block(self, x, prefix, channels, stride=1, prelu=True):
        """Conv_block (conv, bn, PReLU) or, without prelu, Linear_block (conv, bn)."""
        x = self.conv(x, f"{prefix}.conv", stride, channels)
        x = self.bn(x, f"{prefix}.bn")
        if prelu:
            slope = self.w[f"{prefix}.prelu.weight"]
            x = self.node("PRelu", [x, self.init(f"{prefix}.prelu.weight", slope.reshape(-1, 1, 1))], f"{prefix}.prelu")
        return x

    def se(self, x, prefix):
        s = self.node("GlobalAveragePool", [x], f"{prefix}.gap")
        s = self.conv(s, f"{prefix}.fc1")
        s = self.bn(s, f"{prefix}.bn1")
        s = self.node("Relu", [s], f"{prefix}.relu")
        s = self.conv(s, f"{prefix}.fc2")
        s = self.bn(s, f"{prefix}.bn2")
        s = self.node("Sigmoid", [s], f"{prefix}.sig")
        return self.node("Mul", [x, s], f"{prefix}.mul")

    def depth_wise(self, x, prefix, stride, residual):
        """Depth_Wise / Depth_Wise_SE: 1x1 expand, 3x3 depthwise, 1x1 project (+ SE) (+ shortcut)."""
        y = self.block(x, f"{prefix}.conv", None)
        y = self.block(y, f"{prefix}.conv_dw", self.w[f"{prefix}.conv.conv.weight"].shape[0], stride)
        y = self.block(y, f"{prefix}.project", None, prelu=False)
        if not residual:
            return y
        if f"{prefix}.se_module.fc1.weight" in self.w:
            y = self.se(y, f"{prefix}.se_module")
        return self.node("Add", [x, y], f"{prefix}.add")

    def residual(self, x, prefix):
        blocks = sorted({int(m.group(1)) for k in self.w for m in [re.match(rf"{prefix}\.model\.(\d+)\.", k)] if m})
        for i in blocks:
            x = self.depth_wise(x, f"{prefix}.model.{i}", 1, True)
        return x


def build(weights):
    g = Graph(weights)
    x = g.block("input", "conv1", None, stride=2)
    x = g.block(x, "conv2_dw", weights["conv1.conv.weight"].shape[0])
    x = g.depth_wise(x, "conv_23", 2, False)
    x = g.residual(x, "conv_3")
    x = g.depth_wise(x, "conv_34", 2, False)
    x = g.residual(x, "conv_4")
    x = g.depth_wise(x, "conv_45", 2, False)
    x = g.residual(x, "conv_5")
    x = g.block(x, "conv_6_sep", None)
    x = g.block(x, "conv_6_dw", weights["conv_6_sep.conv.weight"].shape[0], prelu=False)
    x = g.node("Flatten", [x], "flatten", axis=1)
    x = g.node("MatMul", [x, g.init("linear.wT", weights["linear.weight"].T)], "linear")
    # BatchNorm1d in inference, folded to a scale and a shift (dropout is the identity).
    scale = weights["bn.weight"] / np.sqrt(weights["bn.running_var"] + np.float32(1e-5))
    shift = weights["bn.bias"] - weights["bn.running_mean"] * scale
    x = g.node("Mul", [x, g.init("bn1d.g", scale)], "bn1d_mul")
    x = g.node("Add", [x, g.init("bn1d.b", shift)], "bn1d_add")
    g.nodes.append(helper.make_node("MatMul", [x, g.init("prob.wT", weights["prob.weight"].T)], ["logits"]))
    classes = weights["prob.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes, "minifasnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 80, 80])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        g.inits)
    model = helper.make_model(graph, producer_name="scout-det convert_minifasnet.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    pth, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    onnx.save(build(load_state_dict(pth)), out)


if __name__ == "__main__":
    main()
