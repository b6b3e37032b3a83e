"""What a reference photo costs: a photo coloured end to end with and without one.

A real photo of photos-val, as gray, resized to each size with film grain (as
`bench_inference` makes its inputs) and encoded as JPEG; its reference is the colour
photo itself, mirrored and cropped (a match for most of it, so the hint path does its
full work). In one process, after a warm-up, each size is decoded, coloured and encoded
`--repeats` times without a reference and with one (read once, as a folder's run reads
it), alternating; the table gives the medians, and reading the reference once.

    python benchmarks/bench_reference.py --sizes 1 12
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from rechroma.images import encode_photo, open_photo
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.reference import load_references

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT.parent / "shared" / "data" / "photos-val" / "n01530575_brambling.JPEG"


def gray_jpeg(photo: Image.Image, megapixels: float, seed: int = 0) -> bytes:
    """The photo's luma at `megapixels`, with film grain, as JPEG bytes."""
    scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
    size = (round(photo.width * scale), round(photo.height * scale))
    gray = np.asarray(photo.convert("L").resize(size, Image.Resampling.BICUBIC), dtype=float)
    grain = np.random.default_rng(seed).normal(0, 4, gray.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(gray + grain, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def end_to_end(colorizer: Colorizer, data: bytes, reference=None) -> float:
    start = time.perf_counter()
    photo = open_photo(data)
    result = colorizer.colorize_photo(photo, format_name="JPEG", reference=reference)
    encode_photo(photo, result, "JPEG", quality=95)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 12.0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    colorizer = Colorizer.load(args.weights)
    source = Image.open(PHOTO).convert("RGB")
    width, height = source.size
    reference_image = ImageOps.mirror(source.crop((width // 10, 0, width, height * 9 // 10)))
    start = time.perf_counter()
    reference = load_references(colorizer, reference_image)
    read_once = time.perf_counter() - start
    print(f"reading the reference once: {1000 * read_once:.0f} ms ({colorizer.runtime} runtime)")
    print("\n| photo | without a reference | with one | added |")
    print("| --- | --- | --- | --- |")
    for megapixels in args.sizes:
        data = gray_jpeg(source, megapixels)
        end_to_end(colorizer, data)
        end_to_end(colorizer, data, reference)  # warm-up of both paths
        plain, guided = [], []
        for _ in range(args.repeats):
            plain.append(end_to_end(colorizer, data))
            guided.append(end_to_end(colorizer, data, reference))
        without, with_one = statistics.median(plain), statistics.median(guided)
        print(
            f"| {megapixels:g} MP JPEG | {without:.3f} s | {with_one:.3f} s | "
            f"{1000 * (with_one - without):+.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
