"""Demo weights: a short, deterministic training run on synthetic lesions (lesions.py).

No real dermoscopy data or pretrained weights are available, yet the exported models must give
peaked outputs that depend on the image, or no parity test between runtimes could tell a broken
conversion from a working one. A full-resolution training run of EfficientNet-B4 would take hours
on two CPU cores, so each recipe:

1. trains the whole network on small renderings (train_size, e.g. 64 or 96 pixels), some drawn
   zoomed in (train_zoom) so that lesions appear at more than one size in pixels; every residual
   block starts as the identity and the head at zero, which makes a few hundred steps from
   scratch enough;
2. recomputes every batch-norm layer's statistics at the inference size: the network now sees
   lesions several times larger in pixels, and statistics from training no longer fit;
3. refits the last linear layer on features computed at the inference size (L2-regularised
   logistic regression, L-BFGS), which recovers most of the accuracy the size change costs;
4. measures accuracy and output spread on held-out renderings at the inference size.

Results are cached by a content hash of everything that determines them (the source of this
package's generator, training and transform code, the recipe, the library versions), so a second
call returns the stored checkpoint at once and a code change retrains.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import PIL
import torch
import torchvision

from . import architectures, lesions
from .files import replace_durably, write_text_atomically
from .reference_transform import make_transform

REPO_ROOT = Path(__file__).resolve().parents[2]
THREADS = 2
# The files whose code decides what a demo checkpoint contains.
_SOURCE_FILES = ("lesions.py", "demo_training.py", "architectures.py", "reference_transform.py")


@dataclass(frozen=True)
class DemoRecipe:
    arch: str
    seed: int = 2019
    train_images: int = 1536
    train_size: int = 96          # square side of the training crops
    train_zoom: Tuple[float, float] = (1.0, 1.0)  # lesions drawn up to this much larger (render_batch)
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    recal_images: int = 32        # batch-norm statistics, at the inference size
    head_images: int = 128        # refit of the last linear layer, at the inference size
    head_l2: float = 1e-3
    eval_images: int = 32         # held-out measurement, at the inference size


# Sized for two CPU cores: both recipes together take about four minutes on an idle machine
# (docs/export-pipeline.md has the measurements).
RECIPES: Dict[str, DemoRecipe] = {
    "efficientnet_b4": DemoRecipe("efficientnet_b4", train_size=64, train_zoom=(1.0, 2.5)),
    "mobilenet_v3_large": DemoRecipe("mobilenet_v3_large", train_size=96, train_zoom=(1.0, 1.8)),
}


def log(message: str) -> None:
    print(f"[train-demo] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("DERMCDS_CACHE_DIR") or REPO_ROOT / ".cache") / "demo-checkpoints"


def library_versions() -> Dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "pillow": PIL.__version__}


def cpu_description() -> Dict[str, str]:
    """The processor and the instruction sets PyTorch's kernels use on it (for reports and
    provenance: checkpoints trained with other kernels are other files)."""
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    widest = next((isa for isa in ("avx512f", "avx2", "avx", "sse4_2") if isa in flags), "unknown")
    match = re.search(r"CPU capability usage: (\w+)", torch.__config__.show())
    return {"model": model, "widest_isa": widest,
            "aten_cpu_capability": match.group(1) if match else "unknown",
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset: the widest of this CPU")}


def kernel_isa() -> Dict[str, str]:
    """What decides which kernels run, as far as the cache key is concerned."""
    cpu = cpu_description()
    return {"aten_cpu_capability": cpu["aten_cpu_capability"], "onednn_max_cpu_isa": cpu["onednn_max_cpu_isa"]}


def cache_key(recipe: DemoRecipe) -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for name in _SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes() + b"\0")
    digest.update(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode())
    digest.update(json.dumps(library_versions(), sort_keys=True).encode())
    digest.update(f"threads={THREADS}".encode())
    digest.update(json.dumps(kernel_isa(), sort_keys=True).encode())
    return digest.hexdigest()


def checkpoint_path(arch: str, recipe: Optional[DemoRecipe] = None) -> Path:
    recipe = recipe or recipe_for(arch)
    return cache_dir() / f"demo-{arch}-{cache_key(recipe)[:16]}.pt"


def recipe_for(arch: str) -> DemoRecipe:
    architectures.get(arch)  # a clear error for an unknown name
    if arch not in RECIPES:
        raise ValueError(f"no demo training recipe for {arch!r}; demo weights exist for {', '.join(RECIPES)}")
    return RECIPES[arch]


def make_deterministic(seed: int) -> None:
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    # Tiny gradients early in training underflow to denormal floats, which the CPU computes
    # with tens of times fewer operations per second; flushing them to zero keeps epochs fast.
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def render_batch(seed: int, count: int, size: int, shorter_side: int, canvas_shorter: Tuple[int, int],
                 zoom: Tuple[float, float] = (1.0, 1.0)) -> Tuple[torch.Tensor, torch.Tensor]:
    """`count` lesions of dataset `seed` through the reference transform: images and labels.

    With zoom > 1 an image is rendered (and resized) `zoom` times larger before the centre crop,
    so the crop shows the middle 1/zoom of the field with the lesion that much larger in pixels.
    """
    transforms = {}
    images, labels = [], []
    for index, label in enumerate(lesions.dataset_labels(seed, count)):
        rng = lesions.sample_rng(seed, index)
        z = rng.uniform(*zoom) if zoom[1] > zoom[0] else zoom[0]
        target = round(shorter_side * z)
        canvas = (round(canvas_shorter[0] * z), round(canvas_shorter[1] * z))
        image, _ = lesions.render_lesion(rng, label, lesions.random_canvas_size(rng, canvas))
        if target not in transforms:
            transforms[target] = make_transform(size, target)
        images.append(transforms[target](image))
        labels.append(lesions.label_index(label))
    return torch.stack(images), torch.tensor(labels)


def _batches(count: int, batch_size: int) -> Iterable[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def recalibrate_batch_norm(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 4) -> None:
    """Replaces every batch-norm layer's running statistics by their mean over `images`."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average instead of an exponential one
    model.train()
    with torch.no_grad():
        for part in _batches(len(images), batch_size):
            model(images[part])
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def classifier_features(model: torch.nn.Module, linear: torch.nn.Linear, images: torch.Tensor,
                        batch_size: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode (input of the last linear layer, logits) for `images`."""
    captured: List[torch.Tensor] = []
    hook = linear.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            logits = torch.cat([model(images[part]) for part in _batches(len(images), batch_size)])
    finally:
        hook.remove()
    return torch.cat(captured), logits


def refit_linear(linear: torch.nn.Linear, features: torch.Tensor, labels: torch.Tensor, l2: float) -> None:
    """L2-regularised multinomial logistic regression, started from the current weights."""
    weight = torch.nn.Parameter(linear.weight.detach().clone())
    bias = torch.nn.Parameter(linear.bias.detach().clone())
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(features @ weight.T + bias, labels) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)


def output_statistics(logits: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Accuracy, peakedness and how much the outputs differ between images."""
    probs = torch.softmax(logits.double(), dim=1)
    n = len(probs)
    pairwise = (probs[:, None, :] - probs[None, :, :]).abs().sum(-1) / 2  # total variation
    return {
        "images": n,
        "accuracy": float((probs.argmax(1) == labels).double().mean()),
        "mean_top1_probability": float(probs.max(1).values.mean()),
        "probability_std_across_images": float(probs.std(0).mean()),
        "mean_pairwise_total_variation": float(pairwise.sum() / (n * (n - 1))) if n > 1 else 0.0,
        "distinct_predicted_classes": int(len(set(probs.argmax(1).tolist()))),
    }


def zero_init_residual_branches(model: torch.nn.Module) -> int:
    """Starts every residual block as the identity (its last batch-norm scale at zero).

    A deep network trained from scratch for a few hundred steps learns much faster when signals
    first pass through the skip connections only; torchvision's MBConv and InvertedResidual blocks
    end in a projection convolution followed by batch norm, whose scale is zeroed here.
    """
    count = 0
    for module in model.modules():
        if (getattr(module, "use_res_connect", False)
                and isinstance(getattr(module, "block", None), torch.nn.Sequential)):
            norms = [m for m in module.block[-1].modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            if norms:
                torch.nn.init.zeros_(norms[-1].weight)
                count += 1
    return count


def train(recipe: DemoRecipe) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """Runs the recipe; returns the state_dict and a report (metrics, timings)."""
    arch = architectures.get(recipe.arch)
    spec = arch.input
    make_deterministic(recipe.seed)
    started, cpu_started = time.time(), _cpu_seconds()
    timings: Dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.time()
        timings[name] = round(now - since, 2)
        return now

    # Training renderings: the inference pipeline scaled down, from slightly larger canvases so
    # that the resize filters as it does at full size.
    train_shorter = round(recipe.train_size * spec.shorter_side / spec.size)
    log(f"{recipe.arch}: rendering {recipe.train_images} training lesions at {recipe.train_size}px")
    images, labels = render_batch(recipe.seed, recipe.train_images, recipe.train_size, train_shorter,
                                  (train_shorter, round(train_shorter * 1.4)), recipe.train_zoom)
    images = images.contiguous(memory_format=torch.channels_last)
    t = lap("render_train", started)

    # Stochastic depth and dropout have no parameters; without stochastic depth a short run
    # converges much faster. A zero head starts from uniform outputs instead of huge logits.
    overrides = {"stochastic_depth_prob": 0.0} if recipe.arch.startswith("efficientnet") else {}
    model = arch.build(**overrides).to(memory_format=torch.channels_last)
    head = arch.classifier(model)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    zero_init_residual_branches(model)

    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(recipe.train_images / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, pct_start=0.2,
                                                   total_steps=recipe.epochs * steps_per_epoch)
    order_rng = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(recipe.train_images, generator=order_rng)
        loss_sum, correct = 0.0, 0
        for part in _batches(recipe.train_images, recipe.batch_size):
            idx = order[part]
            logits = model(images[idx])
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == labels[idx]).sum())
        log(f"{recipe.arch}: epoch {epoch + 1}/{recipe.epochs} loss {loss_sum / recipe.train_images:.3f} "
            f"train accuracy {correct / recipe.train_images:.3f} ({time.time() - t:.0f}s)")
    del images
    t = lap("train", t)

    # Inference size: batch-norm statistics, then the head.
    canvas = (spec.shorter_side, round(spec.shorter_side * 1.3))
    fit_count = max(recipe.recal_images, recipe.head_images)
    log(f"{recipe.arch}: rendering {fit_count} + {recipe.eval_images} lesions at {spec.size}px")
    fit_images, fit_labels = render_batch(recipe.seed + 1, fit_count, spec.size, spec.shorter_side, canvas)
    eval_images, eval_labels = render_batch(recipe.seed + 2, recipe.eval_images, spec.size, spec.shorter_side, canvas)
    fit_images = fit_images.contiguous(memory_format=torch.channels_last)
    eval_images = eval_images.contiguous(memory_format=torch.channels_last)
    t = lap("render_inference_size", t)

    log(f"{recipe.arch}: recomputing batch-norm statistics on {recipe.recal_images} images at {spec.size}px")
    recalibrate_batch_norm(model, fit_images[:recipe.recal_images])
    t = lap("recalibrate_batch_norm", t)
    _, logits = classifier_features(model, head, eval_images)
    before_refit = output_statistics(logits, eval_labels)

    log(f"{recipe.arch}: refitting the last layer on {recipe.head_images} images at {spec.size}px")
    features, _ = classifier_features(model, head, fit_images[:recipe.head_images])
    refit_linear(head, features, fit_labels[:recipe.head_images], recipe.head_l2)
    t = lap("refit_head", t)

    _, logits = classifier_features(model, head, eval_images)
    held_out = output_statistics(logits, eval_labels)
    lap("evaluate", t)
    timings["wall_total"] = round(time.time() - started, 2)
    timings["cpu_total"] = round(_cpu_seconds() - cpu_started, 2)

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    report = {
        "arch": recipe.arch,
        "recipe": dataclasses.asdict(recipe),
        "inference_input": spec.manifest(),
        "held_out": held_out,
        "held_out_before_head_refit": before_refit,
        "timings_s": timings,
        "threads": THREADS,
        "libraries": library_versions(),
        "cpu": cpu_description(),
    }
    log(f"{recipe.arch}: held-out accuracy {held_out['accuracy']:.3f}, mean top-1 probability "
        f"{held_out['mean_top1_probability']:.3f} at {spec.size}px; {timings['wall_total']:.0f}s wall")
    return state, report


@contextlib.contextmanager
def _locked(path: Path):
    """Serialises concurrent trainings of the same checkpoint (parallel ctest, two shells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_checkpoint(arch: str, recipe: Optional[DemoRecipe] = None) -> Path:
    """The cached demo checkpoint of `arch`, trained first if it is not cached yet."""
    recipe = recipe or recipe_for(arch)
    path = checkpoint_path(arch, recipe)
    if path.exists():
        log(f"cached: {path}")
        return path
    with _locked(path.with_suffix(".lock")):
        if path.exists():  # another process trained it while this one waited
            log(f"cached: {path}")
            return path
        state, report = train(recipe)
        report["cache_key"] = cache_key(recipe)
        report["checkpoint"] = path.name
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        report["checkpoint_sha256"] = sha256_file(tmp)
        write_text_atomically(report_path(path), json.dumps(report, indent=2) + "\n")
        replace_durably(tmp, path)
        log(f"wrote {path}")
    return path


def report_path(checkpoint: Path) -> Path:
    """The JSON written next to a demo checkpoint: recipe, metrics, timings."""
    return checkpoint.with_suffix(".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
