"""Guided versus bilinear chroma upsampling, on photos-val at full resolution and at 256.

For every photo the network runs once (`Colorizer.predict`), and both upsamplers render
that same prediction, so the comparison isolates the upsampling. Reported: PSNR, SSIM
and colourfulness at each photo's full resolution; the chroma error (mean |Δab| in Lab
units) on the pixels next to the strongest luma edges, where bleeding shows; and the
standard 256x256 protocol of `rechroma eval`. Writes a zoomed crop comparison PNG.

    python benchmarks/compare_upsampling.py --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from rechroma.color import rgb_to_lab
from rechroma.evaluation.evaluate import as_tensor, evaluate, gray_baseline, image_grid
from rechroma.evaluation.metrics import colorfulness, psnr, ssim
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.upsample import UPSAMPLERS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos-val"
EDGE_QUANTILE = 0.95  # "edge pixels": the top 5% of luma gradient magnitude
CROP = 72  # full-resolution pixels per side of a zoomed crop
ZOOM = 4


def edge_mask(truth: torch.Tensor) -> torch.Tensor:
    """`(H, W)` bool: pixels whose L* gradient is in the top 5% of this photo's."""
    lightness = rgb_to_lab(truth[0] / 255)[0]
    grad_y, grad_x = torch.gradient(lightness)
    magnitude = torch.hypot(grad_x, grad_y)
    return magnitude >= torch.quantile(magnitude.flatten()[::7], EDGE_QUANTILE)


def edge_chroma_error(output: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |Δab| (Lab units) on edge pixels."""
    ab_out = rgb_to_lab(output[0] / 255)[1:]
    ab_true = rgb_to_lab(truth[0] / 255)[1:]
    return float((ab_out - ab_true).norm(dim=0)[mask].mean())


def full_resolution(colorizer: Colorizer, photos: list[Path], progress: bool) -> tuple[dict, list]:
    scores: dict[str, dict[str, list[float]]] = {
        name: {"psnr": [], "ssim": [], "colorfulness": [], "edge_delta_ab": []}
        for name in UPSAMPLERS
    }
    crops = []
    for path in tqdm(photos, desc="full resolution", disable=not progress):
        truth_image = Image.open(path).convert("RGB")
        truth = as_tensor(truth_image)
        gray = gray_baseline(truth_image)
        prediction = colorizer.predict(gray)
        mask = edge_mask(truth)
        outputs = {}
        for name in UPSAMPLERS:
            output = as_tensor(colorizer.render(prediction, upsampler=name))
            outputs[name] = output
            scores[name]["psnr"].append(psnr(output, truth).item())
            scores[name]["ssim"].append(ssim(output, truth).item())
            scores[name]["colorfulness"].append(colorfulness(output).item())
            scores[name]["edge_delta_ab"].append(edge_chroma_error(output, truth, mask))
        crops.append(_best_crop(path.stem, gray, outputs, truth))
    summary = {
        name: {metric: float(np.mean(values)) for metric, values in metrics.items()}
        for name, metrics in scores.items()
    }
    return summary, crops


def _best_crop(name: str, gray: Image.Image, outputs: dict, truth: torch.Tensor) -> tuple:
    """The CROP x CROP window where the two upsamplers differ most, with its score."""
    difference = (outputs["guided"] - outputs["bilinear"]).abs().sum(dim=1)[0]
    pooled = torch.nn.functional.avg_pool2d(difference[None, None], CROP, stride=CROP // 3)[0, 0]
    score, index = pooled.flatten().max(dim=0)
    top = int(index // pooled.shape[1]) * (CROP // 3)
    left = int(index % pooled.shape[1]) * (CROP // 3)
    box = (left, top, left + CROP, top + CROP)

    def crop(image: Image.Image) -> Image.Image:
        return image.crop(box).resize((CROP * ZOOM, CROP * ZOOM), Image.Resampling.NEAREST)

    def to_image(tensor: torch.Tensor) -> Image.Image:
        return Image.fromarray(tensor[0].permute(1, 2, 0).round().to(torch.uint8).numpy())

    panels = [crop(gray), crop(to_image(outputs["bilinear"])), crop(to_image(outputs["guided"]))]
    panels.append(crop(to_image(truth)))
    return float(score), name, panels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--crops", type=int, default=4, help="rows in the crop figure")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for JSON + crop PNG")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no photos at {args.data}")
    progress = sys.stderr.isatty()
    colorizer = Colorizer.load(args.weights, threads=args.threads)
    photos = sorted(args.data.glob("*.JPEG"))[: args.limit]
    full, crops = full_resolution(colorizer, photos, progress)
    methods = {name: functools.partial(colorizer.colorize, upsampler=name) for name in UPSAMPLERS}
    at_256 = evaluate(
        methods, args.data, size=256, grid_count=0, limit=args.limit, progress=progress
    )
    report = {
        "photos": len(photos),
        "render_size": colorizer.render_size,
        "weights": str(colorizer.weights_path),
        "full_resolution": full,
        "at_256": {
            name: {
                "psnr": at_256.summary["methods"][name]["psnr"]["mean"],
                "ssim": at_256.summary["methods"][name]["ssim"]["mean"],
                "colorfulness": at_256.summary["methods"][name]["colorfulness"]["mean"],
            }
            for name in UPSAMPLERS
        },
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "upsampling.json").write_text(json.dumps(report, indent=2))
        chosen = sorted(crops, key=lambda item: item[0], reverse=True)[: args.crops]
        figure = image_grid(
            [(name, panels) for _, name, panels in chosen],
            ["gray input", "bilinear", "guided (ours)", "ground truth"],
            cell=CROP * ZOOM,
        )
        figure.save(args.out / "upsampling-crops.png", optimize=True)
        print(f"wrote {args.out / 'upsampling.json'} and {args.out / 'upsampling-crops.png'}")


if __name__ == "__main__":
    main()
