"""Writes model packages for speed measurements when the trained ones are not at hand: the real
server and mobile architectures (torchvision EfficientNet-B4 at 380 and MobileNetV3-Large at 224,
8 classes) with random weights, exported to ONNX opset 17 with a dynamic batch, in the package
format of docs/model-package.md.

Speed does not depend on the weights, but it does depend on the values flowing through the
network: with default batch-norm statistics, random weights let activations grow until exp()
underflows into denormal floats, which the CPU computes many times slower. So batch-norm
statistics are first estimated from a few batches of noise. The answers of these packages are
the same for every image; use them for timing only.

usage: /usr/bin/python3 bench/make_speed_packages.py REPOSITORY
"""

import hashlib
import json
import os
import sys

import torch
import torchvision

LABELS = [("MEL", "Melanoma"), ("NV", "Melanocytic nevus"), ("BCC", "Basal cell carcinoma"),
          ("AK", "Actinic keratosis"), ("BKL", "Benign keratosis"), ("DF", "Dermatofibroma"),
          ("VASC", "Vascular lesion"), ("SCC", "Squamous cell carcinoma")]
PACKAGES = [("derm-effnet-b4", "efficientnet_b4", 380, 384), ("derm-mnv3-large", "mobilenet_v3_large", 224, 256)]


def export(repository, name, arch, size, shorter_side):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=len(LABELS))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batches below
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size))
    model.eval()

    directory = os.path.join(repository, name, "1")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=17, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    data = open(path, "rb").read()
    manifest = {
        "format": "dermcds-model-package", "format_version": 1, "name": name, "version": "1", "architecture": arch,
        "description": "speed measurements only: random weights",
        "input": {"name": "image", "layout": "NCHW", "color": "RGB", "size": size,
                  "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": shorter_side,
                             "interpolation": "bilinear"},
                  "scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "output": {"name": "logits", "kind": "logits"},
        "labels": [{"code": c, "name": n} for c, n in LABELS],
        "triage": {"rules": [{"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.30},
                             {"tier": "dermatology_review", "classes": ["MEL", "BCC", "SCC", "AK"], "threshold": 0.15}],
                   "default_tier": "routine"},
        "artifacts": [{"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                       "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "layout": "NCHW", "opset": 17}],
        "provenance": {"checkpoint": {"source": "random, for speed measurements"}},
    }
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"make_speed_packages: {name}/1 ({arch}, {size}x{size}, {len(data) / 1e6:.1f} MB)", file=sys.stderr)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    for name, arch, size, shorter_side in PACKAGES:
        export(sys.argv[1], name, arch, size, shorter_side)


if __name__ == "__main__":
    main()
