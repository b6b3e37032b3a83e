"""The real download code against a real HTTP server on loopback."""

import hashlib
import http.server
import threading

import pytest

from rechroma.evaluation.downloads import DownloadError, RemoteFile, fetch

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path == "/weights.pth":
            self._send(PAYLOAD, len(PAYLOAD))
        elif self.path == "/truncated.pth":
            self._send(PAYLOAD[:1000], len(PAYLOAD))  # promises more than it sends
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> str:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_good_checksum_lands_in_the_cache_and_is_reused(server, tmp_path) -> None:
    remote = RemoteFile("test", f"{server}/weights.pth", GOOD_SHA)
    seen = []
    path = fetch(remote, tmp_path, progress=lambda got, total: seen.append((got, total)))
    assert path == tmp_path / "weights.pth" and path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    # Served from the cache: a dead URL with the same file name still returns it.
    again = RemoteFile("test", f"{server}/gone/weights.pth", GOOD_SHA)
    assert fetch(again, tmp_path) == path


def test_bad_checksum_keeps_nothing(server, tmp_path) -> None:
    remote = RemoteFile("test", f"{server}/weights.pth", "0" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(remote, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_not_found(server, tmp_path) -> None:
    with pytest.raises(DownloadError, match="404"):
        fetch(RemoteFile("test", f"{server}/missing.pth", GOOD_SHA), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_is_refused(server, tmp_path) -> None:
    with pytest.raises(DownloadError, match="cut short"):
        fetch(RemoteFile("test", f"{server}/truncated.pth", GOOD_SHA), tmp_path, timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_copy_is_downloaded_again(server, tmp_path) -> None:
    (tmp_path / "weights.pth").write_bytes(b"stale")
    path = fetch(RemoteFile("test", f"{server}/weights.pth", GOOD_SHA), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_unreachable_host_is_a_download_error(tmp_path) -> None:
    with pytest.raises(DownloadError):
        fetch(RemoteFile("test", "http://127.0.0.1:9/x.pth", GOOD_SHA), tmp_path, timeout=5)
