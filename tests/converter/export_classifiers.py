"""Test fixture: the torchvision classifiers and synthetic lesion images the converter tests use.

Exports each architecture with the project's own exporter (python -m dermcds_export export-onnx,
which recomputes batch-norm statistics on synthetic lesion images so outputs depend on the
input) at the opset listed below, and draws three disjoint sets of synthetic lesion images
(python -m dermcds_export synth, different seeds): whole-model test inputs, int8 calibration
images, and held-out images to measure int8 quality on. Results are cached: they are rebuilt
only when the exporter's sources change (a stamp holds their sha256).
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys

# Architecture -> (opset, weights): the converter is exercised across the opsets torch.onnx
# writes. The mobile and server networks are the demo-trained ones (make models has trained
# them; the checkpoints are cached), the others have random weights whose exporter rescales the head so that outputs
# depend on the input (their softmax is saturated: logits of hundreds to thousands).
ARCHITECTURES = {
    "mobilenet_v3_large": (17, "demo"),
    "mobilenet_v3_small": (13, "random"),
    "mobilenet_v2": (14, "random"),
    "resnet18": (15, "random"),
    "efficientnet_b0": (16, "random"),
    # The server network with its demo weights: with random weights its logits reach 1e5, and
    # ONNX Runtime and TFLite fp32 already differ by a third of that from summation order alone
    # (measured on an AVX2-only EPYC), so whether the top-1 of a saturated softmax flips was luck.
    "efficientnet_b4": (17, "demo"),
    # The demo recipe trained with another seed (cached like the demo checkpoint): the int8 goal
    # must hold on any checkpoint of the recipe, not just the one the project ships.
    "mobilenet_v3_large_seed2": (17, "demo-seed:2"),
}
# Image sets: directory argument -> (seed, count).
IMAGE_SETS = {
    "lesions": (7, 24),        # whole-model inputs
    "calibration": (101, 100),  # int8 calibration
    "heldout": (202, 200),     # int8 quality measurement
}


def sources_digest(python_dir):
    digest = hashlib.sha256()
    package = os.path.join(python_dir, "dermcds_export")
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


def round_weights_to_float16(source, target, min_elements=1024):
    """The same model with every float initializer of at least `min_elements` elements rounded
    through float16 (and stored as float32 again): what `dermcds convert --precision fp16` does to
    the weights, so ONNX Runtime on this file is an exact reference for the fp16 conversion."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(source)
    for i, init in enumerate(model.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size >= min_elements and sum(d > 1 for d in array.shape) >= 2:
            rounded = array.astype(np.float16).astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(rounded, init.name))
    onnx.save(model, target)


def run(python_dir, *args, capture=False):
    env = dict(os.environ, PYTHONPATH=python_dir)
    command = [sys.executable, "-m", "dermcds_export", *args]
    print("+", " ".join(command), flush=True)
    done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE if capture else None, text=True)
    return done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-dir", required=True)
    parser.add_argument("--models", required=True)
    for name in IMAGE_SETS:
        parser.add_argument(f"--{name}", required=True, help=f"directory for the {name} images")
    parser.add_argument("--only", nargs="*", help="architectures to export (default: all)")
    args = parser.parse_args()

    digest = sources_digest(args.python_dir)
    os.makedirs(args.models, exist_ok=True)
    for arch in args.only or ARCHITECTURES:
        opset, weights = ARCHITECTURES[arch]
        target = os.path.join(args.models, f"{arch}.onnx")
        stamp = target + ".stamp"
        with open(__file__, "rb") as f:  # this file rounds the fp16 reference
            fixture = hashlib.sha256(f.read()).hexdigest()
        key = f"{digest} {fixture} opset {opset} {weights}"
        if os.path.exists(target) and os.path.exists(stamp) and open(stamp).read() == key:
            continue
        temporary = os.path.join(args.models, f".{arch}.onnx.tmp")
        if weights.startswith("demo-seed:"):
            base = arch.rsplit("_seed", 1)[0]
            checkpoint = run(args.python_dir, "train-demo", "--arch", base, "--seed", weights.split(":")[1],
                             capture=True).strip()
            run(args.python_dir, "export-onnx", "--arch", base, "--out", temporary, "--opset", str(opset),
                "--checkpoint", checkpoint)
        else:
            run(args.python_dir, "export-onnx", "--arch", arch, "--out", temporary, "--opset", str(opset),
                *(["--demo"] if weights == "demo" else []))
        os.replace(temporary, target)
        round_weights_to_float16(target, os.path.join(args.models, f".{arch}.fp16.tmp"))
        os.replace(os.path.join(args.models, f".{arch}.fp16.tmp"),
                   os.path.join(args.models, f"{arch}.fp16-weights.onnx"))
        with open(stamp, "w") as f:
            f.write(key)

    for name, (seed, count) in IMAGE_SETS.items():
        directory = getattr(args, name)
        stamp = os.path.join(directory, ".stamp")
        key = f"{digest} seed {seed} count {count}"
        if os.path.exists(stamp) and open(stamp).read() == key:
            continue
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        run(args.python_dir, "synth", "--out", directory, "--count", str(count), "--seed", str(seed))
        with open(stamp, "w") as f:
            f.write(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
