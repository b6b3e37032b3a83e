"""The two locks agree, and the Docker image installs only what serving needs."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pins(name: str) -> dict[str, str]:
    lines = (REPO / name).read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in pins}


def test_serve_lock_is_the_full_lock_cut_down_to_serving() -> None:
    full, serve = _pins("requirements.lock"), _pins("requirements-serve.lock")
    for name, version in serve.items():
        if name != "setuptools":  # pip freeze leaves setuptools out of the full lock
            assert full.get(name) == version, f"{name}: {version} against {full.get(name)}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["serve"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ]", requirement)[0]).lower()
        assert name in serve, f"{name} is needed to serve but missing from the serve lock"
    for heavy in ("ray", "pyarrow", "playwright", "scipy", "pandas", "matplotlib"):
        assert heavy not in serve


def test_dockerfile_installs_the_serve_lock_and_the_wheel_on_a_pinned_base() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"python:[\w.-]+@sha256:[0-9a-f]{64}", dockerfile)
    assert "-r requirements-serve.lock" in dockerfile and "requirements.lock" not in dockerfile
    assert "pip install --no-cache-dir --no-deps /dist/rechroma-*.whl" in dockerfile
    assert " -e " not in dockerfile
