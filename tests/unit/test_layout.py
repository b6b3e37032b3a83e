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
    "rechroma.inference.batch": ["rechroma.training", "rechroma.server", "fastapi"],
    "rechroma.evaluation.evaluate": ["rechroma.training", "rechroma.server", "rechroma.cli"],
    "rechroma.training.train": ["rechroma.server", "rechroma.cli", "fastapi"],
    "rechroma.server.settings": ["fastapi"],
    "rechroma.cli": ["fastapi", "rechroma.server.app", "rechroma.training"],
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
