#!/usr/bin/env python3
"""Purge fan-out benchmark (issue 16): how long from `POST /purge` on one node until the
purged object is gone on every node of a three-node cluster sharing purges through a real
`nats-server -js`, all on loopback.

For each of N purges (default 1,000): a distinct URL is filled on all three nodes (a miss,
then stored), then the purge is sent to one node (round robin) and each node is asked for
the URL with `Cache-Control: only-if-cached` until it answers 504 (nothing stored). The
figure of one purge is the time from sending the POST until the last node answered 504
(so it includes the POST's own round trip and JetStream's acknowledgement, and the polling
step, which is a few tens of microseconds). Reported: p50, p90, p99 and max, and each node's
own lag histogram (JetStream's timestamp to application) from its metrics.

    benches/fleet/purge.py [--purges 1000] [--out DIR]

Results go to benches/results/<date>-<host>/fleet.md (or --out). Binds only 127.0.0.1;
every process it starts is stopped on exit, and its directories are removed.
"""

import argparse
import datetime
import http.client
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("load_harness", os.path.join(ROOT, "benches", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

HOST = "localhost"
TOKEN = "bench-token"
NODES = 3


def node_conf(work, k, port, admin, nats_port, demo_port):
    """Node k's config: the cluster "bench" on nats_port, one region on the demo origin that
    node 0 runs."""
    path = os.path.join(work, f"node-{k}.toml")
    demo = f'[demo]\norigins = ["127.0.0.1:{demo_port}"]\n' if k == 0 else ""
    with open(path, "w") as f:
        f.write(f"""
[node]
name = "node-{k}"
location = {{ lat = 53.35, lon = -6.26 }}
threads = 1
[listen]
http = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
[admin]
token = "{TOKEN}"
[cluster]
name = "bench"
nats = ["nats://127.0.0.1:{nats_port}"]
[log]
access = "off"
{demo}
[[regions]]
name = "local"
location = {{ lat = 53.35, lon = -6.26 }}
origins = ["127.0.0.1:{demo_port}"]
[regions.health_check]
kind = "tcp"
[[sites]]
name = "bench"
hosts = ["{HOST}"]
[[sites.routes]]
path = "/"
""")
    return path


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def request(self, method, target, headers=None):
        h = {"Host": HOST}
        h.update(headers or {})
        self.c.request(method, target, headers=h)
        r = self.c.getresponse()
        body = r.read()
        return r.status, body


def wait_subscribed(admin_port, deadline):
    while time.monotonic() < deadline:
        try:
            status = json.loads(load.fetch(f"http://127.0.0.1:{admin_port}/status")[2])
            if status["cluster"]["purges"]["subscribed"]:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"node on admin port {admin_port} never subscribed to the purge stream")


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def lag_histogram(admin_port):
    text = load.fetch(f"http://127.0.0.1:{admin_port}/metrics")[2].decode()
    buckets = {}
    count = 0
    for line in text.splitlines():
        if line.startswith("meridian_cluster_purge_lag_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("meridian_cluster_purge_lag_seconds_count"):
            count = float(line.rsplit(" ", 1)[1])
    return buckets, count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--purges", type=int, default=1000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    binary, procs, work = load.prepare("fleet", ["nats-server"], "apt-get install nats-server")
    try:
        nats_port = load.free_port()
        procs.start(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nats_port),
                     "-sd", os.path.join(work, "nats")],
                    stdout=open(os.path.join(work, "nats.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", nats_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("nats-server did not start")
                time.sleep(0.05)
        demo_port = load.free_port()
        nodes = []
        for k in range(NODES):
            port, admin = load.free_port(), load.free_port()
            conf = node_conf(work, k, port, admin, nats_port, demo_port)
            log = open(os.path.join(work, f"node-{k}.log"), "w")
            procs.start([binary, "serve", "--config", conf, "--upgrade-sock",
                         os.path.join(work, f"upgrade-{k}.sock")],
                        stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "warn"})
            nodes.append((port, admin))
        for port, admin in nodes:
            load.wait_http(f"http://127.0.0.1:{admin}/healthz")
            wait_subscribed(admin, time.monotonic() + 30)
        load.wait_http(f"http://127.0.0.1:{nodes[0][0]}/", host=HOST)

        edges = [Conn(port) for port, _ in nodes]
        admins = [Conn(admin) for _, admin in nodes]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        cached = {"Cache-Control": "only-if-cached"}
        times = []
        polls = 0
        for i in range(args.purges):
            target = f"/static/style.css?purge={i}"
            for e in edges:
                status, _ = e.request("GET", target)
                assert status == 200, f"fill {target}: {status}"
                status, _ = e.request("GET", target, cached)
                assert status == 200, f"{target} not stored: {status}"
            on = admins[i % NODES]
            url = f"http://{HOST}{target}"
            started = time.perf_counter()
            status, body = on.request("POST", f"/purge?url={url}", auth)
            assert status == 200, f"purge {i}: {status} {body!r}"
            left = list(edges)
            while left:
                still = []
                for e in left:
                    polls += 1
                    status, _ = e.request("GET", target, cached)
                    if status == 200:
                        still.append(e)
                    else:
                        assert status == 504, f"poll: {status}"
                left = still
                if time.perf_counter() - started > 10:
                    raise SystemExit(f"purge {i} not applied everywhere within 10 s")
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50, p90, p99 = (percentile(times, p) for p in (50, 90, 99))
        lags = [lag_histogram(admin) for _, admin in nodes]
        summary = render(args.purges, p50, p90, p99, times[-1], polls, lags)
        print(summary)
        out = args.out or os.path.join(ROOT, "benches", "results",
                                       f"{datetime.date.today()}-{socket.gethostname()[:12]}")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "fleet.md"), "w") as f:
            f.write(summary)
        print(f"\nwritten to {os.path.join(out, 'fleet.md')}")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def render(n, p50, p90, p99, worst, polls, lags):
    lines = [
        "# Purge fan-out: POST /purge on one node to gone on all three",
        "",
        f"`benches/fleet/purge.py --purges {n}` at commit {load.git_commit()}, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: three Meridian "
        "nodes (release build, one proxy thread each) and one `nats-server -js` "
        f"({nats_version()}), all on loopback on this machine; each purge a distinct URL, "
        "filled on all three nodes first, purged on the nodes in turn.",
        "",
        "| purge to gone on every node | ms |",
        "|---|---|",
        f"| p50 | {p50:.2f} |",
        f"| p90 | {p90:.2f} |",
        f"| p99 | {p99:.2f} |",
        f"| max | {worst:.2f} |",
        "",
        f"Issue 16's target: p99 <= 50 ms. {polls} only-if-cached polls in all "
        f"({polls / n:.1f} per purge).",
        "",
        "Each node's own lag (JetStream's timestamp to the purge applied there, "
        "`meridian_cluster_purge_lag_seconds`), share of its purges within each bound:",
        "",
        "| node | purges from the stream | <= 1 ms | <= 2.5 ms | <= 5 ms | <= 10 ms | <= 50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, (buckets, count) in enumerate(lags):
        share = lambda le: f"{100 * buckets.get(le, 0) / count:.1f} %" if count else "-"
        lines.append(f"| node-{k} | {count:.0f} | {share('0.001')} | {share('0.0025')} | "
                     f"{share('0.005')} | {share('0.01')} | {share('0.05')} |")
    lines.append("")
    lines.append("A node's own purges are applied before they are published: they do not enter "
                 "its lag histogram (its count is the others' purges).")
    return "\n".join(lines) + "\n"


def nats_version():
    try:
        return subprocess.run(["nats-server", "--version"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        return "nats-server"


if __name__ == "__main__":
    main()
