"""Metrics, report and plots of `dermcds evaluate` (docs/cli.md, docs/safety.md).

`python -m dermcds_export evaluate-report --predictions P.json [--json FILE] [--report DIR]`
reads what the C++ command wrote (ground truth and predicted probabilities per image, the
manifest's labels and triage rules, each image's assessment status) and scores it as the ISIC
2019 challenge does:

- the predicted label of a row is its argmax; a row whose maximum is shared by two or more
  classes is 'undecided' and counts as wrong for every category;
- balanced multiclass accuracy is the mean over categories (with at least one true image) of
  correct / true count.

Per category: accuracy, sensitivity, specificity, PPV, NPV (from the one-vs-rest confusion of the
argmax labels), AUC (Mann-Whitney, ties half), AUC above 80% sensitivity (the area under the ROC
curve where the true positive rate is at least 0.8, as the challenge reports it: not rescaled),
and average precision (sum over thresholds of precision x recall step). Triage: sensitivity and
specificity of "referred" (the first triage rule fires) for the malignant classes. ECE over 15
equal-width bins of the top-1 probability.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from .files import replace_durably, write_text_atomically

ECE_BINS = 15
UNDECIDED = -1


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """Argmax per row, UNDECIDED where the maximum is tied."""
    top = probabilities.max(1, keepdims=True)
    ties = (probabilities == top).sum(1)
    labels = probabilities.argmax(1)
    labels[ties > 1] = UNDECIDED
    return labels


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    recalls = [float((predicted[truth == c] == c).mean()) for c in range(classes) if (truth == c).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> List[List[int]]:
    """Rows: true class; columns: predicted class, then a last column for 'undecided'."""
    matrix = np.zeros((classes, classes + 1), dtype=int)
    for t, p in zip(truth, predicted):
        matrix[t, p if p != UNDECIDED else classes] += 1
    return matrix.tolist()


def roc_curve(positive: np.ndarray, scores: np.ndarray):
    """(false positive rates, true positive rates) at every distinct threshold, from (0,0) to (1,1)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(positive)[distinct]
    fps = (distinct + 1) - tps
    p, n = positive.sum(), len(positive) - positive.sum()
    tpr = np.r_[0.0, tps / p] if p else np.r_[0.0, np.zeros(len(tps))]
    fpr = np.r_[0.0, fps / n] if n else np.r_[0.0, np.zeros(len(fps))]
    return fpr, tpr


def auc(positive: np.ndarray, scores: np.ndarray) -> Optional[float]:
    if positive.all() or not positive.any():
        return None
    fpr, tpr = roc_curve(positive, scores)
    return float(np.trapz(tpr, fpr))


def auc_above_sensitivity(positive: np.ndarray, scores: np.ndarray, sensitivity: float = 0.8) -> Optional[float]:
    """Area under the ROC curve restricted to true positive rate >= `sensitivity`: the integral over
    FPR of max(tpr - sensitivity, 0) (the region of the unit square above the line tpr = 0.8 under
    the curve), with the crossing point interpolated linearly."""
    if positive.all() or not positive.any():
        return None
    fpr, tpr = roc_curve(positive, scores)
    area = 0.0
    for i in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], tpr[i - 1] - sensitivity, tpr[i] - sensitivity
        if x1 == x0:
            continue
        if y0 >= 0 and y1 >= 0:
            area += (x1 - x0) * (y0 + y1) / 2
        elif y0 < 0 <= y1 or y1 < 0 <= y0:
            cross = x0 + (x1 - x0) * (-y0) / (y1 - y0)
            if y1 >= 0:
                area += (x1 - cross) * y1 / 2
            else:
                area += (cross - x0) * y0 / 2
    return float(area)


def average_precision(positive: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """Sum over distinct thresholds of (recall_k - recall_{k-1}) * precision_k."""
    if not positive.any():
        return None
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(positive)[distinct]
    precision = tps / (distinct + 1)
    recall = tps / positive.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ratio(a: int, b: int) -> Optional[float]:
    return float(a) / b if b else None


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS):
    """(ECE, per-bin list of {lower, upper, count, confidence, accuracy}) of the top-1 probability."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = which == b
        entry = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(mask.sum())}
        if mask.any():
            entry["confidence"] = float(confidence[mask].mean())
            entry["accuracy"] = float(correct[mask].mean())
            ece += mask.mean() * abs(entry["accuracy"] - entry["confidence"])
        table.append(entry)
    return float(ece), table


def triage_referral(probabilities: np.ndarray, labels: List[str], rule: dict) -> np.ndarray:
    indices = [labels.index(code) for code in rule["classes"]]
    return probabilities[:, indices].sum(1) >= rule["threshold"]


def evaluate(document: dict) -> dict:
    labels: List[str] = document["labels"]
    classes = len(labels)
    rows = document["images"]
    if not rows:
        raise ValueError("no image to evaluate")
    truth = np.array([labels.index(r["truth"]) for r in rows])
    probabilities = np.array([r["probabilities"] for r in rows], dtype=np.float64)
    predicted = predicted_labels(probabilities)
    not_assessable = sum(1 for r in rows if r.get("assessment") == "not_assessable")

    per_category = []
    for c, code in enumerate(labels):
        positive = truth == c
        called = predicted == c
        tp, fp = int((positive & called).sum()), int((~positive & called).sum())
        fn, tn = int((positive & ~called).sum()), int((~positive & ~called).sum())
        per_category.append({
            "code": code, "count": int(positive.sum()),
            "accuracy": _ratio(tp + tn, len(rows)), "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            "ppv": _ratio(tp, tp + fp), "npv": _ratio(tn, tn + fn),
            "auc": auc(positive, probabilities[:, c]),
            "auc_above_80_sensitivity": auc_above_sensitivity(positive, probabilities[:, c]),
            "average_precision": average_precision(positive, probabilities[:, c]),
        })

    malignant = np.isin(truth, [labels.index(c) for c in ("MEL", "BCC", "SCC") if c in labels])
    triage = []
    for rule in document.get("triage", {}).get("rules", []):
        referred = triage_referral(probabilities, labels, rule)
        triage.append({"tier": rule["tier"], "classes": rule["classes"], "threshold": rule["threshold"],
                       "sensitivity": _ratio(int((referred & malignant).sum()), int(malignant.sum())),
                       "specificity": _ratio(int((~referred & ~malignant).sum()), int((~malignant).sum()))})
    ece, bins = expected_calibration_error(probabilities, truth)
    return {
        "balanced_accuracy": balanced_accuracy(truth, predicted, classes),
        "images": len(rows),
        "undecided": int((predicted == UNDECIDED).sum()),
        "not_assessable": not_assessable,
        "model": document.get("model", {}),
        "labels": labels,
        "per_category": per_category,
        "confusion_matrix": {"rows": "true class", "columns": labels + ["undecided"],
                             "counts": confusion_matrix(truth, predicted, classes)},
        "triage": {"malignant_classes": ["MEL", "BCC", "SCC"], "rules": triage},
        "ece": ece,
        "ece_bins": ECE_BINS,
        "reliability": bins,
    }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(result: dict) -> str:
    lines = [f"# Evaluation of {result['model'].get('name', '?')}/{result['model'].get('version', '?')}", "",
             f"- images: {result['images']}; undecided (tied maximum): {result['undecided']}; "
             f"not assessable: {result['not_assessable']}",
             f"- balanced multiclass accuracy (ISIC 2019): **{result['balanced_accuracy']:.4f}**",
             f"- expected calibration error ({result['ece_bins']} bins): {result['ece']:.4f}", "",
             "| class | n | accuracy | sensitivity | specificity | PPV | NPV | AUC | AUC >80% sens | AP |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["per_category"]:
        lines.append(f"| {c['code']} | {c['count']} | " + " | ".join(_fmt(c[k]) for k in (
            "accuracy", "sensitivity", "specificity", "ppv", "npv", "auc", "auc_above_80_sensitivity",
            "average_precision")) + " |")
    lines += ["", "Triage of the malignant classes (MEL, BCC, SCC): a rule refers when its summed probability "
              "reaches its threshold.", "", "| rule | threshold | sensitivity | specificity |", "|---|---:|---:|---:|"]
    for t in result["triage"]["rules"]:
        lines.append(f"| {t['tier']} | {t['threshold']} | {_fmt(t['sensitivity'])} | {_fmt(t['specificity'])} |")
    columns = result["confusion_matrix"]["columns"]
    lines += ["", "Confusion matrix (rows: true class, columns: predicted)", "",
              "| true \\ predicted | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for code, row in zip(result["labels"], result["confusion_matrix"]["counts"]):
        lines.append(f"| {code} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def plots(result: dict, document: dict, out: Path) -> List[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["labels"]
    truth = np.array([labels.index(r["truth"]) for r in document["images"]])
    probabilities = np.array([r["probabilities"] for r in document["images"]], dtype=np.float64)
    written = []
    fig, ax = plt.subplots(figsize=(6, 6))
    for c, code in enumerate(labels):
        positive = truth == c
        if positive.any() and not positive.all():
            fpr, tpr = roc_curve(positive, probabilities[:, c])
            ax.plot(fpr, tpr, label=f"{code} (AUC {auc(positive, probabilities[:, c]):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.axhline(0.8, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per class")
    ax.legend(loc="lower right", fontsize=8)
    written.append(_save(fig, out / "roc.png"))
    fig, ax = plt.subplots(figsize=(6, 6))
    centres = [(b["lower"] + b["upper"]) / 2 for b in result["reliability"] if b["count"]]
    accuracy = [b["accuracy"] for b in result["reliability"] if b["count"]]
    width = 1.0 / result["ece_bins"]
    ax.bar(centres, accuracy, width=width, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.set(xlabel="top-1 probability", ylabel="accuracy", title=f"Reliability (ECE {result['ece']:.4f})",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    written.append(_save(fig, out / "reliability.png"))
    fig, ax = plt.subplots(figsize=(7, 6))
    counts = np.array(result["confusion_matrix"]["counts"])
    ax.imshow(counts, cmap="Blues")
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(counts.shape[1]), result["confusion_matrix"]["columns"], rotation=45)
    ax.set_yticks(range(counts.shape[0]), labels)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    written.append(_save(fig, out / "confusion_matrix.png"))
    return written


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    replace_durably(tmp, path)
    return str(path)


def run(args: argparse.Namespace) -> int:
    document = json.loads(Path(args.predictions).read_text())
    result = evaluate(document)
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        write_text_atomically(Path(args.json), text)
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out / "evaluation.json", text)
        write_text_atomically(out / "evaluation.md", markdown(result))
        plots(result, document, out)
    if not args.json and not args.report:
        sys.stdout.write(text)
    print(markdown(result), file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate-report", help="ISIC 2019 metrics, report and plots for `dermcds evaluate`",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", required=True, help="JSON written by dermcds evaluate")
    parser.add_argument("--json", help="metrics JSON to write")
    parser.add_argument("--report", help="directory for evaluation.json, evaluation.md and the PNG plots")
    parser.set_defaults(func=run)
