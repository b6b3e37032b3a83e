"""The network alone, per render size: milliseconds per photo on this machine's CPU.

Times `Colorizer.predict` without the decode, upsampling and encode around it: the
photo's luma is resized to the render size and the U-Net runs once. A 4:3 photo, so a
render size of 192 means a 192x256 network input.

    python benchmarks/bench_network.py --out docs/benchmarks/network.json

The default runs the network on ONNX Runtime (`rechroma.inference.runtime`); the
"torch" column times PyTorch with batch norms folded into the convolutions and
channels-last (`rechroma.models.fuse`), and the "unfused" column the same weights as
trained, all in the same process, so each pair differs only in that one change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from PIL import Image

from rechroma.inference.colorizer import Colorizer
from rechroma.models.checkpoint import load_generator

SIZES = (64, 96, 128, 160, 192, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, threads=args.threads, runtime="onnx")
    fused = Colorizer.load(args.weights, runtime="torch")
    unfused = Colorizer.load(args.weights, runtime="torch")
    unfused.model = unfused.network = load_generator(unfused.weights_path)[0].eval()
    photo = Image.linear_gradient("L").resize((1200, 900))
    rows = []
    for size in SIZES:
        row: dict[str, float] = {"render_size": size}
        for name, candidate in (("", colorizer), ("torch_", fused), ("unfused_", unfused)):
            candidate.predict(photo, size)  # warm-up: allocations, kernel selection
            times = []
            for _ in range(args.repeats):
                stages: dict[str, float] = {}
                candidate.predict(photo, size, timings=stages)
                times.append(stages["network"])
            row[f"{name}median_ms"] = 1000 * statistics.median(times)
            row[f"{name}p90_ms"] = 1000 * sorted(times)[int(0.9 * len(times))]
        rows.append(row)
        print(
            f"render size {size}: {row['median_ms']:.1f} ms median, {row['p90_ms']:.1f} ms p90;"
            f" PyTorch {row['torch_median_ms']:.1f} ms median;"
            f" unfused {row['unfused_median_ms']:.1f} ms median ({args.threads} threads)"
        )
    if args.out:
        report = {"weights": str(colorizer.weights_path), "threads": args.threads, "rows": rows}
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
