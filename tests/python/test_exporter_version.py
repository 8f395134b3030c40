"""The exporter's version is a digest of its sources (issue 17, item 6).

The lifecycle rebuilds a package when the recorded exporter version differs (docs/lifecycle.md),
so the version must change with every edit of python/dermcds_export and with nothing else. Each
case imports a copy of the package in a fresh interpreter, so the module under test is the copy.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


def version_of(python_dir: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(python_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", "import dermcds_export; print(dermcds_export.EXPORTER_VERSION)"],
                            cwd=python_dir, env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def expected_digest(package_dir: Path) -> str:
    """The scheme written out independently: 'dermcds_export/<file> <sha256>' lines, sorted."""
    lines = [f"dermcds_export/{p.relative_to(package_dir).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n"
             for p in sorted(package_dir.rglob("*.py"))]
    return "sources-sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


class ExporterVersionTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="dermcds-exporter-version-"))
        self.copy = self.tmp / "python"
        shutil.copytree(PYTHON_DIR / "dermcds_export", self.copy / "dermcds_export",
                        ignore=shutil.ignore_patterns("__pycache__"))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_is_the_digest_of_the_sources(self):
        self.assertEqual(version_of(PYTHON_DIR), expected_digest(PYTHON_DIR / "dermcds_export"))

    def test_does_not_depend_on_where_the_sources_are(self):
        self.assertEqual(version_of(self.copy), version_of(PYTHON_DIR))

    def test_editing_export_py_changes_it(self):
        before = version_of(self.copy)
        export_py = self.copy / "dermcds_export" / "export.py"
        export_py.write_text(export_py.read_text() + "\n# an edit that changes no behaviour changes the version\n")
        after = version_of(self.copy)
        self.assertNotEqual(after, before)
        self.assertEqual(after, expected_digest(self.copy / "dermcds_export"))

    def test_a_new_module_changes_it(self):
        before = version_of(self.copy)
        (self.copy / "dermcds_export" / "new_module.py").write_text("VALUE = 1\n")
        self.assertNotEqual(version_of(self.copy), before)

    def test_bytecode_caches_do_not_change_it(self):
        before = version_of(self.copy)
        cache = self.copy / "dermcds_export" / "__pycache__"
        cache.mkdir()
        (cache / "export.cpython-311.pyc").write_bytes(b"\0" * 16)
        self.assertEqual(version_of(self.copy), before)

    def test_build_inputs_reports_it(self):
        # What `dermcds models build` (and so `make models`) reads to decide whether to rebuild.
        out = self.tmp / "inputs.json"
        checkpoint = self.tmp / "weights.pt"
        checkpoint.write_bytes(b"not read, only hashed")
        export_py = self.copy / "dermcds_export" / "export.py"
        export_py.write_text(export_py.read_text() + "\n# edited\n")
        subprocess.run([sys.executable, "-m", "dermcds_export", "build-inputs", "--arch", "mobilenet_v3_large",
                        "--checkpoint", str(checkpoint), "--out", str(out)],
                       cwd=self.copy, env={**os.environ, "PYTHONPATH": str(self.copy), "PYTHONDONTWRITEBYTECODE": "1"},
                       check=True, capture_output=True)
        recorded = json.loads(out.read_text())["exporter"]["version"]
        self.assertEqual(recorded, expected_digest(self.copy / "dermcds_export"))
        self.assertNotEqual(recorded, version_of(PYTHON_DIR))


if __name__ == "__main__":
    unittest.main()
