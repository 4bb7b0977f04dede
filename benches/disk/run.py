#!/usr/bin/env python3
"""Disk tier benchmark: Meridian's disk tier against nginx's proxy_cache on disk, same run.

Both front the same nginx static origin (benches/load/run.py's harness: servers on CPU 0
with one worker, wrk on CPU 1, rounds interleaved). Both caches live in directories on the
same filesystem, and the page cache is warm (objects are read before the measured runs), so
the figures compare the servers' work, not the device's.

Scenarios (issue 15):

  * disk-1m: one 1 MiB object served from disk. Meridian's cache.max_object is 512 KiB, so
    the object lives on the disk tier alone (never promoted); nginx reads its cache file
    (sendfile, open_file_cache on). Server CPU per request, Meridian / nginx.
  * ws10x-64k: 64 KiB objects drawn uniformly from a working set 10x Meridian's
    cache.memory (32 MiB, so 5,120 objects), all on disk after a warm-up. Meridian serves
    from memory what is there (a key hit twice on disk is promoted) and the rest from disk.
    req/s, p99, CPU per request, and the byte hit ratio (origin bytes during the run).

With --restart N (default off; 1000000 for the issue's figure): N objects of 1 KiB are
stored in both caches through HTTP, then each server is stopped and started again, and the
script reports the time from start to the first hit on a stored object, the time until
Meridian's disk tier is ready and nginx's cache loader has finished, and RSS.

    benches/disk/run.py [--rounds 3] [--duration 10] [--restart 1000000] [--out DIR]

A/B on a noisy host: --binary A --binary-b B measures two Meridian binaries in the same
interleaved rounds against the same nginx; on this host a long-lived process can run 8-10 %
slower than another with the same binary for a whole run (page-cache-check.md of 2026-12-03),
so a difference under about 3 % needs benches/load/concurrent.py --disk instead.

After the rounds, each Meridian is restarted, asked once for every object (each one's first,
checking lookup after a start), left quiet for QUIET_AFTER_RESTART seconds and measured once
more: the p99 of a node's first seconds of load after a restart (allocator-thp.md).

Profiles: --perf FILE [--perf-dwarf] [--perf-server nginx].

Results go to benches/results/<date>-<host>/disk-tier.md (or --out). Binds only 127.0.0.1;
every process it starts is stopped on exit, and its directories are removed.
"""

import argparse
import datetime
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("load_harness", os.path.join(ROOT, "benches", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

HOST = load.HOST
MEMORY_MIB = 32
WORKING_SET = MEMORY_MIB * 10 * 1024 // 64  # 64 KiB objects: 10x cache.memory


def nginx_disk_proxy(procs, work, port, origin_port, zone_mib=64, wait=True):
    prefix = os.path.join(work, "nginx")
    cache = os.path.join(work, "nginx-cache")
    os.makedirs(prefix, exist_ok=True)
    os.makedirs(cache, exist_ok=True)
    body = f"""
    access_log off;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    proxy_cache_path {cache} levels=1:2 keys_zone=edge:{zone_mib}m max_size=8g inactive=10h
                     use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        add_header X-Cache $upstream_cache_status;
        location / {{ proxy_pass http://origin; proxy_cache edge; }}
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(load.nginx_conf(prefix, body))
    p = procs.start(["taskset", "-c", "0", "nginx", "-p", prefix, "-c", conf],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait:
        load.wait_http(f"http://127.0.0.1:{port}/obj/1k.bin?warm", host=HOST)
    return p


def cache_loader_running(nginx_pid):
    for pid in load.children(nginx_pid):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                if "cache loader" in f.read():
                    return True
        except FileNotFoundError:
            pass
    return False


def meridian_disk(procs, work, binary, port, admin, origin_port, memory_mib, max_object,
                  disk_max="64MiB", size="8GiB", name="meridian"):
    work = os.path.join(work, name)
    disk = os.path.join(work, "disk")
    os.makedirs(disk, exist_ok=True)
    conf = load.meridian_conf(work, port, admin, origin_port)
    with open(conf) as f:
        text = f.read()
    text = re.sub(r'memory = "\d+MiB"\nmax_object = "8MiB"',
                  f'memory = "{memory_mib}MiB"\nmax_object = "{max_object}"', text)
    text = text.replace("[log]", f'[cache.disk]\npath = "{disk}"\nsize = "{size}"\n'
                                 f'max_object = "{disk_max}"\n[log]')
    with open(conf, "w") as f:
        f.write(text)
    return start_meridian_disk(procs, work, binary, conf, admin, port)


def start_meridian_disk(procs, work, binary, conf, admin, port=None):
    p = load.spawn_meridian(procs, work, binary, conf)
    load.wait_http(f"http://127.0.0.1:{admin}/healthz")
    wait_disk_ready(admin)
    if port:
        # /healthz can answer before the proxy's listener is bound.
        load.wait_http(f"http://127.0.0.1:{port}/obj/1k.bin", host=HOST)
    return p


class Slot:
    """One Meridian directory (its config, disk store and ports) and the process serving it,
    which can be restarted on the same directory."""

    def __init__(self, procs, work, name, binary, origin_port):
        self.procs, self.name = procs, name
        self.work = os.path.join(work, name)
        self.port, self.admin = load.free_port(), load.free_port()
        self.binary = binary
        self.proc = meridian_disk(procs, work, binary, self.port, self.admin, origin_port, MEMORY_MIB,
                                  "512KiB", name=name)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.procs.stop(self.proc)

    def start(self, binary):
        self.binary = binary
        self.proc = start_meridian_disk(self.procs, self.work, binary, os.path.join(self.work, "meridian.toml"),
                                        self.admin, self.port)


def status(admin):
    import json
    _, _, body = load.fetch(f"http://127.0.0.1:{admin}/status", host="admin")
    return json.loads(body)


def wait_disk_ready(admin, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(admin)["cache"]["disk"].get("ready"):
            return
        time.sleep(0.02)
    raise SystemExit("the disk tier did not open")


metric = load.metric


def optional_metric(admin, series):
    """A series an older binary (--binary) may not have: None when it is missing."""
    try:
        return metric(admin, series)
    except SystemExit:
        return None


# How a disk hit's bytes left, and promotions: read around each of Meridian's runs.
DISK_FLOW = {
    "sendfile": 'meridian_disk_cache_hit_bytes_total{via="sendfile"}',
    "read": 'meridian_disk_cache_hit_bytes_total{via="read"}',
    "promotion": 'meridian_disk_cache_events_total{event="promotion"}',
    "hit": 'meridian_disk_cache_events_total{event="hit"}',
}


def disk_flow(admin):
    return {k: optional_metric(admin, v) for k, v in DISK_FLOW.items()}


def fill_until_stored(name, port, admin, n, path, work, share=1.0):
    """Asks for each of n keys three times a pass until Meridian's disk holds `share` of them:
    a key whose second request came while its fill was still running is not copied to disk by
    that pass (1-2 % of keys)."""
    for _ in range(6):
        load.fill_distinct(port, n, 3, path, work)
        stored = metric(admin, "meridian_disk_cache_objects")
        if stored >= share * n:
            return
    raise SystemExit(f"{name}'s disk holds {stored} of {n} objects")


def random_script(work, n, path):
    script = os.path.join(work, f"random-{n}.lua")
    with open(script, "w") as f:
        f.write(f"""
math.randomseed(42)
request = function()
  return wrk.format("GET", "{path}?i=" .. math.random(0, {n - 1}))
end
""")
    return script


def get(port, path):
    status, headers, body = load.fetch(f"http://127.0.0.1:{port}{path}", timeout=30)
    headers = {k.lower(): v for k, v in headers.items()}
    return status, headers, body


def warm(servers, paths):
    for name, (port, _, _) in servers.items():
        for path in paths:
            for _ in range(3):
                status, _, _ = get(port, path)
                assert status == 200, (name, path, status)


def summarize(rows, title):
    lines = [f"### {title}", "",
             "| server | req/s | p50 ms | p99 ms | server µs/req | µs/req ratio | wrk CPU |",
             "|---|---|---|---|---|---|---|"]
    stats = {}
    for name in sorted({r["server"] for r in rows}, key=lambda n: n == "nginx"):
        rs = [r for r in rows if r["server"] == name]
        stats[name] = {k: load.med([r[k] for r in rs]) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "client_cpu")}
    for name, s in stats.items():
        ratio = f"{s['cpu_us_per_req'] / stats['nginx']['cpu_us_per_req']:.2f}" if name != "nginx" else ""
        lines.append(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                     f"{s['cpu_us_per_req']:.1f} | {ratio} | {s['client_cpu']:.0%} |")
    return "\n".join(lines), stats


def hit_scenarios(args, binary, procs, work):
    origin_port, nginx_port = load.free_port(), load.free_port()
    _, origin_log = load.start_origin(procs, work, origin_port)
    nginx = nginx_disk_proxy(procs, work, nginx_port, origin_port)
    slot = Slot(procs, work, "meridian", binary, origin_port)
    m_port, m_admin = slot.port, slot.admin
    servers = {
        "meridian": (m_port, slot.pids, m_admin),
        "nginx": (nginx_port, lambda: [nginx.pid] + load.children(nginx.pid), None),
    }
    slots = [slot]
    if args.binary_b:
        b = Slot(procs, work, "meridian-b", args.binary_b, origin_port)
        servers["meridian-b"] = (b.port, b.pids, b.admin)
        slots.append(b)
    out = []

    if "disk-1m" in args.scenarios:
        out.append(disk_1m(args, servers, origin_log, m_port, m_admin))
    if "ws10x-64k" in args.scenarios:
        out.append(ws10x(args, servers, origin_log, slots, work))
    return out


def start_perf(args, name, rnd, pids):
    """With --perf, a cpu-clock profile of the first run of a scenario by `--perf-server`."""
    if not (args.perf and name == args.perf_server and rnd == 0):
        return None
    return subprocess.Popen(
        ["perf", "record", "-e", "cpu-clock", "-F", "2000",
         *(["--call-graph", "dwarf,32768"] if args.perf_dwarf else ["-g"]), "-o", args.perf,
         "-p", ",".join(str(p) for p in pids())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(recorder):
    if recorder:
        recorder.send_signal(signal.SIGINT)
        recorder.wait()


def disk_1m(args, servers, origin_log, m_port, m_admin):
    warm(servers, ["/obj/1m.bin"])
    deadline = time.monotonic() + 30
    while "detail=disk" not in get(m_port, "/obj/1m.bin")[1].get("cache-status", ""):
        if time.monotonic() > deadline:
            raise SystemExit("meridian never served /obj/1m.bin from disk")
        time.sleep(0.05)
    disk_hits0 = metric(m_admin, 'meridian_disk_cache_events_total{event="hit"}')
    rows = []
    for rnd in range(args.rounds):
        for name in (list(servers) if rnd % 2 == 0 else list(servers)[::-1]):
            port, pids, _ = servers[name]
            seen = load.origin_requests(origin_log)
            recorder = start_perf(args, name, rnd, pids)
            r = load.measure(name, f"http://127.0.0.1:{port}/obj/1m.bin", pids(), args.connections, args.duration)
            stop_perf(recorder)
            if r["errors"] or load.origin_requests(origin_log) != seen:
                raise SystemExit(f"{name} disk-1m: {r['errors']} errors or origin requests\n{r['raw']}")
            r["round"] = rnd
            rows.append(r)
            print(f"round {rnd} disk-1m {name:8} {r['rps']:>8.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
                  f"{r['cpu_us_per_req']:.1f} us/req", flush=True)
    disk_hits = metric(m_admin, 'meridian_disk_cache_events_total{event="hit"}') - disk_hits0
    served = sum(r["requests"] for r in rows if r["server"] == "meridian")
    table, _ = summarize(rows, "disk-1m: a 1 MiB object served from disk (page cache warm)")
    return table + (f"\n\nMeridian's disk hits during its runs: {disk_hits:.0f} of {served} requests "
                    "(the object is over cache.max_object = 512 KiB: never in memory).")


def ws10x(args, servers, origin_log, slots, work):
    n = WORKING_SET
    for name, (port, _, admin) in servers.items():
        if admin:
            fill_until_stored(name, port, admin, n, "/obj/64k.bin", work)
        else:
            load.fill_distinct(port, n, 3, "/obj/64k.bin", work)
    script = random_script(work, n, "/obj/64k.bin")
    rows = []
    tiers = []
    flows = []
    for rnd in range(args.rounds):
        for name in (list(servers) if rnd % 2 == 0 else list(servers)[::-1]):
            port, pids, admin = servers[name]
            seen = load.origin_requests(origin_log)
            if name == "meridian":
                d0 = metric(admin, 'meridian_disk_cache_events_total{event="hit"}')
                flow0 = disk_flow(admin)
            recorder = start_perf(args, name, rnd, pids)
            r = load.measure(name, f"http://127.0.0.1:{port}/", pids(), args.connections, args.duration,
                             script=script)
            stop_perf(recorder)
            misses = load.origin_requests(origin_log) - seen
            r["byte_hit_ratio"] = 1 - misses / r["requests"] if r["requests"] else float("nan")
            if name == "meridian":
                tiers.append((metric(admin, 'meridian_disk_cache_events_total{event="hit"}') - d0) / r["requests"])
                flow1 = disk_flow(admin)
                flows.append({k: None if flow1[k] is None or flow0[k] is None else flow1[k] - flow0[k]
                              for k in flow1})
            if r["errors"]:
                raise SystemExit(f"{name} ws10x-64k: {r['errors']} errors\n{r['raw']}")
            r["round"] = rnd
            rows.append(r)
            print(f"round {rnd} ws10x-64k {name:8} {r['rps']:>8.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
                  f"{r['cpu_us_per_req']:.1f} us/req  byte hit ratio {r['byte_hit_ratio']:.3f}", flush=True)
    restarted = after_restart(args, slots, n, work, script)
    table, stats = summarize(rows, f"ws10x-64k: 64 KiB objects drawn uniformly from {n} "
                                   f"({n * 64 // 1024} MiB, 10x cache.memory = {MEMORY_MIB} MiB)")
    bhr = {name: load.med([r["byte_hit_ratio"] for r in rows if r["server"] == name]) for name in ("meridian", "nginx")}
    b = (f" (meridian-b, {args.binary_b}: {stats['meridian-b']['rps'] / stats['nginx']['rps']:.2f})"
         if "meridian-b" in stats else "")
    return table + (f"\n\nreq/s Meridian / nginx: {stats['meridian']['rps'] / stats['nginx']['rps']:.2f}{b}. "
                    f"Byte hit ratio (all objects are the same size): Meridian {bhr['meridian']:.3f}, nginx "
                    f"{bhr['nginx']:.3f}; of Meridian's requests {load.med(tiers):.0%} were served from disk, "
                    "the rest from memory." + flow_summary(flows) + restarted)


# Longer than mimalloc's purge delay (1 s): memory freed during the checking pass has been
# given back to the kernel when the measured load begins.
QUIET_AFTER_RESTART = 5


def after_restart(args, slots, n, work, script):
    """Each Meridian restarted on its directory, every object asked for once, QUIET_AFTER_RESTART
    seconds of nothing, then one measured run: its p99 against the rounds' (long-lived) p99."""
    out = []
    for slot, name in zip(slots, ("meridian", "meridian-b")):
        slot.stop()
        slot.start(slot.binary)
        load.fill_distinct(slot.port, n, 1, "/obj/64k.bin", work)
        time.sleep(QUIET_AFTER_RESTART)
        r = load.measure(name, f"http://127.0.0.1:{slot.port}/", slot.pids(), args.connections, args.duration,
                         script=script)
        if r["errors"]:
            raise SystemExit(f"{name} after its restart: {r['errors']} errors\n{r['raw']}")
        print(f"after restart ws10x-64k {name:8} {r['rps']:>8.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
              f"{r['cpu_us_per_req']:.1f} us/req", flush=True)
        out.append(f"{name} ({slot.binary}): p99 {r['p99_ms']:.2f} ms, {r['cpu_us_per_req']:.1f} µs/req")
    return (f" After a restart (every object asked once, {QUIET_AFTER_RESTART} s quiet, one "
            f"{args.duration} s run): " + "; ".join(out) + ".")


def flow_summary(flows):
    """How Meridian's disk hits left (sendfile or read) and how many promoted, over its runs."""
    total = {k: sum(f[k] for f in flows) if all(f[k] is not None for f in flows) else None
             for k in DISK_FLOW}
    out = ""
    if total["sendfile"] is not None and total["sendfile"] + total["read"] > 0:
        share = total["sendfile"] / (total["sendfile"] + total["read"])
        out += f" Of the disk hits' body bytes, {share:.0%} were sent with sendfile, the rest read."
    if total["promotion"] is not None and total["hit"]:
        out += f" Promotions to memory: {total['promotion'] / total['hit']:.1%} of disk hits."
    return out


def restart_scenario(args, binary, procs, work):
    n = args.restart
    origin_port, nginx_port, m_port, m_admin = (load.free_port() for _ in range(4))
    _, _ = load.start_origin(procs, work, origin_port)
    nginx = nginx_disk_proxy(procs, work, nginx_port, origin_port, zone_mib=max(16, n // 4000))
    meridian = meridian_disk(procs, work, binary, m_port, m_admin, origin_port, 64, "8MiB")
    started = time.monotonic()
    fill_until_stored("meridian", m_port, m_admin, n, "/obj/1k.bin", work, share=0.99)
    deadline = time.monotonic() + 120
    while metric(m_admin, "meridian_disk_cache_objects") < 0.99 * n:
        if time.monotonic() > deadline:
            raise SystemExit(f"meridian's disk holds {metric(m_admin, 'meridian_disk_cache_objects')} of {n}")
        time.sleep(0.5)
    load.fill_distinct(nginx_port, n, 1, "/obj/1k.bin", work)
    print(f"stored {n} objects in both caches in {time.monotonic() - started:.0f} s", flush=True)
    m_objects = metric(m_admin, "meridian_disk_cache_objects")
    m_rss_full = load.rss_mib(meridian.pid)
    disk_bytes = metric(m_admin, "meridian_disk_cache_bytes")
    nginx_bytes = int(subprocess.run(["du", "-sb", os.path.join(work, "nginx-cache")], capture_output=True,
                                     text=True).stdout.split()[0])

    def stop(p, sig):
        os.killpg(p.pid, sig)
        p.wait(timeout=120)

    # Each probe asks for a different stored object: one fetched from the origin (while the
    # disk tier is still opening) would be a memory hit afterwards.
    probes = iter(range(n // 2, n))

    def probe_path():
        i = next(probes)
        while i % 100 == 0:
            i = next(probes)
        return f"/obj/1k.bin?i={i}"

    # Meridian: SIGTERM, start, first answer, first hit from disk.
    stop(meridian, signal.SIGTERM)
    t0 = time.monotonic()
    conf = os.path.join(work, "meridian", "meridian.toml")
    meridian = load.spawn_meridian(procs, os.path.join(work, "meridian"), binary, conf)
    first_answer = first_hit = None
    while first_hit is None:
        try:
            _, headers, _ = get(m_port, probe_path())
            first_answer = first_answer or time.monotonic() - t0
            if "detail=disk" in headers.get("cache-status", ""):
                first_hit = time.monotonic() - t0
        except (OSError, ValueError):  # not listening yet
            pass
        if time.monotonic() - t0 > 120:
            raise SystemExit("meridian served no disk hit within 120 s of its start")
        time.sleep(0.005)
    wait_disk_ready(m_admin)
    m_ready = time.monotonic() - t0
    m_rss = load.rss_mib(meridian.pid)

    # nginx: graceful stop, start, first hit; its cache loader's end.
    stop(nginx, signal.SIGQUIT)
    t0 = time.monotonic()
    nginx = nginx_disk_proxy(procs, work, nginx_port, origin_port, zone_mib=max(16, n // 4000),
                             wait=False)
    n_first_answer = n_first_hit = None
    while n_first_hit is None:
        try:
            _, headers, _ = get(nginx_port, probe_path())
            n_first_answer = n_first_answer or time.monotonic() - t0
            if headers.get("x-cache") == "HIT":
                n_first_hit = time.monotonic() - t0
        except (OSError, ValueError):  # not listening yet
            pass
        if time.monotonic() - t0 > 120:
            raise SystemExit("nginx served no hit within 120 s of its start")
        time.sleep(0.005)
    # nginx's cache loader walks every file in the background (100 files per 50 ms by
    # default); until it is done, max_size is not enforced on what it has not seen.
    loader_cap = 120
    while cache_loader_running(nginx.pid) or time.monotonic() - t0 < 1:
        if time.monotonic() - t0 > loader_cap:
            break
        time.sleep(0.1)
    loader = time.monotonic() - t0
    loader_text = f"{loader:.0f} s (cache loader done)" if loader < loader_cap else f"> {loader_cap} s (loader still walking)"
    n_rss = sum(load.rss_mib(p) for p in [nginx.pid] + load.children(nginx.pid))
    return "\n".join([
        f"### restart: {n} objects of 1 KiB on disk",
        "",
        "| | Meridian | nginx |",
        "|---|---|---|",
        f"| objects on disk | {m_objects:.0f} | {n} files |",
        f"| bytes on disk | {disk_bytes / 2**20:.0f} MiB | {nginx_bytes / 2**20:.0f} MiB |",
        f"| start to first answer | {first_answer:.2f} s | {n_first_answer:.2f} s |",
        f"| start to first hit on a stored object | {first_hit:.2f} s | {n_first_hit:.2f} s |",
        f"| start to every object indexed (disk tier ready / cache loader done) | {m_ready:.2f} s | {loader_text} |",
        f"| RSS after the restart (Meridian's memory tier empty; nginx: all processes, keys zone "
        f"{max(16, n // 4000)} MiB shared) | {m_rss:.0f} MiB | {n_rss:.0f} MiB |",
        f"| RSS before the restart (memory tier full, {64} MiB) | {m_rss_full:.0f} MiB | |",
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--restart", type=int, default=0, help="objects for the restart figure (0: skip)")
    ap.add_argument("--no-hits", action="store_true", help="only the restart figure")
    ap.add_argument("--perf", metavar="FILE",
                    help="record a cpu-clock profile of the first run of each scenario into FILE")
    ap.add_argument("--perf-dwarf", action="store_true",
                    help="DWARF call graphs (Rust's own frames; large files): keep --duration short")
    ap.add_argument("--perf-server", choices=("meridian", "nginx"), default="meridian",
                    help="the server --perf profiles (nginx: all its processes)")
    ap.add_argument("--scenarios", default="disk-1m,ws10x-64k", help="hit scenarios to run")
    ap.add_argument("--binary", help="meridian binary (default: build target/release/meridian)")
    ap.add_argument("--binary-b", help="a second meridian binary, measured in the same rounds (A/B)")
    ap.add_argument("--out", help="results directory (default benches/results/<date>-<host>)")
    args = ap.parse_args()
    binary, procs, work = load.prepare("disk", ("wrk", "nginx", "taskset"), "apt-get install wrk nginx-light")
    binary = args.binary or binary
    os.sched_setaffinity(0, {1})
    parts = [f"commit {load.git_commit()}, {os.uname().nodename}, {os.cpu_count()} CPUs; "
             f"medians of {args.rounds} interleaved rounds of {args.duration} s; servers on CPU 0, "
             "wrk on CPU 1; both caches on the same filesystem, page cache warm"]
    try:
        if not args.no_hits:
            parts += hit_scenarios(args, binary, procs, work)
        if args.restart:
            procs.stop_all()
            procs = load.Procs()
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            os.chmod(work, 0o755)
            parts.append(restart_scenario(args, binary, procs, work))
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    text = "\n\n".join(parts) + "\n"
    print("\n" + text)
    out = args.out or os.path.join(ROOT, "benches", "results",
                                   f"{datetime.date.today().isoformat()}-{socket.gethostname()}")
    os.makedirs(out, exist_ok=True)
    name = "disk-restart.md" if args.no_hits else "disk-tier.md"
    with open(os.path.join(out, name), "w") as f:
        f.write("# Disk tier against nginx proxy_cache on disk\n\n"
                "`benches/disk/run.py` " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if v and k in ("rounds", "duration", "restart")) + "\n\n" + text)
    print(f"results in {out}/{name}")


if __name__ == "__main__":
    main()
