"""Writes small ONNX model packages for the core tests, with numpy reference outputs.

The tiny model is a real classifier over the preprocessed image: per-channel means of the
normalized input (GlobalAveragePool) through a fixed 8x3 linear layer. Its logits depend on the
image, so comparing derm-cds's end-to-end output with numpy's (Pillow + torchvision transform ->
mean -> matmul -> softmax) checks decoding, preprocessing, ONNX Runtime and softmax together
against a reference that shares none of our C++ code.

Also writes deliberately wrong packages (input size, class count, tensor names) for the
model-mismatch tests.

usage: make_tiny_packages.py OUT_DIR IMAGE...
"""

import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
from dermcds_export.reference_transform import load_rgb, make_transform  # noqa: E402

LABELS = [("MEL", "Melanoma"), ("NV", "Melanocytic nevus"), ("BCC", "Basal cell carcinoma"),
          ("AK", "Actinic keratosis"), ("BKL", "Benign keratosis"), ("DF", "Dermatofibroma"),
          ("VASC", "Vascular lesion"), ("SCC", "Squamous cell carcinoma")]
SIZE, SHORTER_SIDE = 64, 72
WEIGHTS = np.array([[1.5, -0.5, 0.25], [-1.0, 2.0, 0.5], [0.5, 0.5, -2.0], [2.0, 1.0, 1.0],
                    [-0.75, -1.5, 0.0], [0.0, 0.3, 1.2], [1.1, -2.2, 0.7], [-0.4, 0.9, -1.3]],
                   dtype=np.float32) * 3.0
BIAS = np.array([0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8], dtype=np.float32)


def tiny_model(size=SIZE, classes=8, input_name="image", output_name="logits"):
    weights = np.resize(WEIGHTS, (classes, 3))
    bias = np.resize(BIAS, classes)
    nodes = [
        helper.make_node("GlobalAveragePool", [input_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "weights", "bias"], [output_name], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes])],
        initializer=[helper.make_tensor("weights", TensorProto.FLOAT, weights.shape, weights.flatten()),
                     helper.make_tensor("bias", TensorProto.FLOAT, bias.shape, bias)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def tiny_guarded_model():
    """The tiny model plus the safety guard's second output, "ood_score" [batch, 1]: the squared
    length of the channel-mean vector, a stand-in for the export's feature distance."""
    model = tiny_model()
    graph = model.graph
    graph.node.extend([
        helper.make_node("Mul", ["features", "features"], ["squares"]),
        helper.make_node("ReduceSum", ["squares", "axes"], ["ood_score"], keepdims=1),
    ])
    graph.initializer.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
    graph.output.append(helper.make_tensor_value_info("ood_score", TensorProto.FLOAT, ["batch", 1]))
    onnx.checker.check_model(model, full_check=True)
    return model


def manifest(name, size=SIZE, artifacts=()):
    return {
        "format": "dermcds-model-package", "format_version": 1,
        "name": name, "version": "1", "architecture": "tiny_mean_linear",
        "description": "test model: channel means through a fixed linear layer",
        "input": {"name": "image", "layout": "NCHW", "color": "RGB", "size": size,
                  "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": SHORTER_SIDE,
                             "interpolation": "bilinear"},
                  "scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "output": {"name": "logits", "kind": "logits"},
        "labels": [{"code": c, "name": n} for c, n in LABELS],
        "triage": {"rules": [{"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.30},
                             {"tier": "dermatology_review", "classes": ["MEL", "BCC", "SCC", "AK"], "threshold": 0.15}],
                   "default_tier": "routine"},
        "artifacts": list(artifacts),
        "provenance": {"checkpoint": {"source": "test"}, "created": "2026-01-01T00:00:00Z"},
    }


def stand_in_evidence(sha256, candidate="numpy/fp32/cpu"):
    """Parity evidence for a one-artifact test package, so that a repository serves it (docs/
    lifecycle.md, "The serving rule"). It stands in for a `dermcds parity` run, which a package
    with one artifact and no PyTorch model cannot make; the comparison it records is the one the
    tests themselves make, of every answer with the numpy reference. Tests of the rule take it
    away or make it stale."""
    reference = "onnxruntime/fp32/cpu"
    return {"note": "test fixture: stands in for a dermcds parity run (tests/core/make_tiny_packages.py)",
            "passed": True, "reference": reference,
            "subjects": [{"id": reference, "runtime": "onnxruntime", "precision": "fp32", "provider": "cpu",
                          "artifact": "model.onnx", "sha256": sha256},
                         {"id": candidate, "runtime": candidate.split("/")[0], "precision": "fp32", "provider": "cpu"}],
            "skipped": [],
            "pairs": [{"reference": reference, "candidate": candidate, "bound_key": "fixture", "passed": True,
                       "violations": []}]}


def write_package(repository, name, model, manifest_size=SIZE, safety=None):
    directory = os.path.join(repository, name, "1")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.onnx")
    onnx.save(model, path)
    data = open(path, "rb").read()
    artifact = {"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "layout": "NCHW", "opset": 17}
    document = manifest(name, manifest_size, [artifact])
    document["parity"] = stand_in_evidence(artifact["sha256"])
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        if safety:
            document["safety"] = safety
        json.dump(document, f, indent=2)


def softmax(logits):
    e = np.exp(logits.astype(np.float64) - logits.max())
    return e / e.sum()


def main():
    out, images = sys.argv[1], sys.argv[2:]
    repository = os.path.join(out, "repository")
    write_package(repository, "tiny", tiny_model())
    write_package(repository, "tiny-wrong-size", tiny_model(size=48))
    write_package(repository, "tiny-wrong-classes", tiny_model(classes=5))
    write_package(repository, "tiny-wrong-names", tiny_model(input_name="pixels"))

    transform = make_transform(SIZE, SHORTER_SIDE, "bilinear")
    references = []
    for image in images:
        tensor = transform(load_rgb(image)).numpy()
        means = tensor.reshape(3, -1).mean(axis=1, dtype=np.float64).astype(np.float32)
        logits = WEIGHTS @ means + BIAS
        references.append({"image": image, "probabilities": softmax(logits).tolist(),
                           "ood_score": float((means.astype(np.float64) ** 2).sum())})
    # The guard's threshold between the images' scores, so that some pass and some do not.
    scores = sorted(r["ood_score"] for r in references)
    threshold = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2 if len(scores) > 1 else 1.0
    write_package(repository, "tiny-guarded", tiny_guarded_model(), safety={"ood": {
        "output": "ood_score", "method": "mahalanobis", "direction": "higher_is_out_of_distribution",
        "threshold": threshold}})
    with open(os.path.join(out, "tiny_reference.json"), "w") as f:
        json.dump(references, f, indent=2)


if __name__ == "__main__":
    main()
