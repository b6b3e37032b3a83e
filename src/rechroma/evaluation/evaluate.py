"""Evaluate colorizers on colour photos with the colorization literature's protocol.

Each photo is resized to `size` x `size` (bicubic, RGB uint8), its colour is removed,
each method colorizes it, and the result is compared with the original. Photos whose
ground truth is already gray (colourfulness < 1) are skipped and counted. The same run
scores the all-gray baseline, so every table carries its own floor.
"""

from __future__ import annotations

import csv
import functools
import heapq
import itertools
import json
import logging
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError
from tqdm import tqdm

from rechroma.color import rgb_to_gray_rgb
from rechroma.data.shards import SHARD_IMAGE_SUFFIXES, decode_rgb, iter_shard
from rechroma.errors import DataError, ImageReadError
from rechroma.evaluation.fid import InceptionFeatures, frechet_distance
from rechroma.evaluation.lpips import LPIPS
from rechroma.evaluation.metrics import colorfulness, psnr, ssim
from rechroma.evaluation.plots import plot_frontier
from rechroma.images import PHOTO_SUFFIXES
from rechroma.inference.hints import Hint

logger = logging.getLogger(__name__)

GRAY_CF_THRESHOLD = 1.0
GRAY_BASELINE = "gray"
GROUND_TRUTH = "ground truth"
METRICS = ("psnr", "ssim", "colorfulness")

# A method turns the grayscale photo (RGB, size x size) into a colour one of that size;
# with `evaluate(hints=N)` it is also called with `hints=` (a list of `Hint`). A method
# that can re-render one prediction at another vividness (a `Colorizer`: `predict` and
# `render`) also gets the matched-colour PSNR and a PSNR-colourfulness frontier.
Method = Callable[..., Image.Image] | Any
# Vividness values at which every re-renderable method's frontier is drawn; the
# bisection for the matched colour adds its own points.
FRONTIER_VIVIDNESS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
MAX_FRONTIER_VIVIDNESS = 4.0
# Bisection stops when the mean colourfulness is this close to the truth's.
MATCH_TOLERANCE_CF = 0.05
MATCH_STEPS = 16
# The frontier keeps each photo's prediction (about 260 KB at 256 px): on larger sets it
# is measured on the first this many photos, and the report says so.
FRONTIER_MAX_PHOTOS = 5000
# Each hint sampled from the truth is the mean colour of this square around its point,
# as training simulates hints (rechroma.data.hints).
HINT_PATCH = 3


def sample_truth_hints(truth: Image.Image, count: int, rng: np.random.Generator) -> list[Hint]:
    """`count` hints as a person who knew the colours would give them: random points of
    the photo, each with the mean true colour of a small square around it."""
    rgb = np.asarray(truth.convert("RGB"), dtype=np.float64)
    height, width = rgb.shape[:2]
    hints = []
    for _ in range(count):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        half = HINT_PATCH // 2
        patch = rgb[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
        red, green, blue = (int(round(v)) for v in patch.reshape(-1, 3).mean(axis=0))
        hints.append(Hint(x, y, f"#{red:02x}{green:02x}{blue:02x}"))
    return hints


def gray_baseline(image: Image.Image) -> Image.Image:
    """The all-gray answer: the photo's lightness with a = b = 0."""
    rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    gray = rgb_to_gray_rgb(rgb)
    return Image.fromarray((gray.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())


def count_images(data: Path) -> int:
    """How many candidate images `data` (a folder or a tar shard) holds."""
    if _is_shard(data):
        with tarfile.open(data) as tar:
            return sum(
                1
                for member in tar.getmembers()
                if member.isfile() and member.name.lower().endswith(SHARD_IMAGE_SUFFIXES)
            )
    return len(_folder_photos(data))


def iter_images(data: Path, size: int) -> Iterator[tuple[str, Image.Image | None]]:
    """`(name, RGB photo resized to size x size)`, or `(name, None)` if unreadable."""
    for name, load in image_sources(data):
        try:
            image = load()
        except (ImageReadError, OSError, UnidentifiedImageError, ValueError) as exc:
            logger.warning("skipping %s: %s", name, exc)
            yield name, None
            continue
        yield name, image.resize((size, size), Image.Resampling.BICUBIC)


def colour_photos(data: Path, size: int, count: int) -> list[Image.Image]:
    """The first `count` readable photos of `data` with colour in their truth (the ones
    `evaluate` scores), resized to size x size as it resizes them."""
    readable = (image for _, image in iter_images(data, size) if image is not None)
    coloured = (p for p in readable if colorfulness(as_tensor(p)).item() >= GRAY_CF_THRESHOLD)
    return list(itertools.islice(coloured, count))


def _is_shard(data: Path) -> bool:
    return data.is_file() and data.suffix == ".tar"


def _folder_photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder} is neither a folder of photos nor a .tar shard")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def image_sources(data: Path) -> Iterator[tuple[str, Callable[[], Image.Image]]]:
    """`(name, loader)` pairs, so a photo that fails to decode is skipped, not fatal."""
    if _is_shard(data):
        for key, payload in iter_shard(data):
            yield key, functools.partial(decode_rgb, payload)
        return
    for path in _folder_photos(data):
        yield path.relative_to(data).as_posix(), functools.partial(_open_rgb, path)


def _open_rgb(path: Path) -> Image.Image:
    return decode_rgb(path.read_bytes())


@dataclass
class MethodScores:
    """Per-image scores of one method."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def add(
        self, output: torch.Tensor, truth: torch.Tensor, lpips: LPIPS | None = None
    ) -> dict[str, float]:
        """Score `(1, 3, H, W)` output against truth (0..255); returns this image's row."""
        row = {
            "psnr": psnr(output, truth).item(),
            "ssim": ssim(output, truth).item(),
            "colorfulness": colorfulness(output).item(),
        }
        if lpips is not None:
            row["lpips"] = lpips(output / 255, truth / 255).item()
        for key, value in row.items():
            self.values.setdefault(key, []).append(value)
        return row

    def summary(self, truth_cf: float) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, values in self.values.items():
            out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        out["delta_cf"] = abs(float(np.mean(self.values["colorfulness"])) - truth_cf)
        return out


@dataclass
class EvalResult:
    """Everything `write_report` needs."""

    summary: dict[str, object]
    rows: list[dict[str, Any]]
    grid: list[tuple[str, list[Image.Image]]]
    worst: list[tuple[str, list[Image.Image]]]
    columns: list[str]


def evaluate(
    methods: dict[str, Method],
    data: Path,
    size: int = 256,
    grid_count: int = 8,
    seed: int = 0,
    limit: int | None = None,
    lpips: LPIPS | None = None,
    lpips_status: str = "unavailable",
    inception: InceptionFeatures | None = None,
    fid_status: str = "unavailable",
    progress: bool = True,
    hints: int = 0,
) -> EvalResult:
    """Score every method (the first is "the model") plus the gray baseline on `data`.

    `grid_count` photos chosen by `seed` go into the side-by-side grid; the same number
    with the first method's lowest PSNR go into the worst-cases grid. Without an `lpips`
    model, the report carries `lpips_status` (why it is unavailable) instead of a number;
    likewise FID without `inception`, whose reference is the ground truth of the same set.
    With `hints`, each method also gets that many colour hints sampled from each photo's
    truth (seeded by `seed` and the photo's index), as `method(gray, hints=[...])`.
    """
    # Every method gets the gray input; the gray baseline answers with it unchanged.
    methods = {**methods, GRAY_BASELINE: lambda gray_input, **_: gray_input}
    primary = next(iter(methods))
    total = count_images(data)
    if limit is not None:
        total = min(total, limit)
    if total == 0:
        raise DataError(f"no photos in {data}")
    chosen = set(np.random.default_rng(seed).permutation(total)[:grid_count].tolist())
    scores = {name: MethodScores() for name in methods}
    rows: list[dict[str, Any]] = []
    grid: list[tuple[str, list[Image.Image]]] = []
    worst: list[tuple[float, int, str, list[Image.Image]]] = []  # (-psnr, ...)
    truth_cf: list[float] = []
    fid_features: dict[str, list[torch.Tensor]] = {name: [] for name in [*methods, GROUND_TRUTH]}
    skipped_gray = unreadable = 0
    # Re-renderable methods keep each photo's prediction for the frontier (small: the
    # network's answer at render size plus the gray input).
    predictions: dict[str, list[tuple[Any, torch.Tensor]]] = {
        name: [] for name, method in methods.items() if _renders(method)
    }
    images = iter_images(data, size)
    bar = tqdm(total=total, desc="eval", unit="photo", disable=not progress)
    for index, (name, truth_image) in enumerate(images):
        if index >= total:
            break
        bar.update(1)
        if truth_image is None:
            unreadable += 1
            continue
        truth = as_tensor(truth_image)
        cf = colorfulness(truth).item()
        if cf < GRAY_CF_THRESHOLD:
            skipped_gray += 1
            continue
        truth_cf.append(cf)
        gray_input = gray_baseline(truth_image)
        given = (
            sample_truth_hints(truth_image, hints, np.random.default_rng([seed, index]))
            if hints
            else []
        )
        outputs = {}
        for method_name, method in methods.items():
            if _renders(method):
                prediction = method.predict(gray_input, hints=given)
                if len(predictions[method_name]) < FRONTIER_MAX_PHOTOS:
                    predictions[method_name].append((prediction, truth.to(torch.uint8)))
                outputs[method_name] = method.render(prediction)
            else:
                outputs[method_name] = (
                    method(gray_input, hints=given) if hints else method(gray_input)
                )
        tensors = {method_name: as_tensor(output) for method_name, output in outputs.items()}
        for method_name, output_tensor in tensors.items():
            row = scores[method_name].add(output_tensor, truth, lpips)
            rows.append({"image": name, "method": method_name, **row})
        if inception is not None:
            fid_features[GROUND_TRUTH].append(inception(truth / 255))
            for method_name, output_tensor in tensors.items():
                fid_features[method_name].append(inception(output_tensor / 255))
        # The gray baseline is the input itself: the table shows it, the grids need not.
        panel = [gray_input, *(o for m, o in outputs.items() if m != GRAY_BASELINE), truth_image]
        if index in chosen:
            grid.append((name, panel))
        primary_psnr = float(rows[-len(methods)]["psnr"])
        # Keep the lowest-PSNR panels: a heap whose top is the best of the kept worst.
        if len(worst) < grid_count:
            heapq.heappush(worst, (-primary_psnr, index, name, panel))
        elif worst and primary_psnr < -worst[0][0]:
            heapq.heapreplace(worst, (-primary_psnr, index, name, panel))
    bar.close()
    if not truth_cf:
        raise DataError(f"no colour photos to evaluate in {data}")
    mean_truth_cf = float(np.mean(truth_cf))
    method_summaries = {name: s.summary(mean_truth_cf) for name, s in scores.items()}
    for name, kept in predictions.items():
        frontier = ColourFrontier(methods[name], kept)
        method_summaries[name]["matched_colour"] = frontier.match(mean_truth_cf)
        method_summaries[name]["frontier"] = frontier.points()
    if inception is not None:
        reference = torch.cat(fid_features[GROUND_TRUTH])
        for name in methods:
            method_summaries[name]["fid"] = frechet_distance(
                torch.cat(fid_features[name]), reference
            )
    summary = {
        "data": str(data),
        "protocol": {
            "size": size,
            "resize": "bicubic, both output and ground truth, RGB uint8",
            "gray_input": "Lab lightness of the resized ground truth, a = b = 0",
            "skip": f"ground truth colourfulness < {GRAY_CF_THRESHOLD}",
            "ssim": "Gaussian window sigma 1.5, data_range 255, mean over channels",
            "colorfulness": "Hasler & Suesstrunk with |R-G|, |(R+G)/2-B| (DDColor, CT2)",
            "hints": hints,
        },
        "count": len(truth_cf),
        "skipped_gray": skipped_gray,
        "unreadable": unreadable,
        "truth_colorfulness": mean_truth_cf,
        "primary": primary,
        "lpips": "available (v0.1, AlexNet)" if lpips is not None else lpips_status,
        "fid": "available (Inception-v3, 2048-d pool, 299 px bilinear)"
        if inception is not None
        else fid_status,
        "methods": method_summaries,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    worst_sorted = sorted(worst, key=lambda item: -item[0])
    return EvalResult(
        summary=summary,
        rows=rows,
        grid=grid,
        worst=[(name, panel) for _, _, name, panel in worst_sorted],
        columns=["gray input", *(m for m in methods if m != GRAY_BASELINE), GROUND_TRUTH],
    )


def _renders(method: Method) -> bool:
    return callable(getattr(method, "predict", None)) and callable(getattr(method, "render", None))


class ColourFrontier:
    """PSNR against mean colourfulness of one model as its vividness is turned.

    Every photo's prediction is rendered again at each vividness (the network does not
    run again); a point is the set's mean PSNR and mean colourfulness at that vividness.
    """

    def __init__(self, colorizer: Any, kept: list[tuple[Any, torch.Tensor]]) -> None:
        self.colorizer = colorizer
        self.kept = kept
        self._points: dict[float, tuple[float, float]] = {}  # vividness -> (psnr, cf)

    def at(self, vividness: float) -> tuple[float, float]:
        """`(mean PSNR, mean colourfulness)` of the set at `vividness`."""
        if vividness not in self._points:
            psnrs, cfs = [], []
            for prediction, truth in self.kept:
                output = as_tensor(self.colorizer.render(prediction, vividness))
                psnrs.append(psnr(output, truth.float()).item())
                cfs.append(colorfulness(output).item())
            self._points[vividness] = (float(np.mean(psnrs)), float(np.mean(cfs)))
        return self._points[vividness]

    def match(self, target_cf: float) -> dict[str, object]:
        """The vividness at which the mean colourfulness equals `target_cf` (bisection;
        colourfulness grows with vividness), and the PSNR there."""
        low, high = 0.0, MAX_FRONTIER_VIVIDNESS
        reached = self.at(high)[1] >= target_cf
        vividness = high
        if reached:
            for _ in range(MATCH_STEPS):
                vividness = (low + high) / 2
                cf = self.at(vividness)[1]
                if abs(cf - target_cf) <= MATCH_TOLERANCE_CF:
                    break
                low, high = (vividness, high) if cf < target_cf else (low, vividness)
        psnr_value, cf = self.at(vividness)
        return {
            "psnr": psnr_value,
            "vividness": vividness,
            "colorfulness": cf,
            "photos": len(self.kept),
            # False: even the highest vividness stays below the truth's colourfulness.
            "reached": reached,
        }

    def points(self) -> list[dict[str, float]]:
        """The frontier at `FRONTIER_VIVIDNESS` and every point the bisection visited."""
        for vividness in FRONTIER_VIVIDNESS:
            self.at(vividness)
        return [
            {"vividness": v, "psnr": p, "colorfulness": cf}
            for v, (p, cf) in sorted(self._points.items())
        ]


def as_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> `(1, 3, H, W)` float in [0, 255]."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def image_grid(
    panels: list[tuple[str, list[Image.Image]]], columns: list[str], cell: int = 160
) -> Image.Image:
    """Rows of photos under a header naming each column; each row is labelled by name."""
    header, label = 24, 16
    width = cell * len(columns)
    height = header + len(panels) * (cell + label)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(columns):
        draw.text((col * cell + 4, 6), title, fill="black")
    for row, (name, images) in enumerate(panels):
        top = header + row * (cell + label)
        draw.text((4, top + 2), name[:60], fill="dimgray")
        for col, image in enumerate(images):
            thumbnail = image.resize((cell, cell), Image.Resampling.BICUBIC)
            canvas.paste(thumbnail, (col * cell, top + label))
    return canvas


def write_report(result: EvalResult, out_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write metrics.json, per_image.csv, grid.png, worst.png and report.md to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {**result.summary, **(extra or {})}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    with (out_dir / "per_image.csv").open("w", newline="") as handle:
        fields = ["image", "method", *METRICS, *(["lpips"] if "lpips" in result.rows[0] else [])]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result.rows)
    if result.grid:
        image_grid(result.grid, result.columns).save(out_dir / "grid.png")
    if result.worst:
        image_grid(result.worst, result.columns).save(out_dir / "worst.png")
    frontiers = {
        name: fig["frontier"] for name, fig in summary["methods"].items() if "frontier" in fig
    }
    if frontiers:
        try:
            plot_frontier(frontiers, summary["truth_colorfulness"], out_dir / "frontier.png")
        except ImportError:  # matplotlib is the train extra's; the numbers are in metrics.json
            logger.warning("frontier.png not drawn: pip install 'rechroma[train]' for matplotlib")
    (out_dir / "report.md").write_text(render_markdown(summary))


def render_markdown(summary: dict[str, Any]) -> str:
    """A short report: protocol, the table, and the two grids."""
    size = summary["protocol"]["size"]
    lines = [
        f"# Evaluation on `{summary['data']}`",
        "",
        f"{summary['count']} colour photos at {size}x{size}; {summary['skipped_gray']} with gray "
        f"ground truth skipped, {summary['unreadable']} unreadable. Ground-truth "
        f"colourfulness {summary['truth_colorfulness']:.2f}."
        + (
            f" Each model had {summary['protocol']['hints']} colour hints per photo, sampled "
            "from its ground truth."
            if summary["protocol"].get("hints")
            else ""
        ),
        "",
        f"LPIPS: {summary['lpips']}. FID: {summary['fid']}.",
        "",
        "| method | PSNR (dB) | SSIM | LPIPS | FID | colourfulness | ΔCF "
        "| matched-colour PSNR (vividness) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, fig in summary["methods"].items():
        lpips = f"{fig['lpips']['mean']:.4f}" if "lpips" in fig else "unavailable"
        fid = f"{fig['fid']:.2f}" if "fid" in fig else "unavailable"
        matched = fig.get("matched_colour")
        if matched is None:
            frontier = "n/a"
        else:
            frontier = f"{matched['psnr']:.2f} ({matched['vividness']:.2f})"
            if not matched["reached"]:
                frontier += f", CF only {matched['colorfulness']:.1f}"
        lines.append(
            f"| {name} | {fig['psnr']['mean']:.2f} | {fig['ssim']['mean']:.4f} | {lpips} | "
            f"{fid} | {fig['colorfulness']['mean']:.2f} | {fig['delta_cf']:.2f} | {frontier} |"
        )
    lines += [
        "",
        "Matched-colour PSNR: the PSNR when each model's vividness is set (one value for the "
        "set, by bisection) so that its mean colourfulness equals the ground truth's; colour "
        "that is both vivid and right raises it. The frontier (PSNR against colourfulness as "
        "vividness is turned):",
        "",
        "![frontier](frontier.png)",
        "",
        "![side by side](grid.png)",
        "",
        "Lowest PSNR:",
        "",
        "![worst](worst.png)",
        "",
    ]
    return "\n".join(lines)
