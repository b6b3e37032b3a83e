"""Packing a folder of photos into webdataset-style tar shards for training."""

from __future__ import annotations

import io
import itertools
import logging
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from rechroma.data.shards import class_id_from_key
from rechroma.errors import DataError
from rechroma.images import PHOTO_SUFFIXES

logger = logging.getLogger(__name__)


@dataclass
class PrepareReport:
    """What `prepare_shards` wrote and what it could not read."""

    written: int = 0
    shards: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def prepare_shards(
    src_dir: Path,
    out_dir: Path,
    size: int,
    shard_size: int = 5000,
    quality: int = 95,
    prefix: str = "train",
    progress: bool = True,
) -> PrepareReport:
    """Pack every photo under `src_dir` into tar shards of JPEGs in `out_dir`.

    Each photo is EXIF-rotated, converted to RGB and shrunk so its short side is `size`
    (never enlarged). A photo in a folder named like an ImageNet class id keeps it as the
    key prefix, so labels survive. Unreadable files are skipped and listed in the report.
    """
    if not src_dir.is_dir():
        raise DataError(f"{src_dir} is not a folder")
    paths = sorted(
        p for p in src_dir.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    report = PrepareReport()
    bar = tqdm(paths, desc="prepare", unit="photo", disable=not progress)
    encoded = _encode_for_shard(bar, src_dir, size, quality, report)
    while chunk := list(itertools.islice(encoded, shard_size)):
        shard = out_dir / f"{prefix}-{len(report.shards):03d}.tar"
        with tarfile.open(shard, "w") as tar:
            for key, data in chunk:
                info = tarfile.TarInfo(f"{key}.jpg")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        report.shards.append(shard)
    for path, reason in report.skipped.items():
        logger.warning("skipped %s (%s)", path, reason)
    return report


def _encode_for_shard(
    paths: Iterable[Path], root: Path, size: int, quality: int, report: PrepareReport
) -> Iterator[tuple[str, bytes]]:
    """Yield `(key, JPEG bytes)` per readable photo, recording the others in `report`."""
    for path in paths:
        try:
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
            data = shrink_to_jpeg(image, size, quality)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            report.skipped[str(path)] = f"{type(exc).__name__}: {exc}"
            continue
        yield _sample_key(path, root, report.written), data
        report.written += 1


def shrunk_size(width: int, height: int, size: int) -> tuple[int, int]:
    """`(width, height)` shrunk so the short side is `size`; unchanged if already smaller."""
    scale = size / min(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink_to_jpeg(image: Image.Image, size: int, quality: int) -> bytes:
    """An RGB photo as JPEG bytes, shrunk so its short side is `size` (never enlarged)."""
    new_size = shrunk_size(image.width, image.height, size)
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _sample_key(path: Path, root: Path, index: int) -> str:
    """`<wnid>_<n>` under a class-id folder, else `<folders>-<stem>_<n>`; no dots or `_`."""
    if class_id_from_key(path.parent.name):
        return f"{path.parent.name}_{index:07d}"
    relative = "-".join(path.relative_to(root).with_suffix("").parts)
    return f"{re.sub(r'[^A-Za-z0-9-]+', '-', relative)}_{index:07d}"
