"""How well each fill repairs wide cracks (issue #41): PSNR inside the crack, and time.

Held-out photos (faces and places shards, never trained on; photos-val is not used) are
enlarged to a 1 MP scan's size and given only emulsion cracks, as wide as real prints
show them (`--width`, px at 1 MP), under film grain. Each fill sees the true mask grown
by a pixel (a detector's mask covers the fringe too) and is scored on those pixels:
the lightness PSNR against the clean photo, the median over photos, and the time per
photo. Candidates: OpenCV's Telea (what `rechroma restore` uses) and Navier-Stokes
fills, and scikit-image's biharmonic fill, alone and for the wide parts only (Telea
for the thin ones: their pixels lie within `--thin` px of an edge of the crack).

    python benchmarks/wide_fill.py --limit 40
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.restoration import inpaint_biharmonic
from tqdm import tqdm

from rechroma.data.print_damage import DamageConfig, damage_photo
from rechroma.evaluation.evaluate import image_sources
from rechroma.evaluation.restore import clean_gray, film_grain

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
HELD_OUT = (DATA / "faces" / "train-003.tar", DATA / "places" / "train-002.tar")
RADIUS = 3


def telea(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.inpaint(gray, mask.astype(np.uint8), RADIUS, cv2.INPAINT_TELEA)


def navier_stokes(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.inpaint(gray, mask.astype(np.uint8), RADIUS, cv2.INPAINT_NS)


def biharmonic(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    filled = inpaint_biharmonic(gray / 255.0, mask, split_into_regions=True)
    return np.clip(filled * 255 + 0.5, 0, 255).astype(np.uint8)


def wide_part(mask: np.ndarray, thin: int) -> np.ndarray:
    """The pixels of `mask` more than `thin` px from its edge, grown back by `thin`: the
    crack's wide parts, where Telea's averaging of the rim blurs across."""
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3) > thin
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * thin + 1, 2 * thin + 1))
    return cv2.dilate(inside.astype(np.uint8), kernel).astype(bool) & mask


def hybrid(thin: int):
    def fill(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # Telea first over all of it, so the wide parts' surroundings hold no damage.
        out = telea(gray, mask)
        wide = wide_part(mask, thin)
        return biharmonic(out, wide) if wide.any() else out

    return fill


def masked_psnr(image: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    error = (image[mask].astype(float) - clean[mask].astype(float)) ** 2
    return float(10 * np.log10(255**2 / max(error.mean(), 1e-10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="photos per shard")
    parser.add_argument("--width", type=float, nargs=2, default=(3.0, 8.0))
    parser.add_argument("--thin", type=int, default=2)
    parser.add_argument("--grain", type=float, default=4.0)
    args = parser.parse_args()

    damage = DamageConfig(
        scratch_prob=0,
        dust_prob=0,
        hair_prob=0,
        crack_prob=0,
        fold_prob=0,
        emulsion_prob=1.0,
        emulsion_width=tuple(args.width),
    )
    fills = {
        "Telea": telea,
        "Navier-Stokes": navier_stokes,
        "biharmonic": biharmonic,
        f"Telea + biharmonic beyond {args.thin} px": hybrid(args.thin),
    }
    scores: dict[str, list[float]] = {name: [] for name in fills}
    seconds: dict[str, float] = dict.fromkeys(fills, 0.0)
    count = 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for data in HELD_OUT:
        sources = zip(range(args.limit), image_sources(data), strict=False)
        for index, (_, load) in tqdm(sources, total=args.limit, desc=data.parent.name):
            clean = film_grain(clean_gray(load(), 1024, enlarge_to=1024), args.grain, index)
            damaged = damage_photo(clean, np.random.default_rng([7, index]), damage, scale=1.0)
            mask = cv2.dilate(damaged.mask.astype(np.uint8), kernel).astype(bool)
            if not mask.any():
                continue
            count += 1
            for name, fill in fills.items():
                start = time.perf_counter()
                filled = fill(damaged.image, mask)
                seconds[name] += time.perf_counter() - start
                scores[name].append(masked_psnr(filled, clean, mask))
    print(f"\n{count} photos at 1 MP, emulsion cracks {args.width[0]:g}-{args.width[1]:g} px wide")
    print("\n| fill | median PSNR in the crack | mean time per photo |")
    print("| --- | --- | --- |")
    for name in fills:
        print(
            f"| {name} | {statistics.median(scores[name]):.2f} dB | "
            f"{1000 * seconds[name] / count:.0f} ms |"
        )


if __name__ == "__main__":
    main()
