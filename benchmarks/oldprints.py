"""The repair of real damaged scans, as pictures: original | found (red) | repaired | coloured.

The two scans of `../shared/data/oldprints` (cracked emulsion and scratches, from the test
images of "Bringing Old Photos Back to Life") are for looking, never for tuning: no
ground truth exists for them. One row per scan, at the detector's default threshold
unless told otherwise; the picture goes where the README and the model card show it.

    python benchmarks/oldprints.py --out docs/restore-oldprint.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCANS = ROOT.parent / "shared" / "data" / "oldprints"
ROW_HEIGHT = 300
LABELS = ("scan", "found (red)", "repaired", "repaired and coloured")


def overlay(gray: Image.Image, mask: np.ndarray) -> Image.Image:
    """The gray photo with the repaired pixels in red."""
    rgb = np.asarray(gray.convert("RGB")).copy()
    rgb[mask] = (230, 30, 30)
    return Image.fromarray(rgb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=Path, default=DEFAULT_SCANS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "restore-oldprint.png")
    parser.add_argument("--detector", type=Path, default=None, help="the shipped one by default")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()

    from rechroma.images import open_photo
    from rechroma.inference.colorizer import Colorizer
    from rechroma.restoration import Restorer

    restorer = Restorer.load(args.detector, args.threshold)
    colorizer = Colorizer.load()
    rows = []
    for path in sorted(args.scans.glob("*.png")):
        photo = open_photo(path)
        result = restorer.restore(photo, tone="off")
        panels = [
            photo.gray.convert("RGB"),
            overlay(photo.gray, result.mask),
            result.photo.gray.convert("RGB"),
            colorizer.colorize(result.photo).convert("RGB"),
        ]
        scale = ROW_HEIGHT / photo.gray.height
        size = (round(photo.gray.width * scale), ROW_HEIGHT)
        rows.append([panel.resize(size, Image.Resampling.LANCZOS) for panel in panels])
        print(f"{path.name}: {100 * result.mask.mean():.2f}% of pixels repaired")
    if not rows:
        raise SystemExit(f"no .png scans in {args.scans}")
    header, gap = 22, 6
    width = max(sum(panel.width for panel in row) + gap * (len(row) - 1) for row in rows)
    sheet = Image.new("RGB", (width, header + len(rows) * (ROW_HEIGHT + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, panel in zip(LABELS, rows[0], strict=True):
        draw.text((x + 4, 4), label, fill="black")
        x += panel.width + gap
    for index, row in enumerate(rows):
        x, y = 0, header + index * (ROW_HEIGHT + gap)
        for panel in row:
            sheet.paste(panel, (x, y))
            x += panel.width + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
