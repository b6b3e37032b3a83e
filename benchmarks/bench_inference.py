"""End-to-end CPU latency and memory of colorizing photos from 0.25 to 60 megapixels.

For each size, a fresh process decodes, colorizes and encodes the same photo several
times and reports the median and max seconds, the time per group of stages (decode;
network with its downscale and the guided fit; the full-resolution pass; encode) and its
peak RSS; another fresh process measures the floor,
Pillow's decode + encode of the same file alone. Optionally, a batch of 1-MP photos
goes through `rechroma colorize --jobs N` for throughput. With `--contention`, each
size runs once more while another process spins on one core, as on a shared server,
and the table gives that time against the quiet one (the bar: at most 3x).

    python benchmarks/bench_inference.py                 # all sizes, prints a table
    python benchmarks/bench_inference.py --batch 500     # plus the folder throughput
    python benchmarks/bench_inference.py --sizes 12 --contention  # plus a busy core
    python benchmarks/bench_inference.py --out docs/benchmarks  # JSON + plot there

The inputs are a real photo's luma resized to each size with film grain added, so the
codecs see realistic entropy (an upscaled photo alone is unrealistically smooth).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
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
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos-val"
# (label, megapixels, file suffix): JPEG across the range, and the 60 MP archive TIFF.
CASES = [
    ("0.25 MP JPEG", 0.25, ".jpg"),
    ("1 MP JPEG", 1, ".jpg"),
    ("4 MP JPEG", 4, ".jpg"),
    ("12 MP JPEG", 12, ".jpg"),
    ("24 MP JPEG", 24, ".jpg"),
    ("60 MP JPEG", 60, ".jpg"),
    ("60 MP TIFF", 60, ".tif"),
]
SAVE_OPTIONS = {
    ".jpg": ("JPEG", {"quality": 95}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
}
# The library's `timings` keys, grouped; `benchmarks/profile_stages.py` has every stage.
STAGE_GROUPS = {
    "decode": ("decode",),
    "network": ("downscale", "network", "guided fit"),
    "full-res": ("upsample+merge+cast", "wrap"),
    "encode": ("encode",),
}


def make_input(photo: Path, megapixels: float, suffix: str, dest: Path, seed: int = 0) -> Path:
    """A grainy grayscale scan of `megapixels`, 4:3, made from a real photo."""
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(megapixels * 1e6 / width)
    gray = Image.open(photo).convert("L").resize((width, height), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 4, (height, width)).astype(np.float32)
    pixels = np.clip(np.asarray(gray, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    path = dest / f"scan-{megapixels:g}mp{suffix}"
    format_name = "JPEG" if suffix == ".jpg" else "TIFF"
    options = {"quality": 90} if suffix == ".jpg" else {"compression": "tiff_lzw"}
    Image.fromarray(pixels).save(path, format=format_name, **options)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_colorize(
    path: Path,
    repeats: int,
    threads: int,
    render_size: int | None,
    weights: Path | None,
    tuned_malloc: bool = True,
    runtime: str = "auto",
) -> dict:
    """Measured in its own process, so peak RSS belongs to this size alone; with the
    malloc thresholds the command line sets (`rechroma.memory`), unless told not to."""
    from rechroma.images import encode_photo, open_photo
    from rechroma.inference.colorizer import Colorizer
    from rechroma.memory import tune_malloc

    if tuned_malloc:
        tune_malloc()

    colorizer = Colorizer.load(weights, render_size=render_size, threads=threads, runtime=runtime)
    baseline = peak_rss_mb()
    format_name, options = SAVE_OPTIONS[path.suffix]
    runs = []
    for _ in range(repeats):
        stages: dict[str, float] = {}
        start = time.perf_counter()
        photo = open_photo(path)
        stages["decode"] = time.perf_counter() - start
        result = colorizer.colorize_photo(photo, timings=stages, format_name=format_name)
        tick = time.perf_counter()
        encode_photo(photo, result, format_name, **options)
        stages["encode"] = time.perf_counter() - tick
        stages["total"] = time.perf_counter() - start
        runs.append(stages)
        del photo, result
    return {"runs": runs, "peak_rss_mb": peak_rss_mb(), "model_rss_mb": baseline}


def child_floor(path: Path, repeats: int) -> dict:
    """Pillow alone: decode the file, encode an RGB image of its size the same way."""
    format_name, options = SAVE_OPTIONS[path.suffix]
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        with Image.open(path) as image:
            image.load()
        decoded = time.perf_counter() - start
        rgb = image.convert("RGB")  # not timed: our output is RGB, the input is not
        tick = time.perf_counter()
        rgb.save(io.BytesIO(), format=format_name, **options)
        runs.append({"decode": decoded, "encode": time.perf_counter() - tick})
        runs[-1]["total"] = decoded + runs[-1]["encode"]
        del image, rgb
    return {"runs": runs, "peak_rss_mb": peak_rss_mb()}


@contextlib.contextmanager
def busy_core():
    """Another process holding one core for as long as the block runs (a spinning loop)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let the scheduler see it running
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_child(*args: str) -> dict:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(
    label: str, megapixels: float, ours: dict, floor: dict, contended: dict | None = None
) -> dict:
    totals = [run["total"] for run in ours["runs"]]
    floors = [run["total"] for run in floor["runs"]]
    row = {
        "case": label,
        "megapixels": megapixels,
        "median_s": statistics.median(totals),
        "max_s": max(totals),
        "floor_median_s": statistics.median(floors),
        "peak_rss_mb": ours["peak_rss_mb"],
        "model_rss_mb": ours["model_rss_mb"],
        "floor_peak_rss_mb": floor["peak_rss_mb"],
        "repeats": len(totals),
    }
    row["ratio_to_floor"] = row["median_s"] / row["floor_median_s"]
    if contended is not None:
        row["contended_median_s"] = statistics.median(run["total"] for run in contended["runs"])
        row["contended_max_s"] = max(run["total"] for run in contended["runs"])
        row["contention_ratio"] = row["contended_median_s"] / row["median_s"]
        row["contended_network_s"] = statistics.median(
            sum(run.get(key, 0.0) for key in STAGE_GROUPS["network"]) for run in contended["runs"]
        )
    for group, keys in STAGE_GROUPS.items():
        row[f"{group}_s"] = statistics.median(
            sum(run.get(key, 0.0) for key in keys) for run in ours["runs"]
        )
    return row


def batch_throughput(photos: list[Path], count: int, jobs: int, work: Path) -> dict:
    """`rechroma colorize --jobs N` over `count` 1-MP JPEGs: photos per second."""
    src, out = work / "batch-in", work / "batch-out"
    src.mkdir()
    for index in range(count):
        photo = photos[index % len(photos)]
        make_input(photo, 1.0, ".jpg", src, seed=index).rename(src / f"{index:05d}.jpg")
    command = [sys.executable, "-m", "rechroma", "--quiet", "colorize", str(src), str(out)]
    start = time.perf_counter()
    subprocess.run([*command, "--jobs", str(jobs)], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    written = len(list(out.glob("*.jpg")))
    return {
        "photos": count,
        "written": written,
        "jobs": jobs,
        "seconds": seconds,
        "photos_per_s": written / seconds,
    }


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import PIL
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pillow": PIL.__version__,
    }


def print_table(rows: list[dict]) -> None:
    header = (
        "| case | median s | max s | floor s | ratio | decode | network | full-res pass "
        "| encode | peak RSS MB |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        print(
            f"| {row['case']} | {row['median_s']:.3f} | {row['max_s']:.3f} "
            f"| {row['floor_median_s']:.3f} | {row['ratio_to_floor']:.2f}x "
            + " ".join(f"| {row[f'{group}_s']:.3f}" for group in STAGE_GROUPS)
            + f" | {row['peak_rss_mb']:.0f} |"
        )
    contended = [row for row in rows if "contention_ratio" in row]
    if contended:
        print("\n| case | quiet s | one core busy s (max) | ratio | network busy s |")
        print("|---|---|---|---|---|")
        for row in contended:
            print(
                f"| {row['case']} | {row['median_s']:.3f} | {row['contended_median_s']:.3f} "
                f"({row['contended_max_s']:.3f}) | {row['contention_ratio']:.2f}x "
                f"| {row['contended_network_s']:.3f} |"
            )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jpeg = [row for row in rows if row["case"].endswith("JPEG")]
    mp = [row["megapixels"] for row in jpeg]
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_time.plot(mp, [r["median_s"] for r in jpeg], "o-", label="rechroma, end to end")
    ax_time.plot(mp, [r["floor_median_s"] for r in jpeg], "s--", label="Pillow decode+encode")
    ax_time.plot(mp, [r["network_s"] for r in jpeg], "^:", label="network alone")
    ax_time.set(xlabel="megapixels (JPEG)", ylabel="seconds (median)", title="Time")
    ax_time.grid(alpha=0.3)
    ax_time.legend()
    ax_mem.plot(mp, [r["peak_rss_mb"] for r in jpeg], "o-", label="rechroma peak RSS")
    ax_mem.plot(mp, [r["floor_peak_rss_mb"] for r in jpeg], "s--", label="Pillow alone")
    tiff = [row for row in rows if row["case"].endswith("TIFF")]
    if tiff:
        tiff_mp = [r["megapixels"] for r in tiff]
        ax_mem.plot(tiff_mp, [r["peak_rss_mb"] for r in tiff], "D", label="60 MP TIFF")
    ax_mem.set(xlabel="megapixels", ylabel="MB", title="Peak memory")
    ax_mem.grid(alpha=0.3)
    ax_mem.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=None, help="source photo (a photos-val one)")
    parser.add_argument("--sizes", type=float, nargs="*", default=None, help="only these MP")
    parser.add_argument("--repeats", type=int, default=None, help="runs per size (5/3/2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--batch", type=int, default=0, help="1-MP photos for the folder test")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs for the folder test")
    parser.add_argument("--out", type=Path, default=None, help="folder for JSON + plot")
    parser.add_argument(
        "--contention", action="store_true", help="each size again with one core held busy"
    )
    parser.add_argument(
        "--glibc-default",
        action="store_true",
        help="leave glibc's malloc thresholds at their defaults (what rechroma sets otherwise)",
    )
    parser.add_argument(
        "--runtime", default="auto", help="what runs the network (auto, onnx or torch)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, path, repeats, *rest = args.child
        if kind == "floor":
            result = child_floor(Path(path), int(repeats))
        else:
            render_size = int(rest[1]) if rest[1] != "none" else None
            weights = Path(rest[2]) if rest[2] != "none" else None
            tuned = rest[3] == "tuned"
            result = child_colorize(
                Path(path), int(repeats), int(rest[0]), render_size, weights, tuned, rest[4]
            )
        print(json.dumps(result))
        return

    photos = sorted(DEFAULT_PHOTOS.glob("*.JPEG"))
    photo = args.photo or (photos[0] if photos else None)
    if photo is None:
        sys.exit("no photo: pass --photo PATH (../shared/data/photos-val is not here)")
    cases = [c for c in CASES if args.sizes is None or c[1] in args.sizes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, megapixels, suffix in cases:
            path = make_input(photo, megapixels, suffix, work)
            repeats = args.repeats or (5 if megapixels <= 4 else 3 if megapixels <= 24 else 2)
            render = str(args.render_size) if args.render_size else "none"
            weights = str(args.weights) if args.weights else "none"
            malloc = "default" if args.glibc_default else "tuned"
            colorize = ("colorize", str(path), str(repeats), str(args.threads), render, weights)
            ours = run_child(*colorize, malloc, args.runtime)
            floor = run_child("floor", str(path), str(repeats))
            contended = None
            if args.contention:
                with busy_core():
                    contended = run_child(*colorize, malloc, args.runtime)
            rows.append(summarize(label, megapixels, ours, floor, contended))
            print(f"{label}: {rows[-1]['median_s']:.3f} s median", file=sys.stderr, flush=True)
            path.unlink()
        batch = None
        if args.batch:
            batch = batch_throughput(photos or [photo], args.batch, args.jobs, work)

    print_table(rows)
    if batch:
        print(
            f"\nfolder of {batch['photos']} 1-MP JPEGs, --jobs {batch['jobs']}: "
            f"{batch['seconds']:.1f} s, {batch['photos_per_s']:.2f} photos/s"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine(), "photo": photo.name, "rows": rows, "batch": batch}
        (args.out / "inference.json").write_text(json.dumps(report, indent=2))
        plot(rows, args.out / "inference.png")
        print(f"\nwrote {args.out / 'inference.json'} and {args.out / 'inference.png'}")


if __name__ == "__main__":
    main()
