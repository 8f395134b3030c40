"""Fixture for the parity tests: tiny packages with two ONNX Runtime artifacts, and numpy's answer.

Each package holds the tiny classifier of tests/core/make_tiny_packages.py twice: model.onnx
(float32 weights, the reference) and model_fp16.onnx (the same weights stored as float16 and cast
back, a real fp16 artifact that ONNX Runtime runs). In "tiny-parity" the fp16 artifact is honest;
in "tiny-perturbed" its weights were changed after export (one class's row shifted) and the
manifest's sha256 updated, so the package still verifies: only a parity check can tell.

expected.json holds, per package, what numpy computes for the pair (onnxruntime fp32 -> fp16):
the per-image probabilities (Pillow + torchvision preprocessing, channel means, matmul, softmax),
max and mean absolute difference overall and per class, top-1 and triage agreement, with the
triage rule implemented here again from docs/model-package.md. The C++ validator must reproduce
these numbers without sharing any code with this script.

usage: make_parity_packages.py OUT_DIR IMAGE...
"""

import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "core"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from make_tiny_packages import BIAS, LABELS, SHORTER_SIDE, SIZE, WEIGHTS, manifest, softmax, tiny_model  # noqa: E402
from dermcds_export.reference_transform import load_rgb, make_transform  # noqa: E402

# The perturbation: the blue-channel weight of AK (a review class) drops; on this image set one
# image changes its top-1 class and its triage tier.
PERTURBED_ROW, PERTURBATION = 3, np.array([0.0, 0.0, -1.0], dtype=np.float32)


def fp16_model(weights, bias):
    """The tiny classifier with float16 weights cast to float32 inside the graph."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Cast", ["weights_fp16"], ["weights"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["bias_fp16"], ["bias"], to=TensorProto.FLOAT),
        helper.make_node("Gemm", ["features", "weights", "bias"], ["logits"], transB=1),
    ]
    w16, b16 = weights.astype(np.float16), bias.astype(np.float16)
    graph = helper.make_graph(
        nodes, "tiny_fp16",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(bias)])],
        initializer=[helper.make_tensor("weights_fp16", TensorProto.FLOAT16, w16.shape, w16.tobytes(), raw=True),
                     helper.make_tensor("bias_fp16", TensorProto.FLOAT16, b16.shape, b16.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def artifact(directory, name, model, precision):
    path = os.path.join(directory, name)
    onnx.save(model, path)
    data = open(path, "rb").read()
    return {"runtime": "onnxruntime", "precision": precision, "file": name, "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data), "layout": "NCHW", "opset": 17}


def triage(probabilities, rules, default):
    codes = [code for code, _ in LABELS]
    for rule in rules:
        score = sum(probabilities[codes.index(c)] for c in rule["classes"])
        if score >= rule["threshold"]:
            return rule["tier"]
    return default


def pair_metrics(reference, candidate, document):
    rules, default = document["triage"]["rules"], document["triage"]["default_tier"]
    diffs = np.abs(np.array(candidate) - np.array(reference))  # images x classes
    return {
        "images": len(reference),
        "max_abs_diff": float(diffs.max()),
        "mean_abs_diff": float(diffs.mean()),
        "per_class_max": diffs.max(axis=0).tolist(),
        "per_class_mean": diffs.mean(axis=0).tolist(),
        "top1_agreement": float(np.mean([np.argmax(r) == np.argmax(c) for r, c in zip(reference, candidate)])),
        "triage_agreement": float(np.mean([triage(r, rules, default) == triage(c, rules, default)
                                           for r, c in zip(reference, candidate)])),
        "reference_tiers": [triage(r, rules, default) for r in reference],
        "candidate_tiers": [triage(c, rules, default) for c in candidate],
    }


def probabilities(features, weights, bias):
    return [softmax(weights @ f + bias).tolist() for f in features]


def main():
    out, images = sys.argv[1], sys.argv[2:]
    shutil.rmtree(out, ignore_errors=True)
    image_dir = os.path.join(out, "images")
    os.makedirs(image_dir)
    for image in images:
        shutil.copy(image, image_dir)
    names = sorted(os.listdir(image_dir))
    transform = make_transform(SIZE, SHORTER_SIDE, "bilinear")
    features = [transform(load_rgb(os.path.join(image_dir, n))).numpy().reshape(3, -1).mean(axis=1, dtype=np.float64)
                .astype(np.float32) for n in names]

    perturbed_weights = WEIGHTS.copy()
    perturbed_weights[PERTURBED_ROW] += PERTURBATION
    expected = {"images": names}
    for name, fp16_weights in (("tiny-parity", WEIGHTS), ("tiny-perturbed", perturbed_weights)):
        directory = os.path.join(out, "repository", name, "1")
        os.makedirs(directory)
        artifacts = [artifact(directory, "model.onnx", tiny_model(), "fp32"),
                     artifact(directory, "model_fp16.onnx", fp16_model(fp16_weights, BIAS), "fp16")]
        document = manifest(name, SIZE, artifacts)
        with open(os.path.join(directory, "manifest.json"), "w") as f:
            json.dump(document, f, indent=2)
        reference = probabilities(features, WEIGHTS, BIAS)
        candidate = probabilities(features, fp16_weights.astype(np.float16).astype(np.float32),
                                  BIAS.astype(np.float16).astype(np.float32))
        expected[name] = {"fp32": reference, "fp16": candidate, "pair": pair_metrics(reference, candidate, document)}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
    for name in ("tiny-parity", "tiny-perturbed"):
        p = expected[name]["pair"]
        print(f"{name}: max |dp| {p['max_abs_diff']:.3g}, mean {p['mean_abs_diff']:.3g}, "
              f"top-1 {p['top1_agreement']:.3f}, triage {p['triage_agreement']:.3f}")


if __name__ == "__main__":
    main()
