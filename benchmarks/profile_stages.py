"""Where the time of one photo goes: `colorize_file`'s stages at 1 and 12 megapixels.

Each size runs in a fresh process with the command line's malloc settings: the photo is
decoded, coloured, encoded and written several times, and every stage's median is
reported beside the Pillow floor (decode the same file, encode an RGB image of its size)
and the end-to-end median. The stages are the library's own `timings` keys:

    decode      Pillow reads the file (libjpeg decodes the luma only)
    exif        EXIF parsed and checked, orientation applied
    luma        the photo reduced to its luma (a no-op for gray input)
    downscale   the render-size copy the network sees
    network     L* of that copy, the network, ab out
    guided fit  colour at render size: gamut clamp, chroma targets, the guided filter's A, b
    upsample    A and b brought to full size            } before the fused pass, three
    merge       A * Y + b at full size                  } sweeps; since, one pass in
    cast        clamped, cast to uint8 and interleaved  } cache: "upsample+merge+cast"
    wrap        the planes handed to Pillow as one image
    encode      the output file's bytes (JPEG quality 95, EXIF kept)
    write       written atomically

    python benchmarks/profile_stages.py                          # prints the table
    python benchmarks/profile_stages.py --out docs/benchmarks    # and writes profile.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_inference
from bench_inference import DEFAULT_PHOTOS, machine, make_input

STAGES = (
    "decode",
    "exif",
    "luma",
    "downscale",
    "network",
    "guided fit",
    "upsample",
    "merge",
    "cast",
    "upsample+merge+cast",
    "wrap",
    "encode",
    "write",
)
SIZES = (1, 12)


def child_profile(path: Path, repeats: int, threads: int, runtime: str = "auto") -> dict:
    """The stages of `colorize_file`, as it runs them, timed one by one."""
    from rechroma.images import encode_photo, open_photo, write_atomically
    from rechroma.inference.colorizer import Colorizer
    from rechroma.memory import tune_malloc
    from rechroma.timing import timed

    tune_malloc()
    colorizer = Colorizer.load(threads=threads, runtime=runtime)
    dest = path.with_name(f"out-{path.name}")
    runs = []
    for _ in range(repeats + 1):  # the first run warms up and is dropped
        stages: dict[str, float] = {}
        start = time.perf_counter()
        photo = open_photo(path, timings=stages)
        result = colorizer.colorize_photo(photo, timings=stages, format_name="JPEG")
        with timed(stages, "encode"):
            data = encode_photo(photo, result, "JPEG", quality=95)
        with timed(stages, "write"):
            write_atomically(dest, data)
        stages["total"] = time.perf_counter() - start
        runs.append(stages)
        del photo, result, data
    return {"runs": runs[1:]}


def run_child(*args: str) -> dict:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run.get(key, 0.0) for run in runs)


def print_table(rows: list[dict]) -> None:
    sizes = [f"{row['megapixels']:g} MP ms" for row in rows]
    print(f"| stage | {' | '.join(sizes)} |")
    print(f"|---|{'---|' * len(rows)}")
    for stage in (*STAGES, "sum of stages", "end to end", "floor (Pillow)", "ratio"):
        cells = []
        for row in rows:
            value = row["stages"].get(stage, row.get(stage))
            if value is None:
                cells.append("-")  # a stage this version does not have
            else:
                cells.append(f"{value:.2f}x" if stage == "ratio" else f"{value * 1000:.0f}")
        print(f"| {stage} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=float, nargs="+", default=SIZES)
    parser.add_argument("--label", default="", help="names the figures in profile.json")
    parser.add_argument("--out", type=Path, help="folder for profile.json")
    parser.add_argument("--runtime", default="auto", help="what runs the network")
    args = parser.parse_args()

    if args.child:
        path, repeats, threads, runtime = args.child
        print(json.dumps(child_profile(Path(path), int(repeats), int(threads), runtime)))
        return

    photo = sorted(args.photos.glob("*.JPEG"))[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            path = make_input(photo, megapixels, ".jpg", Path(tmp))
            ours = run_child(str(path), str(args.repeats), str(args.threads), args.runtime)
            floor = bench_inference.run_child("floor", str(path), str(args.repeats))
            stages = {
                stage: median_of(ours["runs"], stage)
                for stage in STAGES
                if any(stage in run for run in ours["runs"])
            }
            stages["sum of stages"] = sum(stages.values())
            row = {
                "megapixels": megapixels,
                "stages": stages,
                "end to end": median_of(ours["runs"], "total"),
                "floor (Pillow)": median_of(floor["runs"], "total"),
            }
            row["ratio"] = row["end to end"] / row["floor (Pillow)"]
            rows.append(row)
    print_table(rows)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "profile.json"
        saved = json.loads(target.read_text()) if target.exists() else {}
        saved[args.label or "latest"] = {"machine": machine(), "rows": rows}
        target.write_text(json.dumps(saved, indent=2) + "\n")


if __name__ == "__main__":
    main()
