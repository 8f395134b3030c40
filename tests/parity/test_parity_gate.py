"""The parity gate on the demo-trained mobile model (`make models`), black-box through the CLI.

The package in DERMCDS_TEST_REPOSITORY must pass; copies of it whose weights were changed after
export (one initializer of the ONNX model, or one weight buffer of a TFLite artifact, with the
manifest's sha256 updated so that the package still verifies) must fail it. The repository
itself is never modified: runs use --no-record, and perturbations happen in temporary copies.

Environment (set by CTest): DERMCDS_BIN, DERMCDS_TEST_REPOSITORY, DERMCDS_VALIDATION (the
validation image set).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import onnx
from onnx import numpy_helper

BIN = os.environ["DERMCDS_BIN"]
REPOSITORY = os.environ["DERMCDS_TEST_REPOSITORY"]
VALIDATION = os.environ["DERMCDS_VALIDATION"]
MODEL = "derm-mnv3-large"
EXIT_CHECK_FAILED = 1


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=900)


def active_package():
    model_dir = os.path.join(REPOSITORY, MODEL)
    with open(os.path.join(model_dir, "ACTIVE")) as f:
        return os.path.join(model_dir, f.read().strip())


def classifier_weight(model):
    """The last Gemm's weight initializer: the logits layer."""
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"][-1]
    return next(i for i in model.graph.initializer if i.name == gemm.input[1])


def perturb(weight):
    """A change a broken export or a bad copy could make: the MEL row's weights grow by 30%."""
    changed = weight.copy()
    changed[0] *= 1.3
    return changed


class ParityGate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.package = active_package()
        cls.manifest = read_json(os.path.join(cls.package, "manifest.json"))

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="parity-gate-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def copy_package(self):
        """The package under the same name and version in a temporary repository."""
        target = os.path.join(self.tmp, "repository", MODEL, os.path.basename(self.package))
        shutil.copytree(self.package, target)
        return target

    def rewrite_artifact(self, package, file, data):
        path = os.path.join(package, file)
        with open(path, "wb") as f:
            f.write(data)
        manifest_path = os.path.join(package, "manifest.json")
        manifest = read_json(manifest_path)
        for artifact in manifest["artifacts"]:
            if artifact["file"] == file:
                artifact["sha256"], artifact["bytes"] = sha256(path), len(data)
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=2)
        verify = run("models", "verify", package)
        self.assertEqual(verify.returncode, 0, "the perturbed package must still verify:\n" + verify.stdout)

    def parity(self, package, *extra):
        result = run("parity", package, "--images", VALIDATION, "--no-record", "--json", *extra)
        self.assertIn(result.returncode, (0, EXIT_CHECK_FAILED), result.stderr)
        return result.returncode, json.loads(result.stdout)

    def test_the_mobile_model_passes_on_every_runtime_and_precision(self):
        manifest_before = sha256(os.path.join(self.package, "manifest.json"))
        report_dir = os.path.join(self.tmp, "report")
        status, report = self.parity(self.package, "--report", report_dir)
        self.assertEqual(status, 0, json.dumps([p["violations"] for p in report["pairs"]]))
        self.assertTrue(report["passed"])
        pairs = {(p["reference"], p["candidate"]): p for p in report["pairs"]}
        self.assertIn(("pytorch/fp32/cpu", "onnxruntime/fp32/cpu"), pairs)
        for precision in ("fp32", "fp16", "int8"):
            for provider in ("xnnpack", "builtin"):
                self.assertIn(("onnxruntime/fp32/cpu", f"tflite/{precision}/{provider}"), pairs)
        images = report["images"]["count"]
        self.assertGreaterEqual(images, 40)
        for pair in report["pairs"]:
            # The bounds are checked on the lesions; the set's real photographs are reported apart
            # (docs/parity.md), and together they are every image of the set.
            photographs = pair["real_photographs"]["images"] if pair["real_photographs"] else 0
            self.assertGreater(pair["images"], 0, pair["candidate"])
            self.assertEqual(pair["images"] + photographs, images, pair["candidate"])
            self.assertTrue(pair["passed"], pair)
            self.assertEqual(len(pair["per_class"]), 8)
        # Agreement must mean something: the model's answers differ between images.
        self.assertGreater(report["reference_spread"], 0.3)
        # The run reproduces the evidence the build recorded in the manifest.
        recorded = {(p["reference"], p["candidate"]): p for p in self.manifest["parity"]["pairs"]}
        self.assertEqual(recorded.keys(), pairs.keys())
        if self.manifest["parity"]["images"]["sha256"] == report["images"]["sha256"]:
            for key, pair in pairs.items():
                self.assertAlmostEqual(pair["max_abs_diff"], recorded[key]["max_abs_diff"], delta=1e-6, msg=key)
        # Report files: JSON with every image, Markdown, PNG.
        full = read_json(os.path.join(report_dir, "parity.json"))
        self.assertEqual(len(full["per_image"]), images)
        with open(os.path.join(report_dir, "parity.md")) as f:
            self.assertIn("| pytorch/fp32/cpu | onnxruntime/fp32/cpu |", f.read())
        with open(os.path.join(report_dir, "parity.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertEqual(sha256(os.path.join(self.package, "manifest.json")), manifest_before, "--no-record wrote")

    def test_onnx_weights_changed_after_export_fail_the_gate(self):
        subjects = ("--only", "pytorch,tflite/fp32/xnnpack")
        status, _ = self.parity(self.package, *subjects)
        self.assertEqual(status, 0, "the unchanged package must pass these pairs")

        package = self.copy_package()
        model = onnx.load(os.path.join(package, "model.onnx"))
        initializer = classifier_weight(model)
        initializer.CopyFrom(numpy_helper.from_array(perturb(numpy_helper.to_array(initializer)), initializer.name))
        self.rewrite_artifact(package, "model.onnx", model.SerializeToString())

        status, report = self.parity(package, *subjects)
        self.assertEqual(status, EXIT_CHECK_FAILED)
        self.assertFalse(report["passed"])
        pairs = {p["candidate"]: p for p in report["pairs"]}
        # PyTorch (the source) and the TFLite artifact (converted before the change) both disagree
        # with the altered ONNX model.
        ground_truth = pairs["onnxruntime/fp32/cpu"]
        self.assertFalse(ground_truth["passed"])
        self.assertTrue(any(v.startswith("max |dp|") for v in ground_truth["violations"]), ground_truth["violations"])
        self.assertGreater(ground_truth["per_class"][0]["max_abs_diff"], 0.01)  # MEL moved most
        self.assertFalse(pairs["tflite/fp32/xnnpack"]["passed"])

    def test_tflite_weights_changed_after_conversion_fail_the_gate(self):
        subjects = ("--only", "tflite/fp32", "--no-torch")
        status, _ = self.parity(self.package, *subjects)
        self.assertEqual(status, 0, "the unchanged package must pass these pairs")

        package = self.copy_package()
        weight = numpy_helper.to_array(classifier_weight(onnx.load(os.path.join(package, "model.onnx"))))
        path = os.path.join(package, "model_fp32.tflite")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        # The fully-connected weights are stored as the ONNX Gemm's [classes, features] float32
        # block; find it and change it in place.
        original = weight.astype("<f4").tobytes()
        offset = data.find(original)
        self.assertGreaterEqual(offset, 0, "the classifier weights are not stored verbatim in model_fp32.tflite")
        self.assertEqual(data.find(original, offset + 1), -1)
        data[offset:offset + len(original)] = perturb(weight).astype("<f4").tobytes()
        self.rewrite_artifact(package, "model_fp32.tflite", bytes(data))

        status, report = self.parity(package, *subjects)
        self.assertEqual(status, EXIT_CHECK_FAILED)
        pairs = {p["candidate"]: p for p in report["pairs"]}
        self.assertEqual(set(pairs), {"tflite/fp32/xnnpack", "tflite/fp32/builtin"})
        for pair in pairs.values():
            self.assertFalse(pair["passed"])
            self.assertTrue(any(v.startswith("max |dp|") for v in pair["violations"]), pair["violations"])


if __name__ == "__main__":
    unittest.main()
