"""End-to-end CPU time and peak memory of `rechroma restore` on damaged 1-24 MP scans.

For each size, a fresh process restores the same damaged photo (a real photo's luma
resized, film grain, then the seeded print-damage generator) several times and reports
the median seconds, the time per stage (decode, detect, fill, tone, encode) and its peak
RSS. The bar (issue #25): 12 MP in at most 2 s and 1.5 GB.

    python benchmarks/bench_restore.py                    # prints a table
    python benchmarks/bench_restore.py --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO = ROOT.parent / "shared" / "data" / "photos-val" / "n03018349_china_cabinet.JPEG"
SIZES = (1, 4, 12, 24)


def make_scan(photo: Path, megapixels: float, path: Path) -> Path:
    """A damaged gray scan of `megapixels`, as a JPEG."""
    from rechroma.data.print_damage import damage_photo

    source = Image.open(photo).convert("L")
    scale = (megapixels * 1e6 / (source.width * source.height)) ** 0.5
    size = (round(source.width * scale), round(source.height * scale))
    gray = np.asarray(source.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    grain = np.random.default_rng(0).normal(0, 4, gray.shape)
    clean = np.clip(gray + grain, 0, 255).astype(np.uint8)
    damaged = damage_photo(clean, np.random.default_rng(1))
    Image.fromarray(damaged.image).save(path, quality=92)
    return path


def child(src: Path, repeats: int, threads: int, detector: Path | None) -> dict:
    """Run in a fresh process: restore `src` `repeats` times, time every stage."""
    from rechroma.images import encode_photo, open_photo
    from rechroma.memory import tune_malloc
    from rechroma.restoration import Restorer
    from rechroma.restoration.tone import repair_tone

    tune_malloc()
    restorer = Restorer.load(detector, threads=threads)
    totals, stages = [], {k: [] for k in ("decode", "detect", "fill", "tone", "encode")}
    for _ in range(repeats):
        start = time.perf_counter()
        photo = open_photo(src)
        t1 = time.perf_counter()
        mask = restorer.detect(photo.gray)
        t2 = time.perf_counter()
        filled = restorer.fill(photo.gray, mask)
        t3 = time.perf_counter()
        toned = repair_tone(filled, "auto")
        t4 = time.perf_counter()
        encode_photo(photo, toned, "JPEG", quality=95)
        t5 = time.perf_counter()
        totals.append(t5 - start)
        for key, (a, b) in zip(
            stages, [(start, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)], strict=True
        ):
            stages[key].append(b - a)
    return {
        "median_s": statistics.median(totals),
        "max_s": max(totals),
        "stages_s": {k: statistics.median(v) for k, v in stages.items()},
        "masked_share": float(mask.mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--sizes", type=float, nargs="+", default=SIZES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="folder for restore.json")
    parser.add_argument("--detector", type=Path, default=None, help="the shipped one by default")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.repeats, args.threads, args.detector)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            src = make_scan(args.photo, megapixels, Path(tmp) / f"scan-{megapixels:g}mp.jpg")
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(src), "--repeats", str(args.repeats),
                 "--threads", str(args.threads)]
                + (["--detector", str(args.detector)] if args.detector else []),
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = {"megapixels": megapixels, **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            stages = " ".join(f"{k} {v:.3f}" for k, v in row["stages_s"].items())
            print(
                f"{megapixels:>5g} MP  {row['median_s']:.3f} s (max {row['max_s']:.3f})  "
                f"{row['peak_rss_mb']:.0f} MB  masked {100 * row['masked_share']:.2f}%  "
                f"[{stages}]",
                flush=True,
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {
            "machine": platform.processor() or platform.machine(),
            "threads": args.threads,
            "detector": str(args.detector or "shipped"),
        }
        (args.out / "restore.json").write_text(json.dumps({**report, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
