"""Fetching third-party weights (for LPIPS and FID) into a local cache, checksum-verified.

Nothing in rechroma downloads at import or inference time: only `rechroma fetch-weights`
calls `fetch`. A download goes to a `.part` file while its SHA-256 is computed, and only
a complete file with the expected digest is moved into place.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rechroma.errors import RechromaError
from rechroma.paths import default_cache_dir

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(RechromaError):
    """A download failed, was cut short, or did not match its checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """A file someone else publishes, pinned by SHA-256."""

    name: str
    url: str
    sha256: str
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# torchvision's ImageNet AlexNet: the trunk LPIPS v0.1 measures distances in.
ALEXNET = RemoteFile(
    name="lpips",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    size=244_408_911,
)
# torchvision's Inception-v3 (ported from TensorFlow): the features FID compares.
INCEPTION = RemoteFile(
    name="fid",
    url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    sha256="0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef",
    size=108_949_747,
)
KNOWN_FILES = {remote.name: remote for remote in (ALEXNET, INCEPTION)}


def cached_path(remote: RemoteFile, cache_dir: Path | None = None) -> Path:
    """Where `remote` lives once fetched (it may not exist yet)."""
    return (cache_dir or default_cache_dir()) / remote.filename


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    remote: RemoteFile,
    cache_dir: Path | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download `remote` into the cache unless a verified copy is there; return its path.

    Raises `DownloadError` on HTTP errors, a short body, or a checksum mismatch; a failed
    download leaves nothing behind.
    """
    target = cached_path(remote, cache_dir)
    if target.is_file():
        if sha256_of(target) == remote.sha256:
            return target
        logger.warning("%s does not match its checksum; downloading it again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        _download(remote, partial, timeout, progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def _download(
    remote: RemoteFile,
    partial: Path,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> None:
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else remote.size
            with partial.open("wb") as handle:
                while block := response.read(CHUNK):
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
                    if progress is not None:
                        progress(received, expected)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{remote.url}: HTTP {exc.code} {exc.reason}") from exc
    except http.client.IncompleteRead as exc:
        raise DownloadError(f"{remote.url}: download cut short ({exc})") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"{remote.url}: {getattr(exc, 'reason', exc)}") from exc
    if expected is not None and received != expected:
        raise DownloadError(f"{remote.url}: download cut short ({received} of {expected} bytes)")
    if digest.hexdigest() != remote.sha256:
        raise DownloadError(
            f"{remote.url}: checksum mismatch (got sha256 {digest.hexdigest()}, "
            f"expected {remote.sha256}); the file was not kept"
        )
