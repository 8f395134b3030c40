"""Command line of the export pipeline: `python -m dermcds_export <subcommand> [options]`.

Run with Debian's interpreter (/usr/bin/python3) and PYTHONPATH=python. Progress goes to stderr;
a command's result (a path, a JSON summary) to stdout. Problems the user can fix end with one
line naming them and exit status 2 (invalid input) or 3 (missing file); see errors.py.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from . import EXPORTER_NAME, EXPORTER_VERSION
from .errors import UserError, os_error_status

ARCHITECTURE_NAMES = ("efficientnet_b4", "mobilenet_v3_large", "mobilenet_v2", "resnet18", "efficientnet_b0",
                      "mobilenet_v3_small")
DEMO_NAMES = ("efficientnet_b4", "mobilenet_v3_large")


def _train_demo(args: argparse.Namespace) -> int:
    from . import demo_training

    recipe = demo_training.recipe_for(args.arch)
    if args.seed is not None:
        # Another checkpoint of the same recipe (the int8 tests and bench/int8_seeds.sh use them).
        import dataclasses
        recipe = dataclasses.replace(recipe, seed=args.seed)
    path = demo_training.ensure_checkpoint(args.arch, recipe)
    report = json.loads(demo_training.report_path(path).read_text())
    held_out = report["held_out"]
    print(f"[train-demo] {args.arch}: held-out accuracy {held_out['accuracy']:.3f}, mean top-1 probability "
          f"{held_out['mean_top1_probability']:.3f}, probability std across images "
          f"{held_out['probability_std_across_images']:.3f} ({held_out['images']} images at "
          f"{report['inference_input']['size']}px); trained in {report['timings_s']['wall_total']:.0f}s",
          file=sys.stderr)
    print(report_path_or_json(path, report, args.json))
    return 0


def report_path_or_json(path: Path, report: dict, as_json: bool) -> str:
    return json.dumps(dict(report, checkpoint_path=str(path)), indent=2) if as_json else str(path)


def _export(args: argparse.Namespace) -> int:
    from .export import PackageExport, export_package

    summary = export_package(PackageExport(
        arch=args.arch, out=Path(args.out), name=args.name, version=args.version, check_dir=Path(args.check_dir),
        checkpoint=Path(args.checkpoint) if args.checkpoint else None, check_samples=args.check_samples))
    print(json.dumps(summary, indent=2))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from .export import OnnxExport, export_onnx_file

    summary = export_onnx_file(OnnxExport(
        arch=args.arch, out=Path(args.out), opset=args.opset,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None, demo=args.demo, seed=args.seed))
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dermcds_export",
        description="derm-cds export pipeline: synthetic lesions, demo training, PyTorch -> ONNX model packages.")
    parser.add_argument("--version", action="version", version=f"{EXPORTER_NAME} {EXPORTER_VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("train-demo", help="train (or find cached) demo weights for an architecture",
                       description="Trains the demo checkpoint of ARCH on synthetic lesions, deterministically, or "
                                   "returns the cached one (keyed by a hash of the code, recipe and library "
                                   "versions) at once. Prints the checkpoint's path.")
    p.add_argument("--arch", required=True, choices=DEMO_NAMES)
    p.add_argument("--seed", type=int, help="train the recipe with this seed instead of its own (another checkpoint "
                                            "of the same recipe, cached separately)")
    p.add_argument("--json", action="store_true", help="print the training report (metrics, timings) as JSON")
    p.set_defaults(func=_train_demo)

    p = sub.add_parser("export", help="checkpoint -> model package (model.onnx, manifest.json) + check tensors",
                       description="Exports ARCH with a checkpoint (or the demo weights) to ONNX opset 17 with a "
                                   "dynamic batch, writes STAGING_DIR/model.onnx and STAGING_DIR/manifest.json "
                                   "(docs/model-package.md), and into CHECK_DIR the sample inputs, PyTorch's "
                                   "logits for them and check.json, for the ONNX Runtime comparison.")
    p.add_argument("--arch", required=True, choices=ARCHITECTURE_NAMES)
    p.add_argument("--checkpoint", help="state_dict file (default: the demo checkpoint, trained if not cached)")
    p.add_argument("--out", required=True, metavar="STAGING_DIR", help="package directory to write")
    p.add_argument("--name", required=True, help="package name, e.g. derm-effnet-b4")
    p.add_argument("--version", required=True, help="package version, a positive integer")
    p.add_argument("--check-dir", required=True, metavar="DIR", help="where inputs.f32, torch_logits.f32, "
                                                                     "check.json go")
    p.add_argument("--check-samples", type=int, default=4, metavar="N", help="sample images (default 4)")
    p.set_defaults(func=_export)

    p = sub.add_parser("export-onnx", help="any architecture -> one ONNX file (converter tests)",
                       description="Exports ARCH to FILE.onnx at the given opset. Without --checkpoint or --demo "
                                   "the weights are random, with batch-norm statistics recomputed on 64 synthetic "
                                   "lesions so that the output depends on the input (checked before writing).")
    p.add_argument("--arch", required=True, choices=ARCHITECTURE_NAMES)
    p.add_argument("--out", required=True, metavar="FILE.onnx")
    p.add_argument("--opset", type=int, default=17, choices=range(13, 18), metavar="{13..17}",
                   help="ONNX opset (default 17)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", help="state_dict file")
    weights.add_argument("--demo", action="store_true", help="the demo checkpoint (efficientnet_b4, "
                                                             "mobilenet_v3_large)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.set_defaults(func=_export_onnx)

    from . import synth
    synth.add_parser(sub)

    # Subcommands of the parity and lifecycle tooling, which live in their own modules.
    from . import build_inputs, evaluation, image_sets, parity_plot, parity_reference
    for module in (parity_reference, parity_plot, build_inputs, image_sets, evaluation):
        module.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "export-onnx" and args.demo and args.arch not in DEMO_NAMES:
        parser.error(f"--demo: demo weights exist only for {', '.join(DEMO_NAMES)}")
    try:
        return args.func(args)
    except UserError as e:
        print(f"{args.command}: {e}", file=sys.stderr)
        return e.exit_status
    except ValueError as e:  # architecture and argument checks of the library functions
        print(f"{args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the operating system's errors: a full disk is not a bug
        print(f"{args.command}: {e}", file=sys.stderr)
        return os_error_status(e)
