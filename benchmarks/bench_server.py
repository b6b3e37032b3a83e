"""Load test: many 1-MP JPEG uploads at a fixed concurrency against `rechroma serve`.

Starts the server (shipped model, default limits) on a free loopback port in its own
process, sends `--requests` uploads with `--concurrency` in flight, stops issuing new
ones after `--max-seconds`, then prints throughput, latency percentiles, errors by
status and the server's peak RSS, and checks the server is still healthy.

    python benchmarks/bench_server.py --requests 1000 --concurrency 8 --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO_DIR = ROOT.parent / "shared" / "data" / "photos-val"


def grainy_jpeg(photo: Path, width: int, height: int) -> bytes:
    """A grainy grayscale JPEG of `width x height` made from a real photo."""
    gray = Image.open(photo).convert("L").resize((width, height), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(0).normal(0, 4, (height, width))
    pixels = np.clip(np.asarray(gray, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "rechroma", "--quiet", "serve", "--port", str(port), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {process.stderr.read().decode()[-2000:]}")


async def load(url: str, body: bytes, requests: int, concurrency: int, max_seconds: float):
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    issued = 0
    started = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < requests and time.perf_counter() - started < max_seconds:
            issued += 1
            tick = time.perf_counter()
            try:
                response = await client.post(url, files={"file": ("scan.jpg", body, "image/jpeg")})
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - tick)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=900, help="stop issuing after")
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for server.json")
    parser.add_argument("serve_args", nargs="*", help="extra `rechroma serve` options")
    args = parser.parse_args()

    photo = args.photo or sorted(DEFAULT_PHOTO_DIR.glob("*.JPEG"))[0]
    body = grainy_jpeg(photo, 1155, 866)  # 1 MP
    big = grainy_jpeg(photo, 4000, 3000)  # 12 MP
    port = free_port()
    server = start_server(port, args.serve_args)
    try:
        url = f"http://127.0.0.1:{port}/api/colorize"
        twelve_mp = []
        for _ in range(3):  # one 12 MP photo at a time: upload, colorize, download
            tick = time.perf_counter()
            answer = httpx.post(url, files={"file": ("big.jpg", big, "image/jpeg")}, timeout=120)
            twelve_mp.append(time.perf_counter() - tick)
            assert Image.open(io.BytesIO(answer.content)).size == (4000, 3000)
        latencies, statuses, seconds = asyncio.run(
            load(url, body, args.requests, args.concurrency, args.max_seconds)
        )
        healthy = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    sent = sum(statuses.values())
    report = {
        "twelve_mp_s": statistics.median(twelve_mp),
        "requests": sent,
        "concurrency": args.concurrency,
        "upload_bytes": len(body),
        "seconds": seconds,
        "throughput_per_s": statuses["200"] / seconds,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "p99_s": percentile(latencies, 99),
        "mean_s": statistics.fmean(latencies) if latencies else float("nan"),
        "statuses": dict(statuses),
        "errors_other_than_503": sent - statuses["200"] - statuses["503"],
        "server_peak_rss_mb": rss,
        "healthy_after": healthy,
        "cpu_cores": os.cpu_count(),
        "serve_args": args.serve_args,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "server.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
