#!/usr/bin/env python3
"""HTTPS benchmark: Meridian against nginx terminating TLS in the same role, same run.

Both serve a cached 1 KiB object from the same nginx origin, with the same ECDSA P-256
certificate, on CPU 0 with one worker; wrk (OpenSSL) runs on CPU 1. Two scenarios:

  * keep-alive hits: 50 connections, many requests each (bulk encryption + HTTP);
  * handshakes: `Connection: close` on every request, so each request is a new TCP
    connection and a full TLS handshake (wrk does not resume sessions).

Rounds interleave the servers. For each it reports req/s, p99 and server CPU microseconds
per request, and the Meridian / nginx ratios; the negotiated protocol and cipher of each
server is printed first (checked with openssl s_client), so the comparison is like for like.

    benches/tls/run.py [--rounds 3] [--duration 10]

Binds only 127.0.0.1; every process it starts is stopped on exit.
"""

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("load_harness", os.path.join(ROOT, "benches", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

HOST = load.HOST
PATH = "/obj/1k.bin"


def make_certificate(work):
    cert, key = os.path.join(work, "bench.pem"), os.path.join(work, "bench.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def start_nginx(procs, work, port, origin_port, cert, key):
    prefix = os.path.join(work, "nginx")
    os.makedirs(os.path.join(prefix, "cache"))
    body = f"""
    access_log off;
    proxy_cache_path {prefix}/cache keys_zone=edge:16m max_size=64m inactive=1h;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} ssl http2 reuseport;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        location / {{ proxy_pass http://origin; proxy_cache edge; }}
    }}"""
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(load.nginx_conf(prefix, body))
    return procs.start(["taskset", "-c", "0", "nginx", "-p", prefix, "-c", conf],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_meridian(procs, work, binary, port, https_port, admin, origin_port, cert, key):
    conf = load.meridian_conf(work, port, admin, origin_port,
                              listen=f'https = ["127.0.0.1:{https_port}"]',
                              site=f'tls = {{ cert = "{cert}", key = "{key}" }}')
    p = load.spawn_meridian(procs, work, binary, conf)
    load.wait_http(f"http://127.0.0.1:{admin}/healthz")
    return p


def curl_ok(port, cert):
    """GETs the object over HTTPS (twice: fill, then hit); true when both answer 200."""
    for _ in range(2):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cert,
                            "--resolve", f"{HOST}:{port}:127.0.0.1", f"https://{HOST}:{port}{PATH}"],
                           capture_output=True, text=True)
        if r.stdout != "200":
            return False
    return True


def negotiated(port, cert):
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST,
                          "-CAfile", cert, "-brief"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True).stderr
    proto = re.search(r"Protocol version: (\S+)", out)
    cipher = re.search(r"Ciphersuite: (\S+)", out)
    return f"{proto.group(1) if proto else '?'} {cipher.group(1) if cipher else '?'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    binary, procs, work = load.prepare("tls", ("wrk", "nginx", "taskset", "openssl", "curl"),
                                       "apt-get install wrk nginx-light util-linux openssl curl")
    try:
        origin_port, nginx_port, m_http, m_https, admin = (load.free_port() for _ in range(5))
        cert, key = make_certificate(work)
        load.start_origin(procs, work, origin_port)
        nginx = start_nginx(procs, work, nginx_port, origin_port, cert, key)
        meridian = start_meridian(procs, work, binary, m_http, m_https, admin, origin_port, cert, key)
        servers = {
            "nginx": (nginx_port, lambda: [nginx.pid] + load.children(nginx.pid)),
            "meridian": (m_https, lambda: [meridian.pid]),
        }
        for name, (port, _) in servers.items():
            for _ in range(100):
                if curl_ok(port, cert):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"{name} does not answer over HTTPS")
            print(f"{name}: {negotiated(port, cert)}")
        scenarios = {"keep-alive 1 KiB hit": (50, ()), "handshake + 1 KiB hit": (16, ("Connection: close",))}
        rows = {(s, n): [] for s in scenarios for n in servers}
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            for scenario, (conns, headers) in scenarios.items():
                for name in order:
                    port, pids = servers[name]
                    r = load.measure(name, f"https://127.0.0.1:{port}{PATH}", pids(), conns,
                                     args.duration, headers)
                    rows[(scenario, name)].append(r)
                    print(f"round {rnd} {scenario:22} {name:8} {r['rps']:>9.0f} req/s  p99 {r['p99_ms']:.2f} ms  "
                          f"{r['cpu_us_per_req']:.1f} us/req  errors {r['errors']}  wrk cpu {r['client_cpu']:.0%}",
                          flush=True)
        print("\n| scenario | nginx req/s | Meridian req/s | nginx CPU us/req | Meridian CPU us/req "
              "| CPU ratio M/n | req/s ratio M/n |")
        print("|---|---|---|---|---|---|---|")
        for scenario in scenarios:
            m = {n: {k: statistics.median(x[k] for x in rows[(scenario, n)]) for k in ("rps", "cpu_us_per_req")}
                 for n in servers}
            n_, m_ = m["nginx"], m["meridian"]
            print(f"| {scenario} | {n_['rps']:.0f} | {m_['rps']:.0f} | {n_['cpu_us_per_req']:.1f} | "
                  f"{m_['cpu_us_per_req']:.1f} | {m_['cpu_us_per_req'] / n_['cpu_us_per_req']:.2f} | "
                  f"{m_['rps'] / n_['rps']:.2f} |")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
