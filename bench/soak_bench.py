#!/usr/bin/env python3
"""Soak benchmark (issue 13; not CI): pms-derm-cds under a steady load for a long time.

1. Saturation: --clients closed-loop keep-alive clients classify for --saturate-seconds; their
   rate is the saturated rate.
2. Soak: an open-loop schedule at --load-fraction of that rate (default 0.5) for --minutes
   (default 10): requests are due at fixed intervals whatever the answers' latency, sent by a
   pool of keep-alive clients.
The server's RSS (/proc/PID/status VmRSS) is sampled every --rss-interval seconds.

Goals (printed as PASS/FAIL, figures in docs/benchmarks.md): RSS growth after the first
minute (warm-up) <= 5%; 0 non-2xx answers; p99 latency of the last minute within 20% of the
first minute's.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from slow_clients_bench import read_response  # same folder: one HTTP/1.1 response reader


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="the pms-derm-cds binary")
    p.add_argument("--repository", required=True, help="model repository")
    p.add_argument("--model", default="derm-effnet-b4", help="model to serve and classify with")
    p.add_argument("--image", required=True, help="JPEG every request sends")
    p.add_argument("--clients", type=int, default=8, help="closed-loop clients when saturating (default 8)")
    p.add_argument("--saturate-seconds", type=float, default=30.0)
    p.add_argument("--load-fraction", type=float, default=0.5, help="fraction of the saturated rate (default 0.5)")
    p.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    p.add_argument("--rss-interval", type=float, default=5.0)
    p.add_argument("--server-arg", action="append", default=[], help="extra pms-derm-cds argument (repeatable)")
    p.add_argument("--json-out", help="also write the figures as JSON here")
    return p.parse_args()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


class Client:
    def __init__(self, port, raw):
        self.port, self.raw, self.sock = port, raw, None

    def classify(self):
        """(status, seconds); status -1 for a connection failure."""
        start = time.perf_counter()
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.sendall(self.raw)
            status, _ = read_response(self.sock)
        except (OSError, ConnectionError):
            if self.sock:
                self.sock.close()
            self.sock, status = None, -1
        return status, time.perf_counter() - start


def main():
    args = parse_args()
    work = tempfile.mkdtemp(prefix="soak-")
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "server.log"), "wb")
    cmd = [args.server, "--repository", args.repository, "--model", args.model, "--default-model", args.model,
           "--host", "127.0.0.1", "--port", "0", "--port-file", port_file, "--no-banner", "--log-level", "warn",
           *args.server_arg]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        port = None
        while time.time() < deadline and port is None:
            if server.poll() is not None:
                sys.exit(f"soak_bench: the server exited with {server.returncode}; see {log.name}")
            try:
                candidate = int(open(port_file).read())
                with socket.create_connection(("127.0.0.1", candidate), timeout=5) as s:
                    s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                    if read_response(s)[0] == 200:
                        port = candidate
            except (OSError, ValueError, ConnectionError):
                time.sleep(0.5)
        if port is None:
            sys.exit("soak_bench: the server did not become ready")
        body = open(args.image, "rb").read()
        raw = ((f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body)

        # 1. Saturation.
        done = [0] * args.clients
        stop_at = time.perf_counter() + args.saturate_seconds

        def saturate(i):
            c = Client(port, raw)
            while time.perf_counter() < stop_at:
                status, _ = c.classify()
                done[i] += status == 200
        threads = [threading.Thread(target=saturate, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        saturated = sum(done) / (time.perf_counter() - t0)
        rate = saturated * args.load_fraction
        print(f"saturated: {saturated:.2f} classifications/s; soaking at {rate:.2f}/s for {args.minutes} min",
              file=sys.stderr, flush=True)

        # 2. Soak: request k is due at start + k / rate.
        records = []  # (due offset s, status, latency s)
        lock = threading.Lock()
        duration = args.minutes * 60
        total = int(duration * rate)
        next_index = [0]
        start = time.perf_counter() + 1.0

        def soak():
            c = Client(port, raw)
            while True:
                with lock:
                    k = next_index[0]
                    next_index[0] += 1
                if k >= total:
                    return
                due = start + k / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                status, seconds = c.classify()
                # Latency from when the request was due: a server that falls behind shows it.
                latency = time.perf_counter() - due
                with lock:
                    records.append((k / rate, status, latency))
        pool = [threading.Thread(target=soak) for _ in range(max(2 * args.clients, 8))]
        rss = []
        for t in pool:
            t.start()
        while any(t.is_alive() for t in pool):
            rss.append((time.perf_counter() - start, rss_kib(server.pid)))
            time.sleep(args.rss_interval)
        for t in pool:
            t.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    non_2xx = sum(1 for _, status, _ in records if not 200 <= status < 300)
    first = [lat for t, _, lat in records if t < 60]
    last = [lat for t, _, lat in records if t >= duration - 60]
    p99_first, p99_last = percentile(first, 99) * 1e3, percentile(last, 99) * 1e3
    after_warmup = [kib for t, kib in rss if t >= 60]
    rss_warm = after_warmup[0] if after_warmup else float("nan")
    rss_end = rss[-1][1] if rss else float("nan")
    growth = (rss_end - rss_warm) / rss_warm if after_warmup else float("nan")
    drift = (p99_last - p99_first) / p99_first if first else float("nan")
    result = {
        "model": args.model, "clients": args.clients, "saturated_per_s": saturated, "soak_rate_per_s": rate,
        "minutes": args.minutes, "requests": len(records), "non_2xx": non_2xx,
        "p50_ms_all": percentile([r[2] for r in records], 50) * 1e3,
        "p99_ms_first_minute": p99_first, "p99_ms_last_minute": p99_last, "p99_drift": drift,
        "rss_mib_after_warmup": rss_warm / 1024, "rss_mib_end": rss_end / 1024,
        "rss_mib_max": max(k for _, k in rss) / 1024 if rss else float("nan"), "rss_growth": growth,
        "goals": {"rss_growth_le_5pct": growth <= 0.05, "zero_non_2xx": non_2xx == 0,
                  "p99_drift_le_20pct": drift <= 0.20},
    }
    for key, value in result.items():
        print(f"{key:22} {value}")
    print("soak_bench:", "PASS" if all(result["goals"].values()) else "FAIL", file=sys.stderr)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
