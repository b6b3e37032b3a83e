"""How far a colour pin's colour crosses strong edges (issue #40): a pin on a lapel must not
tint the wall behind the shoulder.

Each photo of a validation split (never photos-val) is cut into regions by Felzenszwalb's
graph segmentation of its *true colours* (scikit-image), so a region's border is where
the real colour changes. In each photo, one region of 2-25% of the picture gets one pin
at its most interior point, with a colour the model would never guess there (the truth's
chroma turned by 180 degrees in Lab, full strength). Scored on the change the pin makes
(|Δab| between the pinned and the automatic colouring, Lab units):

- inside: the mean change over the pinned region (the pin should reach it);
- leak: the mean change over the pixels outside the region, within `--band` pixels of
  it (the wall behind the shoulder);
- leak ratio: leak / inside, per photo; lower is better, at an inside that stays high.

Printed per setting of the spread (`rechroma.inference.hint_spread`: EDGE_COST,
EDGE_THRESHOLD, REACH, GRID_SHORT_SIDE), so a change to it can be weighed; `rechroma
eval --hints N` on photos-val then shows what it does to accuracy.

    python benchmarks/hint_leak.py --photos 60 --out docs/eval/hint-leak
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.color import lab2rgb, rgb2lab
from skimage.segmentation import felzenszwalb

from rechroma.evaluation.evaluate import colour_photos, gray_baseline
from rechroma.inference import hint_spread
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.hints import Hint

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT_SPLIT = (DATA / "places" / "train-002.tar", DATA / "faces" / "train-003.tar")
SIZE = 256


def pinned_region(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A boolean mask of one true-colour region covering 2-25% of the photo, or None."""
    segments = felzenszwalb(truth, scale=200, sigma=0.8, min_size=100)
    areas = np.bincount(segments.ravel()) / segments.size
    candidates = np.flatnonzero((areas >= 0.02) & (areas <= 0.25))
    if not candidates.size:
        return None
    return segments == rng.choice(candidates)


def pin_for(region: np.ndarray, truth_lab: np.ndarray) -> Hint:
    """A pin at the region's most interior point, its colour the truth's chroma turned 180°."""
    depth = ndimage.distance_transform_edt(region)
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    lightness, a, b = truth_lab[region].mean(axis=0)
    chroma = max(30.0, float(np.hypot(a, b)))
    angle = float(np.arctan2(b, a)) + np.pi
    lab = np.array([[[lightness, chroma * np.cos(angle), chroma * np.sin(angle)]]])
    red, green, blue = (np.clip(lab2rgb(lab)[0, 0], 0, 1) * 255).round().astype(int)
    return Hint(float(x), float(y), f"#{red:02x}{green:02x}{blue:02x}")


def score(colorizer: Colorizer, photos: list, band: int, seed: int) -> dict:
    """Mean inside change, leak and leak ratio over the photos that have a region to pin."""
    inside, leak, ratio = [], [], []
    for index, photo in enumerate(photos):
        truth = np.asarray(photo)
        region = pinned_region(truth, np.random.default_rng([seed, index]))
        if region is None:
            continue
        pin = pin_for(region, rgb2lab(truth))
        gray = gray_baseline(photo)
        automatic = rgb2lab(np.asarray(colorizer.colorize(gray)))[..., 1:]
        pinned = rgb2lab(np.asarray(colorizer.colorize(gray, hints=[pin])))[..., 1:]
        change = np.linalg.norm(pinned - automatic, axis=-1)
        near = ndimage.binary_dilation(region, iterations=band) & ~region
        inside.append(float(change[region].mean()))
        leak.append(float(change[near].mean()))
        ratio.append(leak[-1] / max(inside[-1], 1e-6))
    return {
        "photos": len(inside),
        "inside": float(np.mean(inside)),
        "leak": float(np.mean(leak)),
        "leak_ratio": float(np.mean(ratio)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="a model that takes hints")
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_SPLIT))
    parser.add_argument("--photos", type=int, default=60, help="colour photos per source")
    parser.add_argument("--band", type=int, default=12, help="pixels outside counted as leak")
    parser.add_argument("--edge-cost", type=float, nargs="+", default=[hint_spread.EDGE_COST])
    parser.add_argument("--threshold", type=float, nargs="+", default=[hint_spread.EDGE_THRESHOLD])
    parser.add_argument("--reach", type=float, nargs="+", default=[hint_spread.REACH])
    parser.add_argument("--grid", type=int, nargs="+", default=[hint_spread.GRID_SHORT_SIDE])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for leak.json")
    args = parser.parse_args()

    colorizer = Colorizer.load(args.weights, threads=args.threads)
    photos = [photo for path in args.data for photo in colour_photos(path, SIZE, args.photos)]
    rows = []
    print(
        f"{'edge cost':>9} {'thresh':>6} {'reach':>6} {'grid':>5} {'inside':>7} {'leak':>6}"
        f" {'ratio':>6}"
    )
    settings = itertools.product(args.edge_cost, args.threshold, args.reach, args.grid)
    for edge_cost, threshold, reach, grid in settings:
        # The spread reads its module constants: set them for this row.
        hint_spread.EDGE_COST, hint_spread.EDGE_THRESHOLD = edge_cost, threshold
        hint_spread.REACH, hint_spread.GRID_SHORT_SIDE = reach, grid
        row = {"edge_cost": edge_cost, "edge_threshold": threshold, "reach": reach}
        row |= {"grid": grid} | score(colorizer, photos, args.band, args.seed)
        rows.append(row)
        print(
            f"{edge_cost:9.2f} {threshold:6.2f} {reach:6.2f} {grid:5d} {row['inside']:7.2f}"
            f" {row['leak']:6.2f} {row['leak_ratio']:6.3f}"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"data": [str(p) for p in args.data], "band": args.band, "rows": rows}
        (args.out / "leak.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
