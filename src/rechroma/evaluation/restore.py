"""`rechroma eval-restore`: how well print damage is found and repaired, and what else is touched.

Every photo's lightness is damaged by the seeded generator (`rechroma.data.print_damage`,
seeds that training never draws) and repaired; the repair is compared with the clean
lightness (PSNR, SSIM, beside the damaged input's as the baseline), the predicted mask
with the true one (precision, recall, F1), and the clean photo is repaired too, to count
false repairs: the share of its pixels changed by more than `FALSE_REPAIR_LEVELS`.

With real damaged prints and their hand-marked masks (`--real DIR`), the detector's mask
is also scored against the hand's, print by print, within `REAL_TOLERANCE_PX`: a hand
mask's edge is uncertain by a pixel or two, and a crack found one pixel wide of where
it was drawn is still found.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from rechroma.data.print_damage import DamageConfig, Damaged, add_noise, damage_photo
from rechroma.errors import DataError, InvalidOptionError
from rechroma.evaluation.evaluate import count_images, image_grid, image_sources
from rechroma.evaluation.metrics import psnr, ssim
from rechroma.images import Photo, open_photo
from rechroma.restoration.restorer import Restorer

# Damage seeds for evaluation: far from any seed a training run draws.
EVAL_SEED = 1_000_003
FALSE_REPAIR_LEVELS = 8
GRID_COLUMNS = ["damaged", "found (red)", "repaired", "clean"]
REAL_TOLERANCE_PX = 2
MIN_SIDE = 32  # photos smaller than this on either side are skipped
REAL_GRID_COLUMNS = ["print", "marked by hand (red)", "found (red)", "repaired"]
MASK_SUFFIX = "-mask.png"
PRINT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


@dataclass
class RestoreEvalResult:
    """The summary (metrics.json) and the grid's panels."""

    summary: dict[str, Any]
    grid: list[tuple[str, list[Image.Image]]]
    real_grid: list[tuple[str, list[Image.Image]]] | None = None


def _as_tensor(gray: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(gray.astype(np.float32))[None, None]


def clean_gray(image: Image.Image, max_side: int, enlarge_to: int | None = None) -> np.ndarray:
    """A photo's lightness as evaluated: shrunk to `max_side`, or enlarged (bicubic) to
    `enlarge_to` when smaller, so its damage is drawn as wide as on a scan of that size."""
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    if enlarge_to is not None and max(image.size) < enlarge_to:
        factor = enlarge_to / max(image.size)
        size = (round(image.width * factor), round(image.height * factor))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image.convert("L"))


def film_grain(clean: np.ndarray, std: float, index: int) -> np.ndarray:
    """The `index`-th evaluated photo with seeded film grain of `std` levels: a grainy
    print, whose grain is part of the photo and lies under its damage."""
    if std <= 0:
        return clean
    return add_noise(clean, std, np.random.default_rng([EVAL_SEED, index, 1]))


def damage_for_evaluation(
    clean: np.ndarray, index: int, damage: DamageConfig | None = None
) -> Damaged:
    """The `index`-th evaluated photo's damage: seeded far from any training seed."""
    rng = np.random.default_rng([EVAL_SEED, index])
    return damage_photo(clean, rng, damage or DamageConfig())


def lightness_psnr(image: np.ndarray, clean: np.ndarray) -> float:
    """PSNR (dB) of a uint8 lightness against the clean one."""
    return psnr(_as_tensor(image), _as_tensor(clean)).item()


def mask_scores(found: np.ndarray, truth: np.ndarray, tolerance: int = 0) -> dict[str, float]:
    """Precision, recall and F1 of a predicted damage mask against the true one. With a
    `tolerance`, a pixel counts as right when the other mask has a pixel within that many
    pixels of it (for hand-marked masks, whose edges are uncertain by a pixel or two)."""
    near_truth, near_found = truth, found
    if tolerance:
        # A Euclidean disk: OpenCV's ellipse of this size also takes (2, 1) at radius 2.
        radius = np.arange(-tolerance, tolerance + 1)
        disk = (radius[:, None] ** 2 + radius[None, :] ** 2 <= tolerance**2).astype(np.uint8)
        near_truth = cv2.dilate(truth.astype(np.uint8), disk).astype(bool)
        near_found = cv2.dilate(found.astype(np.uint8), disk).astype(bool)
    precision = int((found & near_truth).sum()) / max(1, int(found.sum()))
    recall = int((truth & near_found).sum()) / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def real_damage_prints(folder: Path) -> list[tuple[str, Path, Path]]:
    """`(name, print, hand mask)` for every `NAME-mask.png` in `folder` whose print lies
    beside it (`NAME.png`, `.jpg`, ...) or is named in the folder's `sources.json`
    (`{"NAME": {"image": path relative to the folder, ...}}`), in name order."""
    sources_file = folder / "sources.json"
    sources = json.loads(sources_file.read_text()) if sources_file.is_file() else {}
    prints = []
    for mask_path in sorted(folder.glob(f"*{MASK_SUFFIX}")):
        name = mask_path.name[: -len(MASK_SUFFIX)]
        beside = [folder / f"{name}{suffix}" for suffix in PRINT_SUFFIXES]
        found = [path for path in beside if path.is_file()]
        if name in sources:
            found.insert(0, (folder / sources[name]["image"]).resolve())
        if not found or not found[0].is_file():
            raise DataError(f"{mask_path}: no print {name}.* beside it nor in {sources_file}")
        prints.append((name, found[0], mask_path))
    if not prints:
        raise DataError(f"no hand masks (*{MASK_SUFFIX}) in {folder}")
    return prints


def load_real_print(print_path: Path, mask_path: Path) -> tuple[Photo, np.ndarray]:
    """A real print as the detector sees it, and its hand mask (True where damaged)."""
    photo = open_photo(print_path)
    truth = np.asarray(Image.open(mask_path).convert("L")) > 127
    if truth.shape != (photo.gray.height, photo.gray.width):
        raise DataError(
            f"{mask_path}: a {truth.shape[1]}x{truth.shape[0]} mask for a "
            f"{photo.gray.width}x{photo.gray.height} print"
        )
    return photo, truth


def evaluate_real_damage(
    restorer: Restorer, folder: Path, progress: bool = True
) -> tuple[dict[str, Any], list[tuple[str, list[Image.Image]]]]:
    """Score the detector's mask on real prints against their hand masks (tone repair
    off): per print, precision, recall and F1 within `REAL_TOLERANCE_PX`, and the share
    of the print each mask covers; with a grid of print | hand | found | repaired."""
    rows: dict[str, dict[str, float]] = {}
    grid: list[tuple[str, list[Image.Image]]] = []
    prints = real_damage_prints(folder)
    for name, print_path, mask_path in tqdm(
        prints, desc="real damage", unit="print", disable=not progress
    ):
        photo, truth = load_real_print(print_path, mask_path)
        repaired = restorer.restore(photo, tone="off")
        found = repaired.mask
        rows[name] = {
            **mask_scores(found, truth, REAL_TOLERANCE_PX),
            "marked_share": float(truth.mean()),
            "found_share": float(found.mean()),
        }
        gray = np.asarray(photo.gray)
        panels = [Image.fromarray(gray).convert("RGB")]
        for mask in (truth, found):
            overlay = np.stack([gray] * 3, axis=-1)
            overlay[mask] = (255, 40, 40)
            panels.append(Image.fromarray(overlay))
        panels.append(repaired.photo.gray.convert("RGB"))
        grid.append((name, panels))
    summary = {
        "folder": str(folder),
        "tolerance_px": REAL_TOLERANCE_PX,
        "prints": rows,
        "mean": {
            key: float(np.mean([r[key] for r in rows.values()]))
            for key in next(iter(rows.values()))
        },
    }
    return summary, grid


def false_repair_share(untouched: np.ndarray, clean: np.ndarray) -> float:
    """The share of a clean photo's pixels its repair changed by more than
    `FALSE_REPAIR_LEVELS`."""
    changed = np.abs(untouched.astype(int) - clean.astype(int)) > FALSE_REPAIR_LEVELS
    return float(changed.mean())


def evaluate_restoration(
    restorer: Restorer,
    data: Path,
    limit: int | None = None,
    max_side: int = 1024,
    enlarge_to: int | None = None,
    grain: float = 0.0,
    grid_count: int = 6,
    damage: DamageConfig | None = None,
    progress: bool = True,
    real: Path | None = None,
) -> RestoreEvalResult:
    """Damage, repair and score every photo of `data` (a folder or a .tar shard).

    Photos larger than `max_side` are shrunk to it first (defects are drawn at the
    photo's own scale either way); tone repair is off, so only the fill is measured.
    With `enlarge_to`, smaller photos are first enlarged (bicubic) to that long side:
    their damage is then as wide as on a scan of that size, which thumbnails never show.
    With `grain`, every photo gets film grain of that many levels before its damage: the
    grain is part of the clean photo, to be kept, as on a scan of a grainy print. With
    `real`, a folder of real prints and their hand masks is scored too
    (`evaluate_real_damage`).
    """
    if enlarge_to is not None and enlarge_to > max_side:
        raise InvalidOptionError(f"--enlarge-to {enlarge_to} is larger than --max-side {max_side}")

    total = count_images(data)
    if limit is not None:
        total = min(total, limit)
    if total == 0:
        raise DataError(f"no photos in {data}")
    rows: list[dict[str, float]] = []
    grid: list[tuple[str, list[Image.Image]]] = []
    pooled = np.zeros(3, dtype=np.int64)  # hits, predicted, true
    bar = tqdm(total=total, desc="eval-restore", unit="photo", disable=not progress)
    for index, (name, load) in enumerate(image_sources(data)):
        if index >= total:
            break
        bar.update(1)
        try:
            image = load()
        except (OSError, ValueError) as exc:
            bar.write(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        if min(image.size) < MIN_SIDE:  # the generator's blurs need room
            bar.write(
                f"skipping {name}: {image.width}x{image.height} is too small to damage",
                file=sys.stderr,
            )
            continue
        clean = film_grain(clean_gray(image, max_side, enlarge_to), grain, index)
        damaged = damage_for_evaluation(clean, index, damage)
        repaired = restorer.restore(Image.fromarray(damaged.image), tone="off")
        fixed = np.asarray(repaired.photo.gray)
        untouched = np.asarray(restorer.restore(Image.fromarray(clean), tone="off").photo.gray)
        found, truth = repaired.mask, damaged.mask
        pooled += (int((found & truth).sum()), int(found.sum()), int(truth.sum()))
        clean_t = _as_tensor(clean)
        rows.append(
            {
                "psnr_damaged": lightness_psnr(damaged.image, clean),
                "psnr_repaired": lightness_psnr(fixed, clean),
                "ssim_damaged": ssim(_as_tensor(damaged.image), clean_t).item(),
                "ssim_repaired": ssim(_as_tensor(fixed), clean_t).item(),
                **mask_scores(found, truth),
                "false_repair_share": false_repair_share(untouched, clean),
            }
        )
        if len(grid) < grid_count:
            overlay = np.stack([damaged.image] * 3, axis=-1)
            overlay[found] = (255, 40, 40)
            panel = [
                Image.fromarray(damaged.image).convert("RGB"),
                Image.fromarray(overlay),
                Image.fromarray(fixed).convert("RGB"),
                Image.fromarray(clean).convert("RGB"),
            ]
            grid.append((name, panel))
    bar.close()
    if not rows:
        raise DataError(f"no readable photos in {data}")
    gains = [r["psnr_repaired"] - r["psnr_damaged"] for r in rows]
    hits, predicted, true = (int(v) for v in pooled)
    pooled_p, pooled_r = hits / max(1, predicted), hits / max(1, true)
    summary = {
        "data": str(data),
        "count": len(rows),
        "detector": str(restorer.weights_path),
        "detector_step": restorer.info.step,
        "threshold": restorer.threshold,
        "damage_seed": EVAL_SEED,
        "max_side": max_side,
        "enlarge_to": enlarge_to,
        "grain": grain,
        "median_psnr_gain_db": float(np.median(gains)),
        "median": {key: float(np.median([r[key] for r in rows])) for key in rows[0]},
        "mean": {key: float(np.mean([r[key] for r in rows])) for key in rows[0]},
        "pooled_mask": {
            "precision": pooled_p,
            "recall": pooled_r,
            "f1": 2 * pooled_p * pooled_r / max(1e-9, pooled_p + pooled_r),
        },
        "false_repair_levels": FALSE_REPAIR_LEVELS,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    real_grid = None
    if real is not None:
        summary["real_damage"], real_grid = evaluate_real_damage(restorer, real, progress)
    return RestoreEvalResult(summary, grid, real_grid)


def write_restore_report(result: RestoreEvalResult, out_dir: Path) -> None:
    """metrics.json, grid.png and report.md in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result.summary, indent=2))
    if result.grid:
        image_grid(result.grid, GRID_COLUMNS, cell=200).save(out_dir / "grid.png")
    s = result.summary
    median, pooled = s["median"], s["pooled_mask"]
    lines = [
        f"# Restoration on `{s['data']}`",
        "",
        f"{s['count']} photos (long side at most {s['max_side']} px"
        + (f", smaller ones enlarged to {s['enlarge_to']}" if s.get("enlarge_to") else "")
        + (f", with film grain of {s['grain']:g} levels" if s.get("grain") else "")
        + "), damaged by the seeded "
        f"generator (seed {s['damage_seed']}), repaired by `{Path(s['detector']).name}` "
        f"(step {s['detector_step']}) at threshold {s['threshold']:g}, tone repair off.",
        "",
        "| | damaged input | repaired |",
        "| --- | --- | --- |",
        f"| PSNR (median, dB) | {median['psnr_damaged']:.2f} | {median['psnr_repaired']:.2f} |",
        f"| SSIM (median) | {median['ssim_damaged']:.4f} | {median['ssim_repaired']:.4f} |",
        "",
        f"Median PSNR gain: **{s['median_psnr_gain_db']:.2f} dB**. Mask: median F1 "
        f"{median['f1']:.3f} (precision {median['precision']:.3f}, recall "
        f"{median['recall']:.3f}); pooled over all pixels F1 {pooled['f1']:.3f}.",
        "",
        f"False repairs on the clean photos: median {100 * median['false_repair_share']:.3f}% "
        f"of pixels changed by more than {s['false_repair_levels']} levels (mean "
        f"{100 * s['mean']['false_repair_share']:.3f}%).",
        "",
        "![damaged | found | repaired | clean](grid.png)",
        "",
    ]
    if real := s.get("real_damage"):
        lines += _real_damage_lines(real)
    if result.real_grid:
        image_grid(result.real_grid, REAL_GRID_COLUMNS, cell=260).save(out_dir / "real.png")
    (out_dir / "report.md").write_text("\n".join(lines))


def _real_damage_lines(real: dict[str, Any]) -> list[str]:
    lines = [
        f"## Real damage: `{real['folder']}`",
        "",
        f"The detector's mask against each print's hand-marked mask, a pixel counting as "
        f"right within {real['tolerance_px']} px of the other mask.",
        "",
        "| print | precision | recall | F1 | marked by hand | found |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = {**real["prints"], "**mean**": real["mean"]}
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{100 * row['marked_share']:.2f}% | {100 * row['found_share']:.2f}% |"
        )
    return [*lines, "", "![print | marked by hand | found | repaired](real.png)", ""]
