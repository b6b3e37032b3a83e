"""Training curves from a run's log.jsonl, and colour frontiers, drawn with matplotlib."""

from __future__ import annotations

import json
from pathlib import Path

from rechroma.errors import DataError

# Loss terms a run may log beside its total, with their legend labels.
COMPONENTS = {
    "pixel": "pixel (Huber on ab)",
    "perceptual": "perceptual",
    "colorfulness": 'colourfulness (1 - CF/100, or |ΔCF|/100 in "match" mode)',
    "g_adv": "G adversarial",
    "d_loss": "D hinge",
}


def read_log(run_dir: Path) -> list[dict[str, object]]:
    """The records of a run's `log.jsonl`."""
    path = run_dir / "log.jsonl"
    if not path.is_file():
        raise DataError(f"{run_dir} has no log.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_training_log(run_dir: Path, out: Path | None = None) -> Path:
    """Draw train/val loss and learning rate against step; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display here or on servers
    from matplotlib import pyplot as plt

    records = read_log(run_dir)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    if not train:
        raise DataError(f"{run_dir}/log.jsonl has no training records")
    out = out or run_dir / "curves.png"
    parts = [key for key in COMPONENTS if any(key in r for r in train)]
    by_source = [r for r in val if isinstance(r.get("sources"), dict) and len(r["sources"]) > 1]
    columns = 2 + bool(parts) + bool(by_source)
    figure, axes = plt.subplots(1, columns, figsize=(5.5 * columns, 4))
    loss_ax, lr_ax = axes[0], axes[-1]
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (smoothed)")
    if val:
        loss_ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
    loss_ax.set(xlabel="step", ylabel="loss", title=f"loss: {run_dir.name}", yscale="log")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    if parts:
        part_ax = axes[1]
        for key in parts:
            points = [(r["step"], r[key]) for r in train if key in r]
            part_ax.plot(*zip(*points, strict=True), label=COMPONENTS[key])
        part_ax.set(xlabel="step", ylabel="value (smoothed)", title="loss terms")
        part_ax.grid(alpha=0.3)
        part_ax.legend()
    if by_source:
        _plot_sources(axes[1 + bool(parts)], by_source)
    lr_ax.plot([r["step"] for r in train], [r["lr"] for r in train])
    lr_ax.set(xlabel="step", ylabel="learning rate", title="schedule")
    lr_ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _plot_sources(ax, records: list[dict]) -> None:
    """Each validation source's loss as a change from its first value: which kinds of
    photos are still improving, whatever their loss's scale."""
    first = records[0]["sources"]
    for name in first:
        points = [(r["step"], r["sources"][name]) for r in records if name in r["sources"]]
        steps, values = zip(*points, strict=True)
        ax.plot(steps, [100 * (v / first[name] - 1) for v in values], marker=".", label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="step", ylabel=f"val loss, % change from step {records[0]['step']}")
    ax.set_title("validation loss per source")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def plot_frontier(frontiers: dict[str, list[dict[str, float]]], truth_cf: float, out: Path) -> Path:
    """PSNR against mean colourfulness per model as vividness is turned (`ColourFrontier`
    points), with the ground truth's colourfulness marked; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, points in frontiers.items():
        cfs = [p["colorfulness"] for p in points]
        psnrs = [p["psnr"] for p in points]
        (line,) = axis.plot(cfs, psnrs, ".-", label=name)
        for point in points:
            if point["vividness"] in (0.0, 1.0, 2.0):
                axis.annotate(
                    f"×{point['vividness']:g}",
                    (point["colorfulness"], point["psnr"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                    color=line.get_color(),
                )
    axis.axvline(truth_cf, color="gray", linestyle="--", label=f"ground truth CF {truth_cf:.1f}")
    axis.set(
        xlabel="mean colourfulness (Hasler & Süsstrunk)",
        ylabel="mean PSNR (dB)",
        title="PSNR against colour as vividness is turned (×v)",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
