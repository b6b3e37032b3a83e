"""`rechroma train` (a colorizer) and `rechroma pretrain` (a classifier for its encoder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import EXIT_OK, add_config_args, print_json


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `train` and `pretrain`."""
    train = sub.add_parser("train", parents=[common], help="train a colorizer on tar shards")
    add_config_args(train, "train.steps=2000")
    train.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    train.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --run-dir"
    )
    train.set_defaults(func=run_train)

    pretrain = sub.add_parser(
        "pretrain",
        parents=[common],
        help="pretrain a classifier on the shards' class labels (encoder init, perceptual loss)",
    )
    add_config_args(pretrain, "classifier.input=rgb")
    pretrain.add_argument("--run-dir", type=Path, default=Path("runs/pretrain"))
    pretrain.set_defaults(func=run_pretrain)


def run_train(args: argparse.Namespace) -> int:
    from rechroma.training.config import config_to_dict, load_config
    from rechroma.training.train import load_run_config, train

    # A resumed run starts from its own saved config; --config and --set still apply on top.
    base = config_to_dict(load_run_config(args.run_dir)) if args.resume else None
    cfg = load_config(args.config, args.overrides, base=base)
    final = train(cfg, args.run_dir, resume=args.resume, progress=not args.quiet)
    print_json({"checkpoint": str(final)})
    return EXIT_OK


def run_pretrain(args: argparse.Namespace) -> int:
    from rechroma.training.config import PretrainConfig, load_config
    from rechroma.training.pretrain import pretrain

    cfg = load_config(args.config, args.overrides, cls=PretrainConfig)
    result = pretrain(cfg, args.run_dir, progress=not args.quiet)
    print_json(
        {
            "weights": str(result.weights),
            "top1": result.top1,
            "top5": result.top5,
            "test_images": result.test_images,
        }
    )
    return EXIT_OK
