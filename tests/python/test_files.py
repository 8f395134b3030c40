"""Durable replacement (dermcds_export.files): the data reaches the disk before the rename, the
rename before the call returns, and a failure leaves the old file as it was."""

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from dermcds_export import files


class FilesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.events = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd):
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            return real_fsync(fd)

        def replace(src, dst):
            self.events.append(("replace", str(Path(src).resolve()), str(Path(dst).resolve())))
            return real_replace(src, dst)

        patches = [mock.patch.object(files.os, "fsync", fsync), mock.patch.object(files.os, "replace", replace)]
        for p in patches:
            p.start()
            self.addCleanup(p.stop)

    def tearDown(self):
        self.tmp.cleanup()

    def test_text_is_synced_then_renamed_then_the_directory_synced(self):
        target = self.dir / "evaluation.json"
        target.write_text("old\n")
        files.write_text_atomically(target, "new\n")
        self.assertEqual(target.read_text(), "new\n")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["evaluation.json"])
        kinds = [e[0] for e in self.events]
        self.assertEqual(kinds, ["fsync", "replace", "fsync"])
        temporary = self.events[1][1]
        self.assertEqual(self.events[0][1], temporary)  # the data of the file that is renamed
        self.assertEqual(self.events[1][2], str(target.resolve()))
        self.assertEqual(self.events[2][1], str(self.dir.resolve()))

    def test_a_failed_write_leaves_the_old_file_and_no_temporary(self):
        target = self.dir / "synth.json"
        target.write_text("old\n")
        with mock.patch.object(files.os, "fsync", side_effect=OSError(28, "No space left on device")):
            with self.assertRaises(OSError):
                files.write_text_atomically(target, "new\n")
        self.assertEqual(target.read_text(), "old\n")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["synth.json"])

    def test_a_directory_is_synced_file_by_file_before_it_replaces_the_old_one(self):
        staging = self.dir / ".set.tmp"
        (staging / "sub").mkdir(parents=True)
        (staging / "a.png").write_bytes(b"a")
        (staging / "sub" / "b.png").write_bytes(b"b")
        out = self.dir / "set"
        files.replace_durably(staging, out)
        self.assertEqual((out / "sub" / "b.png").read_bytes(), b"b")
        replace_at = [e[0] for e in self.events].index("replace")
        synced_before = {e[1] for e in self.events[:replace_at]}
        for name in ("a.png", "sub/b.png", "sub", ""):
            self.assertIn(str((staging / name).resolve()), synced_before, name)
        self.assertEqual(self.events[-1], ("fsync", str(self.dir.resolve())))


if __name__ == "__main__":
    unittest.main()
