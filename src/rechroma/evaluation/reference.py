"""`rechroma eval --reference MODE`: colour from a reference photo, scored against a truth.

Every photo of the set (at `size` x `size`, as `rechroma eval` reads it) is coloured
from its gray with a reference made for it, in one of three modes:

- *counterfactual*: the reference is the photo's own truth with its chroma turned by a
  fixed angle in Lab (`turn`, 90 degrees), cropped to 70-90% of each side, mirrored and
  rescaled. The right answer is the truth turned the same way: a colouring no prior can
  guess, so only what the matcher carries over can score.
- *frames*: the reference is another view of the same scene, as a later frame of a shot
  shows it: the photo panned by 10-25% of its size and zoomed by up to 20%, unturned.
- *unrelated*: the reference is a different photo of the set; the answer is the truth,
  and the reference must not wreck it.

Beside the matcher, each photo is coloured with no reference, with the global transfer
(`rechroma.inference.reference.global_transfer`) and by an *oracle* that puts hints at
the matcher's positions with the target's own colours there (the matcher's upper bound:
its positions, perfect colours). The report gives each method's median and mean PSNR
against the target, LPIPS where available, the a*, b* error inside the matched cells,
and the share of photos it made worse than no reference by more than 0.5 dB.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from rechroma.color import lab_to_rgb, rgb_to_lab
from rechroma.errors import DataError
from rechroma.evaluation.evaluate import (
    GRAY_CF_THRESHOLD,
    as_tensor,
    gray_baseline,
    image_grid,
    iter_images,
)
from rechroma.evaluation.metrics import colorfulness, psnr
from rechroma.inference.colorizer import Prediction
from rechroma.inference.hints import Hint
from rechroma.inference.reference import (
    Reference,
    ReferencePhotoError,
    ReferenceSet,
    global_transfer,
    in_colour_groups,
    load_reference,
)

if TYPE_CHECKING:
    from rechroma.evaluation.lpips import LPIPS
    from rechroma.inference.colorizer import Colorizer

logger = logging.getLogger(__name__)

MODES = ("counterfactual", "frames", "unrelated")
METHODS = ("no reference", "global transfer", "reference", "oracle")
DEFAULT_TURN = 90.0
# A photo counts as made worse by a method when its PSNR falls this far below no reference.
WORSE_BY_DB = 0.5


def turn_chroma(image: Image.Image, degrees: float) -> Image.Image:
    """`image` with its a*, b* turned by `degrees` in Lab (lightness kept, gamut clipped)."""
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    lab = rgb_to_lab(pixels.permute(2, 0, 1))
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turned = torch.stack([lab[0], cos * lab[1] - sin * lab[2], sin * lab[1] + cos * lab[2]])
    rgb = lab_to_rgb(turned, clip=True).permute(1, 2, 0).numpy()
    return Image.fromarray((rgb * 255 + 0.5).astype(np.uint8))


def counterfactual_reference(target: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The turned truth cropped to 70-90% of each side, mirrored, rescaled by 0.8-1.25."""
    width, height = target.size
    crop_w = round(width * rng.uniform(0.7, 0.9))
    crop_h = round(height * rng.uniform(0.7, 0.9))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    crop = ImageOps.mirror(target.crop((left, top, left + crop_w, top + crop_h)))
    scale = rng.uniform(0.8, 1.25)
    return crop.resize((round(crop_w * scale), round(crop_h * scale)), Image.Resampling.BICUBIC)


def frame_reference(truth: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another view of the scene: panned by 10-25% of the photo each way, zoomed up to 20%;
    what the pan uncovers is the photo's own mirrored edge (a new part of the scene)."""
    width, height = truth.size
    zoom = rng.uniform(1.0, 1.2)
    shift_x = rng.uniform(0.1, 0.25) * width * rng.choice((-1, 1))
    shift_y = rng.uniform(0.0, 0.15) * height * rng.choice((-1, 1))
    # Mirrored into a border (a plain expand would paint it black).
    array = np.pad(np.asarray(truth), ((height // 2,) * 2, (width // 2,) * 2, (0, 0)), "reflect")
    padded = Image.fromarray(array)
    view_w, view_h = width / zoom, height / zoom
    left = width // 2 + (width - view_w) / 2 + shift_x
    top = height // 2 + (height - view_h) / 2 + shift_y
    box = (left, top, left + view_w, top + view_h)
    return padded.resize((width, height), Image.Resampling.BICUBIC, box=box)


@dataclass
class ReferenceEvalResult:
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    grid: list[tuple[str, list[Image.Image]]]


def evaluate_reference(
    colorizer: Colorizer,
    data: Path,
    mode: str,
    size: int = 256,
    limit: int | None = None,
    seed: int = 0,
    turn: float = DEFAULT_TURN,
    lpips: LPIPS | None = None,
    lpips_status: str = "unavailable",
    grid_count: int = 8,
    progress: bool = True,
) -> ReferenceEvalResult:
    """Score colour from a reference on `data` in `mode` (see the module's docstring)."""
    if mode not in MODES:
        raise DataError(f"reference mode {mode!r} is not one of {MODES}")
    photos = [
        (name, image)
        for name, image in iter_images(data, size)
        if image is not None and colorfulness(as_tensor(image)).item() >= GRAY_CF_THRESHOLD
    ]
    if limit is not None:
        photos = photos[:limit]
    if len(photos) < (2 if mode == "unrelated" else 1):
        raise DataError(f"too few colour photos in {data} for mode {mode!r}")
    rows: list[dict[str, Any]] = []
    grid: list[tuple[str, list[Image.Image]]] = []
    chosen = set(np.random.default_rng(seed).permutation(len(photos))[:grid_count].tolist())
    skipped = 0
    for index, (name, truth) in enumerate(
        tqdm(photos, desc=f"eval --reference {mode}", unit="photo", disable=not progress)
    ):
        rng = np.random.default_rng([seed, index])
        target = turn_chroma(truth, turn) if mode == "counterfactual" else truth
        if mode == "counterfactual":
            reference_image = counterfactual_reference(target, rng)
        elif mode == "frames":
            reference_image = frame_reference(truth, rng)
        else:
            reference_image = photos[(index + len(photos) // 2) % len(photos)][1]
        try:
            reference = load_reference(colorizer, reference_image, name=f"reference of {name}")
        except ReferencePhotoError:  # a gray reference has nothing to give: not scored
            skipped += 1
            continue
        outputs, matched = _colour_four_ways(colorizer, truth, target, reference)
        target_tensor = as_tensor(target)
        for method, output in outputs.items():
            output_tensor = as_tensor(output)
            row = {
                "image": name,
                "method": method,
                "psnr": psnr(output_tensor, target_tensor).item(),
                "ab_error_matched": _ab_error(output, target, matched),
                "hints": len(matched),
            }
            if lpips is not None:
                row["lpips"] = lpips(output_tensor / 255, target_tensor / 255).item()
            rows.append(row)
        if index in chosen:
            grid.append((name, [gray_baseline(truth), reference_image, *outputs.values(), target]))
    if not rows:
        raise DataError(f"no photo of {data} could be scored in mode {mode!r}")
    summary = {
        "data": str(data),
        "mode": mode,
        "protocol": {
            "size": size,
            "turn_degrees": turn if mode == "counterfactual" else 0.0,
            "target": "the truth turned in Lab" if mode == "counterfactual" else "the truth",
            "worse": f"PSNR more than {WORSE_BY_DB} dB below no reference",
        },
        "count": len(rows) // len(METHODS),
        "skipped_gray_reference": skipped,
        "lpips": "available (v0.1, AlexNet)" if lpips is not None else lpips_status,
        "methods": _summarise(rows),
    }
    return ReferenceEvalResult(summary, rows, grid)


def _colour_four_ways(
    colorizer: Colorizer, truth: Image.Image, target: Image.Image, reference: Reference
) -> tuple[dict[str, Image.Image], list[Hint]]:
    gray = gray_baseline(truth).convert("L")
    prepared = colorizer.prepare(gray)
    automatic = colorizer.predict(gray, prepared=prepared)
    outputs = {"no reference": colorizer.render(automatic)}
    moved = global_transfer(automatic.ab, [reference])
    outputs["global transfer"] = colorizer.render(_with_ab(automatic, moved))
    references = ReferenceSet((reference,))
    matched = references.hints_for(colorizer, gray)
    guided = colorizer.predict(gray, prepared=prepared, reference=references)
    outputs["reference"] = colorizer.render(guided)
    # The oracle: the same positions, the target's own colour at each, grouped by colour
    # as the matcher's hints are.
    pixels = np.asarray(target)
    oracle_hints = in_colour_groups(
        [
            Hint(h.x, h.y, "#{:02x}{:02x}{:02x}".format(*pixels[int(h.y), int(h.x)]), h.radius)
            for h in matched
        ]
    )
    oracle = colorizer.predict(gray, prepared=prepared, hints=oracle_hints)
    outputs["oracle"] = colorizer.render(oracle) if oracle_hints else outputs["no reference"]
    return outputs, matched


def _with_ab(prediction: Prediction, ab: torch.Tensor) -> Prediction:
    return Prediction(prediction.gray, prediction.small_luma, prediction.lightness, ab)


def _ab_error(output: Image.Image, target: Image.Image, hints: list[Hint]) -> float | None:
    """Mean |delta a*b*| between output and target over the matched cells' squares."""
    if not hints:
        return None
    mask = np.zeros((target.height, target.width), bool)
    for hint in hints:
        radius = round(hint.radius or 1)
        x, y = int(hint.x), int(hint.y)
        mask[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = True
    labs = [
        rgb_to_lab(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1))
        for image in (output, target)
    ]
    delta = (labs[0][1:] - labs[1][1:]).norm(dim=0).numpy()
    return float(delta[mask].mean())


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_method = {m: [r for r in rows if r["method"] == m] for m in METHODS}
    baseline = {r["image"]: r["psnr"] for r in by_method["no reference"]}
    summary = {}
    for method, method_rows in by_method.items():
        values = [r["psnr"] for r in method_rows]
        errors = [r["ab_error_matched"] for r in method_rows if r["ab_error_matched"] is not None]
        worse = sum(r["psnr"] < baseline[r["image"]] - WORSE_BY_DB for r in method_rows)
        entry = {
            "psnr_median": statistics.median(values),
            "psnr_mean": statistics.fmean(values),
            "ab_error_matched": statistics.fmean(errors) if errors else None,
            "worse_share": worse / len(method_rows),
            "hints_median": statistics.median(r["hints"] for r in method_rows),
        }
        if "lpips" in method_rows[0]:
            entry["lpips"] = statistics.fmean(r["lpips"] for r in method_rows)
        summary[method] = entry
    return summary


def write_reference_report(result: ReferenceEvalResult, out_dir: Path) -> None:
    """metrics.json, per_image.csv, grid.jpg and report.md in `out_dir` (the grid as JPEG:
    seven photos a row make a PNG of megabytes)."""
    import csv

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result.summary, indent=2))
    with (out_dir / "per_image.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(result.rows[0]))
        writer.writeheader()
        writer.writerows(result.rows)
    columns = ["photo (gray)", "reference", *METHODS, "target"]
    if result.grid:
        image_grid(result.grid, columns).save(out_dir / "grid.jpg", quality=88)
    summary = result.summary
    lines = [
        f"# Colour from a reference: `{summary['mode']}` on `{summary['data']}`",
        "",
        f"{summary['count']} photos at {summary['protocol']['size']}x"
        f"{summary['protocol']['size']}; the target is {summary['protocol']['target']}"
        + (
            f" (by {summary['protocol']['turn_degrees']:g} degrees)"
            if summary["mode"] == "counterfactual"
            else ""
        )
        + f". {summary['skipped_gray_reference']} photos with a gray reference not scored. "
        f"LPIPS: {summary['lpips']}.",
        "",
        "| method | median PSNR (dB) | mean PSNR (dB) | LPIPS | a*b* error in matched cells "
        "| photos made worse | hints (median) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, entry in summary["methods"].items():
        lpips = f"{entry['lpips']:.4f}" if "lpips" in entry else "unavailable"
        error = (
            f"{entry['ab_error_matched']:.2f}" if entry["ab_error_matched"] is not None else "n/a"
        )
        lines.append(
            f"| {method} | {entry['psnr_median']:.2f} | {entry['psnr_mean']:.2f} | {lpips} | "
            f"{error} | {100 * entry['worse_share']:.0f}% | {entry['hints_median']:g} |"
        )
    lines += ["", "![photo, reference, methods, target](grid.jpg)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
