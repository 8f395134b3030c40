"""Demo weights: peaked outputs that depend on the image, caching, determinism.

The production demo checkpoints are the cached ones (trained on first use, which `make models`
does before the tests run). Determinism and caching are checked on a tiny recipe in a temporary
cache directory, so these tests never depend on, or disturb, the shared cache.
"""

import dataclasses
import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import torch
import torchvision

from dermcds_export import demo_training, lesions
from dermcds_export.reference_transform import make_transform

FRESH_SEED = 777  # neither the training, fitting nor evaluation seed of any recipe


def fresh_lesions(count, size, shorter_side):
    transform = make_transform(size, shorter_side)
    images, labels = [], []
    for index, label in enumerate(lesions.dataset_labels(FRESH_SEED, count)):
        image, _ = lesions.render_lesion(lesions.sample_rng(FRESH_SEED, index), label)
        images.append(transform(image))
        labels.append(lesions.label_index(label))
    return torch.stack(images), torch.tensor(labels)


def logits_of(builder, checkpoint, images):
    model = builder(weights=None, num_classes=8)
    model.load_state_dict(torch.load(checkpoint))
    model.eval()
    with torch.no_grad():
        return model(images).double()


class DemoModelTest(unittest.TestCase):
    def assert_informative(self, logits, labels, min_accuracy, min_top1):
        off_diagonal = ~torch.eye(len(logits), dtype=torch.bool)
        # Logits, not probabilities: two confident answers for the same class both round to 1.0.
        logit_gap = (logits[:, None, :] - logits[None, :, :]).abs().max(-1).values[off_diagonal]
        self.assertGreater(float(logit_gap.min()), 1e-2, "two images got the same output")
        probs = torch.softmax(logits, 1)
        prob_gap = (probs[:, None, :] - probs[None, :, :]).abs().max(-1).values[off_diagonal]
        self.assertGreater(float(prob_gap.mean()), 0.2, "probabilities hardly change between images")
        top1 = float(probs.max(1).values.mean())
        accuracy = float((probs.argmax(1) == labels).double().mean())
        self.assertGreater(top1, min_top1, f"mean top-1 probability {top1:.2f}: outputs are not peaked")
        self.assertGreater(accuracy, min_accuracy, f"accuracy {accuracy:.2f} on fresh lesions (chance 0.125)")
        self.assertGreaterEqual(len(set(probs.argmax(1).tolist())), 4)

    def test_mobilenet_v3_large_demo_is_peaked_and_input_dependent(self):
        checkpoint = demo_training.ensure_checkpoint("mobilenet_v3_large")
        images, labels = fresh_lesions(24, 224, 256)
        logits = logits_of(torchvision.models.mobilenet_v3_large, checkpoint, images)
        self.assert_informative(logits, labels, min_accuracy=0.5, min_top1=0.6)

    def test_efficientnet_b4_demo_is_peaked_and_input_dependent(self):
        checkpoint = demo_training.ensure_checkpoint("efficientnet_b4")
        images, labels = fresh_lesions(12, 380, 384)
        logits = logits_of(torchvision.models.efficientnet_b4, checkpoint, images)
        self.assert_informative(logits, labels, min_accuracy=0.5, min_top1=0.5)

    def test_report_records_held_out_metrics_and_timings(self):
        checkpoint = demo_training.ensure_checkpoint("mobilenet_v3_large")
        report = json.loads(demo_training.report_path(checkpoint).read_text())
        self.assertEqual(report["checkpoint_sha256"], demo_training.sha256_file(checkpoint))
        self.assertEqual(report["cache_key"][:16], checkpoint.stem.rsplit("-", 1)[1])
        for key in ("accuracy", "mean_top1_probability", "probability_std_across_images"):
            self.assertIn(key, report["held_out"])
        self.assertIn("wall_total", report["timings_s"])

    def test_unknown_architecture_has_no_recipe(self):
        with self.assertRaisesRegex(ValueError, "no demo training recipe for 'resnet18'"):
            demo_training.ensure_checkpoint("resnet18")
        with self.assertRaisesRegex(ValueError, "unknown architecture 'vgg'"):
            demo_training.ensure_checkpoint("vgg")


TINY = demo_training.DemoRecipe("mobilenet_v3_small", train_images=16, train_size=64, epochs=1, batch_size=8,
                                recal_images=4, head_images=8, eval_images=4)


class CachingAndDeterminismTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        patcher = mock.patch.dict(os.environ, {"DERMCDS_CACHE_DIR": self.tmp.name})
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self.tmp.cleanup)

    def test_training_twice_gives_identical_weights(self):
        first, _ = demo_training.train(TINY)
        second, _ = demo_training.train(TINY)
        self.assertEqual(first.keys(), second.keys())
        for key in first:
            self.assertTrue(torch.equal(first[key], second[key]), key)
        other, _ = demo_training.train(dataclasses.replace(TINY, seed=TINY.seed + 1))
        self.assertFalse(torch.equal(first["classifier.3.weight"], other["classifier.3.weight"]))

    def test_second_call_returns_the_cached_file_without_training(self):
        path = demo_training.ensure_checkpoint(TINY.arch, TINY)
        self.assertTrue(str(path).startswith(self.tmp.name))
        self.assertEqual(path.parent, Path(self.tmp.name) / "demo-checkpoints")
        mtime = path.stat().st_mtime_ns
        with mock.patch.object(demo_training, "train", side_effect=AssertionError("retrained")):
            self.assertEqual(demo_training.ensure_checkpoint(TINY.arch, TINY), path)
        self.assertEqual(path.stat().st_mtime_ns, mtime)
        self.assertFalse(list(path.parent.glob("*.tmp")))

    def test_cache_key_follows_recipe_and_library_versions(self):
        key = demo_training.cache_key(TINY)
        self.assertEqual(key, demo_training.cache_key(dataclasses.replace(TINY)))
        self.assertNotEqual(key, demo_training.cache_key(dataclasses.replace(TINY, epochs=2)))
        with mock.patch.object(demo_training, "library_versions", return_value={"torch": "9.9"}):
            self.assertNotEqual(key, demo_training.cache_key(TINY))


if __name__ == "__main__":
    unittest.main()
