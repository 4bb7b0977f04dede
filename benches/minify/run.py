#!/usr/bin/env python3
"""Minify + compress benchmark: Meridian against nginx's on-the-fly gzip, same run.

1. Bytes on the wire for the real-world files in benches/minify/corpus/: the original,
   nginx (proxy_cache, `gzip on; gzip_comp_level 6`) and Meridian (minify + br, the demo's
   defaults), each fetched through the proxy from the same nginx static origin.
2. Hits on a 64 KiB text object: Meridian's stored br variant vs its identity variant (the
   work was done once, at fill: these should match within noise), and nginx serving the same
   object from proxy_cache through gzip level 6 (compressed on every hit). Servers pinned to
   CPU 0 with one worker, wrk (`-t1 -c50`) on CPU 1, rounds interleaved; CPU per request from
   /proc/PID/stat.

    benches/minify/run.py                # 3 rounds x 10 s
    benches/minify/run.py --rounds 1 --duration 3

Needs wrk, nginx and taskset; builds the release binary. Binds only 127.0.0.1.
"""

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "benches", "minify", "corpus")
_spec = importlib.util.spec_from_file_location("load_harness", os.path.join(ROOT, "benches", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

FILES = ["catalogue.html", "h5bp-404.html", "bootstrap-5.3.3.css", "jquery-3.7.1.js"]
TYPES = "types { text/html html; text/css css; application/javascript js; }"


def start_origin(procs, work, port):
    prefix = os.path.join(work, "origin")
    www = os.path.join(prefix, "www")
    os.makedirs(www)
    for name in FILES:
        shutil.copy(os.path.join(CORPUS, name), www)
    # 64 KiB of real CSS for the hit runs.
    with open(os.path.join(CORPUS, "bootstrap-5.3.3.css"), "rb") as f:
        css = f.read()
    with open(os.path.join(www, "text-64k.css"), "wb") as f:
        f.write(css[:64 * 1024])
    body = f"""
    {TYPES}
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        add_header Cache-Control "public, max-age=3600";
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    os.makedirs(prefix, exist_ok=True)
    with open(conf, "w") as f:
        f.write(load.nginx_conf(prefix, body))
    procs.start(["taskset", "-c", "1", "nginx", "-p", prefix, "-c", conf],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load.wait_http(f"http://127.0.0.1:{port}/h5bp-404.html")


def start_nginx(procs, work, port, origin_port):
    prefix = os.path.join(work, "nginx")
    os.makedirs(os.path.join(prefix, "cache"))
    body = f"""
    {TYPES}
    access_log off;
    gzip on;
    gzip_comp_level 6;
    gzip_min_length 256;
    gzip_proxied any;
    gzip_vary on;
    gzip_types text/css application/javascript;
    proxy_cache_path {prefix}/cache keys_zone=edge:16m max_size=64m inactive=1h;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header Accept-Encoding "";
        location / {{ proxy_pass http://origin; proxy_cache edge; }}
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(load.nginx_conf(prefix, body))
    p = procs.start(["taskset", "-c", "0", "nginx", "-p", prefix, "-c", conf],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load.wait_http(f"http://127.0.0.1:{port}/h5bp-404.html", host=load.HOST)
    return p


def start_meridian(procs, work, binary, port, admin, origin_port):
    routes = '[[sites.routes]]\npath = "/"\ncache = true\ncompress = true\nminify = true\n'
    conf = load.meridian_conf(work, port, admin, origin_port, routes=routes)
    p = load.spawn_meridian(procs, work, binary, conf)
    load.wait_http(f"http://127.0.0.1:{admin}/healthz")
    return p


def wire_bytes(port, path, accept_encoding):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Host": load.HOST, "Accept-Encoding": accept_encoding})
    with urllib.request.urlopen(req, timeout=10) as r:
        return len(r.read()), r.headers.get("Content-Encoding", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    binary, procs, work = load.prepare("minify", ("wrk", "nginx", "taskset"),
                                       "apt-get install wrk nginx-light util-linux")
    try:
        origin_port, nginx_port, meridian_port, admin_port = (load.free_port() for _ in range(4))
        start_origin(procs, work, origin_port)
        nginx = start_nginx(procs, work, nginx_port, origin_port)
        meridian = start_meridian(procs, work, binary, meridian_port, admin_port, origin_port)

        print("| file | original | nginx gzip 6 | Meridian minify + br | Meridian / nginx |")
        print("|---|---|---|---|---|")
        totals = [0, 0, 0]
        for name in FILES:
            original = os.path.getsize(os.path.join(CORPUS, name))
            ng, ng_ce = wire_bytes(nginx_port, f"/{name}", "gzip")
            me, me_ce = wire_bytes(meridian_port, f"/{name}", "br, gzip")
            assert (ng_ce, me_ce) == ("gzip", "br"), (name, ng_ce, me_ce)
            totals = [totals[0] + original, totals[1] + ng, totals[2] + me]
            print(f"| {name} | {original} | {ng} | {me} | {me / ng:.2f} |")
        print(f"| total | {totals[0]} | {totals[1]} | {totals[2]} | {totals[2] / totals[1]:.2f} |\n")

        path = "/text-64k.css"
        runs = {
            "meridian br": (meridian_port, [meridian.pid], ["Accept-Encoding: br"]),
            "meridian identity": (meridian_port, [meridian.pid], []),
            "nginx gzip 6": (nginx_port, [nginx.pid] + load.children(nginx.pid), ["Accept-Encoding: gzip"]),
        }
        for label, (port, _, headers) in runs.items():
            for _ in range(2):  # fill, then check it is served
                wire_bytes(port, path, headers[0].split(": ")[1] if headers else "identity")
        results = {label: [] for label in runs}
        for rnd in range(args.rounds):
            order = list(runs) if rnd % 2 == 0 else list(reversed(runs))
            for label in order:
                port, pids, headers = runs[label]
                r = load.measure(label, f"http://127.0.0.1:{port}{path}", pids, 50, args.duration, headers)
                if r["errors"]:
                    raise SystemExit(f"{label}: {r['errors']} errors\n{r['raw']}")
                results[label].append(r)
                print(f"round {rnd} {label:18} {r['rps']:>9.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
                      f"{r['cpu_us_per_req']:.1f} us/req  wrk cpu {r['client_cpu']:.0%}", flush=True)
        print("\n| 64 KiB text hit | req/s | p99 ms | server CPU us/req |")
        print("|---|---|---|---|")
        med = {}
        for label, rs in results.items():
            med[label] = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p99_ms", "cpu_us_per_req")}
            m = med[label]
            print(f"| {label} | {m['rps']:.0f} | {m['p99_ms']:.2f} | {m['cpu_us_per_req']:.1f} |")
        b, i, n = med["meridian br"], med["meridian identity"], med["nginx gzip 6"]
        print(f"\nbr variant / identity variant: CPU per request {b['cpu_us_per_req'] / i['cpu_us_per_req']:.2f}x, "
              f"req/s {b['rps'] / i['rps']:.2f}x")
        print(f"Meridian br hit / nginx gzip 6 hit: CPU per request {b['cpu_us_per_req'] / n['cpu_us_per_req']:.2f}x, "
              f"req/s {b['rps'] / n['rps']:.2f}x")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
