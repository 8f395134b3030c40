"""Checks that the arm64 build answers as the x86_64 build does.

Runs `dermcds classify --json` of both builds on the same photographs, for the tiny test package
and for every artifact of the real packages in the model repository (EfficientNet-B4 on ONNX
Runtime; MobileNetV3-Large on ONNX Runtime and TensorFlow Lite fp32/fp16/int8), the arm64 binary
under qemu-aarch64. For each package, runtime and precision it prints the largest probability
difference between the two architectures and whether top-1 class and triage tier agree, and fails
when a difference exceeds the bound the test suite holds that precision to (1e-4 fp32, 2e-3 fp16,
1e-2 int8) or a top-1/triage verdict differs although the image is not within that bound of a
threshold.

usage: compare_architectures.py --host-cli X86_DERMCDS --arm64-cli ARM64_DERMCDS [--tiny DIR]
           [--repository DIR] [--report FILE] [--large-model-photos N] PHOTO... -- QEMU [QEMU_ARG...]
"""

import argparse
import json
import os
import subprocess
import sys
import time

BOUNDS = {"fp32": 1e-4, "fp16": 2e-3, "int8": 1e-2}
REAL_MODELS = ("derm-effnet-b4", "derm-mnv3-large")


def parse_args(argv):
    """Everything after "--" is the emulator's command line (qemu-aarch64 and its options)."""
    if "--" not in argv:
        sys.exit("compare: the emulator's command line must follow --")
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host-cli", required=True, help="the x86_64 build's dermcds")
    parser.add_argument("--arm64-cli", required=True, help="the arm64 build's dermcds")
    parser.add_argument("--tiny", help="repository of the tiny test packages")
    parser.add_argument("--repository", help="model repository with the real packages (make models)")
    parser.add_argument("--report", help="write the comparison as JSON here")
    parser.add_argument("--large-model-photos", type=int, default=0,
                        help="give models with inputs above 256x256 (EfficientNet-B4) only the first N photographs: "
                             "under emulation each takes about half a minute (0: all)")
    parser.add_argument("photos", nargs="+")
    args = parser.parse_args(argv[:split])
    args.emulator = argv[split + 1:]
    if not args.emulator:
        sys.exit("compare: no emulator command after --")
    return args


def configurations(args):
    """(label, package directory, runtime, precision, photographs) for every artifact to compare."""
    found = []
    if args.tiny:
        found.append(("tiny", os.path.join(args.tiny, "tiny", "1"), "onnxruntime", "fp32", args.photos))
    for name in REAL_MODELS:
        model_dir = os.path.join(args.repository or "", name)
        if not args.repository or not os.path.isdir(model_dir):
            print(f"compare: {name} is not in the repository; run make models to compare it", file=sys.stderr)
            continue
        versions = sorted((v for v in os.listdir(model_dir) if v.isdigit()), key=int)
        active = os.path.join(model_dir, "ACTIVE")
        version = open(active).read().strip() if os.path.exists(active) else versions[-1]
        package = os.path.join(model_dir, version)
        with open(os.path.join(package, "manifest.json")) as f:
            manifest = json.load(f)
        photos = args.photos
        if args.large_model_photos > 0 and manifest["input"]["size"] > 256:
            photos = args.photos[:args.large_model_photos]
        for artifact in manifest["artifacts"]:
            found.append((f"{name}/{version}", package, artifact["runtime"], artifact["precision"], photos))
    return found


def classify(command, package, runtime, precision, photos):
    started = time.monotonic()
    run = subprocess.run([*command, "classify", "--json", "--model", package, "--runtime", runtime,
                          "--precision", precision, *photos], capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"compare: {' '.join(command)} failed ({run.returncode}) on {package} {runtime} {precision}:"
                 f"\n{run.stderr}")
    return json.loads(run.stdout), elapsed


def compare(host, arm64, bound):
    worst, top1_disagreements, triage_disagreements, unexplained = 0.0, 0, 0, []
    for h, a in zip(host, arm64, strict=True):
        p_h = [c["probability"] for c in h["probabilities"]]
        p_a = [c["probability"] for c in a["probabilities"]]
        difference = max(abs(x - y) for x, y in zip(p_h, p_a))
        worst = max(worst, difference)
        # A verdict may only flip where the image sits within the bound of a decision.
        close_call = min(h["triage"]["margin"], a["triage"]["margin"]) <= bound
        if h["top1"]["code"] != a["top1"]["code"]:
            top1_disagreements += 1
            ordered = sorted(p_h, reverse=True)
            if ordered[0] - ordered[1] > 2 * bound:
                unexplained.append(f"{h['image']}: top-1 {h['top1']['code']} on x86_64, {a['top1']['code']} on arm64")
        if h["triage"]["tier"] != a["triage"]["tier"]:
            triage_disagreements += 1
            if not close_call:
                unexplained.append(f"{h['image']}: triage {h['triage']['tier']} on x86_64, "
                                   f"{a['triage']['tier']} on arm64")
    return worst, top1_disagreements, triage_disagreements, unexplained


def main():
    args = parse_args(sys.argv[1:])
    host_command = [args.host_cli]
    arm64_command = [*args.emulator, args.arm64_cli]
    rows, failures = [], []
    print(f"{'package':22} {'runtime':12} {'prec':5} {'provider x86/arm64':20} {'max |dp|':>10} {'bound':>7} "
          f"{'top1':>5} {'triage':>6} {'x86 s':>6} {'arm64 s':>8}")
    for label, package, runtime, precision, photos in configurations(args):
        host, host_seconds = classify(host_command, package, runtime, precision, photos)
        arm64, arm64_seconds = classify(arm64_command, package, runtime, precision, photos)
        bound = BOUNDS[precision]
        worst, top1, triage, unexplained = compare(host, arm64, bound)
        providers = f"{host[0]['execution_provider']}/{arm64[0]['execution_provider']}"
        n = len(host)
        print(f"{label:22} {runtime:12} {precision:5} {providers:20} {worst:10.2e} {bound:7.0e} "
              f"{n - top1:>2}/{n:<2} {n - triage:>3}/{n:<2} {host_seconds:6.1f} {arm64_seconds:8.1f}", flush=True)
        rows.append({"package": label, "runtime": runtime, "precision": precision, "providers": providers,
                     "photos": [os.path.basename(p) for p in photos],
                     "images": n, "max_abs_probability_difference": worst, "bound": bound,
                     "top1_agreement": n - top1, "triage_agreement": n - triage,
                     "x86_64_seconds": round(host_seconds, 2), "arm64_qemu_seconds": round(arm64_seconds, 2),
                     "arm64_runtime_version": arm64[0]["runtime_version"],
                     "x86_64_runtime_version": host[0]["runtime_version"]})
        if worst > bound:
            failures.append(f"{label} {runtime} {precision}: max |dp| {worst:.3g} exceeds {bound:g}")
        failures += [f"{label} {runtime} {precision}: {u}" for u in unexplained]
    if not rows:
        sys.exit("compare: nothing to compare")
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"photos": args.photos, "emulator": args.emulator, "comparisons": rows}, f, indent=2)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
