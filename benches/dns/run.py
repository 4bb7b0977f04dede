#!/usr/bin/env python3
"""DNS load benchmark: Meridian's geo-DNS against gdnsd 3 in the same role, same run.

Both servers answer one zone whose `www` is a geo record over four regions (Dublin, Ashburn,
Sydney, Sao Paulo) from the same GeoIP2-City database (the shipped country database at
country centroids, built by `cargo run --example make_city_db`). dnsperf replays A queries
for `www`, each with an EDNS Client Subnet drawn from 4096 /24s spread over the database.

Each server is pinned to CPU 0 with one DNS thread, dnsperf to CPU 1. Rounds interleave the
servers. Reported per server: queries/s, lost queries, server CPU microseconds per query
(from /proc/PID/stat), and the Meridian / gdnsd ratios. gdnsd runs when installed (Debian
package gdnsd); without it only Meridian is measured.

    benches/dns/run.py                    # 3 rounds x 10 s
    benches/dns/run.py --rounds 1 --seconds 3

Binds only 127.0.0.1; every process it starts is stopped on exit.
"""

import argparse
import importlib.util
import os
import random
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Process helpers shared with the HTTP load harness.
_spec = importlib.util.spec_from_file_location("load_harness", os.path.join(ROOT, "benches", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

REGIONS = [
    ("eu-west", 53.35, -6.26, "127.0.1.1"),
    ("us-east", 39.04, -77.49, "127.0.2.1"),
    ("ap-southeast", -33.87, 151.21, "127.0.3.1"),
    ("sa-east", -23.55, -46.63, "127.0.4.1"),
]


def dns_name(name):
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def query_with_ecs(qid, name, subnet, prefix=24):
    """A query for `name` A with EDNS (1232) and an ECS option for subnet/prefix."""
    header = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 1)
    question = dns_name(name) + struct.pack(">HH", 1, 1)
    addr = socket.inet_aton(subnet)[: (prefix + 7) // 8]
    ecs = struct.pack(">HBB", 1, prefix, 0) + addr
    option = struct.pack(">HH", 8, len(ecs)) + ecs
    opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, len(option)) + option
    return header + question + opt


def write_queries(path, subnets, count=20000):
    """dnsperf's binary input (-B): each message prefixed by its 2-byte length."""
    rng = random.Random(7)
    with open(path, "wb") as f:
        for i in range(count):
            msg = query_with_ecs(i & 0xFFFF, "www.example.test", rng.choice(subnets))
            f.write(struct.pack(">H", len(msg)) + msg)


def dig_answer(port, subnet):
    """(addresses, ECS scope) of www for a client in subnet/24, or None without an answer."""
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=2",
         f"+subnet={subnet}/24", "www.example.test"],
        capture_output=True, text=True,
    ).stdout
    addrs = re.findall(r"^www\.example\.test\.\s+\d+\s+IN\s+A\s+(\S+)$", out, re.M)
    scope = re.search(r"CLIENT-SUBNET: \S+/\d+/(\d+)", out)
    if not addrs:
        return None
    return tuple(addrs), int(scope.group(1)) if scope else None


def wait_dns(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if dig_answer(port, "1.1.1.0"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no DNS answer on port {port}")


def start_meridian(procs, work, binary, db, port):
    origin = load.free_port()
    regions = "".join(
        f'[[regions]]\nname = "{n}"\nlocation = {{ lat = {lat}, lon = {lon} }}\n'
        f'origins = ["127.0.0.1:{origin}"]\ndns_addresses = ["{a}"]\n'
        f'[regions.health_check]\nkind = "tcp"\n\n'
        for n, lat, lon, a in REGIONS
    )
    conf = os.path.join(work, "meridian.toml")
    with open(conf, "w") as f:
        f.write(f"""
[node]
name = "bench"
location = {{ lat = 53.35, lon = -6.26 }}
threads = 1
[listen]
http = ["127.0.0.1:{load.free_port()}"]
admin = "127.0.0.1:{load.free_port()}"
[log]
access = "off"
[demo]
origins = ["127.0.0.1:{origin}"]
[geoip]
database = "{db}"
{regions}
[dns]
listen = ["127.0.0.1:{port}"]
threads = 1
[[dns.zones]]
name = "example.test"
ns = ["ns1.example.test"]
hostmaster = "hostmaster.example.test"
serial = 1
[[dns.zones.records]]
name = "www"
type = "geo"
ttl = 30
[[dns.zones.records]]
name = "ns1"
type = "A"
values = ["127.0.0.53"]
""")
    p = load.spawn_meridian(procs, work, binary, conf)
    wait_dns(port)
    return p


def start_gdnsd(procs, work, db, port):
    cfg = os.path.join(work, "gdnsd")
    for sub in ("zones", "geoip"):
        os.makedirs(os.path.join(cfg, sub), exist_ok=True)
    shutil.copy(db, os.path.join(cfg, "geoip", "world.mmdb"))
    coords = "\n".join(f"          {n} => [{lat}, {lon}]" for n, lat, lon, _ in REGIONS)
    dcmap = "\n".join(f"          {n} => {a}" for n, _, _, a in REGIONS)
    names = ", ".join(n for n, _, _, _ in REGIONS)
    with open(os.path.join(cfg, "config"), "w") as f:
        f.write(f"""
options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => 1
  tcp_threads => 1
}}
plugins => {{
  geoip => {{
    maps => {{
      world => {{
        geoip2_db => world.mmdb
        datacenters => [{names}]
        auto_dc_coords => {{
{coords}
        }}
        auto_dc_limit => 1
      }}
    }}
    resources => {{
      www => {{
        map => world
        dcmap => {{
{dcmap}
        }}
      }}
    }}
  }}
}}
""")
    with open(os.path.join(cfg, "zones", "example.test"), "w") as f:
        f.write("$TTL 3600\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n"
                "ns1 A 127.0.0.53\nwww 30 DYNA geoip!www\n")
    log = open(os.path.join(work, "gdnsd.log"), "w")
    p = procs.start(["taskset", "-c", "0", "gdnsd", "-c", cfg, "start"],
                    stdout=log, stderr=subprocess.STDOUT)
    wait_dns(port)
    return p


DNSPERF_QPS = re.compile(r"Queries per second:\s+([\d.]+)")
DNSPERF_LOST = re.compile(r"Queries lost:\s+(\d+)")
DNSPERF_SENT = re.compile(r"Queries sent:\s+(\d+)")
DNSPERF_LAT = re.compile(r"Average Latency \(s\):\s+([\d.]+)")


def measure(pid, port, queries, seconds, clients):
    before = sum(load.cpu_ticks([pid] + load.children(pid)).values())
    out = subprocess.run(
        ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
         "-B", "-l", str(seconds), "-c", str(clients), "-T", "1", "-q", "200", "-t", "2"],
        capture_output=True, text=True,
    ).stdout
    after = sum(load.cpu_ticks([pid] + load.children(pid)).values())
    qps = float(DNSPERF_QPS.search(out).group(1))
    sent = int(DNSPERF_SENT.search(out).group(1))
    lost = int(DNSPERF_LOST.search(out).group(1))
    lat = float(DNSPERF_LAT.search(out).group(1))
    cpu_us = (after - before) / CLK_TCK * 1e6
    return {"qps": qps, "sent": sent, "lost": lost, "avg_ms": lat * 1000,
            "cpu_us_per_query": cpu_us / max(sent - lost, 1),
            "cpu_share": (after - before) / CLK_TCK / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    for tool in ("dnsperf", "dig", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install dnsperf dnsutils util-linux)")

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "meridian",
                    "--example", "make_city_db"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "meridian")
    maker = os.path.join(ROOT, "target", "release", "examples", "make_city_db")
    procs = load.Procs()
    work = tempfile.mkdtemp(prefix="meridian-dns-bench-")
    try:
        db = os.path.join(work, "world-city.mmdb")
        subnets_path = os.path.join(work, "subnets.txt")
        subprocess.run([maker, os.path.join(ROOT, "geoip", "geo-whois-asn-country.mmdb"),
                        os.path.join(ROOT, "geoip", "country-coordinates.csv"), db, subnets_path],
                       check=True)
        subnets = open(subnets_path).read().split()
        queries = os.path.join(work, "queries.bin")
        write_queries(queries, subnets)

        servers, ports = {}, {}
        ports["meridian"] = load.free_port()
        servers["meridian"] = start_meridian(procs, work, binary, db, ports["meridian"])
        if shutil.which("gdnsd"):
            ports["gdnsd"] = load.free_port()
            servers["gdnsd"] = start_gdnsd(procs, work, db, ports["gdnsd"])
        else:
            print("gdnsd not installed: measuring Meridian alone (apt-get install gdnsd)")

        # Same answers first: a benchmark of different work would mean nothing.
        sample = random.Random(1).sample(subnets, 50)
        if "gdnsd" in servers:
            pairs = [(s, dig_answer(ports["meridian"], s), dig_answer(ports["gdnsd"], s)) for s in sample]
            differ = [p for p in pairs if p[1] is None or p[2] is None or p[1][0] != p[2][0]]
            wider = sum(1 for _, m, g in pairs if m and g and g[1] > m[1])
            print(f"answers compared on {len(sample)} subnets: {len(differ)} differ"
                  + (f" (e.g. {differ[:3]})" if differ else "")
                  + f"; gdnsd's ECS scope is wider on {wider} (it merges networks with the same answer)")

        rows = {name: [] for name in servers}
        for r in range(args.rounds):
            for name, proc in servers.items():
                m = measure(proc.pid, ports[name], queries, args.seconds, args.clients)
                rows[name].append(m)
                print(f"round {r + 1} {name:9s} {m['qps']:>10.0f} q/s  lost {m['lost']:>5d}  "
                      f"avg {m['avg_ms']:.3f} ms  server CPU {m['cpu_us_per_query']:.2f} us/query "
                      f"({m['cpu_share'] * 100:.0f}% of a core)")

        print("\nmedians over rounds:")
        med = {n: {k: statistics.median(x[k] for x in v) for k in v[0]} for n, v in rows.items()}
        for name, m in med.items():
            print(f"  {name:9s} {m['qps']:>10.0f} q/s  {m['cpu_us_per_query']:.2f} us CPU/query  "
                  f"avg {m['avg_ms']:.3f} ms  ({m['cpu_share'] * 100:.0f}% of a core)")
        if "gdnsd" in med:
            mq, gq = med["meridian"], med["gdnsd"]
            print(f"  meridian / gdnsd: throughput {mq['qps'] / gq['qps']:.2f}x, "
                  f"CPU per query {mq['cpu_us_per_query'] / gq['cpu_us_per_query']:.2f}x")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
