"""PyTorch network -> ONNX artifact, and ONNX artifact -> model package (docs/model-package.md).

export_package() is what `dermcds models export` runs (through `python -m dermcds_export export`):
it writes model.onnx and manifest.json into a staging directory, plus, into a separate check
directory, sample input tensors and PyTorch's logits for them. The C++ side then runs ONNX Runtime
on the same tensors, compares, and records provenance.export_check; this module never writes that
field, because only a run of the real runtime can vouch for it.

export_onnx_file() is the converter tests' entry (`export-onnx`): any architecture, any opset from
13 to 17, with a checkpoint, the demo weights or random weights whose batch-norm statistics are
recomputed on synthetic lesions (untouched statistics make every input give the same output).
"""

import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import onnx
import torch
import torchvision

from . import EXPORTER_NAME, EXPORTER_VERSION, architectures, checkpoints, demo_training, lesions, safety
from .errors import InvalidInput
from .files import replace_durably
from .hashing import portable_path, sha256_file
from .reference_transform import transform_from_manifest_input

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
OPSETS = range(13, 18)
PACKAGE_OPSET = 17
CHECK_SEED = 4242          # dataset seed of the export check's sample images
RANDOM_RECAL_SEED = 31337  # dataset seed of the images random weights are recalibrated on
RANDOM_RECAL_IMAGES = 64
RANDOM_LOGIT_STD = 2.0
SPREAD_IMAGES = 8
# Below this, every input gives (nearly) the same probabilities: the model cannot show anything.
MIN_OUTPUT_SPREAD = 1e-3

_NAME_RE = re.compile(r"^[a-z0-9._-]+$")
_VERSION_RE = re.compile(r"^[1-9][0-9]*$")

TRIAGE = {
    "rules": [
        {"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.30},
        {"tier": "dermatology_review", "classes": ["MEL", "BCC", "SCC", "AK"], "threshold": 0.15},
    ],
    "default_tier": "routine",
}


def log(message: str) -> None:
    print(f"[export] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Weights:
    """Where a network's parameters came from, for the manifest's provenance."""

    source: str                 # "demo", "file" or "random"
    path: Optional[Path] = None
    sha256: Optional[str] = None

    def provenance(self) -> dict:
        entry = {"source": self.source}
        if self.path is not None:
            entry["file"] = self.path.name
            entry["sha256"] = self.sha256
            report = demo_training.report_path(self.path)
            if self.source == "demo" and report.exists():  # where and with which kernels it was trained
                entry["trained_on"] = json.loads(report.read_text()).get("cpu", "not recorded")
            # Lets torch-reference find a user's checkpoint again, if it lies in the repository;
            # elsewhere it is named by file name and sha256 only (no path of this machine).
            portable = portable_path(self.path) if self.source == "file" else None
            if portable:
                entry["path"] = portable
        return entry


def load_weights(arch: architectures.Architecture, checkpoint: Optional[Path], demo: bool,
                 seed: int = 0) -> Tuple[torch.nn.Module, Weights]:
    """The network with its weights: a checkpoint file, the demo checkpoint, or random."""
    if checkpoint is not None:
        model = checkpoints.load_checkpoint(arch, checkpoint)
        return model, Weights("file", Path(checkpoint), sha256_file(Path(checkpoint)))
    if demo:
        path = demo_training.ensure_checkpoint(arch.name)
        model = checkpoints.load_checkpoint(arch, path)
        return model, Weights("demo", path, sha256_file(path))
    torch.manual_seed(seed)
    model = arch.build()
    spec = arch.input
    log(f"random weights (seed {seed}); recomputing batch-norm statistics on {RANDOM_RECAL_IMAGES} "
        f"lesion images at {spec.size}px")
    images, _ = demo_training.render_batch(RANDOM_RECAL_SEED, RANDOM_RECAL_IMAGES, spec.size, spec.shorter_side,
                                           (spec.shorter_side, round(spec.shorter_side * 1.3)))
    demo_training.recalibrate_batch_norm(model, images, batch_size=4)
    _spread_logits(arch.classifier(model), model, images)
    return model, Weights("random")


def _spread_logits(head: torch.nn.Linear, model: torch.nn.Module, images: torch.Tensor) -> None:
    """Rescales a random head so its logits vary by about RANDOM_LOGIT_STD across lesion images,
    centred per class. A randomly initialised head gives logits within a few hundredths of each
    other, so every probability stays near 1/8 and a conversion error would barely show. The
    spread is measured robustly (median absolute deviation): in a deep random network most images
    land close together and a few far away, and a plain standard deviation would follow the few."""
    with torch.no_grad():
        logits = torch.cat([model(images[i:i + 4]) for i in range(0, len(images), 4)])
        mean = logits.median(0).values
        deviation = 1.4826 * float((logits - mean).abs().median())
        scale = RANDOM_LOGIT_STD / max(deviation, 1e-12)
        head.weight.mul_(scale)
        head.bias.copy_((head.bias - mean) * scale)


def output_spread(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Largest change of any class probability across `images` (as the C++ export check defines it)."""
    with torch.no_grad():
        probs = torch.softmax(model(images).double(), dim=1)
    return float((probs.max(0).values - probs.min(0).values).max())


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        replace_durably(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def export_onnx(model: torch.nn.Module, path: Path, size: int, opset: int, metadata: Dict[str, str],
                outputs: Tuple[str, ...] = (OUTPUT_NAME,)) -> None:
    """ONNX file with input "image" [batch,3,size,size] float32 and output "logits" [batch,8]
    (a model package's graph also has "ood_score" [batch,1], safety.py)."""
    if opset not in OPSETS:
        raise InvalidInput(f"opset must be between {OPSETS.start} and {OPSETS.stop - 1}, not {opset}")
    model = model.eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 3, size, size)

    def write(tmp: Path) -> None:
        with torch.no_grad():
            torch.onnx.export(model, dummy, str(tmp), opset_version=opset, input_names=[INPUT_NAME],
                              output_names=list(outputs), do_constant_folding=True, export_params=True,
                              dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, **{o: {0: BATCH_DIM} for o in outputs}})
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, metadata)
        onnx.checker.check_model(proto, full_check=True)
        verify_graph(proto, size, opset, outputs)
        onnx.save(proto, str(tmp))

    _write_atomic(path, write)


def _dims(value_info) -> List:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def verify_graph(proto: onnx.ModelProto, size: int, opset: int, outputs: Tuple[str, ...] = (OUTPUT_NAME,)) -> None:
    """The interface derm-cds relies on; a torch or onnx change that breaks it fails the export here."""
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    problems = []
    if [i.name for i in inputs] != [INPUT_NAME]:
        problems.append(f"inputs are {[i.name for i in inputs]}, expected ['{INPUT_NAME}']")
    elif _dims(inputs[0]) != [BATCH_DIM, 3, size, size] or \
            inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        problems.append(f"input {INPUT_NAME} is {_dims(inputs[0])}, expected float32 [{BATCH_DIM}, 3, {size}, {size}]")
    if [o.name for o in graph.output] != list(outputs):
        problems.append(f"outputs are {[o.name for o in graph.output]}, expected {list(outputs)}")
    elif _dims(graph.output[0]) != [BATCH_DIM, architectures.NUM_CLASSES]:
        problems.append(f"output {OUTPUT_NAME} is {_dims(graph.output[0])}, expected [{BATCH_DIM}, "
                        f"{architectures.NUM_CLASSES}]")
    elif len(outputs) > 1 and _dims(graph.output[1]) != [BATCH_DIM, 1]:
        problems.append(f"output {outputs[1]} is {_dims(graph.output[1])}, expected [{BATCH_DIM}, 1]")
    default_opsets = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if default_opsets != [opset]:
        problems.append(f"opset is {default_opsets}, expected {opset}")
    if problems:
        raise RuntimeError("exported ONNX graph does not have the expected interface: " + "; ".join(problems))


def onnx_metadata(arch: architectures.Architecture, weights: Weights) -> Dict[str, str]:
    return {"dermcds.architecture": arch.name, "dermcds.labels": ",".join(lesions.LABELS),
            "dermcds.exporter": f"{EXPORTER_NAME} {EXPORTER_VERSION}", "dermcds.weights": weights.source}


def created_timestamp() -> str:
    """UTC creation time; SOURCE_DATE_EPOCH pins it for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def library_versions() -> Dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "onnx": onnx.__version__}


def build_manifest(arch: architectures.Architecture, name: str, version: str, weights: Weights,
                   onnx_path: Path, safety_section: Optional[dict] = None) -> dict:
    what = "demo weights" if weights.source == "demo" else f"weights from {weights.path.name}"
    return {
        "format": "dermcds-model-package",
        "format_version": 1,
        "name": name,
        "version": version,
        "architecture": arch.name,
        "description": f"{arch.display_name} ISIC 2019 classifier ({what})",
        "input": arch.input.manifest(),
        "output": {"name": OUTPUT_NAME, "kind": "logits"},
        "labels": architectures.manifest_labels(),
        "triage": TRIAGE,
        **({"safety": safety_section} if safety_section else {}),
        "artifacts": [{"runtime": "onnxruntime", "precision": "fp32", "file": onnx_path.name,
                       "sha256": sha256_file(onnx_path), "bytes": onnx_path.stat().st_size,
                       "layout": "NCHW", "opset": PACKAGE_OPSET}],
        "provenance": {
            "checkpoint": weights.provenance(),
            "exporter": {"name": EXPORTER_NAME, "version": EXPORTER_VERSION},
            "libraries": library_versions(),
            "cpu": demo_training.cpu_description(),
            "created": created_timestamp(),
        },
    }


def check_images(input_spec: dict, samples: int) -> Tuple[torch.Tensor, List[str], List[List[int]]]:
    """`samples` different lesions (canvas sizes vary, so resizing is exercised) as input tensors,
    made by the reference transform from the manifest's own input description."""
    transform = transform_from_manifest_input(input_spec)
    tensors, sizes = [], []
    labels = lesions.dataset_labels(CHECK_SEED, samples)
    for index, label in enumerate(labels):
        image, info = lesions.render_lesion(lesions.sample_rng(CHECK_SEED, index), label)
        tensors.append(transform(image))
        sizes.append([info.width, info.height])
    return torch.stack(tensors), labels, sizes


@dataclass(frozen=True)
class PackageExport:
    arch: str
    out: Path                        # staging package directory: model.onnx, manifest.json
    name: str
    version: str
    check_dir: Path                  # inputs.f32, torch_logits.f32, check.json
    checkpoint: Optional[Path] = None  # None: the demo checkpoint
    check_samples: int = 4


def validate_package_names(name: str, version: str) -> None:
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidInput(f"package name {name!r} must be lower case letters, digits, '.', '_' or '-'")
    if not _VERSION_RE.match(version):
        raise InvalidInput(f"package version {version!r} must be a positive decimal integer (1, 2, ...)")


def export_package(request: PackageExport) -> dict:
    """Writes the package and the check files; returns a summary for the caller's log."""
    arch = architectures.get(request.arch)
    validate_package_names(request.name, request.version)
    if not 1 <= request.check_samples <= 64:
        raise InvalidInput(f"--check-samples must be between 1 and 64, not {request.check_samples}")
    demo_training.make_deterministic(0)
    network, weights = load_weights(arch, request.checkpoint, demo=request.checkpoint is None)

    request.out.mkdir(parents=True, exist_ok=True)
    request.check_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # The guard's class statistics come from the training distribution: the demo recipe's seed.
    fitted = safety.fit(network, arch, arch.input.manifest(),
                        demo_training.RECIPES.get(arch.name, demo_training.DemoRecipe(arch.name)).seed)
    _write_atomic(request.out / safety.GUARD_FILE, lambda tmp: safety.save_params(tmp, fitted.params))
    model = safety.GuardedNetwork(network, fitted.params).eval()
    log(f"safety fit took {time.time() - started:.1f}s")
    onnx_path = request.out / "model.onnx"
    started = time.time()
    log(f"exporting {arch.name} to {onnx_path} (opset {PACKAGE_OPSET}, dynamic batch)")
    export_onnx(model, onnx_path, arch.input.size, PACKAGE_OPSET, onnx_metadata(arch, weights),
                (OUTPUT_NAME, safety.OOD_OUTPUT))
    export_seconds = time.time() - started
    log(f"ONNX export and full check took {export_seconds:.1f}s ({onnx_path.stat().st_size} bytes)")

    manifest = build_manifest(arch, request.name, request.version, weights, onnx_path, fitted.manifest)
    _write_atomic(request.out / "manifest.json",
                  lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))

    log(f"computing PyTorch logits for {request.check_samples} sample lesions")
    inputs, classes, sizes = check_images(manifest["input"], request.check_samples)
    with torch.no_grad():
        logits, ood_scores = model(inputs)
    _write_atomic(request.check_dir / "torch_ood_score.f32",
                  lambda tmp: tmp.write_bytes(ood_scores.numpy().astype("<f4", copy=False).tobytes()))
    _write_atomic(request.check_dir / "inputs.f32",
                  lambda tmp: tmp.write_bytes(inputs.numpy().astype("<f4", copy=False).tobytes()))
    _write_atomic(request.check_dir / "torch_logits.f32",
                  lambda tmp: tmp.write_bytes(logits.numpy().astype("<f4", copy=False).tobytes()))
    probs = torch.softmax(logits.double(), dim=1)
    spread = float((probs.max(0).values - probs.min(0).values).max())
    check = {"samples": request.check_samples, "input_shape": list(inputs.shape), "output_shape": list(logits.shape),
             "image_classes": classes, "seed": CHECK_SEED, "image_sizes": sizes}
    _write_atomic(request.check_dir / "check.json", lambda tmp: tmp.write_text(json.dumps(check, indent=2) + "\n"))
    predicted = [lesions.LABELS[i] for i in probs.argmax(1).tolist()]
    log(f"sample classes {classes}, PyTorch top-1 {predicted}, top-1 probabilities "
        f"{[round(float(p), 3) for p in probs.max(1).values]}, output spread {spread:.3f}")
    return {"package": str(request.out), "onnx_sha256": manifest["artifacts"][0]["sha256"],
            "onnx_bytes": manifest["artifacts"][0]["bytes"], "checkpoint": manifest["provenance"]["checkpoint"],
            "export_seconds": round(export_seconds, 2), "output_spread": spread}


@dataclass(frozen=True)
class OnnxExport:
    arch: str
    out: Path
    opset: int = PACKAGE_OPSET
    checkpoint: Optional[Path] = None
    demo: bool = False
    seed: int = 0


def export_onnx_file(request: OnnxExport) -> dict:
    """A standalone ONNX file (converter tests); fails if its outputs do not depend on the input."""
    arch = architectures.get(request.arch)
    if request.opset not in OPSETS:
        raise InvalidInput(f"--opset must be between {OPSETS.start} and {OPSETS.stop - 1}, not {request.opset}")
    if request.out.suffix != ".onnx" and not request.out.name.endswith(".onnx.tmp"):
        log(f"note: {request.out} does not end in .onnx")
    demo_training.make_deterministic(request.seed)
    model, weights = load_weights(arch, request.checkpoint, request.demo, request.seed)
    spec = arch.input
    images, _ = demo_training.render_batch(CHECK_SEED, SPREAD_IMAGES, spec.size, spec.shorter_side,
                                           (spec.shorter_side, round(spec.shorter_side * 1.3)))
    spread = output_spread(model, images)
    log(f"output spread over {SPREAD_IMAGES} lesion images: {spread:.4f} (largest change of a class probability)")
    if spread < MIN_OUTPUT_SPREAD:
        raise RuntimeError(f"{arch.name}: outputs barely depend on the input (spread {spread:.2e}); refusing to "
                           f"write a model that cannot show a conversion error")
    request.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    export_onnx(model, request.out, spec.size, request.opset, onnx_metadata(arch, weights))
    log(f"wrote {request.out} (opset {request.opset}, {request.out.stat().st_size} bytes, "
        f"{time.time() - started:.1f}s)")
    return {"onnx": str(request.out), "sha256": sha256_file(request.out), "bytes": request.out.stat().st_size,
            "opset": request.opset, "weights": weights.source, "output_spread": spread}
