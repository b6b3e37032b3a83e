"""Pick the default render size from data: photos-val metrics at render sizes 64-256.

Every size is scored in one pass over the photos (the same 256x256 protocol as
`rechroma eval`), then PSNR, LPIPS and colourfulness are plotted against the size.
LPIPS needs AlexNet's weights (`--lpips-weights` or `$RECHROMA_LPIPS_WEIGHTS`, as for
`rechroma eval`); without them the report says it is unavailable.

    python benchmarks/render_size_sweep.py --weights W --out docs/render-size
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from rechroma.errors import MetricUnavailable
from rechroma.evaluation.evaluate import evaluate
from rechroma.evaluation.lpips import load_lpips
from rechroma.inference.colorizer import Colorizer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "photos-val"
SIZES = (64, 96, 128, 160, 192, 256)


def plot(rows: list[dict], truth_cf: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sizes = [row["render_size"] for row in rows]
    fig, (ax_psnr, ax_lpips, ax_cf) = plt.subplots(1, 3, figsize=(14, 3.8))
    ax_psnr.plot(sizes, [row["psnr"] for row in rows], "o-")
    ax_psnr.set(xlabel="render size (short side, px)", ylabel="PSNR (dB)", title="PSNR")
    if all(isinstance(row.get("lpips"), float) for row in rows):
        ax_lpips.plot(sizes, [row["lpips"] for row in rows], "o-")
    else:
        ax_lpips.text(0.5, 0.5, "LPIPS unavailable", ha="center", transform=ax_lpips.transAxes)
    ax_lpips.set(
        xlabel="render size (short side, px)", ylabel="LPIPS", title="LPIPS (lower is better)"
    )
    ax_cf.plot(sizes, [row["colorfulness"] for row in rows], "o-", label="ours")
    ax_cf.axhline(truth_cf, color="gray", linestyle="--", label="ground truth")
    ax_cf.set(xlabel="render size (short side, px)", ylabel="colourfulness", title="Colourfulness")
    ax_cf.legend()
    for ax in (ax_psnr, ax_lpips, ax_cf):
        ax.set_xticks(sizes)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--render-sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--lpips-weights", type=Path, default=None, help="AlexNet weights")
    parser.add_argument("--out", type=Path, required=True, help="folder for JSON + plot")
    args = parser.parse_args()
    colorizer = Colorizer.load(args.weights, threads=args.threads)
    sizes = args.render_sizes
    methods = {
        f"render-{size}": functools.partial(colorizer.colorize, render_size=size) for size in sizes
    }
    try:
        lpips, lpips_status = load_lpips(args.lpips_weights), "available (v0.1, AlexNet)"
    except MetricUnavailable as exc:
        lpips, lpips_status = None, f"unavailable ({exc})"
        print(f"LPIPS: {lpips_status}", file=sys.stderr)
    result = evaluate(
        methods,
        args.data,
        size=256,
        grid_count=0,
        progress=sys.stderr.isatty(),
        lpips=lpips,
        lpips_status=lpips_status,
    )
    summary = result.summary
    rows = []
    for size in sizes:
        scores = summary["methods"][f"render-{size}"]
        rows.append(
            {
                "render_size": size,
                "psnr": scores["psnr"]["mean"],
                "ssim": scores["ssim"]["mean"],
                "lpips": scores["lpips"]["mean"] if lpips is not None else lpips_status,
                "colorfulness": scores["colorfulness"]["mean"],
                "delta_cf": scores["delta_cf"],
            }
        )
        print(json.dumps(rows[-1]))
    truth_cf = summary["truth_colorfulness"]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"weights": str(colorizer.weights_path), "truth_colorfulness": truth_cf, "rows": rows}
    (args.out / "render-size.json").write_text(json.dumps(report, indent=2))
    plot(rows, truth_cf, args.out / "render-size.png")


if __name__ == "__main__":
    main()
