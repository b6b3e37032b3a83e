"""A real uvicorn server on loopback, answering real HTTP."""

import io
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from PIL import Image

from rechroma.config import ServerSettings
from rechroma.inference import Colorizer
from rechroma.server.app import create_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_weights):
    settings = ServerSettings(max_upload_bytes=200_000, max_pixels=2_000_000)
    app = create_app(settings, colorizer=Colorizer.load(tiny_weights, render_size=64))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _png(size=(80, 60), mode="L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_names_the_model(server) -> None:
    body = httpx.get(f"{server}/api/health").json()
    assert body["status"] == "ok" and body["model"] == "unet" and len(body["weights_sha256"]) == 64


def test_colorize_returns_an_image_of_the_same_size(server, real_photo) -> None:
    response = httpx.post(
        f"{server}/api/colorize",
        files={"file": ("photo.jpg", real_photo.read_bytes(), "image/jpeg")},
        data={"format": "jpeg"},
        timeout=60,
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    result = Image.open(io.BytesIO(response.content))
    assert result.size == Image.open(real_photo).size and result.mode == "RGB"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"", 422),
        (b"not an image", 415),
        (_png()[:60], 422),
        (_png((2000, 1500)), 413),
        (b"x" * 300_000, 413),
    ],
)
def test_bad_uploads_get_clear_4xx_json(server, content, status) -> None:
    response = httpx.post(f"{server}/api/colorize", files={"file": ("f.png", content)}, timeout=60)
    assert response.status_code == status
    assert response.json()["detail"]
    assert httpx.get(f"{server}/api/health").status_code == 200


def test_unknown_format_is_refused(server) -> None:
    response = httpx.post(
        f"{server}/api/colorize", files={"file": ("f.png", _png())}, data={"format": "bmp"}
    )
    assert response.status_code == 415
