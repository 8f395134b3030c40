"""Writes the model repository the service tests serve, with numpy reference outputs.

  tiny/1       the core tests' tiny classifier (channel means of the normalized image through a
               fixed 8x3 linear layer; tests/core/make_tiny_packages.py)
  tiny/2       the same network with different weights, so a test can tell which version answered
               (tiny/ACTIVE names version 1)
  tiny-conv/1  three 3x3 convolutions at 128x128 before the same head: enough arithmetic that
               inference, not HTTP or decoding, limits throughput in the load tests

Each package carries parity evidence for its model.onnx, since nothing serves without it
(docs/lifecycle.md, "The serving rule"). It is a stand-in for a `dermcds parity` run, which these
one-artifact packages cannot make (there is no second runtime or PyTorch model to compare): the
pair it records is the comparison the service tests themselves make, of every answer with the
numpy reference below (1e-4). tests/service/test_serving_rule.cpp takes the evidence away and
shows the service refusing.

service_reference.json holds, per photograph, the probabilities of tiny/1 and tiny/2 computed with
Pillow + torchvision + numpy, which share no code with derm-cds.

usage: make_service_repository.py OUT_DIR IMAGE...
"""

import copy
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import make_tiny_packages as tiny  # noqa: E402
from dermcds_export.reference_transform import load_rgb, make_transform  # noqa: E402

# tiny/2: rows rotated and signs flipped, so its top class differs from tiny/1's on most photos.
WEIGHTS_V2 = -np.roll(tiny.WEIGHTS, 3, axis=0)
BIAS_V2 = np.roll(tiny.BIAS, 3)
CONV_SIZE, CONV_SHORTER_SIDE = 128, 144


def with_weights(model, weights, bias):
    model = copy.deepcopy(model)
    for initializer in model.graph.initializer:
        if initializer.name == "weights":
            initializer.CopyFrom(numpy_helper.from_array(weights.astype(np.float32), "weights"))
        elif initializer.name == "bias":
            initializer.CopyFrom(numpy_helper.from_array(bias.astype(np.float32), "bias"))
    onnx.checker.check_model(model, full_check=True)
    return model


def conv_model():
    rng = np.random.default_rng(2019)
    layers = [(3, 16), (16, 32), (32, 32)]
    nodes, initializers, previous = [], [], "image"
    for i, (cin, cout) in enumerate(layers):
        # He initialisation keeps activations in range; fixed seed keeps the package reproducible.
        w = rng.normal(0, np.sqrt(2.0 / (cin * 9)), size=(cout, cin, 3, 3)).astype(np.float32)
        initializers.append(numpy_helper.from_array(w, f"conv{i}_w"))
        nodes.append(helper.make_node("Conv", [previous, f"conv{i}_w"], [f"conv{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        previous = f"relu{i}"
    head = rng.normal(0, 0.5, size=(8, 32)).astype(np.float32)
    initializers += [numpy_helper.from_array(head, "head_w"),
                     numpy_helper.from_array(np.zeros(8, np.float32), "head_b")]
    nodes += [helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
              helper.make_node("Gemm", ["features", "head_w", "head_b"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "tiny_conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, CONV_SIZE, CONV_SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 8])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write_package(repository, name, version, model, manifest):
    directory = os.path.join(repository, name, version)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.onnx")
    onnx.save(model, path)
    data = open(path, "rb").read()
    manifest = dict(manifest, version=version)
    sha256 = hashlib.sha256(data).hexdigest()
    manifest["artifacts"] = [{"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                              "sha256": sha256, "bytes": len(data), "layout": "NCHW", "opset": 17}]
    manifest["parity"] = tiny.stand_in_evidence(sha256)
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


def reference(transform, image, weights, bias):
    tensor = transform(load_rgb(image)).numpy()
    logits = weights @ tensor.reshape(3, -1).mean(axis=1, dtype=np.float64).astype(np.float32) + bias
    return tiny.softmax(logits).tolist()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, images = sys.argv[1], sys.argv[2:]
    repository = os.path.join(out, "repository")
    base = tiny.tiny_model()
    write_package(repository, "tiny", "1", base, tiny.manifest("tiny"))
    write_package(repository, "tiny", "2", with_weights(base, WEIGHTS_V2, BIAS_V2), tiny.manifest("tiny"))
    # Version 1 serves at first, so that activating 2 is a real swap.
    with open(os.path.join(repository, "tiny", "ACTIVE"), "w") as f:
        f.write("1\n")
    conv_manifest = tiny.manifest("tiny-conv", CONV_SIZE)
    conv_manifest["architecture"] = "tiny_conv"
    conv_manifest["description"] = "test model: three 3x3 convolutions and a linear head"
    conv_manifest["input"]["resize"]["shorter_side"] = CONV_SHORTER_SIDE
    write_package(repository, "tiny-conv", "1", conv_model(), conv_manifest)

    transform = make_transform(tiny.SIZE, tiny.SHORTER_SIDE, "bilinear")
    references = [{"image": image,
                   "probabilities": {"1": reference(transform, image, tiny.WEIGHTS, tiny.BIAS),
                                     "2": reference(transform, image, WEIGHTS_V2, BIAS_V2)}}
                  for image in images]
    with open(os.path.join(out, "service_reference.json"), "w") as f:
        json.dump(references, f, indent=2)
    print(f"make_service_repository: wrote {repository} and references for {len(images)} photographs")


if __name__ == "__main__":
    main()
