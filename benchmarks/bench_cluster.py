"""The same folder through local worker processes and through Ray actors: photos per second.

    python benchmarks/bench_cluster.py                    # 500 x 1 MP, prints a table
    python benchmarks/bench_cluster.py --out docs/benchmarks   # and writes cluster.json

Each engine runs `rechroma colorize IN OUT` in a fresh process on a fresh output folder,
so start-up (process spawn and model loads; for Ray, starting Ray itself) is inside the
wall time, as a user sees it. Ray's start-up is also timed alone: `ray.init` and
`ray.shutdown` in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_inference import DEFAULT_PHOTOS, machine, make_input


def make_folder(photos: list[Path], count: int, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        photo = photos[index % len(photos)]
        make_input(photo, 1.0, ".jpg", folder, seed=index).rename(folder / f"{index:05d}.jpg")
    return folder


def run_engine(src: Path, out: Path, engine: list[str]) -> dict:
    command = [sys.executable, "-m", "rechroma", "--quiet", "colorize", str(src), str(out)]
    start = time.perf_counter()
    subprocess.run([*command, *engine], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    written = len(list(out.glob("*.jpg")))
    return {"engine": " ".join(engine), "written": written, "seconds": seconds}


def ray_startup_seconds() -> float:
    code = (
        "import time, os, ray; t = time.perf_counter(); "
        "ray.init(num_cpus=os.cpu_count(), include_dashboard=False, "
        "_node_ip_address='127.0.0.1', log_to_driver=False); "
        "ray.shutdown(); print(time.perf_counter() - t)"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=500, help="1-MP JPEGs in the folder")
    parser.add_argument("--workers", type=int, default=2, help="--jobs and --ray-actors")
    parser.add_argument("--out", type=Path, default=None, help="folder for cluster.json")
    args = parser.parse_args()

    photos = sorted(args.photos.glob("*.JPEG"))[:50]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = make_folder(photos, args.count, work / "in")
        rows = []
        for engine in (
            ["--jobs", str(args.workers)],
            ["--ray", "--ray-actors", str(args.workers)],
        ):
            row = run_engine(src, work / f"out-{len(rows)}", engine)
            row["photos_per_s"] = row["written"] / row["seconds"]
            rows.append(row)
            print(
                f"{row['engine']:>22}: {row['written']} photos in {row['seconds']:.1f} s, "
                f"{row['photos_per_s']:.2f} photos/s"
            )
        startup = ray_startup_seconds()
        print(f"ray.init + shutdown alone: {startup:.1f} s")
    result = {"machine": machine(), "photos": args.count, "rows": rows, "ray_startup_s": startup}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cluster.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
