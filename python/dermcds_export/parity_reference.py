"""PyTorch ground truth for the parity validator (docs/parity.md).

`python -m dermcds_export torch-reference --package DIR --images LIST --out OUT.json` loads the
checkpoint a model package was exported from, checks it against the sha256 the package's
provenance records, and runs every listed image through the PyTorch model with the training
pipeline's own image code (reference_transform.py: Pillow decoding, torchvision transforms). The
C++ side (dermcds parity) compares these logits with ONNX Runtime's: nothing of the C++ decoder,
preprocessing or runtimes is on this path.

Where the checkpoint is looked for, in order: --checkpoint; provenance.checkpoint.path (absolute,
or relative to the package); lifecycle.inputs.checkpoint.path; the demo checkpoint cache
(demo_training.cache_dir()) under provenance.checkpoint.file. The first file whose sha256 matches
is used; a file that exists but does not match is reported, never used.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .errors import NotFound
from .files import write_text_atomically
from .hashing import resolve_recorded_path, sha256_file

BATCH = 8


def _candidates(manifest: dict, package: Path, override: Optional[str]) -> List[Path]:
    from . import demo_training

    out: List[Path] = []
    if override:
        out.append(Path(override))
    checkpoint = manifest.get("provenance", {}).get("checkpoint", {})
    if checkpoint.get("path"):
        out.append(resolve_recorded_path(checkpoint["path"]))
    lifecycle_path = manifest.get("lifecycle", {}).get("inputs", {}).get("checkpoint", {}).get("path")
    if lifecycle_path:
        out.append(resolve_recorded_path(lifecycle_path))
    if checkpoint.get("file"):
        out.append(demo_training.cache_dir() / Path(checkpoint["file"]).name)
    return out


def find_checkpoint(manifest: dict, package: Path, override: Optional[str] = None) -> Path:
    """The checkpoint file the package was exported from, verified by sha256; raises NotFound."""
    expected = manifest.get("provenance", {}).get("checkpoint", {}).get("sha256")
    tried = []
    for path in _candidates(manifest, package, override):
        if not path.is_file():
            tried.append(f"{path} (missing)")
            continue
        actual = sha256_file(path)
        if expected is None or actual == expected:
            return path
        tried.append(f"{path} (sha256 {actual[:12]}..., the package was exported from {expected[:12]}...)")
    origin = f"{manifest.get('name')}/{manifest.get('version')}"
    if not tried:
        raise NotFound(f"{origin}: the package's provenance names no checkpoint; give --checkpoint FILE")
    raise NotFound(f"{origin}: no checkpoint matching the package's provenance; tried: " + "; ".join(tried))


def run(args: argparse.Namespace) -> int:
    import torch

    from . import architectures
    from .checkpoints import load_checkpoint
    from .reference_transform import load_rgb, transform_from_manifest_input

    package = Path(args.package)
    manifest_path = package / "manifest.json"
    if not manifest_path.is_file():
        raise NotFound(f"no model package at {package} (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    checkpoint = find_checkpoint(manifest, package, args.checkpoint)
    # torch defaults to one thread per physical core, which on a small hyper-threaded machine is
    # one thread for two CPUs; channels_last is the layout the demo models were trained in and
    # runs convolutions on the CPU about half again as fast (results differ by float rounding).
    torch.set_num_threads(args.threads if args.threads > 0 else max(1, len(os.sched_getaffinity(0))))
    model = load_checkpoint(architectures.get(manifest["architecture"]), checkpoint)
    # A package with the safety guard was exported from the checkpoint wrapped with its fitted
    # guard and temperature (safety.py); the reference is that same graph.
    from .safety import guarded_from_package
    guarded = guarded_from_package(model, manifest, package)
    model = (guarded or model).to(memory_format=torch.channels_last)
    transform = transform_from_manifest_input(manifest["input"])
    images = [line.strip() for line in Path(args.images).read_text().splitlines() if line.strip()]
    print(f"torch-reference: {len(images)} images through {manifest['architecture']} ({checkpoint.name})",
          file=sys.stderr, flush=True)

    results = [None] * len(images)
    pending = []  # (index, tensor)

    def flush():
        if not pending:
            return
        with torch.no_grad():
            out = model(torch.stack([t for _, t in pending]).contiguous(memory_format=torch.channels_last))
        logits, scores = out if guarded is not None else (out, None)
        for row_index, ((index, _), row) in enumerate(zip(pending, logits)):
            results[index] = {"image": images[index], "logits": [float(v) for v in row]}
            if scores is not None:
                results[index]["ood_score"] = float(scores[row_index, 0])
        pending.clear()

    for index, image in enumerate(images):
        try:
            tensor = transform(load_rgb(image))
        except Exception as e:  # Pillow's refusal is a result, not a crash: the report lists it
            results[index] = {"image": image, "error": f"{type(e).__name__}: {e}"}
            continue
        pending.append((index, tensor))
        if len(pending) == BATCH:
            flush()
    flush()

    document = {
        "torch": torch.__version__,
        "architecture": manifest["architecture"],
        "checkpoint": {"file": checkpoint.name, "path": str(checkpoint.resolve()), "sha256": sha256_file(checkpoint)},
        "results": results,
    }
    out = Path(args.out)
    write_text_atomically(out, json.dumps(document) + "\n")
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "torch-reference", help="PyTorch logits for images, from the checkpoint a package was exported from",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="model package directory (manifest.json)")
    parser.add_argument("--images", required=True, help="text file, one image path per line")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--checkpoint", help="checkpoint file (default: found from the manifest's provenance)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per CPU this process may use)")
    parser.set_defaults(func=run)
