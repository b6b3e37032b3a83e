"""How much PSNR each model pays for colour: PSNR against colourfulness on photos-val.

Every model predicts each photo once (the 256x256 protocol and gray input of `rechroma
eval`, default render size); the prediction is then rendered at several vividness
values (chroma multiplied, clipped at the gamut), so each model draws a curve from gray
(vividness 0) to over-saturated. Colour a model has *earned* lies above the curve of a
muted model saturated after the fact. The v1 bars (PSNR >= 23 dB and ΔCF <= 8) are
drawn as a box.

    python benchmarks/colour_tradeoff.py --weights A.safetensors B.safetensors \
        --out docs/colour-tradeoff
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from rechroma.evaluation.evaluate import (
    GRAY_CF_THRESHOLD,
    as_tensor,
    count_images,
    gray_baseline,
    iter_images,
)
from rechroma.evaluation.metrics import colorfulness, psnr
from rechroma.inference.colorizer import Colorizer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos-val"
VIVIDNESS = (0.0, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0)
PSNR_BAR, DELTA_CF_BAR = 23.0, 8.0


def score_model(colorizer: Colorizer, photos: list[Image.Image]) -> list[dict]:
    """Mean PSNR and colourfulness at every vividness, one network pass per photo."""
    scores = {v: {"psnr": [], "colorfulness": []} for v in VIVIDNESS}
    for photo in tqdm(photos, desc=colorizer.weights_path.name, unit="photo"):
        truth = as_tensor(photo)
        # The protocol's input: the truth's Lab lightness as a gray image, as `rechroma eval`.
        prediction = colorizer.predict(gray_baseline(photo))
        for vividness in VIVIDNESS:
            out = as_tensor(colorizer.render(prediction, vividness))
            scores[vividness]["psnr"].append(psnr(out, truth).item())
            scores[vividness]["colorfulness"].append(colorfulness(out).item())
    return [
        {
            "vividness": v,
            "psnr": float(np.mean(values["psnr"])),
            "colorfulness": float(np.mean(values["colorfulness"])),
        }
        for v, values in scores.items()
    ]


def plot(curves: dict[str, list[dict]], truth_cf: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    psnrs = [r["psnr"] for rows in curves.values() for r in rows]
    top = max(max(psnrs), PSNR_BAR) + 0.3
    ax.add_patch(
        plt.Rectangle(
            (truth_cf - DELTA_CF_BAR, PSNR_BAR),
            2 * DELTA_CF_BAR,
            top - PSNR_BAR,
            color="tab:green",
            alpha=0.15,
            label="v1 bars (PSNR ≥ 23, ΔCF ≤ 8)",
        )
    )
    for name, rows in curves.items():
        xs = [r["colorfulness"] for r in rows]
        ys = [r["psnr"] for r in rows]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name)
        at_one = next(r for r in rows if r["vividness"] == 1.0)
        ax.plot(at_one["colorfulness"], at_one["psnr"], "o", color=line.get_color(), markersize=8)
    ax.axvline(truth_cf, color="gray", linestyle=":", label=f"ground truth CF {truth_cf:.1f}")
    ax.set_ylim(min(psnrs) - 0.3, top)
    ax.set_xlabel("mean colourfulness (CF)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title("PSNR against colour, vividness 0-2 (big dot: as predicted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    photos, truth_cfs = [], []
    total = count_images(args.data)
    for _, image in tqdm(iter_images(args.data, args.size), total=total, desc="photos"):
        if image is None:
            continue
        cf = colorfulness(as_tensor(image)).item()
        if cf < GRAY_CF_THRESHOLD:
            continue  # gray ground truth: skipped, as `rechroma eval` does
        photos.append(image)
        truth_cfs.append(cf)
        if args.limit and len(photos) >= args.limit:
            break
    truth_cf = float(np.mean(truth_cfs))

    curves = {}
    for weights in args.weights:
        colorizer = Colorizer.load(weights, threads=args.threads)
        curves[weights.stem] = score_model(colorizer, photos)
        for row in curves[weights.stem]:
            print(
                f"{weights.stem:28s} vividness {row['vividness']:4.2f}: "
                f"PSNR {row['psnr']:.2f} dB, CF {row['colorfulness']:.2f}, "
                f"ΔCF {abs(row['colorfulness'] - truth_cf):.2f}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"photos": len(photos), "truth_cf": truth_cf, "size": args.size, "curves": curves}
    (args.out / "tradeoff.json").write_text(json.dumps(report, indent=2))
    plot(curves, truth_cf, args.out / "tradeoff.png")


if __name__ == "__main__":
    main()
