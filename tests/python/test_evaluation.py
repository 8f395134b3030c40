"""dermcds_export.evaluation against hand-computed values and an independent implementation.

scikit-learn would be the natural reference, but Debian 12's python3-sklearn cannot be installed
next to Boost 1.81 (its dependencies pull libboost1.74-dev, which conflicts), so the reference
here is written independently: pairwise counting for AUC, a brute-force threshold sweep for the
partial AUC and average precision, plain loops for the confusion counts."""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

from dermcds_export import evaluation as ev

LABELS = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"]


def reference_auc(positive, scores):
    pos, neg = scores[positive], scores[~positive]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def reference_curve(positive, scores):
    points = [(0.0, 0.0)]
    for t in sorted(set(scores.tolist()), reverse=True):
        called = scores >= t
        points.append(((called & ~positive).sum() / (~positive).sum(), (called & positive).sum() / positive.sum()))
    return points


def reference_partial_auc(positive, scores, floor=0.8, steps=200000):
    # Numerical integration of max(tpr(fpr) - floor, 0) on a fine grid of the piecewise-linear curve.
    points = reference_curve(positive, scores)
    xs = np.linspace(0, 1, steps)
    fx = np.array([p[0] for p in points])
    fy = np.array([p[1] for p in points])
    ys = np.interp(xs, fx, fy)  # vertical segments: np.interp takes the last point, fine on a fine grid
    return float(np.trapz(np.maximum(ys - floor, 0), xs))


def reference_ap(positive, scores):
    total, previous_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        called = scores >= t
        tp = (called & positive).sum()
        recall = tp / positive.sum()
        total += (recall - previous_recall) * tp / called.sum()
        previous_recall = recall
    return total


class HandComputed(unittest.TestCase):
    def test_balanced_accuracy_counts_a_tied_maximum_as_undecided(self):
        # 3 classes; truth 0,0,1,1,2; row 2 is tied (undecided), row 4 predicted 0.
        p = np.array([[.8, .1, .1], [.6, .3, .1], [.4, .4, .2], [.1, .8, .1], [.5, .2, .3]])
        truth = np.array([0, 0, 1, 1, 2])
        predicted = ev.predicted_labels(p)
        self.assertEqual(predicted.tolist(), [0, 0, ev.UNDECIDED, 1, 0])
        # recalls: class 0: 2/2, class 1: 1/2, class 2: 0/1 -> mean 0.5
        self.assertAlmostEqual(ev.balanced_accuracy(truth, predicted, 3), 0.5)
        self.assertEqual(ev.confusion_matrix(truth, predicted, 3), [[2, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]])

    def test_auc_ap_and_partial_auc_of_a_small_case(self):
        positive = np.array([True, False, True, False, True])
        scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
        # pairs (pos > neg): 0.9 beats both, 0.7 beats 0.3, 0.2 beats none -> 3 of 6
        self.assertAlmostEqual(ev.auc(positive, scores), 0.5)
        # AP: thresholds 0.9 (P=1, R=1/3), 0.7 (P=2/3, R=2/3), 0.2 (P=3/5, R=1)
        self.assertAlmostEqual(ev.average_precision(positive, scores), 1 / 3 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 5))
        # ROC: (0,0),(0,1/3),(1/2,1/3),(1/2,2/3),(1,2/3),(1,1): TPR reaches 0.8 only at FPR 1 -> 0
        self.assertAlmostEqual(ev.auc_above_sensitivity(positive, scores), 0.0)
        perfect = np.array([0.9, 0.1, 0.8, 0.2, 0.7])
        # perfect ranking: TPR 1 from FPR 0: the area above 0.8 is 0.2 x 1
        self.assertAlmostEqual(ev.auc_above_sensitivity(positive, perfect), 0.2)

    def test_ece_of_a_hand_made_case(self):
        # Two images in bin (0.6, 0.6667]: confidences 0.62, 0.65, one correct -> |0.5 - 0.635| * 2/4;
        # two in the top bin: 0.99, 0.97, both correct -> |1 - 0.98| * 2/4.
        p = np.array([[.62, .38], [.65, .35], [.99, .01], [.97, .03]])
        truth = np.array([0, 1, 0, 0])
        ece, _ = ev.expected_calibration_error(p, truth)
        self.assertAlmostEqual(ece, 0.5 * 0.135 + 0.5 * 0.02)


class AgainstIndependentImplementation(unittest.TestCase):
    def test_random_cases(self):
        rng = np.random.default_rng(7)
        for case in range(20):
            n = int(rng.integers(20, 120))
            positive = rng.random(n) < rng.uniform(0.1, 0.6)
            if positive.all() or not positive.any():
                continue
            # Coarse scores make ties, which every metric must handle.
            scores = np.round(rng.random(n) + positive * rng.uniform(0, 1), 1 if case % 2 else 3)
            self.assertAlmostEqual(ev.auc(positive, scores), reference_auc(positive, scores), places=10)
            self.assertAlmostEqual(ev.average_precision(positive, scores), reference_ap(positive, scores), places=10)
            self.assertAlmostEqual(ev.auc_above_sensitivity(positive, scores), reference_partial_auc(positive, scores),
                                   places=4)


class Report(unittest.TestCase):
    def test_evaluate_report_writes_json_markdown_and_plots(self):
        rng = np.random.default_rng(3)
        rows = []
        for i in range(40):
            truth = LABELS[i % 8]
            p = rng.dirichlet(np.ones(8))
            p[i % 8] += 1.0 if i % 3 else 0.0
            p /= p.sum()
            rows.append({"image": f"IMG_{i}", "truth": truth, "probabilities": p.tolist(),
                         "assessment": "not_assessable" if i == 5 else "assessable"})
        document = {"labels": LABELS, "images": rows, "model": {"name": "m", "version": "1"},
                    "triage": {"rules": [{"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"],
                                          "threshold": 0.3}]}}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "p.json").write_text(json.dumps(document))
            subprocess.run([sys.executable, "-m", "dermcds_export", "evaluate-report",
                            "--predictions", str(tmp / "p.json"), "--json", str(tmp / "e.json"),
                            "--report", str(tmp / "report")], check=True,
                           capture_output=True)
            result = json.loads((tmp / "e.json").read_text())
            truth = np.array([LABELS.index(r["truth"]) for r in rows])
            probs = np.array([r["probabilities"] for r in rows])
            expected = np.mean([np.mean(probs[truth == c].argmax(1) == c) for c in range(8)])
            self.assertAlmostEqual(result["balanced_accuracy"], expected)
            self.assertEqual(result["not_assessable"], 1)
            for name in ("evaluation.md", "evaluation.json", "roc.png", "reliability.png", "confusion_matrix.png"):
                self.assertTrue((tmp / "report" / name).stat().st_size > 0, name)


if __name__ == "__main__":
    unittest.main()
