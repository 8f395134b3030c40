"""Which weight tensors make float16 miss its 2e-3 bound, and how many must stay float32?

Issue 3's requirement: fp16 moves no probability by more than 2e-3 against fp32. On an AVX2-only
EPYC the demo MobileNetV3-Large misses it (docs/converter.md). This estimates, in PyTorch alone,
what the converter's fp16 rule does to a checkpoint: every tensor the rule stores as float16
(float, at least 1024 elements, at least two dimensions above 1: fp16_weights.cpp; the same
predicate as round_weights_to_float16 in tests/converter/export_*.py) is rounded through float16,
and the largest |dp| against the unrounded network is printed on five of the tests' photographs
(test_support.hpp) and on the lesion set, first with all of them rounded, then with each alone
(the sensitivity ranking), then keeping the K most sensitive float32 for K = 1..--keep.

An estimate, not the converter's exact arithmetic: the rounding is applied to the PyTorch
weights, before the ONNX export folds batch normalization into them, so the converter rounds
W * gamma / sigma where this rounds W (the same relative error, other bits), and TFLite's
summation order is not modelled.

    PYTHONPATH=python /usr/bin/python3 bench/fp16_sensitivity.py --arch mobilenet_v3_large \\
        --checkpoint .cache/demo-checkpoints/demo-mobilenet_v3_large-<key>.pt \\
        --lesions .cache/image-sets/calibration [--photos .deps/photos] [--keep 12]
"""

import argparse
import sys
from pathlib import Path

import torch

from dermcds_export import architectures, checkpoints
from dermcds_export import reference_transform as rt

PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png", "retina.jpg")
MIN_ELEMENTS = 1024  # fp16_weights.cpp's default (ConvertOptions::fp16_min_elements)


def stored_as_fp16(t: torch.Tensor) -> bool:
    return t.dtype == torch.float32 and t.numel() >= MIN_ELEMENTS and sum(d > 1 for d in t.shape) >= 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="architecture name (architectures.py)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="state-dict file")
    parser.add_argument("--lesions", required=True, type=Path, help="folder of lesion PNGs")
    parser.add_argument("--photos", type=Path, default=Path(".deps/photos"), help="folder of the test photographs")
    parser.add_argument("--keep", type=int, default=12, help="largest number of tensors kept float32 (default 12)")
    args = parser.parse_args(argv)
    try:
        arch = architectures.get(args.arch)
        model = checkpoints.load_checkpoint(arch, args.checkpoint)
    except (ValueError, OSError) as e:
        print(f"fp16_sensitivity: {e}", file=sys.stderr)
        return 2
    photos = [args.photos / n for n in PHOTOS if (args.photos / n).exists()]
    lesions = sorted(args.lesions.glob("*.png"))
    if not lesions:
        print(f"fp16_sensitivity: no PNG in {args.lesions}", file=sys.stderr)
        return 2
    transform = rt.transform_from_manifest_input(arch.input.manifest())
    images = torch.stack([transform(rt.load_rgb(p)) for p in photos + lesions])
    split = len(photos)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    names = [k for k, v in state.items() if stored_as_fp16(v)]
    with torch.no_grad():
        reference = torch.softmax(model(images), 1)

        def max_dp(rounded):
            model.load_state_dict({k: (v.half().float() if k in rounded else v) for k, v in state.items()})
            d = (torch.softmax(model(images), 1) - reference).abs()
            return (d[:split].max().item() if split else 0.0), d[split:].max().item()

        print(f"{args.arch}: {len(names)} tensors stored as float16, {split} photographs, {len(lesions)} lesions")
        print("all rounded: max |dp| photographs %.3g, lesions %.3g" % max_dp(set(names)))
        ranking = sorted(((max(max_dp({k})), k) for k in names), reverse=True)
        for dp, k in ranking[:args.keep]:
            print(f"  alone {dp:.3g}  {k} ({state[k].numel()} elements)")
        kept = []
        for _, k in ranking[:args.keep]:
            kept.append(k)
            elements = sum(state[n].numel() for n in kept)
            photo_dp, lesion_dp = max_dp(set(names) - set(kept))
            print(f"keep {len(kept)} float32 ({elements} elements): "
                  f"max |dp| photographs {photo_dp:.3g}, lesions {lesion_dp:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
