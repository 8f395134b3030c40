"""The safety guard and calibration that the export folds into every model package (docs/safety.md).

At export, with the trained network in hand:

1. Penultimate features (the input of the last linear layer) and logits are computed for three
   disjoint sets of synthetic lesions: FIT (the training distribution, seed of the demo training
   recipe) for class-conditional feature statistics, TUNE (held out) for the temperature and the
   guard threshold, and TEST (held out) for the figures the manifest reports.
2. Six out-of-distribution scores are measured, each "higher means less like a lesion":
   energy (-logsumexp of the logits), negative max-logit, the Mahalanobis distance of the
   features to the nearest class mean (shared covariance, in the principal subspace of the FIT
   features), the features' residual outside that subspace, the same residual of the features
   scaled to unit length (their direction only), and the mean over the blocks of the feature
   extractor of the Mahalanobis distance of each block's spatially averaged output to the FIT
   lesions' (block_mahalanobis: colour and texture statistics the last layer has discarded).
   Each one's AUROC between TEST
   lesions and non-lesion photographs from Debian packages (data/validation/real_photographs.json,
   non_lesion_photographs.json) is recorded; the one with the highest AUROC becomes the graph's
   second output, "ood_score" [batch, 1].
3. The threshold is the TUNE lesions' 96th percentile of that score (LESION_PASS_RATE says why
   not the 95th).
4. A temperature T is fitted on TUNE (the T of least ECE on a grid; docs/safety.md says why not
   the negative log-likelihood) and folded into the last linear layer (weight / T, bias / T):
   every runtime and precision then runs calibrated logits without knowing about it. ECE (15
   bins) on TEST before and after goes into the manifest.

The fitted tensors are stored next to the model (guard.npz) so that the PyTorch parity reference
(parity_reference.py) rebuilds exactly the exported graph.
"""

import contextlib
import copy
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import demo_training, lesions
from .hashing import sha256_file
from .reference_transform import load_rgb, transform_from_manifest_input

OOD_OUTPUT = "ood_score"
GUARD_FILE = "guard.npz"
# Every candidate, listed in the order of preference (TIE_ORDER) among those whose AUROC is
# within AUROC_TOLERANCE of the best and that refuse as many photographs (choose_candidate):
# a feature-space score does not depend on how confident the head is, and the Mahalanobis
# distance (inside the subspace, where the features' own spread dwarfs int8 rounding) holds its
# verdicts at int8 better than the residual, which is made of the small components that rounding
# perturbs most (measured on MobileNetV3-Large, docs/safety.md). The block score comes after
# both: on the demo MobileNetV3-Large its int8 artifact failed the assessment gate (a validation
# lesion 0.1% under the threshold moved 0.6% over it), on the second checkpoint it held.
METHODS = ("mahalanobis", "feature_residual", "block_mahalanobis", "normalized_residual", "energy", "max_logit")
TIE_ORDER = METHODS
# With 14 photographs and 384 lesions, 0.01 of AUROC is one photograph moving past 14% of the
# lesions (54 of 5376 pairs): a smaller difference is not evidence that one score is better.
AUROC_TOLERANCE = 0.01
# The threshold lets this fraction of the TUNE lesions through. The goal is at most 5% flagged
# on other lesions; a 95th percentile of 384 TUNE lesions meets it only on average (the flagged
# fraction of 384 TEST lesions has a standard error of about 1.1% at 5%: on the 2026-12-07 B4
# checkpoint the residual's 95th percentile flagged 6.5% of them), so the threshold sits about
# one standard error further out.
LESION_PASS_RATE = 0.96
# Added to the squared norm before the square root of normalized_residual: only an all-zero
# feature vector (which no image gives) would notice it; the scaled norm is about 1.
UNIT_EPSILON = 1e-4
ECE_BINS = 15
PCA_COMPONENTS = 32          # subspace of the Mahalanobis distance and of the residual (few hundred fit images)
COVARIANCE_SHRINKAGE = 0.05  # of the diagonal's mean, added to the within-class covariance
FIT_IMAGES = 192             # training lesions for the class-conditional statistics
# 384 each: the ECE of 96 lesions in 15 bins is mostly noise, and so is a temperature fitted on
# them (docs/safety.md, "Why calibration missed its goal").
TUNE_SEED, TUNE_IMAGES = 8101, 384
TEST_SEED, TEST_IMAGES = 8102, 384
TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.3), np.log(10.0), 400))
JPEG_QUALITY = 92            # as synth.py writes the validation set's JPEGs
PHOTO_LISTS = ("real_photographs.json", "non_lesion_photographs.json")


def log(message: str) -> None:
    print(f"[safety] {message}", file=sys.stderr, flush=True)


def last_linear_name(model: torch.nn.Module) -> str:
    names = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if not names:
        raise RuntimeError("the network has no linear layer to take the logits from")
    return names[-1]


def _set_submodule(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


class GuardedNetwork(torch.nn.Module):
    """(calibrated logits [N, classes], ood_score [N, 1]) from an image batch.

    Every step is a plain ONNX op the converter lowers (MatMul, Mul, ReduceSum, ReduceMean, Add,
    Sub, ReduceMax), so the score is computed by the model itself in every runtime and precision."""

    def __init__(self, network: torch.nn.Module, params: Dict[str, np.ndarray]):
        super().__init__()
        name = last_linear_name(network)
        head = network.get_submodule(name)
        self.body = copy.deepcopy(network)
        _set_submodule(self.body, name, torch.nn.Identity())
        temperature = float(params["temperature"])
        self.head = torch.nn.Linear(head.in_features, head.out_features)
        with torch.no_grad():  # temperature folded into the last layer: softmax(z / T)
            self.head.weight.copy_(head.weight / temperature)
            self.head.bias.copy_(head.bias / temperature)
        self.method = str(params["method"])
        # Packages exported before the residual candidates have no residual_* / unit_* tensors.
        residual_keys = [prefix + part for prefix in RESIDUAL_PREFIX.values() for part in ("basis", "offset")]
        for key in ("projection", "offset", "means", "mean_norms", *residual_keys):
            if key in params:
                self.register_buffer(key, torch.from_numpy(np.asarray(params[key], dtype=np.float32)))
        if self.method == "block_mahalanobis":
            self.blocks = feature_blocks(self.body)
            if self.blocks is None or len(self.blocks) != int(params[BLOCK_PREFIX + "count"]):
                raise ValueError("block_mahalanobis: the network's feature blocks do not match the fitted ones")
            for b in range(len(self.blocks)):
                for part in ("centre", "projection"):
                    key = f"{BLOCK_PREFIX}{b}_{part}"
                    self.register_buffer(key, torch.from_numpy(np.asarray(params[key], dtype=np.float32)))
        if self.method in RESIDUAL_PREFIX:
            prefix = RESIDUAL_PREFIX[self.method]
            # Stored transposed as well, so that the graph holds two constants and no Transpose.
            self.register_buffer("basis_t", getattr(self, prefix + "basis").t().contiguous())
            self.residual_prefix = prefix
            self.residual_gain = float(params[prefix + "gain"])
        if self.method == "normalized_residual":
            self.feature_scale = float(params["unit_feature_scale"])
        self.temperature = temperature
        if self.method == "mahalanobis":
            # A Python float, so the trace holds a constant and not a shape computation.
            self.distance_scale = -1.0 / float(self.projection.shape[1])

    def forward(self, images: torch.Tensor):
        pooled: List[torch.Tensor] = []
        with pooled_block_outputs(self.blocks if self.method == "block_mahalanobis" else None, pooled):
            features = self.body(images)
        logits = self.head(features)
        if self.method == "block_mahalanobis":
            # Each block's centred, whitened mean activation; the scale of the whitening holds
            # 1 / (components x fit median x blocks), so the sum over blocks is the mean score.
            score = None
            for b, mean in enumerate(pooled):
                w = (mean - getattr(self, f"{BLOCK_PREFIX}{b}_centre")) @ getattr(self, f"{BLOCK_PREFIX}{b}_projection")
                term = (w * w).sum(dim=1, keepdim=True)
                score = term if score is None else score + term
        elif self.method == "mahalanobis":
            z = features @ self.projection + self.offset
            # ||z - m_c||^2 = ||z||^2 - 2 z.m_c + ||m_c||^2, as one Gemm; `means` holds -2 m_c^T.
            distances = (z * z).sum(dim=1, keepdim=True) + z @ self.means + self.mean_norms
            score = torch.amax(distances * -1.0, dim=1, keepdim=True) * self.distance_scale
        elif self.method in RESIDUAL_PREFIX:
            if self.method == "normalized_residual":
                # Scaled by a constant first, so that the squared norm is about 1 and float16
                # cannot overflow it; the direction is what the score reads.
                g = features * self.feature_scale
                features = g / torch.sqrt((g * g).sum(dim=1, keepdim=True) + UNIT_EPSILON)
            # u = (features - centre) / sqrt(median fit residual), so that every term is about 1
            # and float16 neither overflows nor loses the residual to rounding; the residual is
            # then u minus its projection on the subspace, formed explicitly rather than as
            # ||u||^2 - ||u B||^2, whose two large terms would cancel.
            u = features * self.residual_gain + getattr(self, self.residual_prefix + "offset")
            r = u - (u @ getattr(self, self.residual_prefix + "basis")) @ self.basis_t
            score = (r * r).sum(dim=1, keepdim=True)
        elif self.method == "energy":
            raw = logits * self.temperature
            score = torch.logsumexp(raw, dim=1, keepdim=True) * -1.0
        else:  # max_logit
            score = torch.amax(logits * self.temperature, dim=1, keepdim=True) * -1.0
        return logits, score


# ---- statistics -------------------------------------------------------------------------------


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    negatives, positives = np.asarray(negatives, float), np.asarray(positives, float)
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum()
    equal = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * equal) / (len(negatives) * len(positives)))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-1 confidence vs accuracy in `bins` equal-width bins, weighted by the bins' counts."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin b holds confidences in (edges[b], edges[b+1]]; a top-1 confidence is at least 1/classes.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T of TEMPERATURE_GRID whose softmax(logits / T) has the least ECE; among those within
    1e-4 of it (far below an ECE's sampling noise), the nearest to 1. The ECE, not the negative
    log-likelihood, because the likelihood is ruled by the few lesions the model gets wrong with
    confidence, and its optimum left the ECE higher than before on both demo networks
    (docs/safety.md). ECE is not smooth in T, hence the grid."""
    ece = np.array([expected_calibration_error(_softmax(logits / t), labels) for t in TEMPERATURE_GRID])
    best = np.flatnonzero(ece <= ece.min() + 1e-4)
    return float(TEMPERATURE_GRID[best[np.argmin(np.abs(np.log(TEMPERATURE_GRID[best])))]])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(1, keepdims=True)


def principal_subspace(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(centre [D], orthonormal basis [D, PCA_COMPONENTS]) of the fit features' leading principal
    components: with a few hundred images in ~1000-2000 dimensions the full covariance is
    singular, and the directions beyond these carry no estimate at all."""
    features = features.astype(np.float64)
    centre = features.mean(0)
    _, _, vt = np.linalg.svd(features - centre, full_matrices=False)
    return centre, vt[:PCA_COMPONENTS].T


def _shrunk_whitening(deviations: np.ndarray, means_fitted: int) -> np.ndarray:
    """[k, k] W such that x -> x @ W has unit covariance, for the covariance of `deviations`
    [N, k] (from `means_fitted` fitted means) shrunk towards COVARIANCE_SHRINKAGE of its mean
    diagonal, which keeps the few-hundred-image estimate invertible and its smallest directions
    from dominating the distance."""
    covariance = deviations.T @ deviations / max(len(deviations) - means_fitted, 1)
    covariance += COVARIANCE_SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return eigenvectors / np.sqrt(eigenvalues)


def mahalanobis_params(features: np.ndarray, labels: np.ndarray, classes: int) -> Dict[str, np.ndarray]:
    """Class means and the shared within-class covariance of `features` in their top principal
    components, as the whitening projection, offset and Gemm constants GuardedNetwork uses."""
    centre, basis = principal_subspace(features)       # [D], [D, k]
    reduced = (features.astype(np.float64) - centre) @ basis  # [N, k]
    means = np.stack([reduced[labels == c].mean(0) if (labels == c).any() else np.zeros(basis.shape[1])
                      for c in range(classes)])        # [C, k]
    whitening = _shrunk_whitening(reduced - means[labels], classes)  # [k, k]
    projection = basis @ whitening                     # [D, k]
    offset = -centre @ projection                      # [k]
    white_means = means @ whitening                    # [C, k]
    return {"projection": projection.astype(np.float32), "offset": offset.astype(np.float32),
            "means": (-2.0 * white_means.T).astype(np.float32),
            "mean_norms": (white_means ** 2).sum(1).astype(np.float32)}


def mahalanobis_scores(features: np.ndarray, params: Dict[str, np.ndarray]) -> np.ndarray:
    """The same score as GuardedNetwork, written directly: min over classes of the squared
    whitened distance, divided by the subspace's dimension."""
    z = features.astype(np.float64) @ params["projection"].astype(np.float64) + params["offset"]
    white_means = -0.5 * params["means"].astype(np.float64).T
    distances = ((z[:, None, :] - white_means[None, :, :]) ** 2).sum(2)
    return distances.min(1) / params["projection"].shape[1]


def _residual_squares(features: np.ndarray, centre: np.ndarray, basis: np.ndarray) -> np.ndarray:
    centred = features.astype(np.float64) - centre
    residual = centred - (centred @ basis) @ basis.T
    return (residual ** 2).sum(1)


# guard.npz's key prefix of each residual candidate's tensors (basis, offset, gain).
RESIDUAL_PREFIX = {"feature_residual": "residual_", "normalized_residual": "unit_residual_"}


def unit_features(features: np.ndarray, scale: float) -> np.ndarray:
    """normalized_residual's first step, as GuardedNetwork computes it."""
    g = features.astype(np.float64) * scale
    return g / np.sqrt((g * g).sum(1, keepdims=True) + UNIT_EPSILON)


def residual_params(features: np.ndarray, method: str = "feature_residual") -> Dict[str, np.ndarray]:
    """What a residual score needs: the squared norm of the features' component outside the fit
    features' principal subspace, over its median on the fit features (so about 1 on lesions). A
    photograph unlike every lesion puts its energy in directions no lesion used, which a distance
    inside the subspace cannot see (docs/safety.md). normalized_residual does the same with every
    feature vector scaled to unit length, so that only its direction counts: on a network whose
    lesion features vary widely in length, that length hides the direction's residual."""
    params = {}
    features = features.astype(np.float64)
    if method == "normalized_residual":
        scale = 1.0 / float(np.median(np.linalg.norm(features, axis=1)))
        params["unit_feature_scale"] = np.array(scale, dtype=np.float64)
        features = unit_features(features, scale)
    centre, basis = principal_subspace(features)
    median = float(np.median(_residual_squares(features, centre, basis)))
    if not median > 0.0:
        raise RuntimeError("the fit features lie entirely in their principal subspace; the residual score is undefined")
    gain = 1.0 / np.sqrt(median)
    prefix = RESIDUAL_PREFIX[method]
    params.update({prefix + "basis": basis.astype(np.float32), prefix + "offset": (-centre * gain).astype(np.float32),
                   prefix + "gain": np.array(gain, dtype=np.float64)})
    return params


def residual_scores(features: np.ndarray, params: Dict[str, np.ndarray],
                    method: str = "feature_residual") -> np.ndarray:
    """The same score as GuardedNetwork, in float64."""
    if method == "normalized_residual":
        features = unit_features(features, float(params["unit_feature_scale"]))
    prefix = RESIDUAL_PREFIX[method]
    gain = float(params[prefix + "gain"])
    centre = -params[prefix + "offset"].astype(np.float64) / gain
    return _residual_squares(features, centre, params[prefix + "basis"].astype(np.float64)) * gain * gain


# guard.npz's key prefix of block_mahalanobis: block_count, and block_<b>_centre [C_b] and
# block_<b>_projection [C_b, k_b] for each block b.
BLOCK_PREFIX = "block_"


def feature_blocks(network: torch.nn.Module) -> Optional[List[torch.nn.Module]]:
    """The blocks of a torchvision-style feature extractor (`features`, a Sequential of blocks
    with [N, C, H, W] outputs: EfficientNet, MobileNet, DenseNet, ...), or None where the network
    has none; block_mahalanobis is then not a candidate."""
    features = getattr(network, "features", None)
    if isinstance(features, torch.nn.Sequential) and len(features) > 1:
        return list(features)
    return None


@contextlib.contextmanager
def pooled_block_outputs(blocks: Optional[List[torch.nn.Module]], pooled: List[torch.Tensor]):
    """While inside, every forward pass appends each block's output averaged over height and
    width ([N, C]) to `pooled`, in block order. Hooks rather than a forward of our own, so that
    the network's forward (with whatever it does between and after the blocks) runs unchanged."""
    handles = [block.register_forward_hook(lambda _m, _inputs, output: pooled.append(output.mean(dim=(2, 3))))
               for block in blocks or []]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def block_params(pooled: List[np.ndarray]) -> Dict[str, np.ndarray]:
    """For each block's pooled fit features: the centre and a whitening projection in their top
    principal components (shrunk covariance, as mahalanobis_params), scaled so that a fit
    lesion's squared norm averages to 1 / blocks at the median: the score, the sum over blocks,
    is then about 1 on lesions whatever the blocks' widths."""
    params = {BLOCK_PREFIX + "count": np.array(len(pooled))}
    for b, features in enumerate(pooled):
        centre, basis = principal_subspace(features)
        centred = features.astype(np.float64) - centre
        projection = basis @ _shrunk_whitening(centred @ basis, 1)
        median = float(np.median(((centred @ projection) ** 2).sum(1)))
        params[f"{BLOCK_PREFIX}{b}_centre"] = centre.astype(np.float32)
        params[f"{BLOCK_PREFIX}{b}_projection"] = (projection / np.sqrt(median * len(pooled))).astype(np.float32)
    return params


def block_scores(pooled: List[np.ndarray], params: Dict[str, np.ndarray]) -> np.ndarray:
    """The same score as GuardedNetwork, in float64 from the stored (float32) parameters."""
    total = np.zeros(len(pooled[0]))
    for b, features in enumerate(pooled):
        w = (features.astype(np.float64) - params[f"{BLOCK_PREFIX}{b}_centre"].astype(np.float64)) \
            @ params[f"{BLOCK_PREFIX}{b}_projection"].astype(np.float64)
        total += (w * w).sum(1)
    return total


def logit_scores(logits: np.ndarray, method: str) -> np.ndarray:
    if method == "energy":
        top = logits.max(1)
        return -(top + np.log(np.exp(logits - top[:, None]).sum(1)))
    return -logits.max(1)


def choose_candidate(candidates: List[dict]) -> dict:
    """Highest AUROC wins. Among those within AUROC_TOLERANCE of it, which the AUROC does not
    tell apart, the goal itself decides: the most photographs refused at the candidate's own
    threshold; then TIE_ORDER (also alone when there are no photographs to measure on)."""
    best = max((c["auroc"] for c in candidates if c["auroc"] is not None), default=None)
    eligible = [c for c in candidates
                if best is None or (c["auroc"] is not None and c["auroc"] >= best - AUROC_TOLERANCE)]
    return min(eligible, key=lambda c: (-(c.get("photographs_flagged") or 0.0), TIE_ORDER.index(c["method"])))


# ---- images -----------------------------------------------------------------------------------


def _held_out_encoded(seed: int, count: int) -> Tuple[List[bytes], np.ndarray]:
    """Lesions drawn and encoded as the validation set's (synth.py, --format mixed): PNG and JPEG
    in turn, with their label indices. Rendered once per generator and library versions and kept
    under .cache/held-out-lesions: every export of every network measures on the same images, and
    rendering them (about 0.1 s each) would otherwise be paid again by each export."""
    import io

    import PIL

    key = f"\0{seed}\0{count}\0{JPEG_QUALITY}\0{PIL.__version__}\0{np.__version__}".encode()
    digest = hashlib.sha256(Path(lesions.__file__).read_bytes() + key)
    # Beside the demo checkpoints, in the same cache root (DERMCDS_CACHE_DIR or .cache).
    path = demo_training.cache_dir().parent / "held-out-lesions" / f"{seed}-{count}-{digest.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            data, ends, labels = stored["data"], stored["ends"], stored["labels"]
        starts = np.concatenate([[0], ends[:-1]])
        return [data[a:b].tobytes() for a, b in zip(starts, ends)], labels
    encoded, labels = [], []
    for index, label in enumerate(lesions.dataset_labels(seed, count)):
        image, _ = lesions.render_lesion(lesions.sample_rng(seed, index), label)
        buffer = io.BytesIO()
        if index % 2 == 1:
            image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        else:
            image.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
        labels.append(lesions.label_index(label))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: exports running side by side (ctest -j) write the same bytes.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        np.savez(f, data=np.frombuffer(b"".join(encoded), dtype=np.uint8),
                 ends=np.cumsum([len(e) for e in encoded]), labels=np.array(labels))
    os.replace(temporary, path)
    return encoded, np.array(labels)


def _held_out_tensors(seed: int, count: int, transform) -> Tuple[torch.Tensor, np.ndarray]:
    """_held_out_encoded's lesions, decoded and through the model's transform."""
    encoded, labels = _held_out_encoded(seed, count)
    return torch.stack([transform(load_rgb(e)) for e in encoded]), labels


def non_lesion_photographs(root: Path) -> List[Tuple[str, Path]]:
    """(list file, path) of every non-lesion photograph provisioning put in place."""
    out = []
    for list_name in PHOTO_LISTS:
        path = root / "data" / "validation" / list_name
        if not path.is_file():
            continue
        for entry in json.loads(path.read_text())["photographs"]:
            source = Path(entry["source_path"])
            source = source if source.is_absolute() else root / source
            if source.is_file() and sha256_file(source) == entry["sha256"]:
                out.append((list_name, source))
            elif source.is_file():
                log(f"note: {source} does not have the sha256 {list_name} records; left out")
            else:
                log(f"note: {source} is missing (not provisioned); the guard is measured without it")
    return out


def _run(model: torch.nn.Module, linear: torch.nn.Linear,
         images: torch.Tensor) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
    """(penultimate features, logits, each feature block's pooled output) in one pass."""
    pooled: List[torch.Tensor] = []
    blocks = feature_blocks(model)
    with pooled_block_outputs(blocks, pooled):
        features, logits = demo_training.classifier_features(model, linear, images, batch_size=8)
    count = len(blocks or [])
    per_block = [torch.cat(pooled[b::count]).double().numpy() for b in range(count)]
    return features.double().numpy(), logits.double().numpy(), per_block


# ---- the fit ----------------------------------------------------------------------------------


@dataclass
class SafetyFit:
    params: Dict[str, np.ndarray]  # what GuardedNetwork needs (and guard.npz stores)
    manifest: dict                 # the manifest's "safety" section


def fit(network: torch.nn.Module, arch, input_spec: dict, fit_seed: int) -> SafetyFit:
    transform = transform_from_manifest_input(input_spec)
    spec = arch.input
    linear = network.get_submodule(last_linear_name(network))
    classes = linear.out_features

    log(f"features of {FIT_IMAGES} training lesions (seed {fit_seed}) at {spec.size}px")
    fit_images, fit_labels = demo_training.render_batch(fit_seed, FIT_IMAGES, spec.size, spec.shorter_side,
                                                        (spec.shorter_side, round(spec.shorter_side * 1.3)))
    fit_features, _, fit_blocks = _run(network, linear, fit_images)
    del fit_images
    log(f"{TUNE_IMAGES} + {TEST_IMAGES} held-out lesions (seeds {TUNE_SEED}, {TEST_SEED})")
    tune_images, tune_labels = _held_out_tensors(TUNE_SEED, TUNE_IMAGES, transform)
    tune_features, tune_logits, tune_blocks = _run(network, linear, tune_images)
    del tune_images
    test_images, test_labels = _held_out_tensors(TEST_SEED, TEST_IMAGES, transform)
    test_features, test_logits, test_blocks = _run(network, linear, test_images)
    del test_images
    photos = non_lesion_photographs(demo_training.REPO_ROOT)
    log(f"{len(photos)} non-lesion photographs")
    if photos:
        photo_features, photo_logits, photo_blocks = _run(
            network, linear, torch.stack([transform(load_rgb(str(p))) for _, p in photos]))
    else:
        photo_features = np.zeros((0, fit_features.shape[1]))
        photo_logits = np.zeros((0, classes))
        photo_blocks = [np.zeros((0, f.shape[1])) for f in fit_blocks]

    maha = mahalanobis_params(fit_features, fit_labels.numpy(), classes)
    residual = dict(residual_params(fit_features), **residual_params(fit_features, "normalized_residual"))
    blocks = block_params(fit_blocks) if fit_blocks else {}
    feature_sets = (("tune", tune_features), ("test", test_features), ("photos", photo_features))
    scores = {}
    for method in METHODS:
        if method == "block_mahalanobis":
            if blocks:  # a network without feature blocks has no such candidate
                scores[method] = {name: block_scores(b, blocks) for name, b in
                                  (("tune", tune_blocks), ("test", test_blocks), ("photos", photo_blocks))}
        elif method == "mahalanobis":
            scores[method] = {name: mahalanobis_scores(f, maha) for name, f in feature_sets}
        elif method in RESIDUAL_PREFIX:
            scores[method] = {name: residual_scores(f, residual, method) for name, f in feature_sets}
        else:
            scores[method] = {name: logit_scores(z, method) for name, z in
                              (("tune", tune_logits), ("test", test_logits), ("photos", photo_logits))}
    candidates = []
    for method in scores:
        s = scores[method]
        threshold = float(np.quantile(s["tune"], LESION_PASS_RATE))
        candidates.append({"method": method,
                           "auroc": round(auroc(s["test"], s["photos"]), 6) if photos else None,
                           "threshold": threshold,
                           "test_lesions_flagged": round(float((s["test"] > threshold).mean()), 6),
                           "photographs_flagged": (round(float((s["photos"] > threshold).mean()), 6)
                                                   if photos else None)})
        log(f"candidate {method}: AUROC {candidates[-1]['auroc']}, threshold {threshold:.4f}, held-out lesions "
            f"flagged {candidates[-1]['test_lesions_flagged']:.3f}, photographs flagged "
            f"{candidates[-1]['photographs_flagged']}")
    chosen = choose_candidate(candidates)
    method = chosen["method"]

    temperature = fit_temperature(tune_logits, tune_labels)
    ece_before = expected_calibration_error(_softmax(test_logits), test_labels)
    ece_after = expected_calibration_error(_softmax(test_logits / temperature), test_labels)
    accuracy = float((test_logits.argmax(1) == test_labels).mean())
    log(f"chose {method}; temperature {temperature:.4f}: ECE on held-out lesions {ece_before:.4f} -> "
        f"{ece_after:.4f} (accuracy {accuracy:.3f})")

    per_photo = []
    for (list_name, path), score in zip(photos, scores[method]["photos"]):
        per_photo.append({"file": path.name, "list": list_name, "score": round(float(score), 6),
                          "flagged": bool(score > chosen["threshold"])})
    params = dict(maha, **residual, **blocks, method=np.array(method),
                  temperature=np.array(temperature, dtype=np.float64))
    section = {
        "ood": {
            "output": OOD_OUTPUT,
            "method": method,
            "direction": "higher_is_out_of_distribution",
            "threshold": chosen["threshold"],
            "lesion_pass_rate_target": LESION_PASS_RATE,
            "tune": {"seed": TUNE_SEED, "lesions": TUNE_IMAGES},
            "test": {"seed": TEST_SEED, "lesions": TEST_IMAGES,
                     "lesions_flagged": chosen["test_lesions_flagged"]},
            "fit": {"seed": fit_seed, "lesions": FIT_IMAGES, "pca_components": PCA_COMPONENTS,
                    "covariance_shrinkage": COVARIANCE_SHRINKAGE,
                    "residual_median": round(float(residual["residual_gain"]) ** -2, 6),
                    "unit_residual_median": round(float(residual["unit_residual_gain"]) ** -2, 6),
                    "feature_blocks": len(fit_blocks)},
            "photographs": per_photo,
            "photographs_flagged": chosen["photographs_flagged"],
            "candidates": candidates,
            "choice": (f"highest AUROC; within {AUROC_TOLERANCE} of it, the most photographs flagged, then the "
                       f"order {', '.join(TIE_ORDER)}"),
            "parameters": GUARD_FILE,
        },
        "calibration": {
            "method": "temperature",
            "temperature": temperature,
            "applied": "folded into the last linear layer (weight / T, bias / T)",
            "fit": {"seed": TUNE_SEED, "lesions": TUNE_IMAGES},
            "ece_bins": ECE_BINS,
            "ece_before": round(ece_before, 6),
            "ece_after": round(ece_after, 6),
            "evaluated_on": {"seed": TEST_SEED, "lesions": TEST_IMAGES, "accuracy": round(accuracy, 6)},
        },
    }
    return SafetyFit(params, section)


def save_params(path: Path, params: Dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **params)


def load_params(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def guarded_from_package(network: torch.nn.Module, manifest: dict, package: Path) -> Optional[GuardedNetwork]:
    """The exported graph's PyTorch twin, or None for a package exported without the guard."""
    ood = manifest.get("safety", {}).get("ood")
    if not ood:
        return None
    return GuardedNetwork(network, load_params(package / ood["parameters"])).eval()
