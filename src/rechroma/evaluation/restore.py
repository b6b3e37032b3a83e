"""`rechroma eval-restore`: how well print damage is found and repaired, and what else is touched.

Every photo's lightness is damaged by the seeded generator (`rechroma.data.print_damage`,
seeds that training never draws) and repaired; the repair is compared with the clean
lightness (PSNR, SSIM, beside the damaged input's as the baseline), the predicted mask
with the true one (precision, recall, F1), and the clean photo is repaired too, to count
false repairs: the share of its pixels changed by more than `FALSE_REPAIR_LEVELS`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from rechroma.data.print_damage import DamageConfig, Damaged, add_noise, damage_photo
from rechroma.errors import DataError, InvalidOptionError
from rechroma.evaluation.evaluate import count_images, image_grid, image_sources
from rechroma.evaluation.metrics import psnr, ssim
from rechroma.restoration.restorer import Restorer

# Damage seeds for evaluation: far from any seed a training run draws.
EVAL_SEED = 1_000_003
FALSE_REPAIR_LEVELS = 8
GRID_COLUMNS = ["damaged", "found (red)", "repaired", "clean"]


@dataclass
class RestoreEvalResult:
    """The summary (metrics.json) and the grid's panels."""

    summary: dict[str, Any]
    grid: list[tuple[str, list[Image.Image]]]


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


def mask_scores(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of a predicted damage mask against the true one."""
    hits = int((found & truth).sum())
    precision = hits / max(1, int(found.sum()))
    recall = hits / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


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
) -> RestoreEvalResult:
    """Damage, repair and score every photo of `data` (a folder or a .tar shard).

    Photos larger than `max_side` are shrunk to it first (defects are drawn at the
    photo's own scale either way); tone repair is off, so only the fill is measured.
    With `enlarge_to`, smaller photos are first enlarged (bicubic) to that long side:
    their damage is then as wide as on a scan of that size, which thumbnails never show.
    With `grain`, every photo gets film grain of that many levels before its damage: the
    grain is part of the clean photo, to be kept, as on a scan of a grainy print.
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
            bar.write(f"skipping {name}: {exc}")
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
    return RestoreEvalResult(summary, grid)


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
    (out_dir / "report.md").write_text("\n".join(lines))
