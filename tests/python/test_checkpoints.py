"""Loading users' checkpoints: what is accepted, and errors that name the problem."""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch
import torchvision

from dermcds_export import architectures, checkpoints
from dermcds_export.errors import CheckpointError, NotFound

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
ARCH = architectures.get("mobilenet_v3_small")


def reference_state():
    torch.manual_seed(3)
    return torchvision.models.mobilenet_v3_small(weights=None, num_classes=8).state_dict()


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def save(self, obj, name="ckpt.pt"):
        path = self.dir / name
        torch.save(obj, path)
        return path

    def assert_refused(self, path, *fragments):
        with self.assertRaises(CheckpointError) as caught:
            checkpoints.load_checkpoint(ARCH, path)
        for fragment in fragments:
            self.assertIn(fragment, str(caught.exception))

    def test_state_dict_is_loaded_exactly(self):
        state = reference_state()
        model = checkpoints.load_checkpoint(ARCH, self.save(state))
        self.assertFalse(model.training)
        for key, value in model.state_dict().items():
            self.assertTrue(torch.equal(value, state[key]), key)

    def test_common_wrappers_are_accepted(self):
        state = reference_state()
        for obj in ({"state_dict": state, "epoch": 3}, {"model_state_dict": state},
                    {f"module.{k}": v for k, v in state.items()}):
            model = checkpoints.load_checkpoint(ARCH, self.save(obj))
            self.assertTrue(torch.equal(model.state_dict()["classifier.3.weight"], state["classifier.3.weight"]))

    def test_missing_file(self):
        with self.assertRaisesRegex(NotFound, "does not exist"):
            checkpoints.load_checkpoint(ARCH, self.dir / "nope.pt")
        with self.assertRaisesRegex(NotFound, "is not a file"):
            checkpoints.load_checkpoint(ARCH, self.dir)

    def test_garbage_and_truncated_files(self):
        garbage = self.dir / "garbage.pt"
        garbage.write_bytes(b"this is not a checkpoint at all")
        self.assert_refused(garbage, "cannot be read as a PyTorch state_dict", str(garbage))
        whole = self.save(reference_state(), "whole.pt")
        truncated = self.dir / "truncated.pt"
        truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        self.assert_refused(truncated, "cannot be read")

    def test_whole_module_is_refused_with_a_hint(self):
        model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=8)
        self.assert_refused(self.save(model), "save model.state_dict()")

    def test_not_a_dict_of_tensors(self):
        self.assert_refused(self.save(torch.zeros(3)), "holds a Tensor, not a state_dict")
        self.assert_refused(self.save({"epoch": 4, "step": 1000}), "'epoch' is not a tensor but int")
        # torch 1.13's weights-only reader refuses Python floats: such training state is refused.
        self.assert_refused(self.save({"state": reference_state(), "lr": 0.1}), "save model.state_dict() on its own")
        self.assert_refused(self.save({}), "empty dict")

    def test_missing_and_unexpected_keys_are_named(self):
        state = reference_state()
        del state["features.0.0.weight"]
        state["extra.weight"] = torch.zeros(1)
        self.assert_refused(self.save(state), "1 missing key(s): features.0.0.weight",
                            "1 unexpected key(s): extra.weight", "mobilenet_v3_small")

    def test_other_architecture_is_refused(self):
        torch.manual_seed(0)
        state = torchvision.models.resnet18(weights=None, num_classes=8).state_dict()
        ours = set(torchvision.models.mobilenet_v3_small(weights=None, num_classes=8).state_dict())
        missing, unexpected = len(ours - set(state)), len(set(state) - ours)
        self.assert_refused(self.save(state), f"{missing} missing key(s): classifier.0.bias",
                            f"{unexpected} unexpected key(s): bn1.bias")

    def test_shape_mismatch_names_the_key(self):
        torch.manual_seed(0)
        state = torchvision.models.mobilenet_v3_small(weights=None).state_dict()  # 1000-class head
        self.assert_refused(self.save(state), "classifier.3.weight has shape [1000, 1024]", "expects [8, 1024]")

    def test_half_precision_checkpoint_is_converted(self):
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in reference_state().items()}
        model = checkpoints.load_checkpoint(ARCH, self.save(state))
        self.assertEqual(model.state_dict()["classifier.3.weight"].dtype, torch.float32)

    def test_cli_reports_a_bad_checkpoint_in_one_line_with_its_exit_status(self):
        env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
        state = reference_state()
        state["classifier.3.bias"] = torch.zeros(5)
        bad = self.save(state, "bad.pt")
        cases = [(self.dir / "missing.pt", 3, "does not exist"), (bad, 2, "classifier.3.bias has shape [5]")]
        for checkpoint, status, message in cases:
            result = subprocess.run(
                [sys.executable, "-m", "dermcds_export", "export", "--arch", "mobilenet_v3_small",
                 "--checkpoint", str(checkpoint), "--out", str(self.dir / "pkg"), "--name", "derm-test",
                 "--version", "1", "--check-dir", str(self.dir / "check")],
                env=env, capture_output=True, text=True)
            self.assertEqual(result.returncode, status, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertIn(str(checkpoint), result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertFalse((self.dir / "pkg" / "model.onnx").exists())


if __name__ == "__main__":
    unittest.main()
