"""The Python side of a lifecycle build's inputs (dermcds models build, docs/lifecycle.md).

`python -m dermcds_export build-inputs --arch ARCH [--checkpoint FILE] --out OUT.json` writes the
export pipeline's version and the checkpoint a build would export: the given file, or the demo
checkpoint (trained first when it is not cached), with its sha256. The C++ lifecycle folds these
into the fingerprint that decides whether anything needs building.
"""

import argparse
import json
from pathlib import Path

from .errors import NotFound
from .files import write_text_atomically
from .hashing import portable_path, sha256_file


def run(args: argparse.Namespace) -> int:
    from . import EXPORTER_NAME, EXPORTER_VERSION, architectures

    architectures.get(args.arch)  # a clear error for an unknown name
    if args.checkpoint:
        path = Path(args.checkpoint)
        if not path.is_file():
            raise NotFound(f"no checkpoint file at {path}")
        source = "file"
    else:
        from . import demo_training

        path = demo_training.ensure_checkpoint(args.arch)
        source = "demo"
    document = {
        "exporter": {"name": EXPORTER_NAME, "version": EXPORTER_VERSION},
        "architecture": args.arch,
        "checkpoint": {"source": source, "file": path.name, "sha256": sha256_file(path)},
    }
    portable = portable_path(path)  # never a path of this machine (docs/model-package.md)
    if portable:
        document["checkpoint"]["path"] = portable
    out = Path(args.out)
    write_text_atomically(out, json.dumps(document, indent=2) + "\n")
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("build-inputs", help="exporter version and checkpoint hash for a lifecycle build",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="architecture name")
    parser.add_argument("--checkpoint", help="state_dict file (default: the demo checkpoint, trained if not cached)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.set_defaults(func=run)
