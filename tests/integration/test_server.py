"""A real uvicorn server on loopback, answering real HTTP: success, every limit, every bad
input, and concurrency beyond its queue."""

import base64
import concurrent.futures
import io
import os
import socket
import tempfile

import httpx
import pytest
from PIL import Image

from rechroma.inference.colorizer import Colorizer
from rechroma.server.settings import ServerSettings

LIMITS = ServerSettings(
    max_upload_bytes=300_000, max_pixels=2_000_000, max_files=3, inference_workers=1, max_queue=3
)


@pytest.fixture(scope="module")
def server(start_server, tiny_weights) -> str:
    return start_server(LIMITS, Colorizer.load(tiny_weights, render_size=64, threads=1))


def _png(size=(80, 60), mode="L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(photo, size=(160, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.open(photo).convert("L").resize(size).save(buffer, format="JPEG")
    return buffer.getvalue()


def post(server, files, data=None, **kwargs) -> httpx.Response:
    return httpx.post(f"{server}/api/colorize", files=files, data=data, timeout=60, **kwargs)


def test_health_names_the_model_and_limits(server) -> None:
    body = httpx.get(f"{server}/api/health").json()
    assert body["status"] == "ok" and body["model"] == "unet" and len(body["weights_sha256"]) == 64
    assert body["runtime"] == "onnx"  # the default on a CPU
    assert body["limits"]["max_files"] == 3 and body["limits"]["max_megapixels"] == 2


def test_one_photo_comes_back_as_an_image_of_the_same_size(server, real_photo) -> None:
    response = post(server, {"file": ("photo.jpg", real_photo.read_bytes(), "image/jpeg")})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert 'filename="photo-colour.jpg"' in response.headers["content-disposition"]
    result = Image.open(io.BytesIO(response.content))
    assert result.size == Image.open(real_photo).size and result.mode == "RGB"


def test_options_format_and_vividness(server, real_photo) -> None:
    data = _jpeg(real_photo)
    gray = post(server, {"file": ("a.jpg", data)}, {"vividness": "0", "format": "png"})
    assert gray.headers["content-type"] == "image/png"
    rgb = Image.open(io.BytesIO(gray.content)).convert("RGB").getextrema()
    assert Image.open(io.BytesIO(gray.content)).size == (160, 120)
    pixels = Image.open(io.BytesIO(gray.content)).convert("RGB")
    assert all(len(set(pixels.getpixel((x, 50)))) <= 2 for x in range(0, 160, 7)), rgb
    webp = post(server, {"file": ("a.jpg", data)}, {"format": "webp", "render_size": "96"})
    assert webp.headers["content-type"] == "image/webp"
    alpha = post(server, {"file": ("a.png", _png(mode="LA"))})
    assert Image.open(io.BytesIO(alpha.content)).mode == "RGBA"  # auto: PNG keeps alpha


def test_several_photos_get_one_result_each(server, real_photo) -> None:
    files = [
        ("file", ("one.jpg", _jpeg(real_photo))),
        ("file", ("broken.png", _png()[:50])),
        ("file", ("two.png", _png((64, 48)))),
    ]
    response = post(server, files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["one.jpg", "broken.png", "two.png"]
    assert [r["ok"] for r in results] == [True, False, True]
    assert "truncated" in results[1]["detail"]
    image = Image.open(io.BytesIO(base64.b64decode(results[2]["data"])))
    assert image.size == (64, 48) == (results[2]["width"], results[2]["height"])


@pytest.mark.parametrize(
    ("files", "data", "status", "message"),
    [
        ({"file": ("empty.png", b"")}, None, 422, "empty"),
        ({"file": ("note.png", b"not an image")}, None, 415, "not an image"),
        ({"file": ("cut.png", _png()[:60])}, None, 422, "truncated"),
        ({"file": ("big.png", _png((2000, 1500)))}, None, 413, "megapixels"),
        ({"file": ("huge.png", b"x" * 400_000)}, None, 413, "MB limit per file"),
        ([("file", ("a.png", _png()))] * 4, None, 413, "at most 3 files"),
        ({"file": ("a.png", _png())}, {"vividness": "9"}, 422, "vividness"),
        ({"file": ("a.png", _png())}, {"vividness": "lots"}, 422, "numbers"),
        ({"file": ("a.png", _png())}, {"format": "bmp"}, 422, "format"),
        ({"file": ("a.png", _png())}, {"render_size": "5000"}, 422, "render_size"),
        (None, {"vividness": "1"}, 400, "multipart"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(
    server, files, data, status, message
) -> None:
    response = post(server, files, data)
    assert response.status_code == status, response.text
    body = response.json()
    assert message in body["detail"]
    assert httpx.get(f"{server}/api/health").status_code == 200


def test_wrong_content_type_and_lying_length(server) -> None:
    as_json = httpx.post(f"{server}/api/colorize", json={"file": "x"}, timeout=10)
    assert as_json.status_code == 400 and "multipart" in as_json.json()["detail"]
    claimed = httpx.post(
        f"{server}/api/colorize",
        content=b"--b\r\n",
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": "5"},
        timeout=10,
    )
    assert claimed.status_code == 400  # ends before its part does
    # A body that declares more than all allowed files is refused before it is read.
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/colorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 99999999\r\n\r\n--b\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_uploads_never_touch_the_disk(server, real_photo) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    big = Image.open(real_photo).convert("L").resize((600, 450))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    assert post(server, {"file": ("big.png", buffer.getvalue())}).status_code == 200
    assert set(os.listdir(tempfile.gettempdir())) <= before


def test_page_headers_no_listing_no_cors(server) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "<title>rechroma" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{server}/samples/").status_code == 404  # no directory listing
    assert httpx.get(f"{server}/../pyproject.toml").status_code == 404
    cross = httpx.get(f"{server}/api/health", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in cross.headers
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/api/colorize"]["post"]


def test_twenty_at_once_are_answered_or_told_to_retry(server, real_photo) -> None:
    data = _jpeg(real_photo, (400, 300))

    def one(_: int) -> httpx.Response:
        return post(server, {"file": ("p.jpg", data)})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(one, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 4  # 1 worker + 3 queued
    for response in responses:
        if response.status_code == 200:
            assert Image.open(io.BytesIO(response.content)).size == (400, 300)
        else:
            assert int(response.headers["retry-after"]) > 0 and "busy" in response.json()["detail"]
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"


@pytest.fixture(scope="module")
def hint_server(start_server, tiny_hint_weights) -> str:
    return start_server(LIMITS, Colorizer.load(tiny_hint_weights, render_size=64, threads=1))


def _pixels(response: httpx.Response):
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)


def test_hints_field_colours_the_photo_there(hint_server, real_photo) -> None:
    assert httpx.get(f"{hint_server}/api/health").json()["takes_hints"] is True
    photo = {"file": ("a.jpg", _jpeg(real_photo))}
    hints = '{"hints": [{"x": 40, "y": 60, "color": "#e01010", "radius": 6}]}'
    plain = post(hint_server, photo, {"format": "png"})
    hinted = post(hint_server, photo, {"format": "png", "hints": hints})
    assert plain.status_code == hinted.status_code == 200
    change = abs(_pixels(hinted) - _pixels(plain))
    assert change[50:70, 30:50].mean() > change[:, 120:].mean()


@pytest.mark.parametrize(
    ("hints", "detail"),
    [
        ("{oops", "not valid JSON"),
        ('{"hints": [{"x": 500, "y": 10, "color": "#ffffff"}]}', "outside the 160x120 photo"),
        ('{"hints": [{"x": 5, "y": 10, "color": "whiteish"}]}', "not a colour like #2b4c9a"),
        ('{"hints": [{"x": 5, "y": 10}]}', "needs x, y and color"),
        ("[" + ",".join(['{"x":1,"y":1,"color":"#000000"}'] * 257) + "]", "at most 256"),
    ],
)
def test_bad_hints_are_a_422_with_the_reason(hint_server, real_photo, hints, detail) -> None:
    response = post(hint_server, {"file": ("a.jpg", _jpeg(real_photo))}, {"hints": hints})
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]


def test_hints_need_one_photo_and_a_model_that_takes_them(server, hint_server, real_photo):
    hints = '[{"x": 5, "y": 10, "color": "#ffffff"}]'
    two = [("file", ("a.jpg", _jpeg(real_photo))), ("file", ("b.jpg", _jpeg(real_photo)))]
    assert post(hint_server, two, {"hints": hints}).status_code == 422
    refused = post(server, {"file": ("a.jpg", _jpeg(real_photo))}, {"hints": hints})
    assert refused.status_code == 422 and "does not take colour hints" in refused.json()["detail"]
