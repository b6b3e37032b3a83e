"""Choose a damage detector's threshold on held-out photos, at their own size and a scan's.

Each detector sees every photo once (damaged, and clean for the false repairs); the
probability map is then thresholded at each candidate, filled and scored as
`rechroma eval-restore` scores it (median PSNR gain, mask F1, precision, recall, clean
pixels changed by more than 8 levels). Every set is scored twice: at the photos' own size
(thumbnails, whose damage is drawn about 1 px wide) and enlarged to `--enlarge-to` (damage
as wide as on a 1 MP scan). The threshold with the best F1 averaged over sets and scales
is the one to ship (`rechroma export-weights --defect-threshold`). Photos-val is never
used here: it is what the choice is judged on afterwards. `--grain` scores the same
photos as grainy prints (film grain under the damage), which the held-out shards are not.

With `--real DIR` (hand-marked real prints, as `rechroma eval-restore --real` reads them)
each threshold is also scored on real damage, and the choice becomes the threshold of
best mean F1 on the real prints among those that change at most `--clean-limit` percent
of the clean held-out photos' pixels (issue #41: find real cracks, leave clean texture).

    python benchmarks/restore_thresholds.py runs/restore/checkpoints/step_0001200.safetensors
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
HELD_OUT = (DATA / "faces" / "train-003.tar", DATA / "places" / "train-002.tar")
THRESHOLDS = (0.3, 0.4, 0.5, 0.65, 0.8)
METRICS = ("gain", "f1", "precision", "recall", "false")


def score_set(
    restorer,
    data: Path,
    limit: int,
    enlarge_to: int | None,
    thresholds: tuple[float, ...],
    grain: float = 0.0,
) -> dict[float, dict[str, float]]:
    """Median metrics of each threshold on the first `limit` photos of `data`."""
    from rechroma.evaluation.evaluate import image_sources
    from rechroma.evaluation.restore import (
        clean_gray,
        damage_for_evaluation,
        false_repair_share,
        film_grain,
        lightness_psnr,
        mask_scores,
    )

    rows: dict[float, list[dict[str, float]]] = {t: [] for t in thresholds}
    label = f"{data.parent.name}{f' at {enlarge_to}' if enlarge_to else ''}"
    sources = zip(range(limit), image_sources(data), strict=False)
    for index, (_, load) in tqdm(sources, desc=label, total=limit, unit="photo", leave=False):
        clean = film_grain(clean_gray(load(), 1024, enlarge_to), grain, index)
        damaged = damage_for_evaluation(clean, index)
        damaged_image, clean_image = Image.fromarray(damaged.image), Image.fromarray(clean)
        found_p, clean_p = restorer.probability(damaged_image), restorer.probability(clean_image)
        baseline = lightness_psnr(damaged.image, clean)
        for threshold in thresholds:
            found = restorer.mask(found_p, threshold)
            repaired = np.asarray(restorer.fill(damaged_image, found))
            untouched = np.asarray(restorer.fill(clean_image, restorer.mask(clean_p, threshold)))
            rows[threshold].append(
                {
                    "gain": lightness_psnr(repaired, clean) - baseline,
                    **mask_scores(found, damaged.mask),
                    "false": 100 * false_repair_share(untouched, clean),
                }
            )
    return {t: {m: statistics.median(r[m] for r in rows[t]) for m in METRICS} for t in thresholds}


def score_real(restorer, folder: Path, thresholds: tuple[float, ...]) -> dict:
    """Per print and threshold: precision, recall and F1 against the hand mask."""
    from rechroma.evaluation.restore import (
        REAL_TOLERANCE_PX,
        load_real_print,
        mask_scores,
        real_damage_prints,
    )

    scores: dict[str, dict[float, dict[str, float]]] = {}
    for name, print_path, mask_path in real_damage_prints(folder):
        photo, truth = load_real_print(print_path, mask_path)
        probability = restorer.probability(photo.gray)
        scores[name] = {
            t: mask_scores(restorer.mask(probability, t), truth, REAL_TOLERANCE_PX)
            for t in thresholds
        }
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("detectors", type=Path, nargs="*", help="weights; the shipped one if none")
    parser.add_argument("--data", type=Path, nargs="+", default=list(HELD_OUT))
    parser.add_argument("--limit", type=int, default=40, help="photos per set and scale")
    parser.add_argument("--enlarge-to", type=int, default=1024)
    parser.add_argument("--grain", type=float, default=0.0, help="film grain (levels) first")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--real", type=Path, default=None, help="hand-marked real prints")
    parser.add_argument("--clean-limit", type=float, default=1.0, help="percent of pixels")
    parser.add_argument(
        "--scales", type=float, nargs="+", default=None, help="detector scales (1 first)"
    )
    args = parser.parse_args()

    from rechroma.restoration import Restorer

    thresholds = tuple(args.thresholds)
    for weights in args.detectors or [None]:
        restorer = Restorer.load(weights, threads=args.threads, scales=args.scales)
        name = weights.name if weights else "the shipped detector"
        grainy = f", film grain {args.grain:g} levels" if args.grain else ""
        scales = ", ".join(f"{s:g}" for s in restorer.scales)
        print(f"\n## {name} (its own threshold: {restorer.threshold:g}; scales {scales}){grainy}\n")
        print("| set | size | threshold | PSNR gain | F1 | precision | recall | clean changed |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        mean_f1 = dict.fromkeys(thresholds, 0.0)
        worst_clean = dict.fromkeys(thresholds, 0.0)
        conditions = [(d, e) for d in args.data for e in (None, args.enlarge_to)]
        for data, enlarge in conditions:
            scores = score_set(restorer, data, args.limit, enlarge, thresholds, args.grain)
            for t, s in scores.items():
                mean_f1[t] += s["f1"] / len(conditions)
                worst_clean[t] = max(worst_clean[t], s["false"])
                size = f"enlarged to {enlarge}" if enlarge else "own"
                print(
                    f"| {data.parent.name} | {size} | {t:g} | {s['gain']:+.2f} dB | "
                    f"{s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                    f"{s['false']:.2f}% |",
                    flush=True,
                )
        best = max(mean_f1, key=mean_f1.__getitem__)
        summary = ", ".join(f"{t:g}: {f:.3f}" for t, f in mean_f1.items())
        print(f"\nmean F1 over sets and sizes: {summary}; best threshold {best:g}")
        if args.real is not None:
            real = score_real(restorer, args.real, thresholds)
            print("\n| real print | threshold | precision | recall | F1 |")
            print("| --- | --- | --- | --- | --- |")
            for name, rows in real.items():
                for t, s in rows.items():
                    print(
                        f"| {name} | {t:g} | {s['precision']:.3f} | {s['recall']:.3f} | "
                        f"{s['f1']:.3f} |"
                    )
            real_f1 = {
                t: statistics.mean(rows[t]["f1"] for rows in real.values()) for t in thresholds
            }
            allowed = [t for t in thresholds if worst_clean[t] <= args.clean_limit]
            choice = max(allowed, key=real_f1.__getitem__) if allowed else None
            summary = ", ".join(f"{t:g}: {f:.3f}" for t, f in real_f1.items())
            print(
                f"\nmean F1 on the real prints: {summary}; among thresholds changing at most "
                f"{args.clean_limit:g}% of clean pixels: {choice}"
            )


if __name__ == "__main__":
    main()
