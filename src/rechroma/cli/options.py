"""What several commands share: exit codes, option types, model and config options."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rechroma.errors import RechromaError

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer
    from rechroma.restoration import RestoreOptions

EXIT_OK = 0
EXIT_FAILED = 1  # some inputs failed, the rest were done
EXIT_USAGE = 2  # argparse's: the command line itself was wrong
EXIT_ERROR = 3  # nothing could be done (bad config, missing weights, ...)

# The range every command accepts for the network's short side (the server's too).
RENDER_SIZES = (32, 1024)
# rechroma.inference.runtime.RUNTIMES, named here because that module loads PyTorch and
# --help must not (test_onnx checks the two agree).
RUNTIMES = ("auto", "torch", "onnx")
MAX_THREADS = 256


class MissingExtraError(RechromaError):
    """A command needs an optional dependency that is not installed."""


def require_extra(modules: tuple[str, ...], extra: str, command: str) -> None:
    """Fail with the `pip install` line to run when an optional dependency is missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"{command} needs {module}, which is not installed: pip install 'rechroma[{extra}]'"
            ) from exc


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (no upper bound when high is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"{value} is not {bound}")
        return value

    return parse


def float_in(low: float, high: float, high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or [low, high) when high_open)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_high = value >= high if high_open else value > high
        if not value >= low or too_high:  # `not >=` also catches NaN
            bracket = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{value:g} is not in [{low:g}, {high:g}{bracket}")
        return value

    return parse


def common_options() -> argparse.ArgumentParser:
    """-q and --json, accepted before or after the subcommand.

    The subcommands' copies default to SUPPRESS, so a flag given before the subcommand
    is not reset by the subparser.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or info logs",
    )
    parent.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print a JSON summary on stdout instead of lines",
    )
    return parent


def add_config_args(parser: argparse.ArgumentParser, example: str) -> None:
    """--config FILE and repeatable --set SECTION.KEY=VALUE."""
    parser.add_argument("--config", type=Path, help="TOML file; code defaults otherwise")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override one config value, e.g. --set {example} (repeatable)",
    )


def add_weights_arg(parser: argparse._ActionsContainer) -> None:
    """--weights (alias --model): a weights file, the shipped one by default."""
    parser.add_argument(
        "--weights", "--model", type=Path, default=None, help="weights file (the shipped one)"
    )


def add_model_args(parser: argparse._ActionsContainer) -> None:
    """--weights, --render-size, --threads and --runtime, checked when parsed."""
    add_weights_arg(parser)
    parser.add_argument(
        "--render-size",
        type=int_in(*RENDER_SIZES),
        default=None,
        help="short side, in pixels, at which the network sees the photo "
        f"({RENDER_SIZES[0]}..{RENDER_SIZES[1]})",
    )
    parser.add_argument(
        "--threads", type=int_in(1, MAX_THREADS), default=None, help="CPU threads for torch"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="what runs the network: ONNX Runtime (faster on a CPU; the graph is exported "
        "once and cached), PyTorch, or auto: ONNX Runtime where it can be had",
    )


def load_colorizer(args: argparse.Namespace) -> Colorizer:
    """The Colorizer that --weights, --render-size, --threads and --runtime describe."""
    from rechroma.inference.colorizer import Colorizer

    return Colorizer.load(
        args.weights, render_size=args.render_size, threads=args.threads, runtime=args.runtime
    )


def print_json(value: Any, indent: int | None = None) -> None:
    """One JSON document on stdout (the CLI's results go there, messages to stderr)."""
    print(json.dumps(value, indent=indent), flush=True)


def say(message: str) -> None:
    """A message for the person at the terminal, on stderr."""
    print(f"rechroma: {message}", file=sys.stderr, flush=True)


TONE_MODES = ("auto", "on", "off", "clahe")


def add_detector_args(parser: argparse._ActionsContainer) -> None:
    """Which defect detector, and its threshold (`restore`, `colorize --restore`,
    `eval-restore`)."""
    parser.add_argument(
        "--detector",
        type=Path,
        default=None,
        help="defect detector weights (the shipped one)",
    )
    parser.add_argument(
        "--defects-threshold",
        type=float_in(0.01, 0.99),
        default=None,
        metavar="P",
        help="damage probability above which a pixel is filled: lower repairs more "
        "(default: the detector's own, 0.4 for the shipped one)",
    )
    parser.add_argument(
        "--defects-scales",
        type=float_in(0.1, 1.0),
        nargs="+",
        default=None,
        metavar="S",
        help="the scales of the working size to look for damage at (e.g. 1 0.5 0.35; the "
        "working size itself always): smaller ones find wide emulsion cracks the working "
        "size misses, and take more small bright details for specks (default: the "
        "detector's own, 1)",
    )


def add_restore_args(parser: argparse._ActionsContainer, prefix: str = "") -> None:
    """The repair's options (`restore`, and `colorize --restore`)."""
    add_detector_args(parser)
    parser.add_argument(
        "--tone",
        choices=TONE_MODES,
        default="auto",
        help="faded prints: levels from robust percentiles when the histogram is narrow "
        "(auto), always (on), adaptive equalisation (clahe), or never (off)",
    )
    parser.add_argument("--tone-strength", type=float_in(0.0, 1.0), default=1.0, help="0..1 (1)")
    parser.add_argument(
        "--save-mask",
        action="store_true",
        help=f"{prefix}write what was repaired as <output>.mask.png beside each output",
    )


def restore_options(args: argparse.Namespace) -> RestoreOptions:
    """The `RestoreOptions` that `add_restore_args` parsed."""
    from rechroma.restoration import RestoreOptions

    return RestoreOptions(
        weights=args.detector,
        threshold=args.defects_threshold,
        scales=tuple(args.defects_scales) if args.defects_scales else None,
        tone=args.tone,
        tone_strength=args.tone_strength,
        save_mask=args.save_mask,
    )


def add_output_args(parser: argparse._ActionsContainer) -> None:
    """How a command over files writes them: --quality, --format, --overwrite,
    --max-pixels and --failures (`colorize`, `restore`)."""
    from rechroma.images import FORMATS

    parser.add_argument(
        "--quality", type=int_in(1, 100), default=None, help="JPEG/WebP quality, 1..100 (95)"
    )
    parser.add_argument(
        "--format",
        choices=sorted(s.lstrip(".") for s in FORMATS),
        default=None,
        help="output format for folders and stdout (default: the input's, else png)",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    parser.add_argument(
        "--max-pixels", type=int_in(1), default=None, help="refuse larger images (100 MP)"
    )
    parser.add_argument(
        "--failures",
        type=Path,
        default=None,
        help="write failed inputs here as TSV (default: OUT/rechroma-failures.tsv for folders)",
    )
