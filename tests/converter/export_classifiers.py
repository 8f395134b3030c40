"""Test fixture: the torchvision classifiers and synthetic lesion images the converter tests use.

Exports each architecture with the project's own exporter (python -m dermcds_export export-onnx,
which recomputes batch-norm statistics on synthetic lesion images so outputs depend on the
input) at the opset listed below, and draws synthetic lesion images (python -m dermcds_export
synth). Results are cached: they are rebuilt only when the exporter's sources change (a stamp
holds their sha256).
"""

import argparse
import hashlib
import os
import subprocess
import sys

# Architecture -> opset: the converter is exercised across the opsets torch.onnx writes.
ARCHITECTURES = {
    "mobilenet_v3_large": 17,
    "mobilenet_v3_small": 13,
    "mobilenet_v2": 14,
    "resnet18": 15,
    "efficientnet_b0": 16,
    "efficientnet_b4": 17,
}
LESION_IMAGES = 24


def sources_digest(python_dir):
    digest = hashlib.sha256()
    package = os.path.join(python_dir, "dermcds_export")
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


def run(python_dir, *args):
    env = dict(os.environ, PYTHONPATH=python_dir)
    command = [sys.executable, "-m", "dermcds_export", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-dir", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--lesions", required=True)
    parser.add_argument("--only", nargs="*", help="architectures to export (default: all)")
    args = parser.parse_args()

    digest = sources_digest(args.python_dir)
    os.makedirs(args.models, exist_ok=True)
    for arch in args.only or ARCHITECTURES:
        opset = ARCHITECTURES[arch]
        target = os.path.join(args.models, f"{arch}.onnx")
        stamp = target + ".stamp"
        key = f"{digest} opset {opset}"
        if os.path.exists(target) and os.path.exists(stamp) and open(stamp).read() == key:
            continue
        temporary = os.path.join(args.models, f".{arch}.onnx.tmp")
        run(args.python_dir, "export-onnx", "--arch", arch, "--out", temporary, "--opset", str(opset))
        os.replace(temporary, target)
        with open(stamp, "w") as f:
            f.write(key)

    stamp = os.path.join(args.lesions, ".stamp")
    key = f"{digest} count {LESION_IMAGES}"
    if not (os.path.exists(stamp) and open(stamp).read() == key):
        run(args.python_dir, "synth", "--out", args.lesions, "--count", str(LESION_IMAGES))
        with open(stamp, "w") as f:
            f.write(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
