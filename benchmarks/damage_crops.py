"""Crops of real print damage beside generated damage at the same scale (issue #41).

Real: crops of the prints in `docs/real-damage` (their hand masks in red beside them).
Generated: photos of a held-out shard (places) at the real print's size, with grain, damaged by
`rechroma.data.print_damage` with the real-print kinds on (emulsion cracks, flakes,
worn edges), their masks beside them. For looking, not for a number: does the generator
draw what real prints show?

    python benchmarks/damage_crops.py --out docs/restore-real-vs-generated.jpg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from rechroma.data.print_damage import DamageConfig, damage_photo
from rechroma.evaluation.evaluate import colour_photos, image_grid
from rechroma.evaluation.restore import load_real_print, real_damage_prints

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "docs" / "real-damage"
HELD_OUT = ROOT.parent / "shared" / "data" / "places" / "train-002.tar"
CROP = 160
# The kinds real prints show, all on: as configs/restore-v7.toml trains with them.
REAL_KINDS = DamageConfig(
    emulsion_prob=0.8, flake_prob=0.6, edge_prob=0.4, crease_prob=0.3, faint_share=0.3
)


def overlay(gray: np.ndarray, mask: np.ndarray) -> Image.Image:
    rgb = np.stack([gray] * 3, axis=-1)
    rgb[mask] = (255, 40, 40)
    return Image.fromarray(rgb)


def real_crops(boxes: dict[str, list[list[int]]]) -> list[tuple[str, list[Image.Image]]]:
    rows = []
    for name, print_path, mask_path in real_damage_prints(REAL):
        photo, mask = load_real_print(print_path, mask_path)
        gray = np.asarray(photo.gray)
        for x, y in boxes.get(name, []):
            crop = np.s_[y : y + CROP, x : x + CROP]
            panels = [Image.fromarray(gray[crop]).convert("RGB"), overlay(gray[crop], mask[crop])]
            rows.append((f"real: {name} at {x},{y}", panels))
    return rows


def generated_crops(
    count: int, size: tuple[int, int], seed: int
) -> list[tuple[str, list[Image.Image]]]:
    rows = []
    photos = colour_photos(HELD_OUT, max(size), count)
    for index, photo in enumerate(photos):
        gray = np.asarray(photo.convert("L").resize(size, Image.Resampling.BICUBIC))
        damaged = damage_photo(gray, np.random.default_rng([seed, index]), REAL_KINDS)
        y = (size[1] - CROP) // 2
        x = (size[0] - CROP) // 2 + (index % 2) * (size[0] - CROP) // 2 - (size[0] - CROP) // 4
        crop = np.s_[y : y + CROP, x : x + CROP]
        image, mask = damaged.image[crop], damaged.mask[crop]
        panels = [Image.fromarray(image).convert("RGB"), overlay(image, mask)]
        rows.append((f"generated {index}", panels))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=6)
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    boxes = {"old_w_scratch_a": [[330, 180], [0, 464]], "old_w_scratch_c": [[96, 0]]}
    rows = real_crops(boxes) + generated_crops(args.generated, (496, 624), args.seed)
    grid = image_grid(rows, ["print", "damage (red)"], cell=CROP * 2)
    grid.convert("RGB").save(args.out, quality=88)  # a JPEG is a quarter of the PNG
    print(json.dumps({"out": str(args.out), "rows": len(rows)}))


if __name__ == "__main__":
    main()
