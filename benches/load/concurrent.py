#!/usr/bin/env python3
"""Concurrent A/B: what one configuration change costs Meridian in server CPU per request,
measured to about a percent on a noisy shared host.

run.py's --compare/--tracing runs A and B one after the other, so a neighbour's load that
comes and goes between two 8 s runs lands on one side of the ratio only: its A/A control
spread 0.87-1.33 per round, too coarse for issue 17's "tracing at sample_ratio 0.01 costs
<= 3 %". Here A and B run *at the same time*, both pinned to CPU 0 (they share it, so a
frequency change, a steal burst or a noisy cache neighbour hits both within the same
milliseconds), each driven by its own wrk on CPU 1 with the same connections and path. A
round's figure is B's CPU per request over A's, CPU read from every thread's schedstat
(nanoseconds, not 10 ms ticks). The two processes swap roles each round (A's config on the
first port, then on the second) so nothing about start order or port favours one side.

    benches/load/concurrent.py --rounds 15                     # A/A control: both plain
    benches/load/concurrent.py --rounds 15 --tracing 0.01      # B with [tracing] at 0.01
    benches/load/concurrent.py --rounds 15 --image             # B: an optimised image variant
    benches/load/concurrent.py --binary OLD --binary-b NEW --path /obj/64k.bin   # before/after
    benches/load/concurrent.py --against-nginx --path /dyn/1k.bin       # issue 13's ratios, at once
    benches/load/concurrent.py --against-pingora --path /dyn/1k.bin     # Meridian over pingora alone
    benches/load/concurrent.py --pingora-against-nginx --path /dyn/1k.bin   # pingora alone over nginx
    benches/load/concurrent.py --disk --binary OLD --binary-b NEW      # issue 15's disk hits, before/after

With --disk, every Meridian has benches/disk/run.py's ws10x-64k setup (cache.memory 32 MiB, a
disk tier holding 5,120 objects of 64 KiB, 10x memory) and wrk asks for them at random: the
A/B of a change to the disk-hit path, which run.py's one-after-the-other rounds cannot resolve
below about 3 % on this host (benches/results/2026-12-03-vm/page-cache-check.md).

With --image, B's route has `images = "lossy"` and B serves the WebP variant it made of a real
photograph (benches/images/board.jpg) to `Accept: image/webp`; A's route has no `images` and
serves the very same WebP bytes as a file from the origin. Both send the same bytes to the same
client: the ratio is what the variant costs a hit (the `Vary: Accept` lookup, the marker, the
`Cache-Status` parameter).

Binds only 127.0.0.1; stops every process it starts.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the load harness: origin, configs, wrk, process handling)


def cpu_ns(node):
    """CPU time used so far by every thread of the node's processes, in nanoseconds
    (schedstat's first field): Meridian's one process, or nginx's master and worker."""
    pids = [node["pid"]] + (run.children(node["pid"]) if node.get("nginx") else [])
    return sum(thread_ns(pid) for pid in pids)


def thread_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def start_node(procs, work, name, binary, origin_port, extra, routes=None, path=None, headers=()):
    node_work = os.path.join(work, name)
    os.makedirs(node_work)
    port, admin = run.free_port(), run.free_port()
    if routes is None:
        p = run.start_meridian(procs, node_work, binary, port, admin, origin_port, False, extra)
    else:
        conf = run.meridian_conf(node_work, port, admin, origin_port, routes=routes, extra=extra)
        p = run.spawn_meridian(procs, node_work, binary, conf)
        run.wait_http(f"http://127.0.0.1:{admin}/healthz")
    return {"name": name, "port": port, "pid": p.pid, "path": path, "headers": list(headers)}


def disk_module():
    """benches/disk/run.py, for its disk-tier Meridian and working set."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("disk_bench", os.path.join(run.ROOT, "benches", "disk", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_disk_node(procs, work, name, binary, origin_port, disk):
    """A Meridian with ws10x-64k's disk tier, every object of the working set on disk, and a
    wrk script asking for them at random."""
    port, admin = run.free_port(), run.free_port()
    p = disk.meridian_disk(procs, work, binary, port, admin, origin_port, disk.MEMORY_MIB, "512KiB", name=name)
    n = disk.WORKING_SET
    disk.fill_until_stored(name, port, admin, n, "/obj/64k.bin", work)
    return {"name": name, "port": port, "pid": p.pid, "path": "/obj/64k.bin?i=0", "headers": [],
            "script": disk.random_script(work, n, "/obj/64k.bin")}


def settle_image(node):
    """Asks B for the WebP variant until a hit serves it; returns its bytes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, headers, body = run.fetch(f"http://127.0.0.1:{node['port']}{node['path']}",
                                          headers={"Accept": "image/webp"})
        cs = headers.get("Cache-Status") or headers.get("cache-status", "")
        if status == 200 and "hit" in cs and "image=webp" in cs:
            return body
        time.sleep(0.1)
    raise SystemExit("B never served its WebP variant")


def concurrent_round(nodes, path, conns, seconds):
    """Both wrk runs at once; returns each node's (requests, cpu ns) keyed by name."""
    before = {n["name"]: cpu_ns(n) for n in nodes}
    results = {}

    def drive(node):
        url = f"http://127.0.0.1:{node['port']}{node.get('path') or path}"
        results[node["name"]] = run.run_wrk(url, conns, seconds, node.get("headers") or (), node.get("script"))

    threads = [threading.Thread(target=drive, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {}
    for n in nodes:
        r = results.get(n["name"])
        if r is None or not r["requests"] or r["errors"]:
            raise SystemExit(f"{n['name']}: unusable run: {r and r['raw']}")
        out[n["name"]] = (r["requests"], cpu_ns(n) - before[n["name"]], r["rps"])
    return out


def start_bare(procs, work, name, origin_port):
    """pingora proxying with nothing else (benches/load/bare_pingora.rs): the floor of
    Meridian's proxy path."""
    port, p = run.start_bare_pingora(procs, work, origin_port)
    return {"name": name, "port": port, "pid": p.pid, "path": None, "headers": []}


def start_nginx(procs, work, name, origin_port):
    port = run.free_port()
    nginx_work = os.path.join(work, "n" + name)
    os.makedirs(nginx_work)
    p = run.start_nginx_proxy(procs, nginx_work, port, origin_port, False)
    return {"name": name, "port": port, "pid": p.pid, "path": None, "headers": [], "nginx": True}


def baseline_pairs(start_a, start_b):
    """Two (A, B) pairs, in both start orders; `start_a(name)` and `start_b(name)` start one
    server each."""
    pairs = []
    for suffix in ("", "2"):
        a, b = start_a("a" + suffix), start_b("b" + suffix)
        pairs.append([a, b] if suffix == "" else [b, a])
    return pairs


def image_pairs(procs, work, binary, origin_port):
    """Two (A, B) pairs for --image: B makes and serves the WebP variant of the photograph, A
    serves the same bytes from the origin as /obj/photo.webp, with no `images` on its route."""
    www = os.path.join(work, "origin", "www", "obj")
    with open(os.path.join(run.ROOT, "benches", "images", "board.jpg"), "rb") as f:
        photo = f.read()
    with open(os.path.join(www, "photo.jpg"), "wb") as f:
        f.write(photo)
    accept = ["Accept: image/webp"]
    plain = '[[sites.routes]]\npath = "/"\ncache = true\n'
    images = plain + 'images = "lossy"\n'
    pairs = []
    for suffix in ("", "2"):
        b = start_node(procs, work, "b" + suffix, binary, origin_port, "", images, "/obj/photo.jpg", accept)
        webp = settle_image(b)
        with open(os.path.join(www, "photo.webp"), "wb") as f:
            f.write(webp)
        a = start_node(procs, work, "a" + suffix, binary, origin_port, "", plain, "/obj/photo.webp", accept)
        pairs.append([a, b] if suffix == "" else [b, a])
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(run.ROOT, "target", "release", "meridian"))
    ap.add_argument("--binary-b", help="B runs this build instead (a before/after of two commits)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--duration", type=int, default=6, help="seconds per round")
    ap.add_argument("--connections", type=int, default=25, help="per server")
    ap.add_argument("--path", default="/obj/1k.bin", help="what both serve (a warm hit by default)")
    ap.add_argument("--against-nginx", action="store_true",
                    help="A is nginx (proxy_cache on tmpfs, one worker), B Meridian: run.py's "
                         "scenarios measured at the same time instead of one after the other")
    ap.add_argument("--against-pingora", action="store_true",
                    help="A is pingora alone (benches/load/bare_pingora.rs), B Meridian: what "
                         "Meridian adds to pingora's proxy path (use an uncached --path)")
    ap.add_argument("--pingora-against-nginx", action="store_true",
                    help="A is nginx, B pingora alone: the floor under issue 13's proxy ratio")
    ap.add_argument("--image", action="store_true",
                    help="B serves an optimised WebP variant, A the same bytes as a plain file")
    ap.add_argument("--disk", action="store_true",
                    help="A and B serve 64 KiB objects from a disk tier 10x cache.memory, at random "
                         "(benches/disk/run.py's ws10x-64k)")
    ap.add_argument("--tracing", type=float, metavar="RATIO",
                    help="B gets [tracing] at this sample_ratio (exporting to a sink on CPU 1); "
                         "without it B is configured as A (the A/A control)")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        raise SystemExit("needs 2 CPUs: the servers run on CPU 0 and wrk on CPU 1")
    os.sched_setaffinity(0, {1})

    procs = run.Procs()
    work = tempfile.mkdtemp(prefix="meridian-ab-")
    os.chmod(work, 0o755)
    try:
        origin_port = run.free_port()
        run.start_origin(procs, work, origin_port)
        extra_b = ""
        if args.tracing is not None:
            sink = run.otlp_sink()
            extra_b = (f'[tracing]\notlp_endpoint = "http://127.0.0.1:{sink.server_port}"\n'
                       f"sample_ratio = {args.tracing}\n")
        if args.image:
            pairs = image_pairs(procs, work, args.binary, origin_port)
        elif args.disk:
            disk = disk_module()
            binary_b = args.binary_b or args.binary

            def node(name, binary):
                return start_disk_node(procs, work, name, binary, origin_port, disk)

            pairs = [[node("a", args.binary), node("b", binary_b)],
                     list(reversed([node("b2", binary_b), node("a2", args.binary)]))]
        elif args.against_nginx or args.against_pingora or args.pingora_against_nginx:
            def meridian(name):
                return start_node(procs, work, name, args.binary, origin_port, "")

            def nginx(name):
                return start_nginx(procs, work, name, origin_port)

            def bare(name):
                return start_bare(procs, work, name, origin_port)

            pairs = (baseline_pairs(nginx, meridian) if args.against_nginx
                     else baseline_pairs(bare, meridian) if args.against_pingora
                     else baseline_pairs(nginx, bare))
        else:
            # Two of each, so the roles can swap between rounds: a and b run in odd rounds, a2
            # and b2 (started in the other order) in even ones. Idle pairs cost nothing measured.
            binary_b = args.binary_b or args.binary
            pairs = [
                [start_node(procs, work, "a", args.binary, origin_port, ""),
                 start_node(procs, work, "b", binary_b, origin_port, extra_b)],
            ]
            pairs.append(list(reversed([
                start_node(procs, work, "b2", binary_b, origin_port, extra_b),
                start_node(procs, work, "a2", args.binary, origin_port, ""),
            ])))
        for pair in pairs:
            for n in pair:
                for _ in range(2):
                    run.fetch(f"http://127.0.0.1:{n['port']}{n['path'] or args.path}",
                              headers=dict(h.split(": ", 1) for h in n["headers"]))
        # One unmeasured round per pair: connection pools, allocator arenas and caches warm.
        for pair in pairs:
            concurrent_round(pair, args.path, args.connections, 2)

        ratios = []
        print(f"{'round':>5} {'A req/s':>9} {'B req/s':>9} {'A us/req':>9} {'B us/req':>9} {'B/A':>7}")
        for rnd in range(args.rounds):
            pair = pairs[rnd % 2]
            got = concurrent_round(pair, args.path, args.connections, args.duration)
            a_name, b_name = pair[0]["name"], pair[1]["name"]
            if not a_name.startswith("a"):
                a_name, b_name = b_name, a_name
            a_req, a_ns, a_rps = got[a_name]
            b_req, b_ns, b_rps = got[b_name]
            a_us, b_us = a_ns / a_req / 1000, b_ns / b_req / 1000
            ratios.append(b_us / a_us)
            print(f"{rnd:>5} {a_rps:>9.0f} {b_rps:>9.0f} {a_us:>9.2f} {b_us:>9.2f} {b_us / a_us:>7.3f}", flush=True)
        ratios.sort()
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], statistics.median(ratios), ratios[-1]]
        what = (f"[tracing] sample_ratio = {args.tracing}" if args.tracing is not None
                else "an optimised WebP variant" if args.image
                else f"build {args.binary_b}" + (" on disk hits" if args.disk else "") if args.binary_b
                else "A/A control on disk hits" if args.disk
                else "Meridian, A nginx" if args.against_nginx
                else "Meridian, A pingora alone" if args.against_pingora
                else "pingora alone, A nginx" if args.pingora_against_nginx else "A/A control")
        print(f"B ({what}) / A server CPU per request: median {statistics.median(ratios):.3f}, "
              f"quartiles {q[0]:.3f} .. {q[2]:.3f}, range {ratios[0]:.3f} .. {ratios[-1]:.3f} "
              f"over {len(ratios)} rounds")
    finally:
        procs.stop_all()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
