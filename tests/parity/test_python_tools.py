"""The Python side of parity and the lifecycle: checkpoint lookup for the PyTorch ground truth,
image-set materialisation, the parity plot. Run by CTest as parity.python_tools."""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from dermcds_export import hashing, image_sets, parity_plot, parity_reference  # noqa: E402
from dermcds_export.errors import InvalidInput, NotFound  # noqa: E402

PHOTO = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Temporary(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="parity-python-"))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, name, data):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


class FindCheckpoint(Temporary):
    def manifest(self, checkpoint, **extra):
        return {"name": "m", "version": "1", "provenance": {"checkpoint": dict(checkpoint, **extra)}}

    def test_recorded_path_relative_to_the_repository(self):
        # Packages record a checkpoint inside the repository relative to its root (hashing.portable_path,
        # docs/model-package.md), so that no path of the exporting machine is written; here the
        # temporary directory stands for the repository root.
        checkpoint = self.write("weights/a.pt", b"weights a")
        manifest = self.manifest({"file": "a.pt", "sha256": sha256(checkpoint), "path": "weights/a.pt"})
        with mock.patch.object(hashing, "REPO_ROOT", self.tmp):
            self.assertEqual(hashing.portable_path(checkpoint), "weights/a.pt")
            self.assertEqual(parity_reference.find_checkpoint(manifest, self.tmp / "package").resolve(), checkpoint)

    def test_recorded_absolute_path_of_an_older_package(self):
        checkpoint = self.write("weights/b.pt", b"weights b")
        manifest = self.manifest({"file": "b.pt", "sha256": sha256(checkpoint), "path": str(checkpoint)})
        self.assertEqual(parity_reference.find_checkpoint(manifest, self.tmp / "package"), checkpoint)

    def test_demo_checkpoint_from_the_cache(self):
        checkpoint = self.write("cache/demo-checkpoints/demo-x.pt", b"demo")
        manifest = self.manifest({"source": "demo", "file": "demo-x.pt", "sha256": sha256(checkpoint)})
        with mock.patch.dict(os.environ, {"DERMCDS_CACHE_DIR": str(self.tmp / "cache")}):
            self.assertEqual(parity_reference.find_checkpoint(manifest, self.tmp), checkpoint)

    def test_a_checkpoint_with_other_bytes_is_never_used(self):
        right = self.write("right.pt", b"exported from this")
        wrong = self.write("wrong.pt", b"something else")
        manifest = self.manifest({"file": "right.pt", "sha256": sha256(right), "path": str(right)})
        with self.assertRaises(NotFound) as raised:
            os.remove(right)
            parity_reference.find_checkpoint(manifest, self.tmp, override=str(wrong))
        message = str(raised.exception)
        self.assertIn("wrong.pt (sha256", message)
        self.assertIn("right.pt (missing)", message)

    def test_no_checkpoint_named(self):
        with self.assertRaises(NotFound) as raised:
            parity_reference.find_checkpoint({"name": "m", "version": "1"}, self.tmp)
        self.assertIn("--checkpoint", str(raised.exception))


class ImageSets(Temporary):
    def definitions(self, photo_sha):
        photos = {"photographs": [{"file": "photo_a.jpg", "source_path": PHOTO, "package": "python-matplotlib-data",
                                   "package_version": "test", "package_path": PHOTO, "sha256": photo_sha,
                                   "licence": "test"}]}
        (self.tmp / "photos.json").write_text(json.dumps(photos))
        sets = {"sets": {"small": {"synthetic": {"seed": 5, "count": 3, "format": "mixed"},
                                   "real_photographs": "photos.json"}}}
        path = self.tmp / "sets.json"
        path.write_text(json.dumps(sets))
        return path

    def test_set_is_made_once_with_every_file_recorded(self):
        definitions = self.definitions(sha256(PHOTO))
        out = self.tmp / "set"
        image_sets.build("small", out, definitions)
        index = json.loads((out / "image-set.json").read_text())
        self.assertEqual(index["images"], 4)
        for entry in index["files"]:
            self.assertEqual(sha256(out / entry["file"]), entry["sha256"], entry["file"])
        self.assertEqual([e["origin"] for e in index["files"]].count("real photograph"), 1)
        self.assertEqual(sha256(out / "photo_a.jpg"), sha256(PHOTO))
        # Same definitions: nothing is rewritten.
        stamp = (out / "image-set.json").stat().st_mtime_ns
        image_sets.build("small", out, definitions)
        self.assertEqual((out / "image-set.json").stat().st_mtime_ns, stamp)

    def test_a_photograph_with_other_bytes_stops_the_set_and_keeps_the_old_one(self):
        out = self.tmp / "set"
        image_sets.build("small", out, self.definitions(sha256(PHOTO)))
        before = sorted(p.name for p in out.iterdir())
        with self.assertRaises(InvalidInput) as raised:
            image_sets.build("small", out, self.definitions("0" * 64))
        self.assertIn("python-matplotlib-data", str(raised.exception))
        self.assertEqual(sorted(p.name for p in out.iterdir()), before)
        self.assertEqual([p.name for p in self.tmp.iterdir() if p.name.startswith(".set")], [])

    def test_a_foreign_directory_is_left_alone(self):
        self.write("mine/notes.txt", b"keep me")
        with self.assertRaises(InvalidInput):
            image_sets.build("small", self.tmp / "mine", self.definitions(sha256(PHOTO)))
        self.assertEqual((self.tmp / "mine" / "notes.txt").read_bytes(), b"keep me")

    def test_unknown_set(self):
        with self.assertRaises(InvalidInput):
            image_sets.build("nope", self.tmp / "x", self.definitions(sha256(PHOTO)))


class ParityPlot(Temporary):
    def test_plot_is_a_png(self):
        labels = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"]
        report = {"package": {"name": "m", "version": "1"}, "images": {"count": 2}, "labels": labels,
                  "pairs": [{"reference": "r", "candidate": "c", "bounds": {"max_abs_diff": 0.01}, "passed": False,
                             "max_abs_diff": 0.2, "triage_agreement": 0.5}],
                  "per_image": [{"image": "a", "probabilities": {"r": [0.5, 0.5] + [0] * 6, "c": [0.3, 0.7] + [0] * 6}},
                                {"image": "b", "probabilities": {"r": [1.0] + [0] * 7, "c": None}}]}
        path = self.tmp / "parity.json"
        path.write_text(json.dumps(report))
        self.assertEqual(parity_plot.pair_differences(report, report["pairs"][0])[0], [0.2])  # b is left out
        out = self.tmp / "parity.png"
        parity_plot.run(mock.Mock(report=str(path), out=str(out)))
        self.assertEqual(out.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")

    def test_report_without_per_image_data_is_refused(self):
        path = self.tmp / "parity.json"
        path.write_text(json.dumps({"pairs": []}))
        with self.assertRaises(InvalidInput):
            parity_plot.run(mock.Mock(report=str(path), out=str(self.tmp / "x.png")))


if __name__ == "__main__":
    unittest.main()
