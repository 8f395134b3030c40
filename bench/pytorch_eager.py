"""PyTorch eager timing for classify_bench: the same image through Pillow decode, the
torchvision transform and the network's forward pass, stage by stage.

Loads the package's checkpoint when the demo-checkpoint cache holds a file with the recorded
sha256; the timing does not depend on the weights, so without it the network keeps its random
initialisation (and says so).

usage: pytorch_eager.py --package DIR --image FILE --iterations N --warmup N --threads T --out FILE
"""

import argparse
import glob
import hashlib
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

from dermcds_export import architectures  # noqa: E402
from dermcds_export.reference_transform import load_rgb, transform_from_manifest_input  # noqa: E402


def find_checkpoint(provenance):
    wanted = provenance.get("checkpoint", {}).get("sha256")
    cache = os.environ.get("DERMCDS_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache"))
    for path in glob.glob(os.path.join(cache, "demo-checkpoints", "*.pt")):
        if wanted and hashlib.sha256(open(path, "rb").read()).hexdigest() == wanted:
            return path
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # Trained weights drive some activations into denormal floats, which x86 handles in
    # microcode at ~100x the cost; ONNX Runtime's kernels do not meet them on this model. Flushing
    # them is what a tuned PyTorch CPU deployment does, so the comparison is with PyTorch at its best.
    torch.set_flush_denormal(True)
    manifest = json.load(open(os.path.join(args.package, "manifest.json")))
    model = architectures.get(manifest["architecture"]).build()
    checkpoint = find_checkpoint(manifest.get("provenance", {}))
    if checkpoint:
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    else:
        print("pytorch_eager: checkpoint not in the cache; timing with random weights", file=sys.stderr)
    model.eval()
    transform = transform_from_manifest_input(manifest["input"])
    encoded = open(args.image, "rb").read()

    samples = {"decode": [], "preprocess": [], "inference": [], "total": []}
    with torch.no_grad():
        for i in range(args.warmup + args.iterations):
            t0 = time.perf_counter()
            image = load_rgb(io.BytesIO(encoded).getvalue())
            t1 = time.perf_counter()
            batch = transform(image).unsqueeze(0)
            t2 = time.perf_counter()
            model(batch)
            t3 = time.perf_counter()
            if i >= args.warmup:
                for key, value in (("decode", t1 - t0), ("preprocess", t2 - t1), ("inference", t3 - t2),
                                   ("total", t3 - t0)):
                    samples[key].append(value * 1000.0)
    json.dump({"torch_version": torch.__version__, "flush_denormal": True, "threads": args.threads,
               "checkpoint_loaded": bool(checkpoint), "samples_ms": samples}, open(args.out, "w"))


if __name__ == "__main__":
    main()
