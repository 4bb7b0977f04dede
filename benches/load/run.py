#!/usr/bin/env python3
"""Load benchmark: Meridian against nginx in the same role, in the same run, on loopback.

An nginx static origin serves test objects. Meridian (release build) and nginx with
proxy_cache front the same origin; each server is pinned to CPU 0 with one worker, and wrk
runs on CPU 1. Rounds interleave the servers so drift on a shared machine hits both alike.
For each scenario it reports req/s, p50, p99, server CPU microseconds per request (from
/proc/PID/stat) and the Meridian / nginx ratio, and whether wrk was the bottleneck (then
compare CPU per request, not req/s). Hit scenarios check that the origin saw no request.

    benches/load/run.py                 # full run: 5 rounds x 10 s, every scenario
    benches/load/run.py --gate          # CI gate: short rounds, ceilings, fills, peak, memory

Besides the scenarios against nginx, "hits under fills" measures Meridian alone (node.threads
= 1): its 1 KiB hit p99 with no other work, under paced fills of distinct 4 MiB JavaScript
files on a plain route, and under the same fills on a minify + compress route (issue 13).

Results go to benches/results/<date>-<host>/{raw.csv,summary.md} (not with --gate, unless
--out is given). Binds only 127.0.0.1; every process it starts is stopped on exit.
"""

import argparse
import csv
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "bench.local"

# name -> (path, cached?)
SCENARIOS = {
    "hit-1k": ("/obj/1k.bin", True),
    "hit-64k": ("/obj/64k.bin", True),
    "hit-1m": ("/obj/1m.bin", True),
    "proxy-1k": ("/dyn/1k.bin", False),
}
SIZES = {"1k.bin": 1024, "64k.bin": 64 * 1024, "1m.bin": 1024 * 1024}

# Gate ceilings on Meridian / nginx server CPU per request, one per scenario, each set about
# 15 % above the highest value gate runs measured (benches/results/2026-12-01-vm/gate.md has
# the runs they come from). Tighten as the code gets faster; loosen only with the runs that
# show the host, not the code, moved (gate.md, "Re-based").
# History of hit-1k: 1.25 (issue 3), 1.0 (gate runs 0.60-0.80), then per-scenario ceilings
# 0.93 / 1.05 / 0.78 / 1.57 from runs on a quiet host, re-based when the same binary of an
# older commit read proxy-1k 1.24 then and 1.66 on the busier host. hit-64k 1.16 -> 1.0 when a
# response's header and body began to leave in one write (2026-12-02: 0.91 -> 0.78 in gate
# runs; x1.11 for a busy host, as that re-basing measured on 64 KiB, then +15 %).
GATE_CPU_RATIO = {"hit-1k": 1.03, "hit-64k": 1.0, "hit-1m": 0.84, "proxy-1k": 2.23}
# Hit p99 under minify + br fills over hit p99 under the same plain fills (issue 13's 2.0,
# applied to the fills' own cost as the baseline). Not +15 % over the measured 0.75: single
# rounds of this p99 ratio ranged 0.16-0.99, a tighter ceiling would fail on noise alone.
GATE_FILL_P99_RATIO = 2.0
# Meridian's RSS may exceed its cache bound by at most this. Measured (fills of distinct 1 MiB
# objects into the 64 MiB cache): 40 MiB at start (binary, libraries, runtime), then a plateau
# of 114-121 MiB above the bound from 2x to 12x the bound in fills, no growth after 2x: the
# allocator keeps the segments of evicted bodies for reuse rather than returning them. The
# margin is that plateau plus 15 %, as the CPU ceilings are set (a clean-clone CI run read
# 180.8 MiB, 116.8 over the bound).
GATE_RSS_OVERHEAD_MIB = 140
CACHE_MEMORY_MIB = 64
# The memory check fills the cache to this many times its bound.
GATE_FILL_FACTOR = 4
# Small objects: RSS over idle / the bytes the memory tier weighs, for a tier of 1 KiB objects.
# Measured 1.09 (small-objects-rss.md; 4.1 before stored headers let go of their read
# buffers), plus 15 %.
GATE_SMALL_OBJECTS_RSS_RATIO = 1.25
# About what the memory tier weighs one stored 1 KiB object of the origin's nine fields at.
SMALL_OBJECT_WEIGHT = 3 * 1024

# Hits under fills: this many clients each start a fill of a distinct FILL_JS_MIB JavaScript
# file every FILL_INTERVAL seconds (8 x 4 MiB / 0.25 s = 128 MiB/s of misses, a busy edge's
# miss traffic at about 1 Gbit/s). Such fills slow hits on one proxy thread whatever it does
# with them (nginx alike), so the gate compares minify + br fills with the same fills on a
# plain route: the difference is the cost of whole-body work to hits.
FILL_CLIENTS = 8
FILL_JS_MIB = 4
FILL_INTERVAL = 0.25


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, host=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers={"Host": host} if host else {})
            with urllib.request.urlopen(req, timeout=1) as r:
                r.read()
                return
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def fetch(url, host=HOST, headers=None, timeout=5):
    h = {"Host": host}
    h.update(headers or {})
    req = urllib.request.Request(url, headers=h)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def cpu_ticks(pids):
    """CPU ticks used so far by each pid that still exists (nginx's cache loader exits)."""
    ticks = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        # utime and stime are fields 14 and 15 of stat; after the ")" split they are 11, 12.
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


class Procs:
    """Starts processes and stops all of them on exit, whatever happens."""

    def __init__(self):
        self.procs = []
        # Directories outside the work directory (nginx's tmpfs cache), removed at the end.
        self.cleanup = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        """Stops one process this started (and its process group)."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def stop_all(self):
        for p in self.procs:
            self.stop(p)
        for d in self.cleanup:
            shutil.rmtree(d, ignore_errors=True)


def nginx_conf(prefix, body):
    return f"""
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    sendfile on;

    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{body}
}}
"""


def start_origin(procs, work, port):
    prefix = os.path.join(work, "origin")
    os.makedirs(os.path.join(prefix, "www", "obj"))
    os.makedirs(os.path.join(prefix, "www", "dyn"))
    for name, size in SIZES.items():
        data = os.urandom(size)
        for d in ("obj", "dyn"):
            with open(os.path.join(prefix, "www", d, name), "wb") as f:
                f.write(data)
    # Real JavaScript for the fill scenario: jQuery, repeated to FILL_JS_MIB.
    os.makedirs(os.path.join(prefix, "www", "js"))
    with open(os.path.join(ROOT, "benches", "minify", "corpus", "jquery-3.7.1.js"), "rb") as f:
        jquery = f.read()
    with open(os.path.join(prefix, "www", "js", "big.js"), "wb") as f:
        f.write(jquery * (FILL_JS_MIB * 2**20 // len(jquery) + 1))
    body = f"""
    access_log {prefix}/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        location /obj/ {{
            types {{ application/octet-stream bin; image/jpeg jpg; image/webp webp; }}
            add_header Cache-Control "public, max-age=3600";
        }}
        location /dyn/ {{ add_header Cache-Control "no-store"; }}
        location /js/ {{
            types {{ application/javascript js; }}
            add_header Cache-Control "public, max-age=3600";
        }}
        location /plainjs/ {{
            alias {prefix}/www/js/;
            types {{ application/javascript js; }}
            add_header Cache-Control "public, max-age=3600";
        }}
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(prefix, body))
    # The origin shares CPU 1 with wrk: only the uncached scenario uses it.
    p = procs.start(["taskset", "-c", "1", "nginx", "-p", prefix, "-c", conf],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/obj/1k.bin")
    return p, os.path.join(prefix, "access.log")


def start_nginx_proxy(procs, work, port, origin_port, access_log):
    prefix = os.path.join(work, "nginx")
    os.makedirs(prefix)
    # nginx's strongest fair setup: its cache on tmpfs (memory, as Meridian's), and open
    # cache files' descriptors kept between requests.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    cache_dir = tempfile.mkdtemp(prefix="meridian-bench-nginx-cache-", dir=shm)
    os.chmod(cache_dir, 0o755)
    log = f"{prefix}/access.log" if access_log else "off"
    body = f"""
    access_log {log};
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    proxy_cache_path {cache_dir} keys_zone=edge:16m max_size={CACHE_MEMORY_MIB}m inactive=1h;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        location / {{ proxy_pass http://origin; proxy_cache edge; }}
        location /dyn/ {{ proxy_pass http://origin; }}
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(prefix, body))
    p = procs.start(["taskset", "-c", "0", "nginx", "-p", prefix, "-c", conf],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.cleanup.append(cache_dir)
    wait_http(f"http://127.0.0.1:{port}/obj/1k.bin", host=HOST)
    return p


def prepare(name, tools, hint):
    """A bench's start: the tools it needs are there, the release binary is built; returns
    the binary, a process keeper and a work directory readable by nginx's workers."""
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed ({hint})")
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "meridian"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix=f"meridian-{name}-bench-")
    os.chmod(work, 0o755)
    return os.path.join(ROOT, "target", "release", "meridian"), Procs(), work


def meridian_conf(work, port, admin, origin_port, *, access="off", listen="", site="",
                  routes='[[sites.routes]]\npath = "/"\ncache = true\n', extra=""):
    """Writes the benches' Meridian config (one node, one region "local" in front of
    `origin_port`, one site on HOST) to work/meridian.toml; the keyword parts add to it."""
    conf = os.path.join(work, "meridian.toml")
    with open(conf, "w") as f:
        f.write(f"""
[node]
name = "bench"
location = {{ lat = 53.35, lon = -6.26 }}
threads = 1
[listen]
http = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
{listen}
[cache]
memory = "{CACHE_MEMORY_MIB}MiB"
max_object = "8MiB"
[log]
access = "{access}"
[[regions]]
name = "local"
location = {{ lat = 53.35, lon = -6.26 }}
origins = ["127.0.0.1:{origin_port}"]
[regions.health_check]
kind = "tcp"
[[sites]]
name = "bench"
hosts = ["{HOST}"]
{site}
{routes}
{extra}""")
    return conf


def start_meridian(procs, work, binary, port, admin, origin_port, access_log, extra=""):
    access = os.path.join(work, "meridian-access.log") if access_log else "off"
    routes = ('[[sites.routes]]\npath = "/"\ncache = true\n'
              '[[sites.routes]]\npath = "/dyn/"\ncache = false\n'
              '[[sites.routes]]\npath = "/js/"\ncache = true\nminify = true\ncompress = true\n'
              '[[sites.routes]]\npath = "/plainjs/"\ncache = true\n')
    conf = meridian_conf(work, port, admin, origin_port, access=access, routes=routes, extra=extra)
    p = spawn_meridian(procs, work, binary, conf)
    wait_http(f"http://127.0.0.1:{admin}/healthz")
    wait_http(f"http://127.0.0.1:{port}/obj/1k.bin", host=HOST)
    return p


def spawn_meridian(procs, work, binary, conf):
    """Meridian on `conf`, pinned to CPU 0, logging warnings to work/meridian.log."""
    log = open(os.path.join(work, "meridian.log"), "w")
    return procs.start(["taskset", "-c", "0", binary, "serve", "--config", conf],
                       stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "RUST_LOG": "warn"})


def start_bare_pingora(procs, work, origin_port):
    """pingora proxying to the origin with nothing else (benches/load/bare_pingora.rs), on
    CPU 0 as the other servers; returns (port, process)."""
    subprocess.run(["cargo", "build", "--release", "--locked", "--example", "bare_pingora"],
                   cwd=ROOT, check=True)
    port = free_port()
    log = open(os.path.join(work, f"bare-pingora-{port}.log"), "w")
    p = procs.start(["taskset", "-c", "0", os.path.join(ROOT, "target", "release", "examples", "bare_pingora"),
                     f"127.0.0.1:{port}", f"127.0.0.1:{origin_port}"],
                    stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "RUST_LOG": "warn"})
    wait_http(f"http://127.0.0.1:{port}/dyn/1k.bin", host=HOST)
    return port, p


WRK_LAT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, conns, seconds, extra_headers=(), script=None):
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-H", f"Host: {HOST}"]
    for h in extra_headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    args.append(url)
    start = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    if p.returncode != 0:
        raise SystemExit(f"wrk failed:\n{out}")
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    requests = int(m.group(1)) if m else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p_: to_ms(v, u) for p_, v, u in WRK_LAT.findall(out)}
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    client_cpu = (usage.ru_utime + usage.ru_stime) / wall
    return {"requests": requests, "rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "errors": errors, "client_cpu": client_cpu, "raw": out}


class ServerDied(Exception):
    pass


def measure(server, url, server_pids, conns, seconds, extra_headers=(), script=None):
    main_pid = server_pids[0]
    before = cpu_ticks(server_pids)
    r = run_wrk(url, conns, seconds, extra_headers, script)
    after = cpu_ticks(server_pids)
    if main_pid not in after:
        raise ServerDied(f"{server} exited during the run")
    ticks = sum(after[p] - before[p] for p in before if p in after)
    cpu_us = ticks / CLK_TCK * 1e6
    r["server"] = server
    r["cpu_us_per_req"] = cpu_us / r["requests"] if r["requests"] else float("nan")
    return r


def unusable(r):
    """Why a measurement cannot be used (no request parsed, a NaN), or None."""
    if not r["requests"]:
        return "wrk parsed no request"
    for k in ("rps", "p99_ms", "cpu_us_per_req"):
        v = r.get(k)
        if v is None or v != v:
            return f"{k} is {v}"
    return None


def hits_under_fills(port, pids, conns, seconds, tag, interval, fill_path):
    """Meridian's 1 KiB hit latency while FILL_CLIENTS clients fill distinct 4 MiB JavaScript
    files under `fill_path` (one every `interval` s each). Returns (hits, fills completed,
    fill errors)."""
    url = f"http://127.0.0.1:{port}/obj/1k.bin"
    stop = threading.Event()
    done, errors = [0], []

    def filler(k):
        i = 0
        next_start = time.monotonic()
        while not stop.is_set():
            # Paced: a new fill every `interval`, or at once when the last one took longer.
            if stop.wait(max(0.0, next_start - time.monotonic())):
                break
            next_start += interval
            i += 1
            try:
                status, _, body = fetch(f"http://127.0.0.1:{port}{fill_path}big.js?fill={tag}-{k}-{i}",
                                        headers={"Accept-Encoding": "br"}, timeout=60)
                if status != 200 or not body:
                    errors.append(f"fill {k}-{i}: status {status}, {len(body)} bytes")
                done[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
                errors.append(f"fill {k}-{i}: {e}")

    fillers = [threading.Thread(target=filler, args=(k,), daemon=True) for k in range(FILL_CLIENTS)]
    for t in fillers:
        t.start()
    try:
        busy = measure("meridian", url, pids, conns, seconds)
    finally:
        stop.set()
        for t in fillers:
            t.join(timeout=120)
    return busy, done[0], errors


def origin_requests(log_path):
    """Requests the origin received for benchmark objects (health checks are not counted)."""
    with open(log_path) as f:
        return sum(1 for line in f if '"GET /obj/' in line or '"GET /dyn/' in line)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "unknown"
    except FileNotFoundError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gate", action="store_true", help="short CI run with thresholds and a peak test")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 10, gate 3)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--scenarios", help="comma-separated subset of " + ",".join(SCENARIOS))
    ap.add_argument("--binary", help="meridian binary (default: build target/release/meridian)")
    ap.add_argument("--compare", metavar="BINARY",
                    help="also run this second meridian build (as meridian-b), interleaved, for before/after")
    ap.add_argument("--tracing", metavar="RATIO", type=float,
                    help="also run meridian-b (this binary, or --compare's) with [tracing] at this "
                         "sample_ratio, exporting to a sink in this script; its CPU per request "
                         "over meridian's is tracing's cost (issue 17)")
    ap.add_argument("--out", help="results directory (default benches/results/<date>-<host>)")
    ap.add_argument("--access-log", action="store_true",
                    help="both proxies write an access log to a file (default: off for both)")
    ap.add_argument("--no-fills", action="store_true", help="skip the hits-under-fills scenario")
    ap.add_argument("--fill-interval", type=float, default=FILL_INTERVAL,
                    help="seconds between the fills each fill client starts (0: back to back)")
    ap.add_argument("--perf", metavar="FILE",
                    help="record a cpu-clock profile of the first run of --perf-server into FILE (perf report -i FILE)")
    ap.add_argument("--bare-pingora", action="store_true",
                    help="also run pingora proxying with nothing else (benches/load/bare_pingora.rs) "
                         "in the uncached scenario: the floor of Meridian's proxy path")
    ap.add_argument("--perf-server", choices=("meridian", "nginx", "pingora"), default="meridian",
                    help="the server --perf profiles (nginx: all its processes)")
    args = ap.parse_args()
    rounds = args.rounds or 5
    duration = args.duration or (3 if args.gate else 10)
    scenarios = args.scenarios.split(",") if args.scenarios else (
        list(SCENARIOS))
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install wrk nginx-light util-linux)")
    if os.cpu_count() < 2:
        raise SystemExit("needs 2 CPUs: the servers run on CPU 0 and wrk on CPU 1")
    # This script's own threads (the fill clients) stay off the servers' CPU too.
    os.sched_setaffinity(0, {1})

    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "meridian"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "meridian")

    procs = Procs()
    work = tempfile.mkdtemp(prefix="meridian-bench-")
    os.chmod(work, 0o755)
    failures = []
    try:
        origin_port, nginx_port, meridian_port, admin_port = (free_port() for _ in range(4))
        _, origin_log = start_origin(procs, work, origin_port)
        nginx = start_nginx_proxy(procs, work, nginx_port, origin_port, args.access_log)
        meridian = start_meridian(procs, work, binary, meridian_port, admin_port, origin_port,
                                  args.access_log)
        servers = {
            "meridian": (meridian_port, lambda: [meridian.pid]),
            "nginx": (nginx_port, lambda: [nginx.pid] + children(nginx.pid)),
        }
        if args.compare or args.tracing is not None:
            b_port, b_admin = free_port(), free_port()
            b_work = os.path.join(work, "b")
            os.makedirs(b_work)
            extra = ""
            if args.tracing is not None:
                sink = otlp_sink()
                extra = (f'[tracing]\notlp_endpoint = "http://127.0.0.1:{sink.server_port}"\n'
                         f"sample_ratio = {args.tracing}\n")
            meridian_b = start_meridian(procs, b_work, args.compare or binary, b_port, b_admin,
                                        origin_port, args.access_log, extra)
            servers["meridian-b"] = (b_port, lambda: [meridian_b.pid])
        if args.bare_pingora:
            bare = start_bare_pingora(procs, work, origin_port)
            servers["pingora"] = (bare[0], lambda: [bare[1].pid])
        # Warm both caches, and check the second request really is a hit.
        for name, (port, _) in servers.items():
            for scen in scenarios:
                path, cached = SCENARIOS[scen]
                for _ in range(2):
                    status, headers, body = fetch(f"http://127.0.0.1:{port}{path}")
                    assert status == 200 and len(body) == SIZES[path.rsplit("/", 1)[1]], (name, path)
                if name.startswith("meridian") and cached:
                    cs = headers.get("Cache-Status") or headers.get("cache-status", "")
                    if "hit" not in cs:
                        failures.append(f"meridian did not cache {path}: Cache-Status {cs!r}")

        rows = []
        for rnd in range(rounds):
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            for scen in scenarios:
                path, cached = SCENARIOS[scen]
                for name in order:
                    if name == "pingora" and cached:
                        continue  # it has no cache: the uncached scenario only
                    port, pids = servers[name]
                    seen = origin_requests(origin_log)
                    recorder = None
                    if args.perf and name == args.perf_server and rnd == 0 and scen == scenarios[0]:
                        recorder = subprocess.Popen(
                            ["perf", "record", "-e", "cpu-clock", "-F", "2000", "--call-graph", "dwarf,16384", "-o", args.perf,
                             "-p", ",".join(str(p) for p in pids())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    r = measure(name, f"http://127.0.0.1:{port}{path}", pids(), args.connections, duration)
                    if recorder:
                        recorder.send_signal(signal.SIGINT)
                        recorder.wait()
                    if cached and origin_requests(origin_log) != seen:
                        failures.append(f"{name} {scen} round {rnd}: origin was asked during a hit run")
                    if r["errors"]:
                        failures.append(f"{name} {scen} round {rnd}: {r['errors']} errors\n{r['raw']}")
                    why = unusable(r)
                    if why:
                        failures.append(f"{name} {scen} round {rnd}: {why}\n{r['raw']}")
                    r.update(scenario=scen, round=rnd)
                    rows.append(r)
                    print(f"round {rnd} {scen:9} {name:8} {r['rps']:>10.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
                          f"{r['cpu_us_per_req']:.1f} us/req  wrk cpu {r['client_cpu']:.0%}", flush=True)

        summary = summarize(rows, scenarios, list(servers))
        if "meridian-b" in servers:
            summary += "\n\nmeridian-b / meridian, CPU per request (median of per-round ratios): " + ", ".join(
                f"{scen} {paired_ratio(rows, scen, ours='meridian-b', base='meridian'):.3f}"
                for scen in scenarios)
        # Before the fills: the memory check is about the cache's bound, and the fills leave
        # the transform pool's buffers in the allocator.
        if args.gate:
            failures += gate(rows, servers, meridian, admin_port, duration)
            failures += small_objects_memory(procs, work, binary, origin_port)
        if not args.no_fills:
            url = f"http://127.0.0.1:{meridian_port}/obj/1k.bin"
            # A p99 ratio on a shared 2-core machine swings with the neighbours: a gate
            # failure is measured once more, with fresh rounds, before it counts.
            for attempt in (1, 2):
                fill_rows = []
                for rnd in range(rounds):
                    alone = measure("meridian", url, [meridian.pid], args.connections, duration)
                    row = [alone]
                    for kind, path in (("plain", "/plainjs/"), ("transform", "/js/")):
                        busy, fills, errors = hits_under_fills(
                            meridian_port, [meridian.pid], args.connections, duration,
                            f"{kind}{attempt}-{rnd}", args.fill_interval, path)
                        failures += [f"hits under {kind} fills round {rnd}: {e}" for e in errors[:5]]
                        row.append((busy, fills))
                    for r in [alone, row[1][0], row[2][0]]:
                        why = unusable(r)
                        if why:
                            failures.append(f"hits under fills round {rnd}: {why}\n{r['raw']}")
                    fill_rows.append(row)
                    print(f"round {rnd} hit-1k p99 alone {alone['p99_ms']:.2f} ms, under plain fills "
                          f"{row[1][0]['p99_ms']:.2f} ms, under minify+br fills {row[2][0]['p99_ms']:.2f} ms "
                          f"({row[2][1]} fills of {FILL_JS_MIB} MiB)", flush=True)
                fill_summary, fill_ratio = summarize_fills(fill_rows, args.fill_interval)
                if not args.gate or fill_ratio <= GATE_FILL_P99_RATIO or attempt == 2:
                    break
                print(f"\ngate: hit p99 under minify+br fills / under plain fills = {fill_ratio:.2f} "
                      f"(limit {GATE_FILL_P99_RATIO}); measuring once more", flush=True)
            summary += "\n\n" + fill_summary
            if args.gate:
                print(f"\ngate: hit p99 under minify+br fills / under the same plain fills = "
                      f"{fill_ratio:.2f} (limit {GATE_FILL_P99_RATIO})")
                if not fill_ratio <= GATE_FILL_P99_RATIO:
                    failures.append(f"hit p99 under minify+br fills is {fill_ratio:.2f}x under plain "
                                    f"fills > {GATE_FILL_P99_RATIO} (twice)")
            _, _, metrics = fetch(f"http://127.0.0.1:{admin_port}/metrics", host="admin")
            jobs = [l for l in metrics.decode().splitlines() if l.startswith("meridian_transform_jobs_total")]
            summary += "\n\ntransform pool after the fills: " + ", ".join(
                l.split("result=")[1].replace('"}', "=").replace('"', "") for l in jobs)
            summary += f"; meridian RSS {rss_mib(meridian.pid):.1f} MiB"
        print("\n" + summary)
        out = args.out or (None if args.gate else os.path.join(
            ROOT, "benches", "results",
            f"{datetime.date.today().isoformat()}-{socket.gethostname()}"))
        if out:
            write_results(out, rows, summary)
    except ServerDied as e:
        log = os.path.join(work, "meridian.log")
        tail = open(log).read()[-4000:] if os.path.exists(log) else ""
        failures.append(f"{e}; meridian log:\n{tail}")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    if failures:
        print("\nFAILED:\n- " + "\n- ".join(failures))
        sys.exit(1)
    print("\nall checks passed")


def summarize(rows, scenarios, names):
    lines = [
        f"commit {git_commit()}, {os.uname().nodename}, {os.cpu_count()} CPUs; medians of "
        f"{len({r['round'] for r in rows})} interleaved rounds (ratios: median of each round's "
        f"ratio); servers on CPU 0, wrk on CPU 1",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms | server µs/req | µs/req ratio | p99 ratio | wrk CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scen in scenarios:
        stats = {}
        for name in names:
            rs = [r for r in rows if r["scenario"] == scen and r["server"] == name]
            stats[name] = {k: med([r[k] for r in rs]) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "client_cpu")}
        n = stats["nginx"]
        for name, s in stats.items():
            if s["rps"] != s["rps"]:
                continue  # this server did not run this scenario
            ours = name != "nginx"
            ratio = f"{paired_ratio(rows, scen, ours=name):.2f}" if ours else ""
            p99r = f"{paired_ratio(rows, scen, 'p99_ms', ours=name):.2f}" if ours else ""
            bound = " (client-bound)" if s["client_cpu"] >= 0.9 else ""
            lines.append(f"| {scen} | {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                         f"{s['cpu_us_per_req']:.1f} | {ratio} | {p99r} | {s['client_cpu']:.0%}{bound} |")
    return "\n".join(lines)


def summarize_fills(fill_rows, interval):
    """The hits-under-fills table, and the ratio that says whether whole-body work stalls
    hits: hit p99 under minify+br fills over hit p99 under the same fills on a plain route
    (the fills themselves, moving bytes through one proxy thread, cost hits the same on both,
    and nginx is slowed alike: benches/results/2026-12-01-vm/fills.md). The ratio is the
    median of each round's ratio: a round's two runs are back to back, while single runs'
    p99 on this shared machine swing tenfold (9.6-86.9 ms in one run's three rounds)."""
    def col(i, key):
        return med([row[i][key] if i == 0 else row[i][0][key] for row in fill_rows])
    alone, plain, transform = col(0, "p99_ms"), col(1, "p99_ms"), col(2, "p99_ms")
    fills = med([row[2][1] for row in fill_rows])
    ratio = med([row[2][0]["p99_ms"] / row[1][0]["p99_ms"] for row in fill_rows
                 if row[1][0]["p99_ms"]])
    lines = [
        f"Hits under fills (meridian, node.threads = 1; {FILL_CLIENTS} clients each starting a fill "
        f"of a distinct {FILL_JS_MIB} MiB JavaScript file every {interval} s; medians of "
        f"{len(fill_rows)} rounds):",
        "",
        "| 1 KiB hits | req/s | p99 ms | p99 / alone |",
        "|---|---|---|---|",
        f"| alone | {col(0, 'rps'):.0f} | {alone:.2f} | 1.00 |",
        f"| under plain fills (cached as sent) | {col(1, 'rps'):.0f} | {plain:.2f} | {plain / alone:.2f} |",
        f"| under minify + br fills ({fills:.0f} per run) | {col(2, 'rps'):.0f} | {transform:.2f} | "
        f"{transform / alone:.2f} |",
        f"| minify + br fills / plain fills | | {ratio:.2f} | |",
    ]
    return "\n".join(lines), ratio


def paired_ratio(rows, scen, key="cpu_us_per_req", ours="meridian", base="nginx"):
    """Median over rounds of `ours` / nginx within each round. The two runs of a round are
    back to back, so a neighbour's load that comes and goes over minutes weighs on both sides
    of each ratio; a ratio of medians taken over all rounds mixes one round's meridian with
    another's nginx (gate runs of the same commit read proxy-1k 1.24-1.64 that way)."""
    ratios = []
    for rnd in sorted({r["round"] for r in rows}):
        pair = {r["server"]: r[key] for r in rows
                if r["scenario"] == scen and r["round"] == rnd and r["server"] in (ours, base)}
        if len(pair) == 2 and pair[base]:
            ratios.append(pair[ours] / pair[base])
    return med(ratios)


def otlp_sink():
    """An OTLP/HTTP collector stand-in on loopback that takes every POST and answers 200:
    what tracing costs Meridian, not a collector's speed. Runs on this script's CPU."""
    import http.server

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def metric(admin, series):
    """The value of one unlabelled series on Meridian's admin port; a missing series fails."""
    _, _, body = fetch(f"http://127.0.0.1:{admin}/metrics", host="admin")
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    raise SystemExit(f"metric {series} is missing")


def settled_memory_tier(admin):
    """(objects, weighed bytes) of the memory tier once moka's batched evictions have run:
    read until the weighed size stops moving (30 s at most)."""
    last, deadline = -1.0, time.monotonic() + 30
    while time.monotonic() < deadline:
        weighed = metric(admin, "meridian_cache_bytes")
        if weighed == last:
            break
        last = weighed
        time.sleep(0.5)
    return metric(admin, "meridian_cache_objects"), metric(admin, "meridian_cache_bytes")


def small_objects_rss(procs, work, binary, origin_port, n):
    """Starts a fresh memory-only node, asks it for n distinct 1 KiB objects once each, and
    returns its RSS idle and after (MiB) with what its memory tier then says it holds
    (objects, weighed bytes). The node is stopped before returning."""
    node_work = os.path.join(work, "small-objects")
    os.makedirs(node_work)
    port, admin = free_port(), free_port()
    node = start_meridian(procs, node_work, binary, port, admin, origin_port, False)
    idle = rss_mib(node.pid)
    fill_distinct(port, n, 1, "/obj/1k.bin", node_work)
    objects, weighed = settled_memory_tier(admin)
    rss = rss_mib(node.pid)
    procs.stop(node)
    return {"idle": idle, "rss": rss, "objects": objects, "weighed": weighed}


def small_objects_memory(procs, work, binary, origin_port):
    """A fresh memory-only node filled with distinct 1 KiB objects to GATE_FILL_FACTOR times its
    bound (by what it weighs them at): its RSS over idle must stay within
    GATE_SMALL_OBJECTS_RSS_RATIO of the bytes its memory tier says it holds. The 1 MiB fills
    of the main check hide per-object costs; these found the header buffers that every stored
    object used to keep alive (benches/results/2026-12-02-vm/small-objects-rss.md)."""
    failures = []
    n = GATE_FILL_FACTOR * CACHE_MEMORY_MIB * 2**20 // SMALL_OBJECT_WEIGHT
    r = small_objects_rss(procs, work, binary, origin_port, n)
    weighed = r["weighed"]
    ratio = (r["rss"] - r["idle"]) * 2**20 / max(weighed, 1.0)
    print(f"small objects: {n} distinct 1 KiB objects into a {CACHE_MEMORY_MIB} MiB tier: {r['objects']:.0f} "
          f"held, {weighed / 2**20:.1f} MiB weighed; RSS over idle {ratio:.2f}x that "
          f"(limit {GATE_SMALL_OBJECTS_RSS_RATIO})")
    if weighed > CACHE_MEMORY_MIB * 2**20:
        failures.append(f"small objects: cache holds {weighed:.0f} bytes, over its bound")
    if not ratio <= GATE_SMALL_OBJECTS_RSS_RATIO:
        failures.append(f"small objects: RSS over idle is {ratio:.2f}x the weighed bytes "
                        f"> {GATE_SMALL_OBJECTS_RSS_RATIO}")
    return failures


def fill_distinct(port, n, repeat, path, work):
    """Asks for each of n keys `repeat` times in a row (Meridian writes a key to disk on its
    second request, when the first is complete in memory), with wrk on CPU 1. wrk's thread
    stops itself after the last answer and leaves a marker file; wrk itself would wait out
    its duration, so it is interrupted then."""
    marker = os.path.join(work, f"filled-{port}")
    script = os.path.join(work, f"fill-{port}.lua")
    with open(script, "w") as f:
        f.write(f"""
local counter = 0
local answered = 0
request = function()
  local i = math.floor(counter / {repeat})
  counter = counter + 1
  return wrk.format("GET", "{path}?i=" .. (i % {n}))
end
response = function(status, headers, body)
  answered = answered + 1
  if answered == {n * repeat} then
    io.open("{marker}", "w"):close()
    wrk.thread:stop()
  end
end
""")
    p = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d3600s", "-H", f"Host: {HOST}",
                          "-s", script, f"http://127.0.0.1:{port}/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(marker):
        if p.poll() is not None:
            raise SystemExit(f"wrk ended before the fill of port {port} was done")
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    p.wait()
    os.remove(marker)


def gate(rows, servers, meridian, admin_port, duration):
    failures = []
    for scen, limit in GATE_CPU_RATIO.items():
        ratio = paired_ratio(rows, scen)
        print(f"gate: {scen} server CPU ratio meridian/nginx = {ratio:.2f} (limit {limit}; "
              f"median of per-round ratios)")
        # NaN compares false: a scenario without data fails too.
        if not ratio <= limit:
            failures.append(f"{scen} CPU ratio {ratio:.2f} > {limit}")

    # Peak: 5x the connections, keep-alive, then fresh connections for every request.
    port, pids = servers["meridian"]
    url = f"http://127.0.0.1:{port}/obj/1k.bin"
    for label, headers in (("keep-alive", ()), ("fresh connections", ("Connection: close",))):
        r = measure("meridian", url, pids(), 250, duration, headers)
        print(f"peak {label}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors")
        if r["errors"]:
            failures.append(f"peak {label}: {r['errors']} errors\n{r['raw']}")
    start = time.monotonic()
    wait_http(f"http://127.0.0.1:{admin_port}/healthz", timeout=2.0)
    took = time.monotonic() - start
    print(f"healthz after peak: {took * 1000:.1f} ms")
    if took > 1.0:
        failures.append(f"/healthz took {took:.2f}s after the peak")

    # Fill the cache to GATE_FILL_FACTOR times its bound with distinct 1 MiB objects (the
    # static origin ignores the query), then check the cache kept to its bound (its own
    # count) and the process to bound + overhead (RSS, read from outside).
    for i in range(CACHE_MEMORY_MIB * GATE_FILL_FACTOR):
        status, _, body = fetch(f"http://127.0.0.1:{port}/obj/1m.bin?fill={i}")
        if status != 200 or len(body) != SIZES["1m.bin"]:
            failures.append(f"fill request {i}: status {status}, {len(body)} bytes")
            break
    _, _, metrics = fetch(f"http://127.0.0.1:{admin_port}/metrics", host="admin")
    cache_bytes = next((float(l.split()[1]) for l in metrics.decode().splitlines()
                        if l.startswith("meridian_cache_bytes ")), None)
    print(f"cache after filling past its bound: {cache_bytes / 2**20:.1f} MiB (bound {CACHE_MEMORY_MIB} MiB)")
    if cache_bytes is None or cache_bytes > CACHE_MEMORY_MIB * 2**20:
        failures.append(f"cache holds {cache_bytes} bytes, over its {CACHE_MEMORY_MIB} MiB bound")
    rss = rss_mib(meridian.pid)
    limit = CACHE_MEMORY_MIB + GATE_RSS_OVERHEAD_MIB
    print(f"meridian RSS {rss:.1f} MiB (limit {limit} MiB = cache {CACHE_MEMORY_MIB} + {GATE_RSS_OVERHEAD_MIB})")
    if rss > limit:
        failures.append(f"meridian RSS {rss:.1f} MiB > {limit} MiB")
    return failures


def write_results(out, rows, summary):
    os.makedirs(out, exist_ok=True)
    fields = ["round", "scenario", "server", "requests", "rps", "p50_ms", "p99_ms", "cpu_us_per_req", "client_cpu", "errors"]
    with open(os.path.join(out, "raw.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary + "\n")
    print(f"results in {out}")


if __name__ == "__main__":
    main()
