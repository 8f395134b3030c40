"""Black-box tests of the dermcds command-line tool: the real binary, real files, exit statuses.

Run by CTest with: DERMCDS_BIN (the binary), DERMCDS_TINY (directory written by
tests/core/make_tiny_packages.py), DERMCDS_PHOTOS (real photographs).
"""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

BIN = os.environ["DERMCDS_BIN"]
TINY = os.environ["DERMCDS_TINY"]
PHOTOS = os.environ["DERMCDS_PHOTOS"]
REPOSITORY = os.path.join(TINY, "repository")
GRACE_HOPPER = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"

# Exit statuses documented in docs/cli.md.
EXIT_USAGE, EXIT_NOT_FOUND, EXIT_IMAGE, EXIT_PACKAGE = 2, 3, 4, 5


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width, height):
    """A well-formed PNG of a few hundred bytes whose header announces huge dimensions: a
    decoder that allocated before checking would ask for width x height x 3 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(256)))
            + png_chunk(b"IEND", b""))


class Help(unittest.TestCase):
    def test_every_command_has_help(self):
        for command in ([], ["classify"], ["models"], ["models", "verify"], ["models", "list"], ["models", "export"]):
            result = run(*command, "--help")
            self.assertEqual(result.returncode, 0, command)
            self.assertIn("Usage:", result.stdout, command)

    def test_unknown_flag_is_a_usage_error(self):
        result = run("classify", "--no-such-flag", GRACE_HOPPER)
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn("--no-such-flag", result.stderr)

    def test_no_model_is_a_usage_error(self):
        env = {k: v for k, v in os.environ.items() if k != "DERMCDS_MODEL"}
        result = subprocess.run([BIN, "classify", GRACE_HOPPER], capture_output=True, text=True, env=env)
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn("--model", result.stderr)


class Classify(unittest.TestCase):
    def test_json_matches_the_numpy_reference(self):
        references = json.load(open(os.path.join(TINY, "tiny_reference.json")))
        images = [r["image"] for r in references]
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny"), "--json", *images)
        self.assertEqual(result.returncode, 0, result.stderr)
        documents = json.loads(result.stdout)
        self.assertEqual(len(documents), len(images))
        for document, reference in zip(documents, references):
            self.assertEqual(document["image"], reference["image"])
            ours = [c["probability"] for c in document["probabilities"]]
            worst = max(abs(a - b) for a, b in zip(ours, reference["probabilities"]))
            self.assertLessEqual(worst, 1e-4, document["image"])
            self.assertEqual(document["model_name"], "tiny")
            self.assertEqual(document["runtime"], "onnxruntime")
            self.assertEqual(document["execution_provider"], "cpu")
            self.assertEqual(document["precision"], "fp32")
            best = max(range(8), key=lambda i: reference["probabilities"][i])
            self.assertEqual(document["top1"]["code"], document["probabilities"][best]["code"])

    def test_model_directory_means_its_active_version(self):
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny", "1"), "--json", GRACE_HOPPER)
        by_version = json.loads(result.stdout)[0]["probabilities"]
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny"), "--json", GRACE_HOPPER)
        self.assertEqual(json.loads(result.stdout)[0]["probabilities"], by_version)

    def test_model_from_environment(self):
        result = run("classify", "--json", GRACE_HOPPER, env={"DERMCDS_MODEL": os.path.join(REPOSITORY, "tiny")})
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_cuda_request_reports_its_fallback(self):
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny"), "--provider", "cuda", "--json",
                     GRACE_HOPPER)
        self.assertEqual(result.returncode, 0, result.stderr)
        document = json.loads(result.stdout)[0]
        self.assertEqual(document["execution_provider"], "cpu")
        self.assertTrue(document["fallbacks"][0].startswith("cuda:"), document["fallbacks"])
        self.assertIn("cuda", result.stderr)  # logged as well as reported

    def test_text_output_names_model_runtime_and_triage(self):
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny"), GRACE_HOPPER)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("triage", result.stdout)
        self.assertIn("model tiny v1, onnxruntime 1.30", result.stdout)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def classify(self, *images, model="tiny"):
        return run("classify", "--model", os.path.join(REPOSITORY, model), *images)

    def assert_fails(self, result, status, *phrases):
        self.assertEqual(result.returncode, status, result.stderr)
        for phrase in phrases:
            self.assertIn(phrase, result.stderr)
        self.assertNotIn("Segmentation", result.stderr)

    def test_missing_file(self):
        self.assert_fails(self.classify("/no/such/lesion.jpg"), EXIT_NOT_FOUND, "/no/such/lesion.jpg")

    def test_directory(self):
        self.assert_fails(self.classify(self.tmp), EXIT_USAGE, "is a directory")

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest("root reads every file")
        path = self.write("locked.jpg", open(GRACE_HOPPER, "rb").read())
        os.chmod(path, 0)
        self.assertNotEqual(self.classify(path).returncode, 0)

    def test_zero_bytes(self):
        self.assert_fails(self.classify(self.write("empty.jpg", b"")), EXIT_IMAGE, "empty")

    def test_truncated_jpeg(self):
        data = open(GRACE_HOPPER, "rb").read()
        self.assert_fails(self.classify(self.write("cut.jpg", data[: len(data) // 2])), EXIT_IMAGE, "cut.jpg")

    def test_truncated_png(self):
        data = open(os.path.join(PHOTOS, "coffee.png"), "rb").read()
        self.assert_fails(self.classify(self.write("cut.png", data[: len(data) // 3])), EXIT_IMAGE, "cut.png")

    def test_corrupt_jpeg(self):
        data = bytearray(open(GRACE_HOPPER, "rb").read())
        data[400:2400] = bytes(2000)  # wipe tables and the start of the scan
        self.assertEqual(self.classify(self.write("corrupt.jpg", bytes(data))).returncode, EXIT_IMAGE)

    def test_not_an_image(self):
        self.assert_fails(self.classify(self.write("notes.jpg", b"patient notes, not a photo\n")), EXIT_IMAGE,
                          "unsupported")

    def test_unsupported_format(self):
        self.assert_fails(self.classify(self.write("lesion.gif", b"GIF89a" + bytes(64))), EXIT_IMAGE, "GIF")

    def test_absurd_dimensions(self):
        self.assert_fails(self.classify(self.write("bomb.png", png_claiming(100000, 100000))), EXIT_IMAGE,
                          "pixel")

    def test_good_images_survive_a_bad_one(self):
        result = run("classify", "--model", os.path.join(REPOSITORY, "tiny"), "--json", GRACE_HOPPER,
                     "/no/such.jpg", os.path.join(PHOTOS, "coffee.png"))
        self.assertEqual(result.returncode, EXIT_NOT_FOUND)
        documents = json.loads(result.stdout)
        self.assertEqual([("error" in d) for d in documents], [False, True, False])

    def test_wrong_shaped_model(self):
        for model in ("tiny-wrong-size", "tiny-wrong-classes", "tiny-wrong-names"):
            self.assert_fails(self.classify(GRACE_HOPPER, model=model), EXIT_PACKAGE, "model.onnx")

    def test_missing_model(self):
        self.assert_fails(self.classify(GRACE_HOPPER, model="no-such-model"), EXIT_NOT_FOUND, "no-such-model")


class Models(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.copy = os.path.join(self.tmp, "tiny", "1")
        shutil.copytree(os.path.join(REPOSITORY, "tiny", "1"), self.copy)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_verify_intact_package(self):
        result = run("models", "verify", self.copy)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("intact", result.stdout)

    def test_verify_tampered_package(self):
        model = os.path.join(self.copy, "model.onnx")
        data = bytearray(open(model, "rb").read())
        data[-5] ^= 0x01
        open(model, "wb").write(bytes(data))
        result = run("models", "verify", self.copy)
        self.assertEqual(result.returncode, EXIT_PACKAGE)
        self.assertIn("FAIL model.onnx", result.stdout)
        self.assertIn("altered", result.stdout)
        # ... and classification refuses it too.
        self.assertEqual(run("classify", "--model", self.copy, GRACE_HOPPER).returncode, EXIT_PACKAGE)

    def test_list_json(self):
        result = run("models", "list", "--repository", REPOSITORY, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        entries = {e["name"]: e for e in json.loads(result.stdout)}
        self.assertEqual(entries["tiny"]["version"], "1")
        self.assertTrue(entries["tiny"]["active"])
        self.assertIn("onnxruntime", entries["tiny"]["usable_runtimes"])

    def test_export_refuses_a_missing_checkpoint(self):
        result = run("models", "export", "--arch", "mobilenet_v3_large", "--checkpoint", "/no/such.pt",
                     "--repository", self.tmp)
        self.assertEqual(result.returncode, EXIT_NOT_FOUND)
        self.assertIn("/no/such.pt", result.stderr)


def write_json(path, document):
    with open(path, "w") as f:
        json.dump(document, f, indent=2)


def read_json(path):
    with open(path) as f:
        return json.load(f)


class ServingRule(unittest.TestCase):
    """Issue 13's two attacks against the CLI (docs/lifecycle.md, "The serving rule")."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.repo = os.path.join(self.tmp, "repository")
        self.model = os.path.join(self.repo, "tiny")
        shutil.copytree(os.path.join(REPOSITORY, "tiny", "1"), os.path.join(self.model, "1"))
        # Attack 1: version 4 is version 1 with one classifier bias edited in model.onnx, and the
        # manifest re-stamped with the new file's sha256 and size.
        import onnx  # the test environment's python has it (make_tiny_packages.py uses it)
        from onnx import numpy_helper
        v4 = os.path.join(self.model, "4")
        shutil.copytree(os.path.join(self.model, "1"), v4)
        model = onnx.load(os.path.join(v4, "model.onnx"))
        biases = [t for t in model.graph.initializer if len(t.dims) == 1]
        self.assertTrue(biases, "the tiny model has a bias")
        bias = numpy_helper.to_array(biases[0]).copy()
        bias[1] += 25.0  # class 1 wins every image
        biases[0].CopyFrom(numpy_helper.from_array(bias, biases[0].name))
        onnx.save(model, os.path.join(v4, "model.onnx"))
        manifest = read_json(os.path.join(v4, "manifest.json"))
        import hashlib
        with open(os.path.join(v4, "model.onnx"), "rb") as f:
            data = f.read()
        manifest["version"] = "4"
        manifest["artifacts"][0]["sha256"] = hashlib.sha256(data).hexdigest()
        manifest["artifacts"][0]["bytes"] = len(data)
        write_json(os.path.join(v4, "manifest.json"), manifest)
        # Attack 2: version 5 without its parity and lifecycle sections.
        v5 = os.path.join(self.model, "5")
        shutil.copytree(os.path.join(self.model, "1"), v5)
        manifest = read_json(os.path.join(v5, "manifest.json"))
        manifest["version"] = "5"
        manifest.pop("parity", None)
        manifest.pop("lifecycle", None)
        write_json(os.path.join(v5, "manifest.json"), manifest)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def classify(self, model):
        return run("classify", "--model", model, "--json", GRACE_HOPPER)

    def test_the_edited_weights_would_change_the_answer(self):
        # What is at stake: opened directly, version 4 answers differently, with a warning.
        honest = json.loads(self.classify(os.path.join(self.model, "1")).stdout)[0]
        edited = self.classify(os.path.join(self.model, "4"))
        self.assertEqual(edited.returncode, 0, edited.stderr)
        self.assertIn("may not serve", edited.stderr)
        self.assertNotEqual(json.loads(edited.stdout)[0]["top1"]["code"], honest["top1"]["code"])

    def test_promote_refuses_both(self):
        for version, missing in (("4", "model.onnx"), ("5", "no parity evidence")):
            result = run("models", "promote", "tiny", version, "--repository", self.repo)
            self.assertEqual(result.returncode, EXIT_PACKAGE, result.stderr)
            self.assertIn(missing, result.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.model, "ACTIVE")))

    def test_model_directory_serves_only_what_may_serve(self):
        # Without ACTIVE the highest version that may serve answers: 1, not 4 or 5.
        result = self.classify(self.model)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)[0]["model_version"], "1")
        # An ACTIVE marker written by hand is refused, naming why.
        for version, missing in (("4", "model.onnx"), ("5", "no parity evidence")):
            with open(os.path.join(self.model, "ACTIVE"), "w") as f:
                f.write(version + "\n")
            result = self.classify(self.model)
            self.assertEqual(result.returncode, EXIT_PACKAGE, result.stderr)
            self.assertIn("failed_precondition", result.stderr)
            self.assertIn(missing, result.stderr)
            listed = run("models", "list", "--repository", self.repo, "--json")
            self.assertEqual(listed.returncode, 0, listed.stderr)
            entries = {e["version"]: e for e in json.loads(listed.stdout)}
            self.assertTrue(entries["1"]["servable"])
            self.assertFalse(entries[version]["servable"])
            self.assertIn(missing, entries[version]["reason"])


class FileSystemErrors(unittest.TestCase):
    """Errors of the operating system leave with their named codes (docs/cli.md)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_file_size_limit_during_convert_installs_nothing(self):
        # `dermcds convert --help` exits 0 in a build without the converter too (the top-level
        # --help answers), so look for the subcommand in the list the help prints: the first word
        # of each line after "Subcommands:" (the descriptions beside them may say "convert" too).
        listing = run("--help").stdout.partition("Subcommands:")[2]
        subcommands = [line.split()[0] for line in listing.splitlines() if line.strip()]
        if "convert" not in subcommands:
            self.skipTest("this build has no converter (the ASan and arm64 builds leave it out)")
        import resource
        import signal
        package = os.path.join(self.tmp, "tiny", "1")
        shutil.copytree(os.path.join(REPOSITORY, "tiny", "1"), package)
        before = sorted(os.listdir(package))

        def limit():
            # Past the limit a write fails with EFBIG instead of the process being killed.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

        result = subprocess.run([BIN, "convert", "--package", package, "--precision", "fp32"], capture_output=True,
                                text=True, timeout=120, preexec_fn=limit)
        self.assertEqual(result.returncode, 8, result.stderr)  # I/O, not 70
        self.assertIn("no_space", result.stderr)
        self.assertNotIn("internal", result.stderr)
        self.assertEqual(sorted(os.listdir(package)), before, "a partial file was left")
        self.assertEqual(run("models", "verify", package).returncode, 0)

    def test_unwritable_repository_is_permission_denied(self):
        if os.geteuid() == 0:
            self.skipTest("root is not refused by file permissions")
        repo = os.path.join(self.tmp, "repository")
        shutil.copytree(os.path.join(REPOSITORY, "tiny", "1"), os.path.join(repo, "tiny", "1"))
        os.chmod(os.path.join(repo, "tiny"), 0o555)
        try:
            result = run("models", "promote", "tiny", "1", "--repository", repo)
        finally:
            os.chmod(os.path.join(repo, "tiny"), 0o755)
        self.assertEqual(result.returncode, 10, result.stderr)
        self.assertIn("permission_denied", result.stderr)


class SigkillDuringActivation(unittest.TestCase):
    """SIGKILL at random points of `models promote` and `rollback`, 24 times: ACTIVE and
    lifecycle.json are never half-written, and a servable version serves afterwards."""

    def test_kill_at_random_points(self):
        import random
        import signal
        import time
        tmp = tempfile.mkdtemp()
        try:
            repo = os.path.join(tmp, "repository")
            for version in ("1", "2"):
                shutil.copytree(os.path.join(REPOSITORY, "tiny", "1"), os.path.join(repo, "tiny", version))
                manifest = read_json(os.path.join(repo, "tiny", version, "manifest.json"))
                manifest["version"] = version
                write_json(os.path.join(repo, "tiny", version, "manifest.json"), manifest)
            rng = random.Random(13)
            killed = 0
            for attempt in range(24):
                command = (["models", "promote", "tiny", "2" if attempt % 2 else "1"] if attempt % 3
                           else ["models", "rollback", "tiny"])
                process = subprocess.Popen([BIN, *command, "--repository", repo], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0, 0.03))
                process.send_signal(signal.SIGKILL)
                killed += process.wait() == -signal.SIGKILL
                active = os.path.join(repo, "tiny", "ACTIVE")
                if os.path.exists(active):
                    self.assertIn(open(active).read(), ("1\n", "2\n"), f"attempt {attempt}")
                state = os.path.join(repo, "tiny", "lifecycle.json")
                if os.path.exists(state):
                    read_json(state)  # complete JSON, never a part
                result = run("classify", "--model", os.path.join(repo, "tiny"), "--json", GRACE_HOPPER)
                self.assertEqual(result.returncode, 0, result.stderr)
            # Most attempts are killed part-way (the rest finished first; both must hold).
            self.assertGreater(killed, 0)
            self.assertEqual(run("models", "history", "tiny", "--repository", repo).returncode, 0)
            # The next change clears what a killed writer left beside the files.
            self.assertEqual(run("models", "promote", "tiny", "1", "--repository", repo).returncode, 0)
            self.assertEqual([n for n in os.listdir(os.path.join(repo, "tiny")) if ".tmp-" in n], [])
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
