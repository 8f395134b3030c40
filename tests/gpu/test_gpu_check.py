"""scripts/gpu-check.sh on a machine without a GPU (docs/edge.md, "The GPU check").

What a CPU can show of the check: the report says there is no GPU and why; the CPU figures come
from a real classify_bench run; the fallback step really answers on the CPU with the CUDA reason
listed; and with a stand-in nvidia-smi and a stand-in GPU build of onnxruntime (whose CUDA
provider library cannot load), the check tries CUDA and reports that it fell back, as a
failure, instead of reporting CPU figures as CUDA ones.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gpu-check.sh")


class GpuCheckWithoutGpu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        cls.carry = os.path.join(t, "carry")
        os.makedirs(os.path.join(cls.carry, "bin"))
        for var, name in (("DERMCDS_BIN", "dermcds"), ("DERMCDS_CLASSIFY_BENCH", "classify_bench")):
            os.symlink(os.environ[var], os.path.join(cls.carry, "bin", name))
        cls.package = os.path.join(os.environ["DERMCDS_TINY"], "repository", "tiny", "1")
        cls.images = os.path.join(t, "images")
        os.makedirs(cls.images)
        for photo in ("chelsea.png", "coffee.png"):
            os.symlink(os.path.join(os.environ["DERMCDS_PHOTOS"], photo), os.path.join(cls.images, photo))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, name, env=None):
        out = os.path.join(self.tmp.name, name + ".json")
        argv = [SCRIPT, "run", "--carry", self.carry, "--package", self.package, "--images", self.images,
                "--out", out, "--work", os.path.join(self.tmp.name, name + "-work"), "--iterations", "5",
                "--python", sys.executable]
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        self.assertTrue(os.path.exists(out), p.stderr)
        with open(out) as f:
            return p.returncode, json.load(f)

    def test_no_gpu_reported_with_cpu_figures_and_a_real_fallback(self):
        env = dict(os.environ, PATH="/usr/bin:/bin")  # no nvidia-smi here
        rc, report = self.check("plain", env)
        self.assertEqual(rc, 0, report["summary"]["failures"])
        self.assertFalse(report["gpu"]["present"])
        self.assertIn("nvidia-smi", report["gpu"]["reason"])
        self.assertFalse(report["onnxruntime_choice"]["usable"])
        cpu = report["summary"]["figures"]["cpu_fp32"]
        self.assertEqual(cpu["provider"], "cpu")
        self.assertGreater(cpu["first_inference_ms"], 0)
        self.assertGreater(cpu["batch8_images_per_second"], 0)
        self.assertNotIn("cuda_fp32", report["summary"]["figures"])
        steps = [n["step"] for n in report["not_run"]]
        self.assertIn("cuda_fp32, parity", steps)
        self.assertIn("tensorrt", steps)
        fallback = report["summary"]["figures"]["fallback"]
        self.assertEqual(fallback["answered_on"], "cpu")
        self.assertTrue(any(f.startswith("cuda:") for f in fallback["fallbacks"]), fallback)

    def test_a_gpu_build_that_cannot_load_is_a_failure_not_a_cuda_figure(self):
        t = self.tmp.name
        bin_dir = os.path.join(t, "fake-bin")
        os.makedirs(bin_dir)
        smi = os.path.join(bin_dir, "nvidia-smi")
        with open(smi, "w") as f:
            f.write("#!/bin/sh\necho 'NVIDIA H200, 580.159.03, 143771 MiB, 9.0'\n")
        os.chmod(smi, os.stat(smi).st_mode | stat.S_IEXEC)
        # A stand-in onnxruntime Python package of our core's version that claims the CUDA
        # provider; its provider library is not a shared object, so ONNX Runtime cannot load it.
        site = os.path.join(t, "fake-site")
        capi = os.path.join(site, "onnxruntime", "capi")
        os.makedirs(capi)
        with open(os.path.join(site, "onnxruntime", "__init__.py"), "w") as f:
            f.write("__version__ = '1.30.0'\n"
                    "def get_available_providers():\n"
                    "    return ['CUDAExecutionProvider', 'CPUExecutionProvider']\n")
        for lib in ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"):
            with open(os.path.join(capi, lib), "w") as f:
                f.write("not a shared library\n")
        env = dict(os.environ, PATH=bin_dir + ":/usr/bin:/bin", PYTHONPATH=site)
        rc, report = self.check("fake-gpu", env)
        self.assertTrue(report["gpu"]["present"])
        self.assertEqual(report["gpu"]["gpus"][0]["name"], "NVIDIA H200")
        self.assertTrue(report["onnxruntime_choice"]["usable"], report["onnxruntime_choice"])
        self.assertEqual(rc, 1)
        cuda = report["summary"]["figures"]["cuda_fp32"]
        self.assertEqual(cuda["provider"], "cpu")
        self.assertTrue(any("cuda_fp32 ran on cpu" in f for f in report["summary"]["failures"]),
                        report["summary"]["failures"])


if __name__ == "__main__":
    unittest.main()
