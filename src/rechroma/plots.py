"""Training curves from a run's log.jsonl, drawn with matplotlib."""

from __future__ import annotations

import json
from pathlib import Path

from rechroma.errors import DataError


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
    figure, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(11, 4))
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (smoothed)")
    if val:
        loss_ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
    loss_ax.set(xlabel="step", ylabel="pixel loss", title=f"loss: {run_dir.name}", yscale="log")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    lr_ax.plot([r["step"] for r in train], [r["lr"] for r in train])
    lr_ax.set(xlabel="step", ylabel="learning rate", title="schedule")
    lr_ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
