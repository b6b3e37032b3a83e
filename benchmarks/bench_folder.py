"""Folders of small photos: photos per second through the command line, and what batching
several photos into one network call would buy.

    python benchmarks/bench_folder.py --out docs/benchmarks/folder.json

Three measurements, each the median of `--repeats` runs:
- the command line on a folder of gray photos (photos-val's first `--photos`, at their
  own size and enlarged to 1 MP), with one process on ONNX Runtime (the default), one
  on PyTorch, and two worker processes (`--jobs 2`), wall time from start to exit;
- the command line on one photo, and on a folder whose outputs all exist (start-up);
- the network alone on a batch of 1, 4 and 8 copies of a 4:3 photo at render size 128,
  per photo, on both runtimes: whether batching photos per call pays.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from rechroma.inference.colorizer import Colorizer

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "photos-val"
CLI = [sys.executable, "-m", "rechroma", "colorize"]


def make_folders(root: Path, count: int) -> dict[str, Path]:
    """Gray JPEGs of photos-val's first `count` photos: as they are, and at 1 MP."""
    folders = {"photos-val size": root / "small", "1 MP": root / "mp1"}
    for folder in folders.values():
        folder.mkdir()
    for index, path in enumerate(sorted(PHOTOS.glob("*.JPEG"))[:count]):
        gray = Image.open(path).convert("L")
        gray.save(folders["photos-val size"] / f"{index:03d}.jpg", quality=90)
        scale = (1_000_000 / (gray.width * gray.height)) ** 0.5
        size = (round(gray.width * scale), round(gray.height * scale))
        gray.resize(size, Image.Resampling.BICUBIC).save(
            folders["1 MP"] / f"{index:03d}.jpg", quality=90
        )
    return folders


def timed_run(args: list[str], repeats: int, clear: Path | None = None) -> float:
    """Median seconds of the command line run `repeats` times (`clear` emptied before each)."""
    times = []
    for _ in range(repeats):
        if clear is not None and clear.is_dir():
            shutil.rmtree(clear)
        elif clear is not None:
            clear.unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([*CLI, *args, "-q"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def network_per_photo(colorizer: Colorizer, batch: int, repeats: int) -> float:
    """Milliseconds per photo of one network call on `batch` photos at 128x176."""
    l_norm = torch.zeros(batch, 1, 128, 176)
    with torch.inference_mode():
        for _ in range(2):
            colorizer.network(l_norm)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            colorizer.network(l_norm)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = parser.parse_args()
    report: dict[str, object] = {"photos": args.photos, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = make_folders(root, args.photos)
        timed_run([str(next(folders["1 MP"].iterdir())), str(root / "warm.jpg")], 1)  # cache
        rows = []
        for name, folder in folders.items():
            out = root / "out"
            for label, extra in (
                ("1 process, ONNX Runtime", []),
                ("1 process, PyTorch", ["--runtime", "torch"]),
                ("2 processes (--jobs 2), ONNX Runtime", ["--jobs", "2"]),
            ):
                seconds = timed_run([str(folder), str(out), *extra], args.repeats, clear=out)
                rows.append({"photos": name, "how": label, "seconds": seconds})
                print(f"{name:16} {label:38} {seconds:6.2f} s  {args.photos / seconds:5.1f}/s")
        report["folders"] = rows
        one = next(folders["photos-val size"].iterdir())
        report["one_photo_s"] = timed_run(
            [str(one), str(root / "one.jpg")], args.repeats, root / "one.jpg"
        )
        report["nothing_to_do_s"] = timed_run(
            [str(folders["1 MP"]), str(root / "out")], args.repeats
        )
        print(f"one photo, start to exit: {report['one_photo_s']:.2f} s")
        print(f"a rerun whose outputs all exist: {report['nothing_to_do_s']:.2f} s")
    batches = []
    for runtime in ("onnx", "torch"):
        colorizer = Colorizer.load(runtime=runtime)
        for batch in (1, 4, 8):
            ms = network_per_photo(colorizer, batch, 7)
            batches.append({"runtime": runtime, "batch": batch, "ms_per_photo": ms})
            print(f"network, {runtime:5} batch {batch}: {ms:5.1f} ms a photo")
    report["network_batches"] = batches
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
