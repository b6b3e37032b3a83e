"""Video colorization end to end (decode, colour, encode): frames per second, and flicker.

    python benchmarks/bench_video.py                          # prints a table
    python benchmarks/bench_video.py --out docs/benchmarks    # and writes video.json

Speed: a gray pan with film grain is made at 480p, 720p and 1080p (4 s at 24 fps) and
colorized with `colorize_video` as `rechroma colorize clip.mp4 out.mp4` does, stabilised,
to H.264. Frames per second is frames over wall time, from opening the input to the
closed output, so decoding and encoding are inside it.

With `--baseline DIR` (a checkout of an earlier commit, e.g. `git worktree add
/tmp/before 7534e58^`, the code before issue #24), that checkout's own bench_video.py
times the same sizes on the same photo right after, with its own `src` on PYTHONPATH,
and the ratio of frames/s is printed: the bar is a ratio within one run, since this
machine's speed moves by 10-20% between runs and by a third between days.

Flicker: the video bar's clip (2 s, 640x360, slow pan, grain, sound) colorized frame by
frame and stabilised (`rechroma eval-video`), for each model given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_inference import machine
from PIL import Image

from rechroma.evaluation.video import compare_stabilization, make_pan_clip
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.video import VideoOptions, colorize_video

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_PHOTO = SHARED / "data" / "photos-val" / "n01530575_brambling.JPEG"
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def time_sizes(
    colorizer: Colorizer, photo: Image.Image, sizes: list[str], seconds: float, folder: Path
) -> list[dict]:
    rows = []
    for name in sizes:
        width, height = SIZES[name]
        clip = make_pan_clip(
            photo,
            folder / f"{name}.mp4",
            size=(width, height),
            seconds=seconds,
            pan_pixels=width / 8,
            audio=True,
        )
        start = time.perf_counter()
        report = colorize_video(colorizer, clip, folder / f"{name}-colour.mp4", VideoOptions())
        wall = time.perf_counter() - start
        rows.append(
            {
                "size": name,
                "width": width,
                "height": height,
                "frames": report.frames,
                # Frames coloured without the network (the last colour carried along
                # the motion, `VideoOptions.network_every`).
                "carried": report.carried,
                "seconds": round(wall, 2),
                "frames_per_second": round(report.frames / wall, 2),
                "audio": report.audio,
                # Peak of the whole process so far; sizes run smallest first, so this is
                # the largest size's own peak as soon as it needs more than the others.
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
        print(
            f"{name:>6} {width}x{height}: {report.frames / wall:5.2f} frames/s "
            f"({report.frames} frames, {report.carried} carried, in {wall:.1f} s, "
            f"peak RSS {rows[-1]['peak_rss_mb']} MB)",
            flush=True,
        )
    return rows


def time_baseline(
    checkout: Path, sizes: list[str], photo: Path, seconds: float
) -> dict[str, float]:
    """Frames/s per size from `checkout`'s own bench_video.py and `src`, as it prints them."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    command = [sys.executable, str(checkout / "benchmarks" / "bench_video.py")]
    command += ["--sizes", *sizes, "--photo", str(photo), "--seconds", str(seconds)]
    done = subprocess.run(command, env=env, cwd=checkout, capture_output=True, text=True)
    found = re.findall(r"^\s*(\w+) \d+x\d+: +([\d.]+) frames/s", done.stdout, re.MULTILINE)
    if not found:
        sys.exit(f"the baseline printed no frames/s:\n{done.stdout}{done.stderr[-2000:]}")
    return {size: float(fps) for size, fps in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="the shipped model's")
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument(
        "--flicker-weights",
        type=Path,
        nargs="*",
        default=None,
        help="models for the flicker comparison (default: the one timed)",
    )
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the speed clips")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtime", default="auto", help="what runs the network")
    parser.add_argument("--out", type=Path, default=None, help="folder for video.json")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="an earlier checkout to time the same way"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    colorizer = Colorizer.load(args.weights, render_size=args.render_size, runtime=args.runtime)
    flicker_models = args.flicker_weights or [colorizer.weights_path]
    with Image.open(args.photo) as photo, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo.load()
        print(f"model {colorizer.weights_path.name} at render size {colorizer.render_size}")
        speed = time_sizes(colorizer, photo, args.sizes, args.seconds, folder)
        clip = make_pan_clip(photo, folder / "bar.mp4", size=(640, 360), seconds=2.0)
        flicker = []
        for weights in flicker_models:
            model = Colorizer.load(weights, render_size=args.render_size)
            report = compare_stabilization(model, clip, folder / weights.stem)
            report.pop("plot", None)
            report["clip"] = "2 s pan, 640x360, 24 fps, grain 6/255, AAC"
            report["weights"] = weights.name
            report["render_size"] = model.render_size
            flicker.append(report)
            print(
                f"{weights.name}: flicker per frame {report['per_frame']['flicker']:.2f}, "
                f"stabilised {report['stabilised']['flicker']:.2f} "
                f"({100 * report['flicker_ratio']:.0f}%), chroma kept "
                f"{100 * report['chroma_ratio']:.0f}%",
                flush=True,
            )
    if args.baseline:
        baseline = time_baseline(args.baseline, args.sizes, args.photo, args.seconds)
        for row in speed:
            theirs = baseline.get(row["size"])
            if theirs:
                row["baseline_frames_per_second"] = theirs
                row["speedup"] = round(row["frames_per_second"] / theirs, 2)
                print(
                    f"{row['size']:>6}: {row['frames_per_second']:.2f} frames/s against the "
                    f"baseline's {theirs:.2f}: {row['speedup']:.2f}x",
                    flush=True,
                )
    result = {
        "machine": machine(),
        "threads": args.threads,
        "weights": colorizer.weights_path.name,
        "render_size": colorizer.render_size,
        "speed": speed,
        "flicker": flicker,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "video.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out / 'video.json'}")


if __name__ == "__main__":
    main()
