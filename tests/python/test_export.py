"""Export round trip: ONNX interface and checker, manifest per docs/model-package.md, check files.

The package is exported from the MobileNetV3-Large demo checkpoint (cached; trained on first use).
Expected values are recomputed here from the pieces the exporter should have used: torchvision's
own network with the checkpoint's tensors, the reference transform on freshly drawn lesions, and
sha256/size of the written files.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
import torchvision

import dermcds_export
from dermcds_export import demo_training, export, lesions
from dermcds_export.reference_transform import transform_from_manifest_input

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
SAMPLES = 3


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def input_dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


class PackageExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = Path(cls.tmp.name)
        cls.package, cls.check = root / "derm-mnv3-large" / "3", root / "check"
        cls.checkpoint = demo_training.ensure_checkpoint("mobilenet_v3_large")
        cls.summary = export.export_package(export.PackageExport(
            arch="mobilenet_v3_large", out=cls.package, name="derm-mnv3-large", version="3",
            check_dir=cls.check, check_samples=SAMPLES))
        cls.manifest = json.loads((cls.package / "manifest.json").read_text())
        cls.proto = onnx.load(str(cls.package / "model.onnx"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_package_holds_exactly_the_model_and_the_manifest(self):
        # guard.npz: the safety guard's fitted tensors, so that the PyTorch parity reference rebuilds
        # the exported graph (docs/safety.md).
        self.assertEqual(sorted(p.name for p in self.package.iterdir()), ["guard.npz", "manifest.json", "model.onnx"])
        self.assertEqual(sorted(p.name for p in self.check.iterdir()),
                         ["check.json", "inputs.f32", "torch_logits.f32", "torch_ood_score.f32"])

    def test_onnx_passes_the_full_checker(self):
        onnx.checker.check_model(self.proto, full_check=True)

    def test_onnx_interface_is_image_to_logits_with_dynamic_batch(self):
        graph = self.proto.graph
        initializers = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        self.assertEqual([i.name for i in inputs], ["image"])
        self.assertEqual(input_dims(inputs[0]), ["batch", 3, 224, 224])
        self.assertEqual(inputs[0].type.tensor_type.elem_type, onnx.TensorProto.FLOAT)
        # The second output is the out-of-distribution score (docs/safety.md), one per image.
        self.assertEqual([o.name for o in graph.output], ["logits", "ood_score"])
        self.assertEqual(input_dims(graph.output[0]), ["batch", 8])
        self.assertEqual(input_dims(graph.output[1]), ["batch", 1])
        self.assertEqual([o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")], [17])

    def test_onnx_weights_are_the_checkpoint_weights(self):
        # The head carries the calibration temperature folded in (weight / T, docs/safety.md); every
        # other layer is the checkpoint's own: the hidden layer before it stands for those (batch norm
        # is folded into the convolutions, so their weights differ from the checkpoint's).
        state = torch.load(self.checkpoint)
        temperature = self.temperature()
        self.assertGreater(temperature, 0)
        arrays = [numpy_helper.to_array(i) for i in self.proto.graph.initializer]
        head = state["classifier.3.weight"].numpy()
        folded = (state["classifier.3.weight"] / temperature).numpy()
        heads = [a for a in arrays if a.shape == head.shape]
        self.assertTrue(any(np.allclose(a, folded, rtol=1e-6, atol=0) for a in heads))
        if abs(temperature - 1) > 1e-3:
            self.assertFalse(any(np.allclose(a, head, rtol=1e-6, atol=0) for a in heads), "temperature not folded")
        hidden = state["classifier.0.weight"].numpy()
        self.assertTrue(any(a.shape == hidden.shape and np.array_equal(a, hidden) for a in arrays))

    def temperature(self):
        return float(self.manifest["safety"]["calibration"]["temperature"])

    def test_manifest_matches_the_documented_schema(self):
        m = self.manifest
        self.assertEqual(m["format"], "dermcds-model-package")
        self.assertEqual(m["format_version"], 1)
        self.assertEqual((m["name"], m["version"], m["architecture"]), ("derm-mnv3-large", "3", "mobilenet_v3_large"))
        self.assertEqual(m["input"], {
            "name": "image", "layout": "NCHW", "color": "RGB", "size": 224,
            "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": 256, "interpolation": "bilinear"},
            "scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
        self.assertEqual(m["output"], {"name": "logits", "kind": "logits"})
        self.assertEqual([label["code"] for label in m["labels"]],
                         ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"])
        self.assertEqual(m["labels"][0]["name"], "Melanoma")
        self.assertEqual(m["triage"]["rules"][0],
                         {"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.30})
        self.assertEqual(m["triage"]["rules"][1]["classes"], ["MEL", "BCC", "SCC", "AK"])
        self.assertEqual(m["triage"]["default_tier"], "routine")
        self.assertNotIn("export_check", m["provenance"], "only the C++ side, after running ONNX Runtime, adds it")

    def test_artifact_sha256_and_size_are_those_of_the_file(self):
        (artifact,) = self.manifest["artifacts"]
        path = self.package / "model.onnx"
        self.assertEqual(artifact, {"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                                    "sha256": sha256(path), "bytes": path.stat().st_size, "layout": "NCHW",
                                    "opset": 17})

    def test_provenance(self):
        p = self.manifest["provenance"]
        checkpoint = dict(p["checkpoint"])
        # Where and with which kernels the demo checkpoint was trained: its training report's cpu.
        trained_on = checkpoint.pop("trained_on")
        report = json.loads(demo_training.report_path(self.checkpoint).read_text())
        self.assertEqual(trained_on, report.get("cpu", "not recorded"))
        self.assertEqual(checkpoint,
                         {"source": "demo", "file": self.checkpoint.name, "sha256": sha256(self.checkpoint)})
        self.assertEqual(p["exporter"], {"name": "dermcds_export", "version": dermcds_export.EXPORTER_VERSION})
        self.assertEqual(p["libraries"]["torch"], torch.__version__)
        self.assertEqual(p["libraries"]["torchvision"], torchvision.__version__)
        self.assertEqual(p["libraries"]["onnx"], onnx.__version__)
        self.assertEqual(p["libraries"]["python"], ".".join(map(str, sys.version_info[:3])))
        self.assertRegex(p["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_check_inputs_are_the_reference_transform_of_distinct_lesions(self):
        check = json.loads((self.check / "check.json").read_text())
        self.assertEqual(check["samples"], SAMPLES)
        self.assertEqual(check["input_shape"], [SAMPLES, 3, 224, 224])
        self.assertEqual(check["output_shape"], [SAMPLES, 8])
        self.assertEqual(check["image_classes"], lesions.dataset_labels(export.CHECK_SEED, SAMPLES))
        data = np.fromfile(self.check / "inputs.f32", dtype="<f4")
        self.assertEqual(data.size, SAMPLES * 3 * 224 * 224)
        inputs = data.reshape(SAMPLES, 3, 224, 224)
        transform = transform_from_manifest_input(self.manifest["input"])
        for index, label in enumerate(check["image_classes"]):
            image, _ = lesions.render_lesion(lesions.sample_rng(export.CHECK_SEED, index), label)
            np.testing.assert_array_equal(inputs[index], transform(image).numpy())
        self.assertGreater(np.abs(inputs[0] - inputs[1]).mean(), 0.05)

    def test_torch_logits_are_the_checkpoints_eval_outputs_and_depend_on_the_input(self):
        inputs = torch.from_numpy(np.fromfile(self.check / "inputs.f32", dtype="<f4").reshape(SAMPLES, 3, 224, 224))
        logits = np.fromfile(self.check / "torch_logits.f32", dtype="<f4").reshape(SAMPLES, 8)
        model = torchvision.models.mobilenet_v3_large(weights=None, num_classes=8)
        model.load_state_dict(torch.load(self.checkpoint))
        model.eval()
        with torch.no_grad():
            expected = (model(inputs) / self.temperature()).numpy()
        # Dividing the logits by T here and dividing the head's weights by T in the export round
        # differently in float32: a few units in the last place of logits near 10.
        np.testing.assert_allclose(logits, expected, rtol=2e-6, atol=1e-5)
        probs = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
        spread = (probs.max(0) - probs.min(0)).max()
        self.assertGreater(spread, 0.2, "outputs barely depend on the input")
        self.assertAlmostEqual(self.summary["output_spread"], spread, places=6)


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "dermcds_export", *args], env=self.env,
                              capture_output=True, text=True)

    def test_every_subcommand_has_help(self):
        for command in ("train-demo", "export", "export-onnx", "synth"):
            result = self.run_cli(command, "--help")
            self.assertEqual(result.returncode, 0, command)
            self.assertIn("usage:", result.stdout)

    def test_export_onnx_with_random_weights_depends_on_the_input(self):
        out = self.dir / "resnet18.onnx"
        result = self.run_cli("export-onnx", "--arch", "resnet18", "--out", str(out), "--opset", "15")
        self.assertEqual(result.returncode, 0, result.stderr)
        summary = json.loads(result.stdout)
        self.assertEqual(summary["weights"], "random")
        self.assertGreater(summary["output_spread"], 0.2)
        self.assertEqual(summary["sha256"], sha256(out))
        proto = onnx.load(str(out))
        onnx.checker.check_model(proto, full_check=True)
        self.assertEqual([o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")], [15])
        self.assertEqual(input_dims(proto.graph.input[0]), ["batch", 3, 224, 224])
        self.assertIn("output spread", result.stderr)
        # Same seed, same file: the converter tests' cache relies on it.
        again = self.dir / "again.onnx"
        self.assertEqual(self.run_cli("export-onnx", "--arch", "resnet18", "--out", str(again),
                                      "--opset", "15").returncode, 0)
        self.assertEqual(sha256(again), sha256(out))

    def test_bad_arguments_are_refused_with_a_message(self):
        common = ["--out", str(self.dir / "pkg"), "--check-dir", str(self.dir / "check")]
        cases = [
            (["export", "--arch", "mobilenet_v3_small", "--name", "Bad Name", "--version", "1"] + common,
             2, "package name 'Bad Name'"),
            (["export", "--arch", "mobilenet_v3_small", "--name", "derm-x", "--version", "1.0"] + common,
             2, "package version '1.0'"),
            (["export", "--arch", "vgg16", "--name", "derm-x", "--version", "1"] + common,
             2, "invalid choice: 'vgg16'"),
            (["export-onnx", "--arch", "resnet18", "--out", str(self.dir / "x.onnx"), "--opset", "12"],
             2, "invalid choice: 12"),
            (["export-onnx", "--arch", "resnet18", "--out", str(self.dir / "x.onnx"), "--demo"],
             2, "demo weights exist only for"),
            (["synth", "--out", str(self.dir / "s"), "--count", "0"], 2, "--count must be at least 1"),
            (["synth", "--out", str(self.dir / "s"), "--count", "2", "--shorter-side", "400", "300"], 2,
             "--shorter-side must be MIN MAX with 16 <= MIN <= MAX, not 400 300"),
            (["synth", "--out", str(self.dir / "s"), "--count", "2", "--shorter-side", "8", "300"], 2,
             "--shorter-side must be MIN MAX"),
        ]
        for args, status, message in cases:
            result = self.run_cli(*args)
            self.assertEqual(result.returncode, status, (args, result.stderr))
            self.assertIn(message, result.stderr, args)
            self.assertNotIn("Traceback", result.stderr)
        self.assertFalse((self.dir / "pkg").exists())

    def test_synth_writes_isic_ground_truth(self):
        out = self.dir / "set"
        result = self.run_cli("synth", "--out", str(out), "--count", "10", "--seed", "4", "--format", "mixed")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = (out / "ground_truth.csv").read_text().splitlines()
        self.assertEqual(rows[0], "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK")
        self.assertEqual(len(rows), 11)
        labels = lesions.dataset_labels(4, 10)
        for row, label in zip(rows[1:], labels):
            cells = row.split(",")
            self.assertTrue(re.match(r"^SYN_4_\d{6}$", cells[0]))
            values = [float(v) for v in cells[1:]]
            self.assertEqual(sum(values), 1.0)
            self.assertEqual(values[lesions.LABELS.index(label)], 1.0)
            self.assertEqual(values[-1], 0.0)
        files = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".jpg"))
        self.assertEqual(len(files), 10)
        self.assertEqual({Path(f).suffix for f in files}, {".png", ".jpg"})
        first, _ = lesions.render_lesion(lesions.sample_rng(4, 0), labels[0])
        from PIL import Image
        with Image.open(out / "SYN_4_000000.png") as written:
            self.assertEqual(written.tobytes(), first.tobytes())

    def test_synth_bounds_only_the_canvas_size(self):
        from PIL import Image

        bounded = self.dir / "bounded"
        result = self.run_cli("synth", "--out", str(bounded), "--count", "12", "--seed", "7001",
                              "--shorter-side", "380", "640")
        self.assertEqual(result.returncode, 0, result.stderr)
        records = json.loads((bounded / "synth.json").read_text())["images"]
        self.assertEqual(len(records), 12)
        for record in records:
            with Image.open(bounded / record["file"]) as image:
                self.assertGreaterEqual(min(image.size), 380, record["file"])
                self.assertLessEqual(min(image.size), 640, record["file"])
        # The generator's own bounds, given explicitly, draw the very images it draws unbounded.
        explicit = self.dir / "explicit"
        self.assertEqual(self.run_cli("synth", "--out", str(explicit), "--count", "3", "--seed", "7001",
                                      "--shorter-side", "300", "640").returncode, 0)
        for index, label in enumerate(lesions.dataset_labels(7001, 3)):
            drawn, _ = lesions.render_lesion(lesions.sample_rng(7001, index), label)
            with Image.open(explicit / f"SYN_7001_{index:06d}.png") as written:
                self.assertEqual(written.tobytes(), drawn.tobytes())


if __name__ == "__main__":
    unittest.main()
