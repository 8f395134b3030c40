"""Black-box tests of `dermcds convert` (and `classify --runtime tflite` on what it writes): the
real binary, real files, exit statuses (docs/cli.md), no partial files.

Run by CTest with DERMCDS_BIN (the binary), DERMCDS_OPS (make_op_models.py's output),
DERMCDS_CLASSIFIERS (exported networks), DERMCDS_LESIONS (calibration images).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ["DERMCDS_BIN"]
OPS = os.environ["DERMCDS_OPS"]
CLASSIFIERS = os.environ["DERMCDS_CLASSIFIERS"]
LESIONS = os.environ["DERMCDS_LESIONS"]

EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PACKAGE, EXIT_UNSUPPORTED_MODEL = 2, 3, 5, 6

LABELS = [("MEL", "Melanoma"), ("NV", "Melanocytic nevus"), ("BCC", "Basal cell carcinoma"),
          ("AK", "Actinic keratosis"), ("BKL", "Benign keratosis"), ("DF", "Dermatofibroma"),
          ("VASC", "Vascular lesion"), ("SCC", "Squamous cell carcinoma")]


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_package(directory, onnx):
    os.makedirs(directory)
    shutil.copy(onnx, os.path.join(directory, "model.onnx"))
    model = os.path.join(directory, "model.onnx")
    manifest = {
        "format": "dermcds-model-package", "format_version": 1, "name": os.path.basename(os.path.dirname(directory)),
        "version": os.path.basename(directory), "architecture": "mobilenet_v3_small",
        "input": {"name": "image", "layout": "NCHW", "color": "RGB", "size": 224,
                  "resize": {"policy": "shorter_side_then_center_crop", "shorter_side": 256,
                             "interpolation": "bilinear"},
                  "scale": 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "output": {"name": "logits", "kind": "logits"},
        "labels": [{"code": c, "name": n} for c, n in LABELS],
        "triage": {"rules": [{"tier": "urgent_referral", "classes": ["MEL", "BCC", "SCC"], "threshold": 0.3}],
                   "default_tier": "routine"},
        "artifacts": [{"runtime": "onnxruntime", "precision": "fp32", "file": "model.onnx", "sha256": sha256(model),
                       "bytes": os.path.getsize(model), "layout": "NCHW"}],
    }
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


class ConvertCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dermcds-convert-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def out(self, name="model.tflite"):
        return os.path.join(self.dir, name)

    def test_help(self):
        r = run("convert", "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--precision", "--calibration", "--package", "--int8-io"):
            self.assertIn(flag, r.stdout)

    def test_fp32_and_fp16_files(self):
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "-o", self.out(), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["bytes"], os.path.getsize(self.out()))
        self.assertEqual(report["sha256"], sha256(self.out()))
        self.assertEqual(report["report"]["input"]["shape"], [1, 32, 32, 3])
        self.assertIn("CONV_2D", report["report"]["operator_counts"])
        with open(self.out(), "rb") as f:
            self.assertEqual(f.read(8)[4:], b"TFL3")
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "-o", self.out("half.tflite"),
                "--precision", "fp16")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(self.out("half.tflite")))

    def test_int8_file_with_calibration_images(self):
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "-o", self.out(), "--precision", "int8",
                "--calibration", LESIONS, "--calibration-limit", "8", "--input-size", "32", "--resize", "36", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)["report"]
        self.assertEqual(report["calibration"], {"samples": 8, "method": "mse"})
        self.assertIn("calibrating", r.stderr)  # progress goes to stderr

    def test_fp16_with_calibration_images_reports_what_it_measured(self):
        model = os.path.join(CLASSIFIERS, "mobilenet_v3_small.onnx")
        r = run("convert", model, "-o", self.out(), "--precision", "fp16", "--calibration", LESIONS,
                "--calibration-limit", "4", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        fp16 = json.loads(r.stdout)["report"]["fp16"]
        self.assertEqual(fp16["samples"], 4)
        # The model written is never worse than every weight rounded, and says whether it met 1e-3.
        self.assertLessEqual(fp16["chosen_max_abs_diff"], fp16["all_rounded_max_abs_diff"])
        self.assertEqual(fp16["goal_met_on_calibration"], fp16["chosen_max_abs_diff"] <= 1e-3)
        self.assertIn("fp16: ", r.stderr)  # one progress line per measured step
        # fp32 has nothing to calibrate: a usage error, and nothing written.
        r = run("convert", model, "-o", self.out("fp32.tflite"), "--calibration", LESIONS)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("--calibration applies to --precision int8 and fp16 only", r.stderr)
        self.assertFalse(os.path.exists(self.out("fp32.tflite")))

    def test_unsupported_operator_names_the_node_and_writes_nothing(self):
        r = run("convert", os.path.join(OPS, "error_unsupported_op.onnx"), "-o", self.out())
        self.assertEqual(r.returncode, EXIT_UNSUPPORTED_MODEL)
        self.assertIn("node 'the_erf_node' (Erf)", r.stderr)
        self.assertEqual(os.listdir(self.dir), [])

    def test_model_tflite_refuses_is_an_error_naming_the_operator_and_writes_nothing(self):
        r = run("convert", os.path.join(OPS, "error_tflite_refuses.onnx"), "-o", self.out())
        self.assertEqual(r.returncode, EXIT_UNSUPPORTED_MODEL, r.stderr)
        self.assertIn("TRANSPOSE", r.stderr)
        self.assertIn("cannot run the model", r.stderr)
        self.assertEqual(os.listdir(self.dir), [])

    def test_broken_inputs(self):
        r = run("convert", os.path.join(OPS, "error_truncated.onnx"), "-o", self.out())
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("not a valid ONNX model", r.stderr)
        r = run("convert", os.path.join(self.dir, "missing.onnx"), "-o", self.out())
        self.assertEqual(r.returncode, EXIT_NOT_FOUND)
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "-o", self.out(), "--precision", "int8")
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("--calibration", r.stderr)
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "-o", self.out(), "--precision", "int8",
                "--calibration", self.dir)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("no JPEG or PNG images", r.stderr)
        r = run("convert", os.path.join(OPS, "small_network.onnx"), "--precision", "int4")
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertEqual([f for f in os.listdir(self.dir)], [])

    def test_package_conversion_then_classification(self):
        package = os.path.join(self.dir, "derm-cli", "1")
        make_package(package, os.path.join(CLASSIFIERS, "mobilenet_v3_small.onnx"))
        for precision in ("fp16", "int8"):
            args = ["convert", "--package", package, "--precision", precision]
            if precision == "int8":
                # The search is not this test's subject (Int8Quality.* is): every operator int8.
                args += ["--calibration", LESIONS, "--calibration-limit", "8", "--full-integer"]
            r = run(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(package, "manifest.json")) as f:
            artifacts = {(a["runtime"], a["precision"]): a for a in json.load(f)["artifacts"]}
        int8 = artifacts[("tflite", "int8")]
        self.assertEqual(int8["source"]["sha256"], sha256(os.path.join(package, "model.onnx")))
        self.assertEqual(int8["calibration"]["images"], 8)
        self.assertEqual(int8["sha256"], sha256(os.path.join(package, "model_int8.tflite")))
        self.assertEqual(run("models", "verify", package).returncode, 0)

        image = sorted(os.path.join(LESIONS, f) for f in os.listdir(LESIONS) if f.endswith(".png"))[0]
        r = run("classify", "--model", package, "--runtime", "tflite", "--precision", "fp16", "--json", image)
        self.assertEqual(r.returncode, 0, r.stderr)
        result = json.loads(r.stdout)[0]
        self.assertEqual(result["runtime"], "tflite")
        self.assertEqual(result["runtime_version"], "2.9.0")
        self.assertEqual(result["execution_provider"], "xnnpack")
        self.assertEqual(result["precision"], "fp16")
        self.assertAlmostEqual(sum(p["probability"] for p in result["probabilities"]), 1.0, places=5)

    def test_package_whose_model_does_not_fit_its_manifest(self):
        package = os.path.join(self.dir, "derm-wrong", "1")
        make_package(package, os.path.join(OPS, "small_network.onnx"))  # 32x32 input, other tensor names
        r = run("convert", "--package", package, "--precision", "fp32")
        self.assertEqual(r.returncode, EXIT_PACKAGE, r.stderr)
        self.assertIn("does not fit the manifest", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(package, "model_fp32.tflite")))


if __name__ == "__main__":
    unittest.main()
