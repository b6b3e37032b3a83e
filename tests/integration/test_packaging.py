"""rechroma as a user outside this repository gets it: a wheel, installed without -e.

The wheel is built from this checkout and installed into a fresh virtual environment;
its dependencies are borrowed from the test environment's site-packages (a path in a
.pth file, which does not run that environment's editable-install hook), so the
installed package is the wheel's and nothing else.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the built wheel in it; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
         str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("rechroma-*.whl")
    venv = root / "venv"
    # No pip or setuptools of its own, which would shadow the borrowed (newer) ones.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # With its dependencies: pip checks the wheel's requirements against what it finds.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
         "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return venv / "bin"


def test_the_installed_package_is_the_wheel(installed) -> None:
    code = "import rechroma, rechroma.api; print(rechroma.__file__)"
    out = subprocess.run(
        [str(installed / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    assert str(installed.parent) in out.stdout and str(REPO / "src") not in out.stdout
    version = subprocess.run(
        [str(installed / "python"), "-m", "rechroma", "--version"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert version.stdout.startswith("rechroma ")


def test_wheel_colorizes_from_the_command_line(installed, real_photo, tmp_path) -> None:
    out = tmp_path / "colour.jpg"
    subprocess.run(
        [str(installed / "rechroma"), "-q", "colorize", str(real_photo), str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert Image.open(out).size == Image.open(real_photo).size


def test_wheel_serves_the_page_its_samples_and_docs(installed) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(installed / "rechroma"), "-q", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                page = httpx.get(f"{base}/", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert page.status_code == 200 and "rechroma" in page.text
        sample = httpx.get(f"{base}/samples/barn.jpg", timeout=10)
        assert sample.status_code == 200 and sample.headers["content-type"] == "image/jpeg"
        docs = httpx.get(f"{base}/docs-assets/swagger-ui-bundle.js", timeout=10)
        assert docs.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("argv", "blocked", "extra"),
    [
        (["serve"], "uvicorn", "serve"),
        (["plot-log", "runs/none"], "matplotlib", "train"),
        (["export-onnx", "x.onnx"], "onnx", "onnx"),
    ],
)
def test_a_missing_extra_names_the_pip_line(tmp_path, argv, blocked, extra) -> None:
    # `sys.modules[name] = None` makes `import name` fail as if it were not installed.
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; "
        f"from rechroma.cli import main; sys.exit(main({argv!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 3
    assert f"pip install 'rechroma[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


PYTHON_313 = Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python"


@pytest.mark.skipif(not PYTHON_313.exists(), reason="no Python 3.13 on this machine")
def test_dependencies_resolve_on_python_3_13(tmp_path) -> None:
    """requires-python admits 3.13: every dependency has a release for it (a dry run)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["serve"]
    venv = tmp_path / "v313"
    subprocess.run([str(PYTHON_313), "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--dry-run", "-q", "--disable-pip-version-check",
         *requirements],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
