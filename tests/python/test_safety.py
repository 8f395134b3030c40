"""The calibration arithmetic of the safety fit (python/dermcds_export/safety.py, docs/safety.md),
against hand-computed values and against data whose true temperature is known."""

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from dermcds_export import lesions, safety


def sample_labels(logits, temperature, rng):
    """One label per row, drawn from softmax(logits / temperature): the temperature that makes
    these logits calibrated is `temperature` by construction."""
    z = logits / temperature
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    u = rng.random((len(p), 1))
    return (p.cumsum(1) < u).sum(1).clip(0, p.shape[1] - 1)


class ExpectedCalibrationError(unittest.TestCase):
    def test_hand_computed(self):
        # Two of the 15 bins are used: (13/15, 14/15] holds the two rows at confidence 0.9, one of
        # them correct: |0.5 - 0.9| = 0.4 with weight 2/4; (7/15, 8/15] holds the two at 0.5, both
        # correct (argmax picks class 0 on a tie): |1.0 - 0.5| = 0.5 with weight 2/4.
        probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5]])
        labels = np.array([0, 0, 0, 0])
        self.assertAlmostEqual(safety.expected_calibration_error(probabilities, labels), 0.5 * 0.4 + 0.5 * 0.5)

    def test_perfectly_calibrated_bins_have_no_error(self):
        # Ten rows at confidence 0.7, seven correct.
        probabilities = np.tile([0.7, 0.3], (10, 1))
        labels = np.array([0] * 7 + [1] * 3)
        self.assertAlmostEqual(safety.expected_calibration_error(probabilities, labels), 0.0)


class FitTemperature(unittest.TestCase):
    def test_recovers_a_known_temperature(self):
        rng = np.random.default_rng(3)
        for true_t in (0.7, 2.0, 3.5):
            logits = rng.normal(0.0, 3.0, size=(20000, 8))
            labels = sample_labels(logits, true_t, rng)
            fitted = safety.fit_temperature(logits, labels)
            self.assertLess(abs(np.log(fitted / true_t)), np.log(1.1), f"fitted {fitted} for a true T of {true_t}")

    def test_halves_the_error_of_an_overconfident_model_on_other_data(self):
        # Fitted on one sample, measured on another drawn the same way, as the export does with
        # its TUNE and TEST lesions.
        rng = np.random.default_rng(5)
        tune_logits = rng.normal(0.0, 4.0, size=(5000, 8))
        test_logits = rng.normal(0.0, 4.0, size=(5000, 8))
        tune_labels, test_labels = sample_labels(tune_logits, 2.5, rng), sample_labels(test_logits, 2.5, rng)
        t = safety.fit_temperature(tune_logits, tune_labels)
        before = safety.expected_calibration_error(safety._softmax(test_logits), test_labels)
        after = safety.expected_calibration_error(safety._softmax(test_logits / t), test_labels)
        self.assertGreater(before, 0.1)
        self.assertLessEqual(after, before / 2)

    def test_a_calibrated_model_keeps_a_temperature_near_one(self):
        rng = np.random.default_rng(7)
        logits = rng.normal(0.0, 2.0, size=(20000, 8))
        self.assertLess(abs(np.log(safety.fit_temperature(logits, sample_labels(logits, 1.0, rng)))), np.log(1.1))


def torch_module(name: str):
    import torch
    return getattr(torch.nn, name)()


def assert_graph_matches_numpy(test: unittest.TestCase, method: str, seed: int, activation) -> None:
    """The exported graph's score (GuardedNetwork) equals the float64 numpy score of the fit on
    held-out inputs, and the logits are the network's over the temperature."""
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    # A network whose penultimate features are 64-dimensional: its last Linear is the head.
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 64), activation,
                                  torch.nn.Linear(64, 8)).eval()
    images = torch.from_numpy(rng.normal(size=(320, 3, 4, 4)).astype(np.float32))
    with torch.no_grad():
        features = network[:3](images).double().numpy()
    labels = rng.integers(0, 8, size=len(features))
    fit = features[:256]
    params = dict(safety.mahalanobis_params(fit, labels[:256], 8), **safety.residual_params(fit),
                  **safety.residual_params(fit, "normalized_residual"), method=np.array(method),
                  temperature=np.array(2.0))
    with torch.no_grad():
        logits, score = safety.GuardedNetwork(network, params).eval()(images[256:])
        raw = network(images[256:])
    expected = safety.residual_scores(features[256:], params, method)
    np.testing.assert_allclose(score[:, 0].numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), raw.numpy() / 2.0, rtol=1e-5, atol=1e-6)
    test.assertGreater(float(score.std()), 0.1)  # the held-out inputs do not all score alike


class FeatureResidual(unittest.TestCase):
    """The feature_residual guard: the squared norm outside the fit features' principal subspace,
    over its median on the fit features."""

    @staticmethod
    def fit_features(rng):
        # 6400 features in 64 dimensions: the first 32 spread widely (the subspace the PCA must
        # find), the last 32 small noise (what the residual of a lesion is made of). The fitted
        # subspace also absorbs about 32/N of the noise of the very features it was fitted on,
        # so N is large enough for that to be 0.5%.
        wide = rng.normal(0.0, 10.0, size=(6400, 32)) + 3.0
        noise = rng.normal(0.0, 0.1, size=(6400, 32))
        return np.hstack([wide, noise])

    def test_a_point_off_the_subspace_scores_its_squared_distance_over_the_fit_median(self):
        rng = np.random.default_rng(11)
        features = self.fit_features(rng)
        params = safety.residual_params(features)
        # By hand: the subspace is the first 32 axes, so a fit feature's residual is the sum of
        # squares of its last 32 coordinates (about its own centre, which is near zero there).
        noise = features[:, 32:] - features[:, 32:].mean(0)
        median = np.median((noise ** 2).sum(1))
        self.assertAlmostEqual(float(params["residual_gain"]) ** -2 / median, 1.0, delta=0.02)
        centre = features.mean(0)
        inside, outside = centre.copy(), centre.copy()
        inside[5] += 40.0     # far along a direction lesions vary in: no residual
        outside[40] += 5.0    # a direction no lesion used
        scores = safety.residual_scores(np.stack([centre, inside, outside]), params)
        self.assertLess(scores[0], 0.01)
        self.assertLess(scores[1], 0.05)
        self.assertAlmostEqual(scores[2] / (25.0 / median), 1.0, delta=0.02)

    def test_the_graph_computes_what_the_fit_measured(self):
        assert_graph_matches_numpy(self, "feature_residual", seed=13, activation=torch_module("Tanh"))


class NormalizedResidual(unittest.TestCase):
    """normalized_residual: the same residual, of the feature vectors scaled to unit length."""

    def test_only_the_direction_counts(self):
        rng = np.random.default_rng(17)
        # Fit directions in 64 dimensions: spread over the first 32 axes (the subspace the PCA must
        # find), little along the other 32; their lengths spread 10x.
        direction = np.hstack([rng.normal(0.0, 1.0, size=(8000, 32)), rng.normal(0.0, 0.01, size=(8000, 32))])
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        features = direction * rng.uniform(1.0, 10.0, size=(8000, 1))
        params = safety.residual_params(features, "normalized_residual")
        base = direction[0]
        off = base.copy()
        off[40] += 0.3             # a direction no lesion used
        off /= np.linalg.norm(off)
        # Lengths inside the fit's range: there UNIT_EPSILON moves the norm by under 0.2%.
        scores = safety.residual_scores(np.stack([2.0 * base, 9.0 * base, 2.0 * off, 9.0 * off]), params,
                                        "normalized_residual")
        self.assertAlmostEqual(scores[0] / scores[1], 1.0, delta=0.01)  # the length does not count
        self.assertAlmostEqual(scores[2] / scores[3], 1.0, delta=0.01)
        # By hand: the subspace is the first 32 axes, so the score is the unit vector's squared
        # component along the last 32 (about the fit centre) over the same on the fit features.
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        centre = unit.mean(0)
        median = np.median((((unit - centre)[:, 32:]) ** 2).sum(1))
        self.assertAlmostEqual(float(params["unit_residual_gain"]) ** -2 / median, 1.0, delta=0.05)
        expected = (((off - centre)[32:]) ** 2).sum() / median
        self.assertAlmostEqual(scores[2] / expected, 1.0, delta=0.05)
        self.assertGreater(scores[2], 50 * np.median(safety.residual_scores(features, params, "normalized_residual")))

    def test_the_graph_computes_what_the_fit_measured(self):
        # ReLU features: non-negative, so their length varies with the input as a network's do.
        assert_graph_matches_numpy(self, "normalized_residual", seed=19, activation=torch_module("ReLU"))


class BlockMahalanobis(unittest.TestCase):
    """block_mahalanobis: the mean over the feature blocks of each block's whitened distance of
    its spatially averaged output to the fit lesions'."""

    def test_a_displaced_point_scores_its_squared_distance_over_the_fit_median(self):
        rng = np.random.default_rng(23)
        # One block, 4 channels of equal spread: the shrinkage (5% of the mean variance) scales
        # every direction alike, so by hand a point a along one axis from the mean scores
        # a^2 / sigma^2 over the fit median of the chi-square sum (about 3.357 for 4 channels).
        sigma, centre = 0.5, np.array([1.0, 2.0, 3.0, 4.0])
        fit = centre + rng.normal(0.0, sigma, size=(40000, 4))
        params = safety.block_params([fit])
        median = np.median(((fit - fit.mean(0)) ** 2).sum(1) / sigma ** 2)
        self.assertAlmostEqual(median / 3.357, 1.0, delta=0.02)
        point = centre.copy()
        point[2] += 3 * sigma
        scores = safety.block_scores([np.stack([centre, point])], params)
        self.assertLess(scores[0], 0.01)
        self.assertAlmostEqual(scores[1] / (9.0 / median), 1.0, delta=0.02)
        # Two blocks: each counts for half, so a lesion-like point scores about 1 at the median.
        two = safety.block_params([fit, fit[:, :2] * 10.0])
        fit_scores = safety.block_scores([fit, fit[:, :2] * 10.0], two)
        self.assertAlmostEqual(float(np.median(fit_scores)), 1.0, delta=0.1)

    def test_the_graph_computes_what_the_fit_measured(self):
        """GuardedNetwork's score, with the block means taken by hooks inside the traced graph,
        equals the numpy score of the pooled outputs the fit captures (safety._run)."""
        import torch

        torch.manual_seed(29)
        rng = np.random.default_rng(29)

        class Small(torch.nn.Module):  # torchvision's layout: features, avgpool, classifier
            def __init__(self):
                super().__init__()
                self.features = torch.nn.Sequential(
                    torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU()),
                    torch.nn.Sequential(torch.nn.Conv2d(6, 10, 3, stride=2, padding=1), torch.nn.Tanh()))
                self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
                self.classifier = torch.nn.Sequential(torch.nn.Linear(10, 8))

            def forward(self, x):
                return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

        network = Small().eval()
        images = torch.from_numpy(rng.normal(size=(96, 3, 8, 8)).astype(np.float32))
        _, _, pooled = safety._run(network, network.classifier[0], images)
        self.assertEqual([p.shape for p in pooled], [(96, 6), (96, 10)])
        # By hand for block 0: its output's mean over height and width.
        with torch.no_grad():
            first = network.features[0](images[:2]).mean(dim=(2, 3)).double().numpy()
        np.testing.assert_allclose(pooled[0][:2], first, rtol=1e-6)
        params = dict(safety.block_params([p[:64] for p in pooled]), method=np.array("block_mahalanobis"),
                      temperature=np.array(1.0))
        with torch.no_grad():
            _, score = safety.GuardedNetwork(network, params).eval()(images[64:])
        expected = safety.block_scores([p[64:] for p in pooled], params)
        np.testing.assert_allclose(score[:, 0].numpy(), expected, rtol=1e-4, atol=1e-5)
        self.assertGreater(float(score.std()), 0.1)
        # The hooks are part of what the ONNX export traces: the traced graph gives the same score.
        guarded = safety.GuardedNetwork(network, params).eval()
        with torch.no_grad():
            traced = torch.jit.trace(guarded, images[:4])
            np.testing.assert_allclose(traced(images[64:])[1][:, 0].numpy(), expected, rtol=1e-4, atol=1e-5)


class CandidateChoice(unittest.TestCase):
    def test_the_highest_auroc_wins_unless_another_is_within_the_tolerance(self):
        def c(method, auroc):
            return {"method": method, "auroc": auroc}
        self.assertEqual(safety.choose_candidate([c("mahalanobis", 0.942), c("feature_residual", 0.983),
                                                  c("energy", 0.216)])["method"], "feature_residual")
        # 0.998 against 0.9983: a few swapped pairs, so the preferred score is kept.
        self.assertEqual(safety.choose_candidate([c("mahalanobis", 0.998), c("feature_residual", 0.9983),
                                                  c("energy", 0.23)])["method"], "mahalanobis")
        self.assertEqual(safety.choose_candidate([c("mahalanobis", 0.5), c("energy", 0.9),
                                                  c("max_logit", 0.895)])["method"], "energy")
        # Within the tolerance, the candidate that refuses more photographs at its own threshold
        # (the B4 checkpoint of 2026-12-08: the plain residual 11 of 14, the normalized 13).
        self.assertEqual(safety.choose_candidate([
            {"method": "feature_residual", "auroc": 0.978, "photographs_flagged": 11 / 14},
            {"method": "normalized_residual", "auroc": 0.986, "photographs_flagged": 13 / 14},
            {"method": "mahalanobis", "auroc": 0.942, "photographs_flagged": 1.0}])["method"], "normalized_residual")
        # Refusing as many, the order: MobileNetV3-Large's Mahalanobis over its residual.
        self.assertEqual(safety.choose_candidate([
            {"method": "feature_residual", "auroc": 0.9983, "photographs_flagged": 1.0},
            {"method": "mahalanobis", "auroc": 0.998, "photographs_flagged": 1.0}])["method"], "mahalanobis")
        # No photographs, no AUROC: the order alone.
        self.assertEqual(safety.choose_candidate([c("energy", None), c("feature_residual", None)])["method"],
                         "feature_residual")


class HeldOutLesions(unittest.TestCase):
    def test_the_cache_gives_back_what_rendering_gives(self):
        with tempfile.TemporaryDirectory() as cache, mock.patch.dict(os.environ, {"DERMCDS_CACHE_DIR": cache}):
            first, labels = safety._held_out_encoded(9001, 4)
            stored = list(Path(cache, "held-out-lesions").iterdir())
            self.assertEqual(len(stored), 1)
            again, labels_again = safety._held_out_encoded(9001, 4)
        self.assertEqual(first, again)
        np.testing.assert_array_equal(labels, labels_again)
        # The same lesions as the generator's own, PNG and JPEG in turn.
        self.assertEqual(list(labels), [lesions.label_index(c) for c in lesions.dataset_labels(9001, 4)])
        self.assertEqual([e[:4] for e in first[:2]], [b"\x89PNG", b"\xff\xd8\xff\xe0"])
        self.assertEqual(len(set(first)), 4)


if __name__ == "__main__":
    unittest.main()
