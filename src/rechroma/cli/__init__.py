"""The `rechroma` command line. Thin: parse, call the library, map errors to exit codes.

One module per command (or pair of close commands), each with a `register(subparsers,
common)` that adds its parser and sets `func`; options several share are in `options`.
Every module imports the library lazily, inside its command, so `rechroma colorize`
never loads FastAPI and `--help` never loads torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from rechroma import __version__
from rechroma.cli import (
    colorize,
    evaluate,
    plot,
    prepare,
    restore,
    serve,
    train,
    weights,
)
from rechroma.cli.options import EXIT_ERROR, EXIT_USAGE, common_options, say
from rechroma.errors import RechromaError
from rechroma.inference.hints import HintError
from rechroma.memory import tune_malloc

COMMANDS = (train, colorize, restore, prepare, evaluate, weights, plot, serve)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command's parser."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="rechroma",
        description="Colorize grayscale and faded black-and-white photos.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"rechroma {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rechroma` console script."""
    args = build_parser().parse_args(argv)
    args.quiet = getattr(args, "quiet", False)
    args.json = getattr(args, "json", False)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    tune_malloc()  # big photo buffers are reused from one photo to the next
    try:
        return int(args.func(args))
    except HintError as exc:  # a bad hint is a mistake on the command line, like a bad option
        say(f"error: {exc}")
        return EXIT_USAGE
    except RechromaError as exc:
        say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BrokenPipeError:  # `rechroma colorize scans/ | head`: the reader has gone
        # Python's own advice: point stdout at nothing, so its flush at exit is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
