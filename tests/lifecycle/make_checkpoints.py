"""Two small, distinct checkpoints for the lifecycle tests: MobileNetV3-Small state_dicts.

Weights are random (seeded); batch-norm statistics are recomputed on synthetic lesion images so
that the network's answers depend on the image (with untouched statistics every input gives
nearly the same output, and a parity check would prove nothing). Each checkpoint is written only
if missing, so repeated runs are free.

usage: make_checkpoints.py OUT_DIR
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from dermcds_export import architectures, demo_training, lesions  # noqa: E402
from dermcds_export.reference_transform import make_transform  # noqa: E402


def make(path, seed):
    if os.path.exists(path):
        return
    torch.manual_seed(seed)
    arch = architectures.get("mobilenet_v3_small")
    model = arch.build()
    transform = make_transform(arch.input.size, arch.input.shorter_side)
    images = torch.stack([transform(image) for image, _ in lesions.generate(seed, 16, size=(288, 288))])
    demo_training.recalibrate_batch_norm(model, images)
    tmp = path + ".tmp"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    make(os.path.join(out, "small-a.pt"), 11)
    make(os.path.join(out, "small-b.pt"), 12)


if __name__ == "__main__":
    main()
