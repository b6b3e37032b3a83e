"""The package's import direction: lower layers never import the layers above them.

Each check runs in a fresh interpreter, so what a module pulls in is seen whole,
including imports made by the modules it imports.
"""

import json
import subprocess
import sys

import pytest

# module -> packages it must never load, directly or through anything it imports.
FORBIDDEN = {
    "rechroma.models": ["rechroma.training", "rechroma.server", "rechroma.cli", "fastapi"],
    "rechroma.data": ["rechroma.training", "rechroma.server", "rechroma.cli", "fastapi"],
    "rechroma.inference": ["rechroma.training", "rechroma.server", "rechroma.cli", "fastapi"],
    # A folder run loads PyTorch only once it has a photo to colour: a rerun whose outputs
    # all exist answers at once.
    "rechroma.inference.batch": ["rechroma.training", "rechroma.server", "fastapi", "torch"],
    "rechroma.evaluation.evaluate": ["rechroma.training", "rechroma.server", "rechroma.cli"],
    "rechroma.training.train": ["rechroma.server", "rechroma.cli", "fastapi"],
    "rechroma.server.settings": ["fastapi"],
    # The command line answers --help without PyTorch; each command imports what it uses.
    "rechroma.cli": ["fastapi", "rechroma.server.app", "rechroma.training", "torch"],
    # Batch and cluster share the per-file work in `files`; the arrow runs batch -> cluster.
    "rechroma.inference.files": [
        "rechroma.inference.batch",
        "rechroma.inference.cluster",
        "torch",
    ],
    "rechroma.inference.cluster": ["rechroma.inference.batch", "rechroma.cli"],
    # Shared modules: planning outputs and reading photos need no network.
    "rechroma.paths": ["torch", "rechroma.inference", "rechroma.cli", "rechroma.server"],
    "rechroma.images": ["torch", "rechroma.inference", "rechroma.cli", "rechroma.server"],
    "rechroma": ["torch", "rechroma.cli", "rechroma.server"],
    # Restoration stands beside inference: neither imports the other's package.
    "rechroma.restoration": ["rechroma.inference", "rechroma.training", "rechroma.cli"],
}

# The command line is a package: one module per command (or pair of close commands).
CLI_COMMANDS = {
    "colorize": "colorize",
    "colourize": "colorize",  # the same command, spelt the British way
    "restore": "restore",
    "eval-restore": "restore",
    "train": "train",
    "pretrain": "train",
    "prepare": "prepare",
    "prepare-collections": "prepare",
    "eval": "evaluate",
    "eval-video": "evaluate",
    "fetch-weights": "weights",
    "export-onnx": "weights",
    "export-weights": "weights",
    "blend-weights": "weights",
    "plot-log": "plot",
    "serve": "serve",
}


def _loaded_modules(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_import_direction(module: str) -> None:
    loaded = _loaded_modules(module)
    offending = {
        name
        for name in loaded
        for banned in FORBIDDEN[module]
        if name == banned or name.startswith(banned + ".")
    }
    assert not offending, f"{module} imports {sorted(offending)}"


def test_public_colorizer_import_is_kept() -> None:
    from rechroma.inference import Colorizer
    from rechroma.inference.colorizer import Colorizer as Direct

    assert Colorizer is Direct


def test_each_command_lives_in_its_own_cli_module() -> None:
    from rechroma.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert set(sub.choices) == set(CLI_COMMANDS)
    for name, command in sub.choices.items():
        func = command.get_default("func")
        assert func.__module__ == f"rechroma.cli.{CLI_COMMANDS[name]}", name
