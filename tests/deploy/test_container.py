"""The container image of `make image` (deploy/container/Containerfile, docs/deploy.md).

Containers cannot be run with crun on our build machines (setrlimit is not permitted), so the
built image is mounted (`podman image mount`) and its entrypoint is run in a chroot, as the
image's non-root user, with a model repository bind-mounted at /models: it must answer
/v2/health/ready. Also checked from the image's config: user, STOPSIGNAL, entrypoint, and that
no model is baked in. Skipped with the reason where podman or the image is absent.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

IMAGE = os.environ.get("DERMCDS_IMAGE", "localhost/pms-derm-cds:1")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def grpc_health(port, stubs_dir):
    """grpc.health.v1.Health/Check for service "", through stubs generated from our proto files."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
    from protocol_conformance import generate_stubs
    generate_stubs(os.path.join(ROOT, "service", "grpc", "proto"), stubs_dir)
    import grpc
    import health_pb2
    import health_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def read_tail(path, chars=2000):
    return read_text(path)[-chars:]


def podman(*args, check=True):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {p.stderr}")
    return p


@unittest.skipUnless(shutil.which("podman"), "podman is not installed (Debian package podman)")
class ContainerImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if podman("image", "exists", IMAGE, check=False).returncode != 0:
            raise unittest.SkipTest(f"{IMAGE} is not built: run `make image` (docs/deploy.md)")
        cls.config = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]
        cls.mount = podman("image", "mount", IMAGE).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        podman("image", "unmount", IMAGE, check=False)

    def test_image_config(self):
        self.assertEqual(self.config.get("User"), "10001:10001")
        self.assertEqual(self.config.get("StopSignal"), "SIGTERM")
        self.assertEqual(self.config["Entrypoint"], ["/usr/bin/pms-derm-cds"])
        self.assertIn("/models", self.config.get("Volumes", {}))
        self.assertEqual(os.listdir(os.path.join(self.mount, "models")), [], "models are mounted, never baked in")
        for path in ("usr/bin/pms-derm-cds", "usr/lib/dermcds/libonnxruntime.so.1",
                     "usr/lib/dermcds/libtensorflowlite_c.so"):
            self.assertTrue(os.path.exists(os.path.join(self.mount, path)), path)
        self.assertFalse(os.path.exists(os.path.join(self.mount, "usr/bin/g++")), "no compiler in the runtime stage")

    def test_entrypoint_serves_ready_on_a_mounted_repository(self):
        repository = os.environ["DERMCDS_TEST_REPOSITORY"]
        with tempfile.TemporaryDirectory() as scratch:
            # The image's mount is read-only: bind a copy of the repository (the service may write
            # lock files when asked by admin calls) and a scratch /tmp into it.
            models = os.path.join(scratch, "models")
            shutil.copytree(repository, models, symlinks=True)
            tmp = os.path.join(scratch, "tmp")
            os.makedirs(tmp)
            os.chmod(tmp, 0o1777)
            subprocess.run(["chown", "-R", "10001:10001", models], check=True)
            binds = [(models, "models"), (tmp, "tmp")]
            mounted = []
            try:
                for source, target in binds:
                    subprocess.run(["mount", "--bind", source, os.path.join(self.mount, target)], check=True)
                    mounted.append(os.path.join(self.mount, target))
                argv = ["chroot", "--userspec=10001:10001", self.mount, *self.config["Entrypoint"],
                        "--repository=/models", "--host=127.0.0.1", "--port=0", "--port-file=/tmp/port",
                        "--grpc-port=0", "--grpc-port-file=/tmp/grpc-port", "--no-banner"]
                # stderr goes to a file, not a pipe: a pipe nobody drains fills up and stalls the
                # service, and reading one blocks until the process exits.
                log_path = os.path.join(scratch, "service.log")
                with open(log_path, "w") as log:
                    service = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, text=True)
                try:
                    ready = self._wait_ready(service, os.path.join(tmp, "port"), deadline_s=240)
                    if service.poll() is not None:
                        self.fail(f"the entrypoint exited ({service.returncode}): {read_tail(log_path)}")
                    self.assertEqual(ready, 200, read_tail(log_path))
                    # What the Deployment's gRPC startup probe asks (deploy/kubernetes/base).
                    grpc_port = int(read_text(os.path.join(tmp, "grpc-port")))
                    self.assertEqual(grpc_health(grpc_port, os.path.join(scratch, "stubs")), "SERVING")
                finally:
                    service.terminate()
                    try:
                        service.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        service.kill()
                        service.wait(timeout=30)
                self.assertEqual(service.returncode, 0, f"SIGTERM ends the service cleanly: {read_tail(log_path)}")
            finally:
                for path in reversed(mounted):
                    # A lazy unmount when the plain one is refused as busy, so that no bind mount
                    # outlives the test and keeps the image mounted.
                    if subprocess.run(["umount", path], check=False).returncode != 0:
                        subprocess.run(["umount", "--lazy", path], check=False)

    @staticmethod
    def _wait_ready(service, port_file, deadline_s):
        """The status of /v2/health/ready once the service has written its port, or None."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and service.poll() is None:
            text = read_text(port_file) if os.path.exists(port_file) else ""
            if text:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{int(text)}/v2/health/ready", timeout=2) as r:
                        return r.status
                except OSError:
                    pass
            time.sleep(1)
        return None


if __name__ == "__main__":
    unittest.main()
