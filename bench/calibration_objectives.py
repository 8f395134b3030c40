"""Which temperature-fitting objective halves the expected calibration error, and on how many lesions?

Issue 10 (docs/safety.md, "Why calibration missed its goal"). Computes the logits of a checkpoint
on four disjoint sets of held-out synthetic lesions (seeds 8101 and 8111 to fit on, 8102 and
8112 to measure on; drawn and encoded as the export's safety fit draws them), then fits a
temperature on the first tune set alone and on both, by three objectives: negative
log-likelihood and Brier score on the export's grid of temperatures, and ECE itself (the export's
own fit, safety.fit_temperature). For each it prints T and
the ECE (15 bins, safety.expected_calibration_error) before and after, on the first COUNT test
lesions and on all 2 x COUNT, and an ECE-against-T scan on both test sizes.

    PYTHONPATH=python /usr/bin/python3 bench/calibration_objectives.py --arch mobilenet_v3_large \\
        --checkpoint .cache/demo-checkpoints/demo-mobilenet_v3_large-<key>.pt [--count 192]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from dermcds_export import architectures, checkpoints, safety
from dermcds_export.reference_transform import transform_from_manifest_input

TUNE_SEEDS, TEST_SEEDS = (8101, 8111), (8102, 8112)
GRID = safety.TEMPERATURE_GRID  # the temperatures the export chooses among


def logits_of(network, linear, transform, seed, count):
    images, labels = safety._held_out_tensors(seed, count, transform)
    _, logits = safety._run(network, linear, images)
    return logits, labels


def ece(logits, labels, t):
    return safety.expected_calibration_error(safety._softmax(logits / t), labels)


def nll(logits, labels, t):
    z = logits / t
    z = z - z.max(1, keepdims=True)
    return float((np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), labels]).mean())


def brier(logits, labels, t):
    p = safety._softmax(logits / t)
    return float(((p - np.eye(p.shape[1])[labels]) ** 2).sum(1).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=sorted(architectures.ARCHITECTURES))
    parser.add_argument("--checkpoint", required=True, type=Path, help="a .pt checkpoint of that architecture")
    parser.add_argument("--count", type=int, default=192, help="lesions per set (default 192)")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    if not 16 <= args.count <= 2000:
        parser.error("--count must be between 16 and 2000")

    torch.set_num_threads(1)
    arch = architectures.get(args.arch)
    network = checkpoints.load_checkpoint(arch, args.checkpoint).eval()
    linear = network.get_submodule(safety.last_linear_name(network))
    transform = transform_from_manifest_input(arch.input.manifest())
    sets = {}
    for seed in TUNE_SEEDS + TEST_SEEDS:
        sets[seed] = logits_of(network, linear, transform, seed, args.count)
        print(f"seed {seed}: {args.count} lesions, accuracy {(sets[seed][0].argmax(1) == sets[seed][1]).mean():.3f}",
              file=sys.stderr, flush=True)

    def joined(seeds):
        return np.concatenate([sets[s][0] for s in seeds]), np.concatenate([sets[s][1] for s in seeds])

    def grid_fit(objective):
        return lambda logits, labels: float(GRID[np.argmin([objective(logits, labels, t) for t in GRID])])

    small_test = sets[TEST_SEEDS[0]]
    large_test = joined(TEST_SEEDS)
    small_before, large_before = ece(*small_test, 1), ece(*large_test, 1)
    # "ece" is the export's own fit (safety.fit_temperature); the others on the same grid.
    fitters = {"nll": grid_fit(nll), "brier": grid_fit(brier), "ece": safety.fit_temperature}
    print(f"{'fit on':>10} {'objective':>9} {'T':>6} {'ECE test ' + str(args.count):>16} "
          f"{'ECE test ' + str(2 * args.count):>16}")
    for label, tune in ((str(args.count), sets[TUNE_SEEDS[0]]), (str(2 * args.count), joined(TUNE_SEEDS))):
        for name, fit in fitters.items():
            t = fit(*tune)
            print(f"{label:>10} {name:>9} {t:6.3f} {small_before:7.4f} -> {ece(*small_test, t):.4f} "
                  f"{large_before:7.4f} -> {ece(*large_test, t):.4f}")
    temperatures = (1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3)
    scan = (f"{t}: {ece(*small_test, t):.3f}/{ece(*large_test, t):.3f}" for t in temperatures)
    print("T scan (ECE small/large test):", " ".join(scan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
