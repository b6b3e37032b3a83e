"""Video jobs on a real uvicorn server: submit, poll, download, limits, bad clips, and
photos answered while a clip is being colorized."""

import time

import httpx
import pytest

from clips import probe, write_clip
from rechroma.inference.colorizer import Colorizer
from rechroma.server.settings import ServerSettings

LIMITS = ServerSettings(
    max_video_bytes=3_000_000, max_video_seconds=20.0, max_video_jobs=2, video_job_ttl_s=60
)


@pytest.fixture(scope="module")
def server(start_server, tiny_weights) -> str:
    return start_server(LIMITS, Colorizer.load(tiny_weights, render_size=64, threads=1))


def submit(server, path, **fields) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "video/mp4")}
    return httpx.post(f"{server}/api/videos", files=files, data=fields, timeout=60)


def wait(server, job_id, timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{server}/api/videos/{job_id}").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not finish: {status}")


def test_a_clip_is_queued_polled_and_downloaded_once(server, tmp_path) -> None:
    clip = write_clip(tmp_path / "reel one.mp4", frames=12, audio=True)
    response = submit(server, clip, format="webm", stabilize="0.7")
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running") and response.headers["location"] == (
        f"/api/videos/{job['id']}"
    )
    status = wait(server, job["id"])
    assert status["state"] == "done" and status["progress"] == 1.0
    assert status["frames_done"] == 12 and status["media_type"] == "video/webm"
    result = httpx.get(f"{server}{status['result_url']}")
    assert result.status_code == 200 and result.headers["content-type"] == "video/webm"
    assert 'filename="reel_one-colour.webm"' in result.headers["content-disposition"]
    (tmp_path / "result.webm").write_bytes(result.content)
    after = probe(tmp_path / "result.webm")
    assert after["frames"] == 12 and after["size"] == (96, 64) and after["audio"] == ["opus"]
    # Downloaded: the server keeps nothing.
    assert httpx.get(f"{server}{status['result_url']}").status_code == 404
    assert httpx.get(f"{server}/api/videos/{job['id']}").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "fields", "status", "message"),
    [
        ("notes.mp4", b"just some text\n", {}, 422, "not a readable video"),
        ("clip.mp4", None, {"format": "avi"}, 422, "format 'avi'"),
        ("clip.mp4", None, {"stabilize": "1.5"}, 422, "stabilize"),
        ("clip.mp4", None, {"vividness": "x"}, 422, "must be numbers"),
        ("huge.mp4", b"\x00" * 3_100_000, {}, 413, "limit"),
    ],
)
def test_bad_uploads_get_clear_4xx(server, tmp_path, name, content, fields, status, message):
    path = tmp_path / name
    if content is None:
        write_clip(path, frames=4)
    else:
        path.write_bytes(content)
    response = submit(server, path, **fields)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_too_long_clip_is_refused_before_it_waits(server, tmp_path) -> None:
    clip = write_clip(tmp_path / "long.mp4", frames=25 * 21, fps=25, size=(32, 32))
    response = submit(server, clip)
    assert response.status_code == 413 and "limit of 20 s" in response.json()["detail"]


def test_unknown_job_is_404(server) -> None:
    response = httpx.get(f"{server}/api/videos/0123abcd")
    assert response.status_code == 404 and "no video job" in response.json()["detail"]


def test_photos_are_answered_while_a_clip_is_colorized(server, tmp_path, real_photo) -> None:
    long_clip = write_clip(tmp_path / "long.mp4", frames=400, size=(480, 272), fps=25)
    first = submit(server, long_clip).json()
    second = submit(server, write_clip(tmp_path / "short.mp4", frames=4)).json()
    # Two clips waiting or running is this server's limit: the third is asked to come back.
    third = submit(server, write_clip(tmp_path / "third.mp4", frames=4))
    assert third.status_code == 503 and "already waiting" in third.json()["detail"]
    while httpx.get(f"{server}/api/videos/{first['id']}").json()["state"] == "queued":
        time.sleep(0.05)
    # Not ready yet: the result cannot be fetched.
    assert httpx.get(f"{server}/api/videos/{first['id']}/result").status_code == 409
    started = time.monotonic()
    photo = httpx.post(
        f"{server}/api/colorize",
        files={"file": ("p.jpg", real_photo.read_bytes(), "image/jpeg")},
        timeout=60,
    )
    answered = time.monotonic() - started
    status = httpx.get(f"{server}/api/videos/{first['id']}").json()
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert status["state"] == "running", status  # the clip was still being colorized
    assert 0 < status["progress"] < 1
    print(f"photo answered in {answered:.2f} s while a video job ran")
    assert wait(server, first["id"])["state"] == "done"
    assert wait(server, second["id"])["state"] == "done"
    # MP4 written in memory (its index at the end) plays as well.
    result = httpx.get(f"{server}/api/videos/{second['id']}/result")
    assert result.headers["content-type"] == "video/mp4"
    (tmp_path / "second.mp4").write_bytes(result.content)
    assert probe(tmp_path / "second.mp4")["frames"] == 4


def test_health_tells_the_video_limits(server) -> None:
    limits = httpx.get(f"{server}/api/health").json()["limits"]
    assert limits["max_video_seconds"] == 20
    assert limits["max_video_mb"] == pytest.approx(2.861, 0.01)


def test_video_routes_are_documented(server) -> None:
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/api/videos", "/api/videos/{job_id}", "/api/videos/{job_id}/result"} <= set(paths)
    form = paths["/api/videos"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"file", "format", "stabilize"} <= set(form["schema"]["properties"])
