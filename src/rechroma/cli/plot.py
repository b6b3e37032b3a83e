"""`rechroma plot-log`: a training run's loss curves as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import EXIT_OK, require_extra


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `plot-log`."""
    plot = sub.add_parser(
        "plot-log", parents=[common], help="draw a training run's loss curves to PNG"
    )
    plot.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    plot.add_argument("--out", type=Path, default=None, help="PNG path (RUN_DIR/curves.png)")
    plot.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extra(("matplotlib",), "train", "plot-log")
    from rechroma.evaluation.plots import plot_training_log

    print(plot_training_log(args.run_dir, args.out))
    return EXIT_OK
