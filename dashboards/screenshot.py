#!/usr/bin/env python3
"""Renders the dashboard's main panels over a real run, for docs/dashboard.png.

Runs the demo node (target/release/meridian on conf/meridian.toml, its built-in origins),
drives traffic at it for a few minutes (hits, misses, compressed fills, 404s, geo-DNS
queries, and a drain of eu-west halfway, so traffic moves to us-east), lets a real
Prometheus scrape it every second, then opens Prometheus' own graph page with a selection of
the dashboard's queries (the same PromQL as dashboards/meridian.json) in headless Chromium
and saves a screenshot. Grafana is not needed.

    cargo build --release && dashboards/screenshot.py [--minutes 3] [--out docs/dashboard.png]

Needs prometheus and chromium (Debian packages) and pillow (PyPI). Binds only 127.0.0.1 (the demo's fixed
ports 8080, 8443, 8053, 9090 must be free); stops every process it starts.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "127.0.0.1:9090"
TOKEN = "change-me"

# (dashboard panel title, its first query) drawn on the page, in order.
PANELS = [
    "Requests per second by site and status class",
    "Cache hit ratio by requests",
    "Response time p50 / p95 / p99",
    "Origin responses per second by region and status class",
    "Origin latency p50 / p95 / p99 by region",
    "Regions up",
    "Bytes saved per second by minify and compression",
    "Geo answers per second by target",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None, method="GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait(url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def traffic(stop):
    paths = ["/", "/static/style.css", "/static/app.js", "/api/time", "/api/echo", "/missing"]
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        if i % 17 == 0:
            path = f"/static/style.css?v={i}"  # a miss now and then
        headers = {"Host": "localhost", "Accept-Encoding": "br, gzip"}
        if i % 3 == 0:
            headers["X-Forwarded-For"] = "8.8.8.8"  # a client in the US: us-east first
        get(f"http://127.0.0.1:8080{path}", headers)
        if i % 10 == 0:
            subprocess.run(["dig", "+short", "@127.0.0.1", "-p", "8053", "www.demo.test",
                            "+subnet=8.8.8.0/24" if i % 20 else "+subnet=81.2.69.0/24"],
                           capture_output=True)
        i += 1
        time.sleep(0.01)


def dashboard_queries():
    with open(os.path.join(ROOT, "dashboards", "meridian.json")) as f:
        dashboard = json.load(f)
    by_title = {p["title"]: p["targets"][0]["expr"] for p in dashboard["panels"] if p.get("targets")}
    return [(t, by_title[t].replace("$__rate_interval", "1m").replace("$site", ".*")) for t in PANELS]


def grid(shots, out):
    """The panels two by two, each under its dashboard title, on one image."""
    from PIL import Image, ImageDraw

    images = [(title, Image.open(path).convert("RGB")) for title, path in shots]
    w, h = images[0][1].size
    title_h = 36
    cols = 2
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * (h + title_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (title, image) in enumerate(images):
        x, y = (k % cols) * w, (k // cols) * (h + title_h)
        draw.text((x + 12, y + 10), title, fill="black")
        sheet.paste(image, (x, y + title_h))
    sheet = sheet.resize((sheet.width // 2, sheet.height // 2))
    sheet.save(out, optimize=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "dashboard.png"))
    args = ap.parse_args()
    for tool in ("prometheus", "chromium", "dig"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    binary = os.path.join(ROOT, "target", "release", "meridian")
    work = tempfile.mkdtemp(prefix="meridian-screenshot-")
    procs = []
    try:
        node = subprocess.Popen([binary, "serve", "--upgrade-sock", os.path.join(work, "up.sock")],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        procs.append(node)
        wait(f"http://{ADMIN}/healthz")
        prom_port = free_port()
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: meridian\n"
                    f"    static_configs:\n      - targets: ['{ADMIN}']\n")
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait(f"http://127.0.0.1:{prom_port}/-/ready")
        stop = threading.Event()
        driver = threading.Thread(target=traffic, args=(stop,), daemon=True)
        driver.start()
        seconds = args.minutes * 60
        time.sleep(seconds / 2)
        # Halfway: eu-west drained, its traffic moves to us-east.
        get(f"http://{ADMIN}/drain?region=eu-west", {"Authorization": f"Bearer {TOKEN}"}, "POST")
        time.sleep(seconds / 2)
        stop.set()
        driver.join()
        shots = []
        for i, (title, expr) in enumerate(dashboard_queries()):
            params = {"g0.expr": expr, "g0.tab": "0",
                      "g0.range_input": f"{max(1, int(args.minutes + 1))}m"}
            url = f"http://127.0.0.1:{prom_port}/graph?" + urllib.parse.urlencode(params)
            shot = os.path.join(work, f"panel-{i}.png")
            subprocess.run(
                ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={work}/chromium", "--hide-scrollbars",
                 "--window-size=1200,720", "--virtual-time-budget=10000",
                 f"--screenshot={shot}", url],
                check=True, capture_output=True)
            shots.append((title, shot))
        grid(shots, args.out)
        print(f"written {args.out}")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
