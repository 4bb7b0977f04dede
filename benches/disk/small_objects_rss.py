#!/usr/bin/env python3
"""What a memory tier full of small objects costs in RSS, read from outside the process.

    benches/disk/small_objects_rss.py [--binary target/release/meridian] [--objects 200000]

Starts the load harness's origin and a memory-only Meridian (cache.memory = 64 MiB), asks for
N distinct 1 KiB objects once each (`/obj/1k.bin?i=K`, wrk on CPU 1), then prints RSS idle and
after, and what the memory tier says it holds (meridian_cache_objects / meridian_cache_bytes).
RSS over idle against the weighed bytes says whether the weigher tells the truth: the CI
gate's memory check fills with 1 MiB objects, where per-object costs vanish.
Binds only 127.0.0.1; stops every process it starts.
"""
import argparse
import importlib.util
import os
import shutil
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("load_run", os.path.join(HERE, "..", "load", "run.py"))
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(load.ROOT, "target", "release", "meridian"))
    ap.add_argument("--objects", type=int, default=200_000)
    args = ap.parse_args()
    procs = load.Procs()
    work = tempfile.mkdtemp(prefix="meridian-rss-")
    os.chmod(work, 0o755)
    try:
        origin_port = load.free_port()
        load.start_origin(procs, work, origin_port)
        r = load.small_objects_rss(procs, work, args.binary, origin_port, args.objects)
        objects, weighed = r["objects"], r["weighed"]
        over = (r["rss"] - r["idle"]) * 2**20
        print(f"RSS idle {r['idle']:.0f} MiB; after {args.objects} distinct 1 KiB objects once: "
              f"RSS {r['rss']:.0f} MiB")
        print(f"memory tier: {objects:.0f} objects, {weighed / 2**20:.1f} MiB weighed "
              f"({weighed / max(objects, 1):.0f} B each)")
        print(f"RSS over idle: {over / max(objects, 1):.0f} B per object, "
              f"{over / max(weighed, 1):.2f}x the weighed bytes")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
