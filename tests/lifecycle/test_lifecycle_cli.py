"""`dermcds models build | promote | rollback | history` end to end, black-box.

A temporary repository receives builds of a small network (MobileNetV3-Small, ONNX plus TFLite
fp32) from two checkpoints: checkpoint A (version 1, promoted), checkpoint B (version 2), and A
again under a parity policy no real export can meet (version 3, rejected), and B again with
--force (version 4), and B under a policy only its TFLite artifact breaks (version 5: accepted
without that artifact). Each test then
checks one rule of docs/lifecycle.md on that repository. models/ is never touched.

Environment (set by CTest): DERMCDS_BIN, DERMCDS_CHECKPOINTS (make_checkpoints.py's output),
DERMCDS_IMAGES (a small validation image directory), DERMCDS_CALIBRATION (40 synthetic lesions,
for the ONNX int8 builds of OnnxInt8Build).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ["DERMCDS_BIN"]
CHECKPOINTS = os.environ["DERMCDS_CHECKPOINTS"]
IMAGES = os.environ["DERMCDS_IMAGES"]
CALIBRATION = os.environ["DERMCDS_CALIBRATION"]
NAME = "derm-small"
EXIT_CHECK_FAILED, EXIT_NOT_FOUND, EXIT_PACKAGE = 1, 3, 5


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=900)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Lifecycle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lifecycle-")
        cls.repo = os.path.join(cls.tmp, "repository")
        cls.strict = os.path.join(cls.tmp, "strict-policy.json")
        with open(cls.strict, "w") as f:
            json.dump({"parity": {"bounds": {"pytorch": {"max_abs_diff": 1e-12}}}}, f)
        # A policy only the TFLite artifact breaks: the version keeps its ONNX model and serves.
        cls.strict_tflite = os.path.join(cls.tmp, "strict-tflite-policy.json")
        with open(cls.strict_tflite, "w") as f:
            json.dump({"parity": {"bounds": {"fp32": {"max_abs_diff": 1e-12}}}}, f)
        cls.builds = {
            "a": cls.build("a", "--promote"),
            "b": cls.build("b"),
            "rejected": cls.build("a", "--policy", cls.strict),
            "forced": cls.build("b", "--force"),
            "dropped": cls.build("b", "--policy", cls.strict_tflite),
        }

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    @classmethod
    def build(cls, checkpoint, *extra):
        return run("models", "build", "--arch", "mobilenet_v3_small", "--name", NAME, "--repository", cls.repo,
                   "--checkpoint", os.path.join(CHECKPOINTS, f"small-{checkpoint}.pt"), "--tflite", "fp32",
                   "--images", IMAGES, "--check-samples", "2", "--json", *extra)

    def package(self, version):
        return os.path.join(self.repo, NAME, version)

    def manifest(self, version):
        return json.load(open(os.path.join(self.package(version), "manifest.json")))

    def outcome(self, key):
        result = self.builds[key]
        return result.returncode, json.loads(result.stdout) if result.stdout.strip() else result.stderr

    def active(self):
        with open(os.path.join(self.repo, NAME, "ACTIVE")) as f:
            return f.read().strip()

    def test_builds_get_consecutive_versions(self):
        for key, version, result in (("a", "1", "accepted"), ("b", "2", "accepted"), ("rejected", "3", "rejected"),
                                     ("forced", "4", "accepted")):
            status, outcome = self.outcome(key)
            self.assertEqual(status, EXIT_CHECK_FAILED if result == "rejected" else 0, outcome)
            self.assertEqual(outcome["version"], version)
            self.assertEqual(outcome["result"], result)
            self.assertEqual(self.manifest(version)["version"], version)
        entries = os.listdir(os.path.join(self.repo, NAME))
        self.assertEqual(sorted(n for n in entries if not n.startswith(".")),
                         ["1", "2", "3", "4", "5", "ACTIVE", "lifecycle.json"])
        self.assertEqual([n for n in entries if n.startswith(".build-")], [], "a staging directory was left behind")

    def test_unchanged_inputs_build_nothing(self):
        before = sorted(os.listdir(os.path.join(self.repo, NAME)))
        result = self.build("b")
        self.assertEqual(result.returncode, 0, result.stderr)
        outcome = json.loads(result.stdout)
        self.assertEqual(outcome["result"], "up-to-date")
        self.assertEqual(outcome["version"], "4")  # the newest version built from these inputs
        self.assertIn("nothing to build", result.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.repo, NAME))), before)

    def test_inputs_of_a_rejected_candidate_stay_a_failure(self):
        result = self.build("a", "--policy", self.strict)
        self.assertEqual(result.returncode, EXIT_CHECK_FAILED, result.stderr)
        outcome = json.loads(result.stdout)
        self.assertEqual((outcome["result"], outcome["version"]), ("up-to-date", "3"))
        self.assertIn("rejected candidate", result.stderr)
        self.assertFalse(os.path.exists(self.package("6")))

    def test_changed_inputs_are_recorded_and_fingerprinted(self):
        one, two = self.manifest("1"), self.manifest("2")
        self.assertEqual(one["lifecycle"]["inputs"]["checkpoint"]["sha256"],
                         sha256(os.path.join(CHECKPOINTS, "small-a.pt")))
        self.assertEqual(two["lifecycle"]["inputs"]["checkpoint"]["sha256"],
                         sha256(os.path.join(CHECKPOINTS, "small-b.pt")))
        self.assertEqual(one["provenance"]["checkpoint"]["sha256"], one["lifecycle"]["inputs"]["checkpoint"]["sha256"])
        self.assertNotEqual(one["lifecycle"]["fingerprint"], two["lifecycle"]["fingerprint"])
        for key in ("exporter_version", "converter_version", "tflite_precisions"):
            self.assertIn(key, one["lifecycle"]["inputs"])
        # The rebuild of A under a stricter policy is a different package (its policy is part of it).
        three = self.manifest("3")
        self.assertEqual(three["lifecycle"]["inputs"]["checkpoint"], one["lifecycle"]["inputs"]["checkpoint"])
        self.assertNotEqual(three["lifecycle"]["fingerprint"], one["lifecycle"]["fingerprint"])
        self.assertEqual(three["policy"]["parity"]["bounds"]["pytorch"]["max_abs_diff"], 1e-12)
        # --force builds again from the same inputs: same fingerprint, a new version all the same.
        self.assertEqual(self.manifest("4")["lifecycle"]["fingerprint"], two["lifecycle"]["fingerprint"])

    def test_every_version_carries_its_artifacts_and_evidence(self):
        for version in ("1", "2", "4"):
            manifest = self.manifest(version)
            self.assertEqual(run("models", "verify", self.package(version)).returncode, 0)
            artifacts = {(a["runtime"], a["precision"]) for a in manifest["artifacts"]}
            self.assertEqual(artifacts, {("onnxruntime", "fp32"), ("tflite", "fp32")})
            parity = manifest["parity"]
            self.assertTrue(parity["passed"])
            candidates = {p["candidate"] for p in parity["pairs"]}
            self.assertIn("onnxruntime/fp32/cpu", candidates)  # against PyTorch
            self.assertIn("tflite/fp32/xnnpack", candidates)
            for file, digest in parity["report_files"].items():
                self.assertEqual(sha256(os.path.join(self.package(version), file)), digest, file)
            self.assertEqual(manifest["lifecycle"]["status"], "accepted")

    def test_rejected_candidate_is_kept_and_never_active(self):
        manifest = self.manifest("3")
        self.assertEqual(manifest["lifecycle"]["status"], "rejected")
        self.assertIn("pytorch/fp32/cpu", manifest["lifecycle"]["reason"])
        self.assertFalse(manifest["parity"]["passed"])
        self.assertNotEqual(self.active(), "3")
        promote = run("models", "promote", NAME, "3", "--repository", self.repo)
        self.assertEqual(promote.returncode, EXIT_PACKAGE)
        self.assertIn("rejected candidate", promote.stderr)
        self.assertNotEqual(self.active(), "3")
        # Without ACTIVE the highest version would serve; a rejected one is passed over.
        hidden = os.path.join(self.tmp, "no-marker")
        shutil.copytree(os.path.join(self.repo, NAME), os.path.join(hidden, NAME))
        os.remove(os.path.join(hidden, NAME, "ACTIVE"))
        listed = json.loads(run("models", "list", "--repository", hidden, "--json").stdout)
        self.assertEqual([e["version"] for e in listed if e["active"]], ["5"])
        for version in ("5", "4"):
            os.remove(os.path.join(hidden, NAME, version, "manifest.json"))  # no longer a version
        listed = json.loads(run("models", "list", "--repository", hidden, "--json").stdout)
        self.assertEqual([e["version"] for e in listed if e["active"]], ["2"])
        history = json.loads(run("models", "history", NAME, "--repository", self.repo, "--json").stdout)
        self.assertEqual({v["version"]: v["status"] for v in history["versions"]}["3"], "rejected")

    def test_a_failing_artifact_leaves_the_version_and_the_rest_serves(self):
        # docs/lifecycle.md, "A failing artifact": version 5 keeps ONNX fp32, drops TFLite fp32.
        build = self.builds["dropped"]
        self.assertEqual(build.returncode, 0, build.stderr)
        outcome = json.loads(build.stdout)
        self.assertEqual((outcome["result"], outcome["version"]), ("accepted", "5"))
        self.assertIn("WARNING: artifact rejected", build.stderr)
        manifest = self.manifest("5")
        self.assertEqual([(a["runtime"], a["precision"]) for a in manifest["artifacts"]], [("onnxruntime", "fp32")])
        [dropped] = manifest["lifecycle"]["rejected_artifacts"]
        self.assertEqual((dropped["runtime"], dropped["precision"]), ("tflite", "fp32"))
        self.assertTrue(os.path.isfile(os.path.join(self.repo, NAME, "5", dropped["file"])))
        self.assertGreater(dropped["figures"][0]["max_abs_diff"], 1e-12)  # the figures that failed
        listed = {e["version"]: e
                  for e in json.loads(run("models", "list", "--repository", self.repo, "--json").stdout)}
        self.assertTrue(listed["5"]["servable"], listed["5"])
        self.assertNotIn("tflite", " ".join(listed["5"]["artifacts"]))
        self.assertEqual(run("models", "verify", os.path.join(self.repo, NAME, "5")).returncode, 0)

    def test_promote_then_roll_back(self):
        self.assertEqual(self.active(), "1")  # promoted by its build
        result = run("models", "promote", NAME, "2", "--repository", self.repo)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.active(), "2")
        result = run("models", "rollback", NAME, "--repository", self.repo)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.active(), "1")
        result = run("models", "rollback", NAME, "--repository", self.repo)
        self.assertEqual(result.returncode, EXIT_NOT_FOUND)
        self.assertEqual(self.active(), "1")
        history = json.loads(run("models", "history", NAME, "--repository", self.repo, "--json").stdout)
        actions = [(e["action"], e["version"]) for e in history["events"]]
        self.assertEqual(actions[-2:], [("promote", "2"), ("rollback", "1")])
        self.assertIn(("build", "3"), actions)


class FileSizeLimit(unittest.TestCase):
    """A full disk, simulated by RLIMIT_FSIZE, during `models build` and `models export`: nothing is
    installed, no partial file is left, and the error names the cause with the I/O exit status
    (docs/cli.md), never 70."""

    def limited(self, *args):
        import resource
        import signal

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=900, preexec_fn=limit)

    def check(self, result, repo):
        self.assertEqual(result.returncode, 8, result.stderr)
        self.assertIn("no_space", result.stderr)
        self.assertNotIn("internal error", result.stderr)
        leftovers = []
        for root, dirs, files in os.walk(repo):
            leftovers += [os.path.join(root, n) for n in dirs + files
                          if n.startswith(".build-") or n.startswith(".staging-") or ".tmp" in n or n.isdigit()]
        self.assertEqual(leftovers, [], "something was installed or left behind")

    def test_build(self):
        repo = tempfile.mkdtemp(prefix="fsize-build-")
        try:
            result = self.limited("models", "build", "--arch", "mobilenet_v3_small", "--name", NAME,
                                  "--repository", repo, "--checkpoint", os.path.join(CHECKPOINTS, "small-a.pt"),
                                  "--images", IMAGES, "--check-samples", "2")
            self.check(result, repo)
        finally:
            shutil.rmtree(repo)

    def test_export(self):
        repo = tempfile.mkdtemp(prefix="fsize-export-")
        try:
            result = self.limited("models", "export", "--arch", "mobilenet_v3_small", "--name", NAME,
                                  "--repository", repo, "--checkpoint", os.path.join(CHECKPOINTS, "small-a.pt"),
                                  "--check-samples", "2")
            self.check(result, repo)
        finally:
            shutil.rmtree(repo)


class OnnxInt8Build(unittest.TestCase):
    """`models build --onnx-int8`: the ONNX Runtime int8 (QDQ) artifact is judged by the parity gate
    like any other, kept when it passes and dropped when it fails, and `auto` serves it on the CPU
    only in the first case (docs/service.md, "Which artifact serves"). The policies are chosen so
    that the outcome does not depend on how well this random-weight network quantizes: one bound
    any int8 artifact meets, and one none can."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lifecycle-int8-")
        cls.repo = os.path.join(cls.tmp, "repository")
        cls.policies = {}
        for key, mean in (("lenient", 1.0), ("impossible", 1e-12)):
            cls.policies[key] = os.path.join(cls.tmp, f"{key}.json")
            with open(cls.policies[key], "w") as f:
                json.dump({"parity": {"bounds": {"pytorch": {"max_abs_diff": 0.01},
                                                 "int8": {"mean_abs_diff": mean}}}}, f)
        cls.builds = {key: cls.build("--policy", cls.policies[key]) for key in ("lenient", "impossible")}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    @classmethod
    def build(cls, *extra, calibration=CALIBRATION):
        args = ["models", "build", "--arch", "mobilenet_v3_small", "--name", NAME, "--repository", cls.repo,
                "--checkpoint", os.path.join(CHECKPOINTS, "small-a.pt"), "--images", IMAGES, "--check-samples", "2",
                "--onnx-int8", "--json"]
        if calibration:
            args += ["--calibration", calibration]
        return run(*args, *extra)

    def manifest(self, version):
        with open(os.path.join(self.repo, NAME, version, "manifest.json")) as f:
            return json.load(f)

    def int8_pair(self, manifest):
        pairs = [p for p in manifest["parity"]["pairs"] if p["candidate"] == "onnxruntime/int8/cpu"]
        self.assertEqual(len(pairs), 1, manifest["parity"]["pairs"])
        self.assertEqual((pairs[0]["reference"], pairs[0]["bound_key"]), ("onnxruntime/fp32/cpu", "int8"))
        return pairs[0]

    def classify(self, version, *extra):
        result = run("classify", "--model", os.path.join(self.repo, NAME, version), "--provider", "cpu", "--json",
                     os.path.join(IMAGES, sorted(os.listdir(IMAGES))[0]), *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)[0]

    def version_of(self, key):
        result = self.builds[key]
        self.assertEqual(result.returncode, 0, result.stderr)
        outcome = json.loads(result.stdout)
        self.assertEqual(outcome["result"], "accepted", outcome)
        return outcome["version"]

    def test_a_passing_int8_artifact_stays_and_serves_on_the_cpu(self):
        version = self.version_of("lenient")
        manifest = self.manifest(version)
        int8 = [a for a in manifest["artifacts"] if (a["runtime"], a["precision"]) == ("onnxruntime", "int8")]
        self.assertEqual(len(int8), 1, manifest["artifacts"])
        self.assertEqual(int8[0]["format"], "qdq")
        self.assertEqual(int8[0]["sha256"], sha256(os.path.join(self.repo, NAME, version, int8[0]["file"])))
        self.assertTrue(self.int8_pair(manifest)["passed"])
        self.assertTrue(manifest["lifecycle"]["inputs"]["onnx_int8"])
        answer = self.classify(version)
        self.assertEqual((answer["runtime"], answer["precision"]), ("onnxruntime", "int8"), answer)
        self.assertEqual(answer["fallbacks"], [])
        self.assertEqual(self.classify(version, "--precision", "fp32")["precision"], "fp32")

    def test_a_failing_int8_artifact_leaves_the_version_and_fp32_serves(self):
        version = self.version_of("impossible")
        manifest = self.manifest(version)
        self.assertFalse(self.int8_pair(manifest)["passed"])
        self.assertEqual([a["precision"] for a in manifest["artifacts"]], ["fp32"])
        rejected = manifest["lifecycle"]["rejected_artifacts"]
        self.assertEqual([(r["runtime"], r["precision"]) for r in rejected], [("onnxruntime", "int8")])
        self.assertIn("mean |dp|", rejected[0]["reason"])
        self.assertTrue(os.path.exists(os.path.join(self.repo, NAME, version, rejected[0]["file"])), "kept as evidence")
        answer = self.classify(version)
        self.assertEqual(answer["precision"], "fp32", answer)

    def test_unchanged_inputs_build_nothing(self):
        again = self.build("--policy", self.policies["lenient"])
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(json.loads(again.stdout)["result"], "up-to-date")

    def test_bad_calibration_is_refused_before_any_work(self):
        before = sorted(os.listdir(os.path.join(self.repo, NAME)))
        missing = self.build("--policy", self.policies["lenient"], "--force", calibration=None)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("needs --calibration", missing.stderr)
        small = self.build("--policy", self.policies["lenient"], "--force", calibration=IMAGES)
        self.assertNotEqual(small.returncode, 0)
        self.assertIn("ONNX int8 needs at least 32", small.stderr)
        self.assertNotIn("exporting", small.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.repo, NAME))), before, "nothing was built")


if __name__ == "__main__":
    unittest.main()
