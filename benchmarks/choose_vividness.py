"""Choose a model's default vividness (its chroma gain) on a validation split.

The network's raw colour is not calibrated: a run with a strong colourfulness loss
over-shoots, a pixel-loss run is muted. This script predicts every photo of the
validation split once, renders it at a ladder of gains and prints PSNR, SSIM, LPIPS,
colourfulness and ΔCF at each. It picks the gain with the lowest mean LPIPS (the
perceptual distance to the truth: too little colour and wrong colour both raise it), and
also reports the gain whose colourfulness matches the truth's (the frontier's choice).

The split must not be photos-val, which judges the result: by default the held-out
faces and places shards of configs/v2.toml, and Tiny ImageNet's validation shard for
photos in general (200 ImageNet classes; never trained on). Write the choice into the
shipped file with `rechroma export-weights CHECKPOINT OUT --chroma-gain G`.

    python benchmarks/choose_vividness.py --weights runs/v2/checkpoints/step_0001000.safetensors \
        --out docs/eval/v2-vividness
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rechroma.evaluation.evaluate import (
    MethodScores,
    as_tensor,
    colour_photos,
    gray_baseline,
)
from rechroma.evaluation.lpips import load_lpips
from rechroma.evaluation.metrics import colorfulness
from rechroma.inference.colorizer import Colorizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT_SPLIT = (
    DATA / "faces" / "train-003.tar",
    DATA / "places" / "train-002.tar",
    DATA / "tiny-imagenet" / "val-000.tar",
)
DEFAULT_LPIPS = DATA / "lpips" / "alexnet-features.safetensors"
GAINS = tuple(round(0.5 + 0.1 * i, 2) for i in range(11))  # 0.5 .. 1.5


def load_split(paths: list[Path], per_source: int, size: int) -> list:
    """The first `per_source` colour photos of each source, resized as `rechroma eval`."""
    return [photo for path in paths for photo in colour_photos(path, size, per_source)]


@torch.inference_mode()
def score_gains(colorizer: Colorizer, photos: list, lpips, gains: tuple[float, ...]) -> dict:
    """Per-gain mean PSNR / SSIM / LPIPS / colourfulness, one network pass per photo."""
    scores = {gain: MethodScores() for gain in gains}
    truth_cf = []
    for photo in tqdm(photos, desc="gains", unit="photo"):
        truth = as_tensor(photo)
        truth_cf.append(colorfulness(truth).item())
        prediction = colorizer.predict(gray_baseline(photo))
        for gain in gains:
            scores[gain].add(as_tensor(colorizer.render(prediction, gain)), truth, lpips)
    mean_truth = float(np.mean(truth_cf))
    table = []
    for gain, score in scores.items():
        summary = score.summary(mean_truth)
        means = {key: value["mean"] for key, value in summary.items() if key != "delta_cf"}
        table.append({"gain": gain, **means, "delta_cf": summary["delta_cf"]})
    return {"truth_colorfulness": mean_truth, "photos": len(photos), "table": table}


def choose(result: dict) -> dict:
    """The LPIPS choice (or PSNR's without LPIPS) and the colour-matching gain."""
    table = result["table"]
    key = "lpips" if "lpips" in table[0] else None
    best = min(table, key=lambda p: p[key]) if key else max(table, key=lambda p: p["psnr"])
    matched = min(table, key=lambda p: p["delta_cf"])
    return {
        "criterion": "lowest mean LPIPS" if key else "highest mean PSNR (LPIPS unavailable)",
        "gain": best["gain"],
        "matched_colour_gain": matched["gain"],
    }


def plot(result: dict, choice: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result["table"]
    gains = [p["gain"] for p in table]
    panels = [("psnr", "PSNR (dB)"), ("colorfulness", "colourfulness")]
    if "lpips" in table[0]:
        panels.insert(1, ("lpips", "LPIPS (lower is better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(gains, [p[key] for p in table], marker="o")
        ax.axvline(choice["gain"], color="tab:red", linestyle="--", label="chosen")
        if key == "colorfulness":
            ax.axhline(result["truth_colorfulness"], color="gray", linestyle=":", label="truth")
        ax.set_xlabel("chroma gain")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"default vividness on the validation split ({result['photos']} photos)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="raw checkpoint (gain 1)")
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_SPLIT))
    parser.add_argument("--per-source", type=int, default=100, help="photos from each source")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--lpips-weights", type=Path, default=DEFAULT_LPIPS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for json + plot")
    args = parser.parse_args()

    colorizer = Colorizer.load(args.weights, threads=args.threads)
    if colorizer.chroma_gain != 1.0:
        parser.error(f"{args.weights} already carries chroma gain {colorizer.chroma_gain}")
    lpips = load_lpips(args.lpips_weights) if args.lpips_weights.exists() else None
    photos = load_split(args.data, args.per_source, args.size)
    result = score_gains(colorizer, photos, lpips, GAINS)
    choice = choose(result)
    print(f"{'gain':>5} {'PSNR':>7} {'SSIM':>7} {'LPIPS':>7} {'CF':>6} {'ΔCF':>6}")
    for p in result["table"]:
        print(
            f"{p['gain']:5.2f} {p['psnr']:7.3f} {p['ssim']:7.4f}"
            f" {p.get('lpips', float('nan')):7.4f} {p['colorfulness']:6.2f} {p['delta_cf']:6.2f}"
        )
    print(f"truth colourfulness {result['truth_colorfulness']:.2f}; {json.dumps(choice)}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {
            "weights": str(args.weights),
            "data": [str(p) for p in args.data],
            **result,
            "choice": choice,
        }
        (args.out / "vividness.json").write_text(json.dumps(record, indent=2) + "\n")
        plot(result, choice, args.out / "vividness.png")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
