"""The GPU check (docs/edge.md, "The GPU check"): one command that proves, or fails to prove, the
CUDA and TensorRT paths of derm-cds on a machine with an NVIDIA GPU, and writes one JSON report.

Two steps, because the GPU machine has no network and takes at most 64 MiB of our files:

  pack DIR   (on the build machine) gathers what the GPU machine needs into DIR: the dermcds
             CLI and classify_bench as built here (x86-64, so they run there), ONNX Runtime
             1.30's libonnxruntime.so.1 (xz-compressed), the TFLite C library the CLI links,
             the trained MobileNetV3-Large package (its ONNX artifact; the TFLite artifacts are
             left out, the GPU path does not run them) and the validation images.
  run        (on the GPU machine, or anywhere) probes the machine, picks an ONNX Runtime with GPU
             providers it can use, runs our binaries with it, and writes the report.

What `run` measures, each step bounded by a timeout so that the whole fits in 8 minutes:
  - the probe: nvidia-smi, the CUDA libraries of the pip packages (nvidia-*), the machine's own
    onnxruntime and its providers, any TensorRT library (libnvinfer);
  - CPU provider on that machine, then CUDA fp32 (and TensorRT fp16 where TensorRT exists):
    session creation, first inference, p50/p99 latency and batch-8 throughput (classify_bench);
  - parity of the GPU subjects against ONNX Runtime fp32 on CPU, through our parity gate
    (dermcds parity --only onnxruntime --no-torch --no-record);
  - the fallback: the same binary with the CUDA provider library hidden must answer on CPU and
    list the fallback in `fallbacks`;
  - TensorRT only if its libraries exist: engine build time, then a second start that must reuse
    the cached engine file.
A step that cannot run says why in the report; nothing is ever reported as measured that was
not. The report is for one machine and one package, both named in it.

usage: scripts/gpu-check.sh pack DIR
       scripts/gpu-check.sh run [--carry DIR] [--out FILE] [--work DIR]
"""

import argparse
import datetime
import glob
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "derm-mnv3-large"
STEP_TIMEOUT_S = 150  # no single step may eat the 8-minute budget
ORT_LIB = "libonnxruntime.so.1"


class CheckError(Exception):
    pass


def log(message):
    print(f"gpu-check: {message}", file=sys.stderr, flush=True)


# ---- pack (build machine) ---------------------------------------------------------------------
def newest_version(repository, name):
    versions = [v for v in os.listdir(os.path.join(repository, name)) if v.isdigit()]
    if not versions:
        raise CheckError(f"{repository}/{name} has no version; run `make models` first")
    active = os.path.join(repository, name, "ACTIVE")
    if os.path.exists(active):
        return open(active).read().strip()
    return max(versions, key=int)


def pack(args):
    build = os.path.abspath(args.build)
    out = os.path.abspath(args.dir)
    binaries = [os.path.join(build, "bin", b) for b in ("dermcds", "classify_bench")]
    for b in binaries:
        if not os.access(b, os.X_OK):
            raise CheckError(f"{b} is missing: build first (`make build`)")
    ort = os.path.join(ROOT, ".deps", "onnxruntime", "lib", "x64", ORT_LIB)
    tflite = os.path.join(ROOT, ".deps", "tflite", "lib", "x64", "libtensorflowlite_c.so")
    for f in (ort, tflite):
        if not os.path.exists(f):
            raise CheckError(f"{f} is missing: run `make setup` first")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "bin"))
    os.makedirs(os.path.join(out, "lib"))
    for b in binaries:
        target = os.path.join(out, "bin", os.path.basename(b))
        shutil.copy2(b, target)
        subprocess.run(["strip", "--strip-unneeded", target], check=False)
    with open(ort, "rb") as src, lzma.open(os.path.join(out, "lib", ORT_LIB + ".xz"), "wb", preset=6) as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy2(tflite, os.path.join(out, "lib"))

    # The package with its ONNX artifact only: the manifest is rewritten to list what travels,
    # and says so in its description, so this copy can never be mistaken for the built one.
    repository = os.path.abspath(args.repository)
    version = newest_version(repository, PACKAGE)
    source = os.path.join(repository, PACKAGE, version)
    manifest = json.load(open(os.path.join(source, "manifest.json")))
    keep = [a for a in manifest["artifacts"] if a["runtime"] == "onnxruntime"]
    if not keep:
        raise CheckError(f"{source} has no onnxruntime artifact")
    manifest["artifacts"] = keep
    manifest["description"] = (manifest.get("description", "") + " [GPU-check copy: ONNX artifacts only]").strip()
    manifest.pop("parity", None)
    target = os.path.join(out, "models", PACKAGE, version)
    os.makedirs(target)
    for a in keep:
        shutil.copy2(os.path.join(source, a["file"]), target)
    json.dump(manifest, open(os.path.join(target, "manifest.json"), "w"), indent=2)

    images = os.path.join(ROOT, ".cache", "image-sets", "validation")
    if not os.path.isdir(images):
        raise CheckError(f"{images} is missing: run `make models` first")
    shutil.copytree(images, os.path.join(out, "images"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    log(f"packed {out}: {size / 2**20:.1f} MiB ({PACKAGE} v{version})")
    if size > 56 * 2**20:
        raise CheckError(f"{out} is {size / 2**20:.1f} MiB; with the source tree it would not fit in 64 MiB")
    return 0


# ---- run (GPU machine) ------------------------------------------------------------------------
def sh(argv, env=None, timeout=STEP_TIMEOUT_S):
    """Runs argv; returns (exit status, stdout, stderr, seconds). Never raises for the command."""
    start = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.monotonic() - start
    except FileNotFoundError as e:
        return 127, "", str(e), time.monotonic() - start
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", f"timed out after {timeout} s", time.monotonic() - start


def probe_gpu():
    if not shutil.which("nvidia-smi"):
        return {"present": False, "reason": "nvidia-smi not found"}
    rc, out, err, _ = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                          "--format=csv,noheader"])
    if rc != 0 or not out.strip():
        return {"present": False, "reason": f"nvidia-smi failed ({rc}): {err.strip()[:300]}"}
    gpus = []
    for line in out.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        gpus.append(dict(zip(["name", "driver", "memory", "compute_capability"], fields)))
    return {"present": True, "gpus": gpus}


def probe_python(python):
    """The machine's own Python: its onnxruntime (version, providers, library folder) and the
    folders of the CUDA libraries its nvidia-* pip packages install."""
    code = r"""
import glob, json, os, sys
info = {"python": sys.version.split()[0]}
try:
    import onnxruntime as ort
    capi = os.path.join(os.path.dirname(ort.__file__), "capi")
    info["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers(),
                           "capi": capi, "libraries": sorted(os.path.basename(p) for p in glob.glob(capi + "/*.so*"))}
except Exception as e:
    info["onnxruntime"] = {"error": repr(e)}
dirs = []
try:
    import nvidia
    for base in nvidia.__path__:
        dirs += sorted(glob.glob(os.path.join(base, "*", "lib")))
        dirs += sorted(glob.glob(os.path.join(base, "cu*", "lib")))
except Exception as e:
    info["nvidia_error"] = repr(e)
info["cuda_library_dirs"] = sorted(set(dirs))
for mod in ("tensorrt", "tensorrt_libs"):
    try:
        m = __import__(mod)
        info.setdefault("tensorrt_python", []).append(os.path.dirname(m.__file__))
    except Exception:
        pass
print(json.dumps(info))
"""
    rc, out, err, _ = sh([python, "-c", code])
    if rc != 0:
        return {"error": f"{python} failed ({rc}): {err.strip()[:300]}"}
    return json.loads(out)


def probe_tensorrt(python_info):
    found = []
    rc, out, _, _ = sh(["ldconfig", "-p"])
    if rc == 0:
        found += [line.split("=>")[-1].strip() for line in out.splitlines() if "libnvinfer.so" in line]
    for d in python_info.get("tensorrt_python", []) + python_info.get("cuda_library_dirs", []):
        found += glob.glob(os.path.join(d, "libnvinfer.so*"))
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/usr/local/tensorrt/lib", "/opt/tensorrt/lib"):
        found += glob.glob(os.path.join(d, "libnvinfer.so*"))
    found = sorted(set(found))
    return {"present": bool(found), "libraries": found}


def ort_core_version(carry):
    """The version of our libonnxruntime.so.1: the onnxruntime-node release that provisioning
    pinned in scripts/deps.lock (the library carries no version file of its own)."""
    lock = os.path.join(ROOT, "scripts", "deps.lock")
    if os.path.exists(lock):
        for line in open(lock):
            fields = line.split()
            if len(fields) >= 4 and fields[0] == "onnxruntime":
                return fields[3]
    return None


def prepare_ort(work, carry, python_info, hide_cuda=False):
    """A folder holding our libonnxruntime.so.1 and, beside it, the GPU provider libraries of the
    machine's onnxruntime when they are the same version. ONNX Runtime loads provider libraries
    from the folder its own library lives in."""
    lib_dir = os.path.join(work, "ort-no-cuda" if hide_cuda else "ort")
    os.makedirs(lib_dir, exist_ok=True)
    core = os.path.join(work, ORT_LIB)
    if not os.path.exists(core):
        packed = os.path.join(carry, "lib", ORT_LIB + ".xz")
        if os.path.exists(packed):
            with lzma.open(packed, "rb") as src, open(core, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            local = os.path.join(ROOT, ".deps", "onnxruntime", "lib", "x64", ORT_LIB)
            if not os.path.exists(local):
                raise CheckError(f"no {ORT_LIB} in {carry}/lib or .deps")
            shutil.copy2(local, core)
    link = os.path.join(lib_dir, ORT_LIB)
    if not os.path.lexists(link):
        os.symlink(core, link)
    linked = []
    ort = python_info.get("onnxruntime", {})
    if "capi" in ort:
        for name in ort.get("libraries", []):
            if not name.startswith("libonnxruntime_providers_"):
                continue
            if hide_cuda and ("cuda" in name or "tensorrt" in name):
                continue
            dst = os.path.join(lib_dir, name)
            if not os.path.lexists(dst):
                os.symlink(os.path.join(ort["capi"], name), dst)
            linked.append(name)
    return lib_dir, linked


def environment(carry, lib_dir, python_info):
    env = dict(os.environ)
    dirs = [lib_dir, os.path.join(carry, "lib")] + python_info.get("cuda_library_dirs", [])
    dirs += python_info.get("tensorrt_python", [])
    env["LD_LIBRARY_PATH"] = ":".join(d for d in dirs if os.path.isdir(d)) + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def bench(tools, env, package, image, provider, batch, iterations, extra=()):
    out = os.path.join(tools["work"], f"bench-{provider}-{batch}.json")
    argv = [tools["classify_bench"], "--model", package, "--image", image, "--provider", provider, "--batch",
            str(batch), "--iterations", str(iterations), "--warmup", "3", "--no-pytorch", "--json", out, *extra]
    rc, stdout, stderr, seconds = sh(argv, env=env)
    step = {"command": " ".join(argv), "exit_status": rc, "seconds": round(seconds, 1)}
    if rc == 0 and os.path.exists(out):
        step["figures"] = json.load(open(out))
    else:
        step["error"] = (stderr or stdout).strip()[-800:]
    return step


def classify_json(tools, env, package, image, provider, extra=()):
    argv = [tools["dermcds"], "classify", "--model", package, "--runtime", "onnxruntime", "--provider", provider,
            "--json", *extra, image]
    rc, stdout, stderr, seconds = sh(argv, env=env)
    step = {"command": " ".join(argv), "exit_status": rc, "seconds": round(seconds, 2)}
    try:
        results = json.loads(stdout)  # one result per image, as a list
        step["result"] = results[0] if isinstance(results, list) else results
    except (ValueError, IndexError):
        step["error"] = (stderr or stdout).strip()[-800:]
    return step


def parity(tools, env, package, images, providers):
    report_dir = os.path.join(tools["work"], "parity")
    argv = [tools["dermcds"], "parity", package, "--images", images, "--only", "onnxruntime", "--no-torch",
            "--no-record", "--report", report_dir, "--device", "0"]
    rc, stdout, stderr, seconds = sh(argv, env=env, timeout=2 * STEP_TIMEOUT_S)
    step = {"command": " ".join(argv), "exit_status": rc, "seconds": round(seconds, 1),
            "providers_expected": providers}
    path = os.path.join(report_dir, "parity.json")
    if os.path.exists(path):
        step["report"] = json.load(open(path))
    else:
        step["error"] = (stderr or stdout).strip()[-800:]
    return step


def first_image(images):
    names = sorted(f for f in os.listdir(images) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if not names:
        raise CheckError(f"{images} holds no JPEG or PNG image")
    return os.path.join(images, names[0])


def run(args):
    carry = os.path.abspath(args.carry)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools = {"work": work}
    for name in ("dermcds", "classify_bench"):
        candidates = [os.path.join(carry, "bin", name), os.path.join(ROOT, "build", "bin", name)]
        tools[name] = next((c for c in candidates if os.access(c, os.X_OK)), None)
        if not tools[name]:
            raise CheckError(f"{name} not found in {carry}/bin or build/bin: run `scripts/gpu-check.sh pack` first")
    if args.package:
        package = os.path.abspath(args.package)
    else:
        repository = (os.path.join(carry, "models") if os.path.isdir(os.path.join(carry, "models"))
                      else os.path.join(ROOT, "models"))
        package = os.path.join(repository, PACKAGE, newest_version(repository, PACKAGE))
    if not os.path.exists(os.path.join(package, "manifest.json")):
        raise CheckError(f"{package} is not a model package (no manifest.json)")
    images = os.path.abspath(args.images) if args.images else os.path.join(carry, "images")
    if not os.path.isdir(images):
        images = os.path.join(ROOT, ".cache", "image-sets", "validation")
    if not os.path.isdir(images):
        raise CheckError(f"no image folder: {images}")
    image = first_image(images)

    report = {
        "check": "derm-cds GPU check (scripts/gpu-check.sh)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"hostname": platform.node(), "kernel": platform.release(), "cpu": cpu_model(),
                    "cpus": os.cpu_count()},
        "package": {"path": package, "manifest": package_summary(package)},
        "onnxruntime_core": {"library": ORT_LIB, "version": ort_core_version(carry)},
        "steps": {},
        "not_run": [],
    }
    log("probing the machine")
    python = args.python or shutil.which("python3") or sys.executable
    report["gpu"] = probe_gpu()
    report["python"] = probe_python(python)
    report["tensorrt"] = probe_tensorrt(report["python"])
    ort = report["python"].get("onnxruntime", {})
    gpu_ort = "CUDAExecutionProvider" in ort.get("providers", []) and any(
        "providers_cuda" in name for name in ort.get("libraries", []))
    same_version = ort.get("version") == report["onnxruntime_core"]["version"]
    if not report["gpu"]["present"]:
        choice = {"usable": False, "reason": "no NVIDIA GPU: " + report["gpu"]["reason"]}
    elif "error" in ort:
        choice = {"usable": False, "reason": f"the machine's Python has no onnxruntime: {ort['error']}"}
    elif not gpu_ort:
        choice = {"usable": False, "reason": "the machine's onnxruntime has no CUDA provider library "
                                             f"(providers: {ort.get('providers')}); the GPU builds that can be fetched "
                                             "are larger than what travels (docs/edge.md)"}
    elif not same_version:
        choice = {"usable": False, "reason": f"the machine's onnxruntime is {ort.get('version')}, our core is "
                                             f"{report['onnxruntime_core']['version']}: provider libraries must match"}
    else:
        choice = {"usable": True, "reason": "the machine's onnxruntime GPU provider libraries beside our core library"}
    lib_dir, linked = prepare_ort(work, carry, report["python"])
    choice["provider_libraries"] = linked
    report["onnxruntime_choice"] = choice
    env = environment(carry, lib_dir, report["python"])

    log("CPU provider on this machine")
    report["steps"]["cpu_fp32"] = bench(tools, env, package, image, "cpu", 8, args.iterations)

    if choice["usable"]:
        log("CUDA provider, fp32")
        report["steps"]["cuda_fp32"] = bench(tools, env, package, image, "cuda", 8, args.iterations)
        log("parity of the GPU subjects against CPU fp32")
        report["steps"]["parity"] = parity(tools, env, package, images, ["cuda"])
    else:
        report["not_run"].append({"step": "cuda_fp32, parity", "reason": choice["reason"]})

    if choice["usable"] and report["tensorrt"]["present"]:
        cache = os.path.join(work, "trt-cache")
        os.makedirs(cache, exist_ok=True)
        opts = ["--provider-option", f"tensorrt:engine_cache_dir={cache}", "--provider-option",
                "tensorrt:trt_fp16_enable=1"]
        log("TensorRT: engine build, then a second start from the cache")
        first = classify_json(tools, env, package, image, "tensorrt", opts)
        # The keyed cache of docs/edge.md: engines/<sha256>/<gpu>/<versions>/<settings>/*.engine
        engines = sorted(glob.glob(os.path.join(cache, "engines", "**", "*.engine"), recursive=True))
        stamps = {e: os.stat(e).st_mtime_ns for e in engines if os.path.isfile(e)}
        second = classify_json(tools, env, package, image, "tensorrt", opts)
        reused = bool(stamps) and all(os.path.exists(e) and os.stat(e).st_mtime_ns == t for e, t in stamps.items())
        report["steps"]["tensorrt"] = {"first_start": first, "second_start": second, "engine_files": list(stamps),
                                       "engine_reused": reused}
    else:
        report["not_run"].append({"step": "tensorrt", "reason": "no TensorRT library (libnvinfer) on this machine"
                                  if not report["tensorrt"]["present"] else choice["reason"]})

    log("fallback: the CUDA provider library hidden")
    hidden_dir, _ = prepare_ort(work, carry, report["python"], hide_cuda=True)
    fallback = classify_json(tools, environment(carry, hidden_dir, report["python"]), package, image, "cuda")
    result = fallback.get("result", {})
    fallback["answered_on"] = result.get("execution_provider")
    fallback["fallbacks"] = result.get("fallbacks", [])
    fallback["ok"] = fallback["exit_status"] == 0 and fallback["answered_on"] == "cpu" and bool(fallback["fallbacks"])
    report["steps"]["fallback_hidden_cuda"] = fallback

    report["summary"] = summarize(report)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    log(f"report written to {args.out}")
    print(json.dumps(report["summary"], indent=2))
    return 0 if report["summary"]["failures"] == [] else 1


def summarize(report):
    """The figures the issue asks for, and every requirement checked, in one place."""
    s = {"gpu": report["gpu"].get("gpus", report["gpu"].get("reason")), "figures": {}, "failures": []}
    for key in ("cpu_fp32", "cuda_fp32"):
        step = report["steps"].get(key)
        if not step:
            continue
        if "figures" not in step:
            s["failures"].append(f"{key}: {step.get('error', 'no figures')[:200]}")
            continue
        ours = step["figures"]["ours"]
        s["figures"][key] = {
            "provider": ours["provider"], "fallbacks": ours["fallbacks"],
            "session_creation_ms": ours["session_creation_ms"], "first_inference_ms": ours["first_inference_ms"],
            "p50_ms": ours["inference"]["median"], "p99_ms": ours["inference"]["p99"],
            "batch8_images_per_second": ours.get("batch", {}).get("images_per_second")}
        if key == "cuda_fp32" and ours["provider"] != "cuda":
            s["failures"].append(f"cuda_fp32 ran on {ours['provider']}: {ours['fallbacks']}")
    par = report["steps"].get("parity")
    if par:
        if "report" not in par:
            s["failures"].append("parity: " + par.get("error", "no report")[:200])
        else:
            s["figures"]["parity"] = par["report"].get("subjects", par["report"])
            if par["exit_status"] != 0:
                s["failures"].append(f"parity gate exit status {par['exit_status']}")
    fb = report["steps"]["fallback_hidden_cuda"]
    s["figures"]["fallback"] = {"answered_on": fb["answered_on"], "fallbacks": fb["fallbacks"]}
    if not fb["ok"]:
        s["failures"].append(f"fallback: exit {fb['exit_status']}, answered on {fb['answered_on']}, "
                             f"fallbacks {fb['fallbacks']}: {fb.get('error', '')[:200]}")
    trt = report["steps"].get("tensorrt")
    if trt:
        s["figures"]["tensorrt"] = {"first_start_s": trt["first_start"]["seconds"],
                                    "second_start_s": trt["second_start"]["seconds"],
                                    "engine_reused": trt["engine_reused"]}
        if not trt["engine_reused"]:
            s["failures"].append("tensorrt: the second start did not reuse the cached engine")
    s["not_run"] = report["not_run"]
    return s


def package_summary(package):
    manifest = json.load(open(os.path.join(package, "manifest.json")))
    return {"name": manifest.get("name"), "version": manifest.get("version"),
            "architecture": manifest.get("architecture"), "description": manifest.get("description"),
            "artifacts": [f"{a['runtime']}/{a['precision']}" for a in manifest.get("artifacts", [])]}


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv):
    parser = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="gather binaries, libraries, the package and images into DIR (build machine)")
    p.add_argument("dir")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build tree (default: build/)")
    p.add_argument("--repository", default=os.path.join(ROOT, "models"), help="model repository (default: models/)")
    r = sub.add_parser("run", help="probe, run and write the JSON report (GPU machine)")
    r.add_argument("--carry", default=os.path.join(ROOT, ".gpu-carry"), help="what `pack` wrote (default: .gpu-carry/)")
    r.add_argument("--out", default="gpu-check.json", help="the JSON report (default: gpu-check.json)")
    r.add_argument("--work", default="/tmp/dermcds-gpu-check", help="scratch folder (default: /tmp/dermcds-gpu-check)")
    r.add_argument("--package",
                   help=f"model package to run (default: the newest {PACKAGE} of the carry, else of models/)")
    r.add_argument("--images", help="image folder for parity (default: the carry's images/, else the validation set)")
    r.add_argument("--python", help="the machine's Python with onnxruntime and nvidia-* (default: python3 on PATH)")
    r.add_argument("--iterations", type=int, default=50, help="measured iterations per latency figure (default: 50)")
    args = parser.parse_args(argv)
    try:
        return pack(args) if args.command == "pack" else run(args)
    except CheckError as e:
        print(f"gpu-check: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
