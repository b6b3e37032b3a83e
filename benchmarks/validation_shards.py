"""Score colorizers on the held-out validation shards, per source (issue #39's shipping rule).

Each model colours the first `--per-source` colour photos of every validation source (a
shard's folder: the held-out faces and places shards, Tiny ImageNet's validation shard and
the 300 photos held out of each new collection by `rechroma prepare-collections`), resized
to 256x256 as `rechroma eval` does, at its own default vividness (the chroma gain stored
in its weights). Printed and written: PSNR and LPIPS per source, the mean over sources
(each counts once, whatever its size) and each model's difference from the first, with
the rule's checks: mean PSNR at least +0.3 dB, no source more than 0.2 dB below.

With `--gains`, every prediction is also rendered at a ladder of chroma gains (times the
raw network's colour) and the gain with the lowest mean LPIPS over the sources is
reported: how a candidate's default vividness is chosen without looking at photos-val.

    python benchmarks/validation_shards.py --model v1=src/rechroma/weights/rechroma-v1.safetensors \
        --model v3=runs/v3/checkpoints/step_0004000.safetensors --out docs/eval/v3-validation
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rechroma.data.shards import source_name
from rechroma.evaluation.evaluate import as_tensor, colour_photos, gray_baseline
from rechroma.evaluation.lpips import load_lpips
from rechroma.evaluation.metrics import psnr
from rechroma.inference.colorizer import Colorizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT_LPIPS = DATA / "lpips" / "alexnet-features.safetensors"
MEAN_GAIN_DB, WORST_SOURCE_DB = 0.3, -0.2  # the shipping rule's (b)


def default_shards() -> list[Path]:
    """The validation sources of configs/v3.toml."""
    shared = [
        DATA / "faces" / "train-003.tar",
        DATA / "places" / "train-002.tar",
        DATA / "tiny-imagenet" / "val-000.tar",
    ]
    return shared + sorted((ROOT / ".data" / "more-photos").glob("*/val-000.tar"))


def load_sources(shards: list[Path], per_source: int, size: int) -> dict[str, list]:
    """The first `per_source` colour photos of each source, as `rechroma eval` sizes them."""
    sources: dict[str, list] = {}
    for shard in shards:
        sources.setdefault(source_name(shard), []).extend(colour_photos(shard, size, per_source))
    return sources


@torch.inference_mode()
def score_model(
    colorizer: Colorizer, sources: dict[str, list], lpips, gains: tuple[float, ...]
) -> dict:
    """Per-source mean PSNR / LPIPS at the model's default, and at each of `gains`."""
    stored = colorizer.chroma_gain
    result: dict = {"chroma_gain": stored, "sources": {}, "gains": {}}
    ladder: dict[float, dict[str, list[float]]] = {g: {} for g in gains}
    total = sum(len(photos) for photos in sources.values())
    bar = tqdm(total=total, desc="photos", unit="photo")
    for name, photos in sources.items():
        rows: dict[str, list[float]] = {"psnr": [], "lpips": []}
        for photo in photos:
            truth = as_tensor(photo)
            prediction = colorizer.predict(gray_baseline(photo))
            output = as_tensor(colorizer.render(prediction))
            rows["psnr"].append(psnr(output, truth).item())
            if lpips is not None:  # LPIPS takes [0, 1]
                rows["lpips"].append(lpips(output / 255, truth / 255).item())
            for gain in gains:  # relative to the raw network, whatever the stored gain
                rendered = as_tensor(colorizer.render(prediction, gain / stored))
                scores = ladder[gain].setdefault(name, [])
                scores.append(
                    lpips(rendered / 255, truth / 255).item()
                    if lpips
                    else psnr(rendered, truth).item()
                )
            bar.update(1)
        result["sources"][name] = {k: float(np.mean(v)) for k, v in rows.items() if v}
    bar.close()
    for gain, by_source in ladder.items():
        result["gains"][gain] = float(np.mean([np.mean(v) for v in by_source.values()]))
    if gains:
        pick = min if lpips is not None else max
        result["chosen_gain"] = pick(result["gains"], key=result["gains"].get)
    result["mean_psnr"] = float(np.mean([s["psnr"] for s in result["sources"].values()]))
    if lpips is not None:
        result["mean_lpips"] = float(np.mean([s["lpips"] for s in result["sources"].values()]))
    return result


def rule_check(baseline: dict, candidate: dict) -> dict:
    """The candidate's PSNR differences from the baseline and whether rule (b) holds."""
    deltas = {
        name: candidate["sources"][name]["psnr"] - scores["psnr"]
        for name, scores in baseline["sources"].items()
    }
    mean = candidate["mean_psnr"] - baseline["mean_psnr"]
    worst = min(deltas, key=deltas.get)
    return {
        "mean_delta_db": mean,
        "worst_source": worst,
        "worst_delta_db": deltas[worst],
        "deltas_db": deltas,
        "meets_rule": mean >= MEAN_GAIN_DB and deltas[worst] >= WORST_SOURCE_DB,
    }


def report(results: dict[str, dict], photos: dict[str, int]) -> str:
    """A markdown table: PSNR / LPIPS per source and model, then the means and the rule."""
    names = list(results)
    lines = [
        "| source | photos | " + " | ".join(f"{n} PSNR / LPIPS" for n in names) + " |",
        "| --- | --- |" + " --- |" * len(names),
    ]

    def cell(scores: dict) -> str:
        text = f"{scores['psnr']:.2f}"
        return text + (f" / {scores['lpips']:.4f}" if "lpips" in scores else "")

    first = results[names[0]]
    for source in first["sources"]:
        cells = [cell(results[n]["sources"][source]) for n in names]
        lines.append(f"| {source} | {photos[source]} | " + " | ".join(cells) + " |")
    means = [
        cell({"psnr": r["mean_psnr"], **({"lpips": r["mean_lpips"]} if "mean_lpips" in r else {})})
        for r in results.values()
    ]
    lines.append("| **mean over sources** | | " + " | ".join(f"**{m}**" for m in means) + " |")
    lines.append("")
    for name in names[1:]:
        check = rule_check(first, results[name])
        lines.append(
            f"- {name} against {names[0]}: mean {check['mean_delta_db']:+.2f} dB, worst source "
            f"{check['worst_source']} {check['worst_delta_db']:+.2f} dB: rule (b) "
            + ("**met**" if check["meets_rule"] else "**not met**")
        )
    for name, result in results.items():
        if "chosen_gain" in result:
            lines.append(f"- {name}: lowest mean LPIPS at chroma gain {result['chosen_gain']}")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], out: Path) -> None:
    """Bars: each model's PSNR difference from the first, per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    first = results[names[0]]
    sources = list(first["sources"])
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(sources), 3.8))
    width = 0.8 / max(1, len(names) - 1)
    for offset, name in enumerate(names[1:]):
        deltas = rule_check(first, results[name])["deltas_db"]
        xs = np.arange(len(sources)) + offset * width
        ax.bar(xs, [deltas[s] for s in sources], width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(WORST_SOURCE_DB, color="tab:red", linestyle=":", label="-0.2 dB")
    ax.set_xticks(np.arange(len(sources)) + width * (len(names) - 2) / 2)
    ax.set_xticklabels(sources, rotation=35, ha="right")
    ax.set_ylabel(f"PSNR - {names[0]} (dB)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("validation shards, per source (each model at its default vividness)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", required=True, metavar="NAME=WEIGHTS",
        help="a model to score (repeatable); the first is the baseline",
    )  # fmt: skip
    parser.add_argument("--data", type=Path, nargs="+", default=None, help="validation shards")
    parser.add_argument("--per-source", type=int, default=100, help="photos from each source")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--gains", type=float, nargs="*", default=[],
        help="also score these chroma gains (times the raw network) and pick by LPIPS",
    )  # fmt: skip
    parser.add_argument("--lpips-weights", type=Path, default=DEFAULT_LPIPS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for json, md and plot")
    args = parser.parse_args()

    models = dict(item.split("=", 1) for item in args.model)
    lpips = load_lpips(args.lpips_weights) if args.lpips_weights.exists() else None
    shards = args.data or default_shards()
    sources = load_sources(shards, args.per_source, args.size)
    photos = {name: len(found) for name, found in sources.items()}
    results = {}
    for name, weights in models.items():
        colorizer = Colorizer.load(Path(weights), threads=args.threads)
        results[name] = score_model(colorizer, sources, lpips, tuple(args.gains))
        results[name]["weights"] = weights
    text = report(results, photos)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"shards": [str(s) for s in shards], "photos": photos, "results": results}
        (args.out / "validation.json").write_text(json.dumps(record, indent=2) + "\n")
        (args.out / "report.md").write_text(text)
        if len(results) > 1:
            plot(results, args.out / "validation.png")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
