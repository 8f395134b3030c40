#!/usr/bin/env python3
"""Slow-client benchmark (issue 13): liveness latency and classification throughput of
pms-derm-cds with and without N slow-header connections, for one or more server binaries
(e.g. the cpp-httplib build and the Boost.Beast build), alternating in rounds so that drift
on a shared machine hits every binary alike. One server runs at a time.

Slow clients each open a connection, send a request line and then one header line every
--slow-interval seconds, never ending the header; one that the server closes reconnects at
once, so N stay open (a slowloris attack). Figures per binary and phase: /v2/health/live
latency p50/p99/max over --probes probes (a probe unanswered within --probe-timeout counts as
that timeout), and classifications per second over --seconds with --clients keep-alive
clients. Output: a table, and --json-out for docs/benchmarks.md.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", action="append", required=True, metavar="LABEL=BINARY",
                   help="a pms-derm-cds binary to measure, with a label (repeatable)")
    p.add_argument("--repository", required=True, help="model repository the servers serve")
    p.add_argument("--model", default=None, help="model to load and classify with (default: the server's)")
    p.add_argument("--image", required=True, help="JPEG every classification sends")
    p.add_argument("--slow", type=int, default=200, help="slow-header connections (default 200)")
    p.add_argument("--slow-interval", type=float, default=1.0, help="seconds between a slow client's header lines")
    p.add_argument("--clients", type=int, default=4, help="concurrent classification clients")
    p.add_argument("--seconds", type=float, default=10.0, help="classification time per phase and round")
    p.add_argument("--probes", type=int, default=50, help="liveness probes per phase and round")
    p.add_argument("--probe-timeout", type=float, default=5.0, help="seconds a probe waits for its answer")
    p.add_argument("--rounds", type=int, default=2, help="rounds, alternating the binaries")
    p.add_argument("--json-out", help="also write the figures as JSON here")
    return p.parse_args()


def read_response(sock):
    """Reads one HTTP response with Content-Length; returns (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed within a body")
        rest += chunk
    return status, rest[:length]


class Server:
    def __init__(self, binary, repository, model, work):
        self.port_file = os.path.join(work, "port")
        args = [binary, "--repository", repository, "--host", "127.0.0.1", "--port", "0", "--port-file",
                self.port_file, "--no-banner", "--log-level", "warn"]
        if model:
            args += ["--model", model, "--default-model", model]
        self.log = open(os.path.join(work, "server.log"), "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{binary} exited with {self.process.returncode}; see {self.log.name}")
            try:
                self.port = int(open(self.port_file).read())
                status, _ = self.request(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
                if status == 200:
                    return
            except (OSError, ValueError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{binary} did not become ready")

    def request(self, raw, timeout):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(raw)
            return read_response(s)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class SlowClients:
    """N connections that never finish their header, reconnecting when closed."""

    def __init__(self, port, count, interval):
        self.port, self.interval, self.stop_flag = port, interval, threading.Event()
        self.sockets = [None] * count
        self.reconnects = 0
        for i in range(count):
            self.sockets[i] = self.connect()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        return s

    def run(self):
        n = 0
        while not self.stop_flag.wait(self.interval):
            for i, s in enumerate(self.sockets):
                n += 1
                try:
                    s.sendall(b"X-Slow-%d: 1\r\n" % n)
                except OSError:
                    s.close()
                    try:
                        self.sockets[i] = self.connect()
                        self.reconnects += 1
                    except OSError:
                        pass

    def close(self):
        self.stop_flag.set()
        self.thread.join()
        for s in self.sockets:
            s.close()


def probe_latencies(server, probes, timeout):
    out = []
    for _ in range(probes):
        start = time.perf_counter()
        try:
            status, _ = server.request(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout)
            out.append((time.perf_counter() - start) * 1e3 if status == 200 else timeout * 1e3)
        except (OSError, ConnectionError):
            out.append(timeout * 1e3)
        time.sleep(0.02)
    return out


def classify_throughput(server, image, clients, seconds, model):
    body = open(image, "rb").read()
    target = "/v1/classify" + (f"?model={model}" if model else "")
    raw = (f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
           .encode() + body)
    counts, failures = [0] * clients, [0] * clients
    deadline = time.perf_counter() + seconds

    def worker(i):
        s = None
        while time.perf_counter() < deadline:
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                s.sendall(raw)
                status, _ = read_response(s)
                if status == 200:
                    counts[i] += 1
                else:
                    failures[i] += 1
            except (OSError, ConnectionError):
                failures[i] += 1
                if s:
                    s.close()
                s = None
        if s:
            s.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start), sum(failures)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    args = parse_args()
    servers = [s.split("=", 1) for s in args.server]
    results = {label: {"quiet": {"probe_ms": [], "rate": [], "failures": 0},
                       "slow": {"probe_ms": [], "rate": [], "failures": 0, "reconnects": 0}} for label, _ in servers}
    for round_index in range(args.rounds):
        for label, binary in servers:
            with tempfile.TemporaryDirectory() as work:
                server = Server(binary, args.repository, args.model, work)
                try:
                    for phase in ("quiet", "slow"):
                        slow = SlowClients(server.port, args.slow, args.slow_interval) if phase == "slow" else None
                        try:
                            r = results[label][phase]
                            r["probe_ms"] += probe_latencies(server, args.probes, args.probe_timeout)
                            rate, failures = classify_throughput(server, args.image, args.clients, args.seconds,
                                                                 args.model)
                            r["rate"].append(rate)
                            r["failures"] += failures
                        finally:
                            if slow:
                                results[label][phase]["reconnects"] += slow.reconnects
                                slow.close()
                finally:
                    server.stop()
            print(f"round {round_index + 1}/{args.rounds}: {label} done", file=sys.stderr)
    summary = {"slow_connections": args.slow, "clients": args.clients, "seconds_per_phase": args.seconds * args.rounds,
               "probes_per_phase": args.probes * args.rounds, "probe_timeout_s": args.probe_timeout, "servers": {}}
    print(f"{'server':10} {'phase':6} {'live p50 ms':>11} {'p99 ms':>8} {'max ms':>8} {'classify/s':>11} {'failed':>7}")
    for label, _ in servers:
        entry = {}
        for phase in ("quiet", "slow"):
            r = results[label][phase]
            rate = statistics.mean(r["rate"])
            entry[phase] = {"live_p50_ms": percentile(r["probe_ms"], 50), "live_p99_ms": percentile(r["probe_ms"], 99),
                            "live_max_ms": max(r["probe_ms"]), "classify_per_s": rate, "failures": r["failures"]}
            print(f"{label:10} {phase:6} {entry[phase]['live_p50_ms']:11.1f} {entry[phase]['live_p99_ms']:8.1f} "
                  f"{entry[phase]['live_max_ms']:8.1f} {rate:11.2f} {r['failures']:7d}")
        entry["throughput_ratio_slow_vs_quiet"] = (entry["slow"]["classify_per_s"]
                                                   / max(1e-9, entry["quiet"]["classify_per_s"]))
        print(f"{label:10} throughput with slow clients / without: {entry['throughput_ratio_slow_vs_quiet']:.3f}")
        summary["servers"][label] = entry
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
