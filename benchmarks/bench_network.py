"""The network alone, per render size: milliseconds per photo on this machine's CPU.

Times `Colorizer.predict` without the decode, upsampling and encode around it: the
photo's luma is resized to the render size and the U-Net runs once. A 4:3 photo, so a
render size of 192 means a 192x256 network input.

    python benchmarks/bench_network.py --weights src/rechroma/weights/rechroma-v1.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from rechroma.inference import Colorizer

SIZES = (64, 96, 128, 192, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, threads=args.threads)
    photo = Image.linear_gradient("L").resize((1200, 900))
    rows = []
    for size in SIZES:
        colorizer.predict(photo, size)  # warm-up: allocations, kernel selection
        times = []
        for _ in range(args.repeats):
            stages: dict[str, float] = {}
            colorizer.predict(photo, size, timings=stages)
            times.append(stages["network"])
        rows.append(
            {
                "render_size": size,
                "median_ms": 1000 * statistics.median(times),
                "p90_ms": 1000 * sorted(times)[int(0.9 * len(times))],
            }
        )
        print(
            f"render size {size}: {rows[-1]['median_ms']:.1f} ms median, "
            f"{rows[-1]['p90_ms']:.1f} ms p90 ({args.threads} threads)"
        )
    if args.out:
        report = {"weights": str(colorizer.weights_path), "threads": args.threads, "rows": rows}
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    start = time.perf_counter()
    main()
