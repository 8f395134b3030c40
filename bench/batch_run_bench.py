#!/usr/bin/python3
"""Directory throughput of `dermcds classify DIR --output FILE.csv` against offline batched inference.

The goal (issue 10, docs/benchmarks.md): a batch run over a directory classifies at least 0.9x
as many images per second as the offline batched run, `Classifier::classify_batch` on ready,
already preprocessed images of the same batch size (classify_bench --batch, which neither reads
nor decodes). The batch run's rate is the one it prints itself when it ends: from its first
image to its last, after the session was created, with every file read, decoded, preprocessed,
classified and written.

Each subject runs in a process of its own, one after the other, never side by side (two ONNX
Runtime sessions in one process slow each other down, docs/benchmarks.md), and the two take turns
for --rounds rounds so that a drift in the machine's speed slows both alike. The images are
synthetic lesions (synth.py) with shorter sides of at least the model's input, half PNG, half
JPEG, as the validation set is.

    /usr/bin/python3 bench/batch_run_bench.py --model models/derm-effnet-b4 [--count 96] [--rounds 3]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from dermcds_export import synth  # noqa: E402

# The batch run's last progress line (docs/cli.md): "dermcds: classify: N/N images, R images/s, ...".
RATE = re.compile(r"(\d+)/(\d+) images?, ([0-9.]+) images/s")


def model_input(model: Path) -> int:
    """The input size of the package `dermcds` serves from --model: the package itself, or the
    model directory's active version (its ACTIVE marker, docs/lifecycle.md)."""
    if (model / "manifest.json").is_file():
        manifest = model / "manifest.json"
    elif (model / "ACTIVE").is_file():
        manifest = model / (model / "ACTIVE").read_text().strip() / "manifest.json"
    else:
        raise SystemExit(f"batch_run_bench: {model} is neither a package nor a model directory with an active version")
    return int(json.loads(manifest.read_text())["input"]["size"])


def directory_rate(dermcds: Path, model: Path, images: Path, output: Path, batch: int) -> float:
    result = subprocess.run([str(dermcds), "classify", str(images), "--model", str(model), "--output", str(output),
                             "--force", "--batch", str(batch)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"batch_run_bench: dermcds classify failed ({result.returncode}):\n{result.stderr}")
    rates = [m for m in RATE.finditer(result.stderr) if m.group(1) == m.group(2)]
    if not rates:
        raise SystemExit(f"batch_run_bench: no final rate in dermcds classify's output:\n{result.stderr}")
    return float(rates[-1].group(3))


def offline_rate(bench: Path, model: Path, image: Path, batch: int, iterations: int, work: Path) -> float:
    out = work / "offline.json"
    result = subprocess.run([str(bench), "--model", str(model), "--image", str(image), "--batch", str(batch),
                             "--iterations", str(iterations), "--rounds", "1", "--no-pytorch", "--no-bare",
                             "--json", str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"batch_run_bench: classify_bench failed ({result.returncode}):\n{result.stderr}")
    return float(json.loads(out.read_text())["ours"]["batch"]["images_per_second"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "derm-effnet-b4",
                        help="model directory or package")
    parser.add_argument("--count", type=int, default=96, help="images in the directory (default 96)")
    parser.add_argument("--batch", type=int, default=8, help="images per inference, both subjects (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the subjects take turns in (default 3)")
    parser.add_argument("--build", type=Path, default=ROOT / "build", help="build directory (default build/)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.count < args.batch or args.batch < 1 or args.rounds < 1:
        parser.error("--count must be at least --batch, and --batch and --rounds at least 1")
    dermcds, bench = args.build / "bin" / "dermcds", args.build / "bin" / "classify_bench"
    for binary in (dermcds, bench):
        if not binary.is_file():
            parser.error(f"{binary} is missing: build first (make build)")
    if not args.model.is_dir():
        parser.error(f"--model {args.model} is not a directory")

    size = model_input(args.model)
    with tempfile.TemporaryDirectory(prefix="batch-run-bench-") as temporary:
        work = Path(temporary)
        images = work / "images"
        print(f"batch_run_bench: drawing {args.count} lesions (shorter side {size}-640)", file=sys.stderr, flush=True)
        synth.write_set(images, args.count, seed=9401, image_format="mixed", shorter_side=(size, 640))
        # The offline subject classifies one of the same images, preprocessed once.
        sample = sorted(images.glob("*.jpg"))[0]
        directory, offline = [], []
        for r in range(args.rounds):
            offline.append(offline_rate(bench, args.model, sample, args.batch, args.count, work))
            directory.append(directory_rate(dermcds, args.model, images, work / "out.csv", args.batch))
            print(f"round {r + 1}: offline batched {offline[-1]:.2f} images/s, directory {directory[-1]:.2f} images/s, "
                  f"ratio {directory[-1] / offline[-1]:.3f}", flush=True)
    ratio = statistics.median(directory) / statistics.median(offline)
    report = {"model": str(args.model), "images": args.count, "batch": args.batch, "rounds": args.rounds,
              "offline_batched_images_per_second": offline, "directory_images_per_second": directory,
              "ratio_of_medians": ratio, "goal": 0.9, "met": ratio >= 0.9}
    print(f"directory / offline batched throughput: {ratio:.3f} (goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
