"""Two pms-derm-cds replicas sharing one repository behind nginx (docs/deploy.md), on loopback.

Under a bounded client load through nginx: version 2 is promoted with `dermcds models promote`
while both replicas serve version 1; each replica's --repository-poll-secs finds it, loads and
warms it up, then switches. Expected: no failed request, every answer names version 1 or 2, and
after both replicas report version 2, only 2. Then one replica is stopped with SIGTERM and
started again under load: still no failed request through nginx.

The package is the tiny test package (tests/core/make_tiny_packages.py), copied as versions 1 and
2 with the same weights: the answers differ only in the version they name, which is what is
checked. Bounded: at most a few hundred requests and 3 minutes.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SERVICE = os.environ.get("DERMCDS_SERVICE", "")
CLI = os.environ.get("DERMCDS_BIN", "")
TINY = os.environ.get("DERMCDS_TINY", "")
PHOTO = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Replica:
    def __init__(self, repository, workdir, name):
        self.repository, self.workdir, self.name = repository, workdir, name
        self.port = free_port()
        self.process = None

    def start(self):
        # The child holds its own descriptor of the log; ours is closed once it has started.
        with open(os.path.join(self.workdir, f"{self.name}.log"), "a") as log:
            self.process = subprocess.Popen(
                [SERVICE, "--repository", self.repository, "--model", "tiny", "--default-model", "tiny",
                 "--host", "127.0.0.1", "--port", str(self.port), "--repository-poll-secs", "1", "--no-banner",
                 "--max-queue-delay-ms", "1"],
                stdout=log, stderr=log)

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"replica {self.name} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"replica {self.name} did not become ready")

    def serving_version(self):
        for model in get_json(f"http://127.0.0.1:{self.port}/v1/models")["models"]:
            if model["name"] == "tiny":
                return model.get("active_version")
        return None

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        return self.process.returncode


class Load:
    """Client threads posting the photograph through nginx until stopped (or a request cap)."""

    def __init__(self, url, threads=3, cap=2000):
        self.url, self.cap = url, cap
        self.results, self.lock, self.stop_flag = [], threading.Lock(), threading.Event()
        with open(PHOTO, "rb") as f:
            self.body = f.read()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def loop(self):
        while not self.stop_flag.is_set():
            with self.lock:
                if len(self.results) >= self.cap:
                    return
            request = urllib.request.Request(self.url, data=self.body, headers={"Content-Type": "image/jpeg"})
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    outcome = (r.status, json.loads(r.read()).get("model_version"))
            except urllib.error.HTTPError as e:
                outcome = (e.code, None)
            except OSError as e:
                outcome = (f"error: {e}", None)
            with self.lock:
                self.results.append((time.monotonic(), *outcome))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)


@unittest.skipUnless(shutil.which("nginx"), "nginx is not installed (Debian package nginx)")
class TwoReplicasBehindNginx(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = self.tmp.name
        self.repository = os.path.join(t, "repository")
        source = os.path.join(TINY, "repository", "tiny", "1")
        for version in ("1", "2"):
            target = os.path.join(self.repository, "tiny", version)
            shutil.copytree(source, target)
            manifest_path = os.path.join(target, "manifest.json")
            with open(manifest_path) as f:
                manifest = json.load(f)
            manifest["version"] = version
            with open(manifest_path, "w") as f:
                json.dump(manifest, f, indent=2)
        with open(os.path.join(self.repository, "tiny", "ACTIVE"), "w") as f:
            f.write("1\n")
        self.replicas = [Replica(self.repository, t, "a"), Replica(self.repository, t, "b")]
        for r in self.replicas:
            r.start()
        for r in self.replicas:
            r.wait_ready()
        self.nginx_port = free_port()
        prefix = os.path.join(t, "nginx")
        os.makedirs(os.path.join(prefix, "logs"))
        servers = "\n".join(f"    server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;" for r in self.replicas)
        # Classification changes nothing on the server, so a POST whose replica went away may be
        # retried on the other one (non_idempotent).
        config = f"""
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  upstream derm {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{self.nginx_port};
    client_max_body_size 20m;
    # Bodies stay in memory: run as root, nginx's workers are 'nobody' and cannot write temporary
    # files under this test's private directory (they answered 500).
    client_body_buffer_size 20m;
    location / {{
      proxy_pass http://derm;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 2s;
    }}
  }}
}}
"""
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(config)
        # nginx's stderr goes to a file: a pipe nobody drains would stall it once full.
        with open(os.path.join(prefix, "stderr.log"), "w") as log:
            self.nginx = subprocess.Popen(["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf")],
                                          stdout=subprocess.DEVNULL, stderr=log)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.nginx_port}/v2/health/live", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.nginx_port}/v1/classify"

    def tearDown(self):
        self.nginx.terminate()
        self.nginx.wait(timeout=30)
        for r in self.replicas:
            r.stop()
        self.tmp.cleanup()

    def failures(self, results):
        return [r for r in results if r[1] != 200]

    def test_promotion_and_rolling_restart_under_load_lose_no_request(self):
        with Load(self.url) as load:
            time.sleep(2)
            promote = subprocess.run([CLI, "models", "promote", "tiny", "2", "--repository", self.repository],
                                     capture_output=True, text=True, timeout=120)
            self.assertEqual(promote.returncode, 0, promote.stderr)
            promoted_at = time.monotonic()
            end = promoted_at + 60
            while time.monotonic() < end and {r.serving_version() for r in self.replicas} != {"2"}:
                time.sleep(0.2)
            converged_at = time.monotonic()
            self.assertEqual({r.serving_version() for r in self.replicas}, {"2"}, "the replicas did not converge")
            time.sleep(2)
        results = list(load.results)
        self.assertGreater(len(results), 20)
        self.assertEqual(self.failures(results), [])
        self.assertTrue({v for _, _, v in results} <= {"1", "2"})
        self.assertIn("1", {v for _, _, v in results})
        after = [v for when, _, v in results if when > converged_at + 0.5]
        self.assertTrue(after and set(after) == {"2"}, f"answers after convergence: {set(after)}")
        self.convergence_s = converged_at - promoted_at

        # A rolling restart of one replica under load.
        with Load(self.url) as load:
            time.sleep(1)
            a = self.replicas[0]
            self.assertEqual(a.stop(), 0, "SIGTERM ends the replica cleanly")
            time.sleep(1)
            a.start()
            a.wait_ready()
            time.sleep(2)
        results = list(load.results)
        self.assertGreater(len(results), 10)
        self.assertEqual(self.failures(results), [])
        self.assertEqual({v for _, _, v in results}, {"2"})
        print(f"\nreplicas: promotion converged in {self.convergence_s:.1f} s; "
              f"requests through nginx: 0 failed", flush=True)


if __name__ == "__main__":
    unittest.main()
