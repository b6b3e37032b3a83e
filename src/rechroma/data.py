"""Streaming (L, ab) samples from webdataset-style tar shards, and packing photos into shards.

A shard is a plain tar of JPEGs; member `n01443537_42.jpg` has key `n01443537_42`, and
the key's prefix before `_` is the ImageNet class id when there is one. Shards are read
sequentially without unpacking, each DataLoader worker opening its own.
"""

from __future__ import annotations

import glob
import io
import itertools
import logging
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm

from rechroma.color import normalize_ab, normalize_l, rgb_to_lab
from rechroma.degrade import DegradeConfig, degrade_lightness
from rechroma.errors import DataError
from rechroma.images import PHOTO_SUFFIXES

logger = logging.getLogger(__name__)

SHARD_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_WNID = re.compile(r"^n\d{8}$")


class Sample(NamedTuple):
    """One training example; tensors are normalized as in `rechroma.color`."""

    lightness: torch.Tensor  # (1, H, W) network input in [-1, 1], possibly degraded
    ab: torch.Tensor  # (2, H, W) target chroma in about [-1, 1]
    label: int  # class index, -1 when the key carries no class
    clean_lightness: torch.Tensor  # (1, H, W) the undegraded L, to rebuild the true RGB


def expand_shards(patterns: Iterable[str | Path]) -> list[Path]:
    """Glob each pattern and return the matching shard files, sorted and unique."""
    found: set[Path] = set()
    for pattern in patterns:
        found.update(Path(p) for p in glob.glob(str(pattern)) if p.endswith(".tar"))
    return sorted(found)


def split_shards(shards: Sequence[Path], split: str, test_shards: int) -> list[Path]:
    """Hold out the last `test_shards` shards as "test"; the rest are "train"."""
    if test_shards >= len(shards) and test_shards > 0:
        raise DataError(f"cannot hold out {test_shards} test shards from {len(shards)}")
    cut = len(shards) - test_shards
    if split == "train":
        return list(shards[:cut])
    if split == "test":
        return list(shards[cut:])
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def class_id_from_key(key: str) -> str | None:
    """The ImageNet class id (wnid) a sample key starts with, if any."""
    prefix = key.split("_", 1)[0]
    return prefix if _WNID.match(prefix) else None


def build_class_index(shards: Sequence[Path]) -> dict[str, int]:
    """Map every class id seen in the shards' member names to 0..N-1, sorted by id."""
    wnids: set[str] = set()
    for shard in shards:
        with tarfile.open(shard) as tar:
            for name in tar.getnames():
                wnid = class_id_from_key(Path(name).stem)
                if wnid:
                    wnids.add(wnid)
    return {wnid: index for index, wnid in enumerate(sorted(wnids))}


def iter_shard(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield `(key, image bytes)` for every image member of a tar, streaming."""
    try:
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                if not member.isfile() or not member.name.lower().endswith(SHARD_IMAGE_SUFFIXES):
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    yield Path(member.name).stem, handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"cannot read shard {path}: {exc}") from exc


def decode_rgb(data: bytes) -> Image.Image:
    """Decode image bytes to RGB (1-channel JPEGs included)."""
    image = Image.open(io.BytesIO(data))
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def random_resized_crop(
    image: Image.Image, size: int, min_scale: float, rng: np.random.Generator
) -> Image.Image:
    """Crop a random area (`min_scale`..1 of the image, aspect 3/4..4/3), resize to size^2."""
    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(min_scale, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        crop_w = round(np.sqrt(target * aspect))
        crop_h = round(np.sqrt(target / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = int(rng.integers(0, width - crop_w + 1))
            top = int(rng.integers(0, height - crop_h + 1))
            box = (left, top, left + crop_w, top + crop_h)
            return image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return center_crop(image, size)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the short side to `size` and cut the central square."""
    return ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)


def make_sample(
    image: Image.Image,
    label: int,
    rng: np.random.Generator,
    degrade: DegradeConfig | None,
) -> Sample:
    """Turn an RGB crop into a `Sample`, degrading the input L when `degrade` is given."""
    rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    lab = rgb_to_lab(rgb)
    lightness = lab[:1]
    l_input = lightness if degrade is None else degrade_lightness(lightness, rgb, rng, degrade)
    return Sample(normalize_l(l_input), normalize_ab(lab[1:]), label, normalize_l(lightness))


@dataclass
class ShardDataset(IterableDataset):
    """Iterate `Sample`s from tar shards.

    Training mode crops at random, flips, degrades the input and shuffles (shard order per
    epoch, plus a buffer), forever when `repeat`. Evaluation mode centre-crops, keeps the
    input clean and reads in order. Randomness depends only on `seed`, the epoch and the
    worker, so a run with the same seed and worker count sees the same stream.
    """

    shards: Sequence[Path]
    crop_size: int = 64
    train: bool = True
    seed: int = 0
    repeat: bool = True
    min_crop_scale: float = 0.5
    shuffle_buffer: int = 2000
    degrade: DegradeConfig | None = field(default_factory=DegradeConfig)
    class_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.shards:
            raise DataError("no shards given")

    def __iter__(self) -> Iterator[Sample]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        epoch = 0
        while True:
            yield from self._epoch(epoch, worker_id, num_workers)
            epoch += 1
            if not self.repeat:
                return

    def _epoch(self, epoch: int, worker_id: int, num_workers: int) -> Iterator[Sample]:
        shards = list(self.shards)
        if self.train:
            # Same permutation in every worker, so their shard subsets do not overlap.
            order = np.random.default_rng([self.seed, epoch]).permutation(len(shards))
            shards = [shards[i] for i in order]
        rng = np.random.default_rng([self.seed, epoch, worker_id])
        samples = self._samples(shards, worker_id, num_workers, rng)
        if self.train and self.shuffle_buffer > 1:
            samples = _buffer_shuffle(samples, self.shuffle_buffer, rng)
        yield from samples

    def _samples(
        self, shards: list[Path], worker_id: int, num_workers: int, rng: np.random.Generator
    ) -> Iterator[Sample]:
        by_shard = len(shards) >= num_workers
        mine = shards[worker_id::num_workers] if by_shard else shards
        for index, (key, data) in enumerate(_chain_shards(mine)):
            if not by_shard and index % num_workers != worker_id:
                continue
            try:
                image = decode_rgb(data)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                logger.warning("skipping undecodable sample %s: %s", key, exc)
                continue
            label = self.class_index.get(class_id_from_key(key) or "", -1)
            if self.train:
                image = random_resized_crop(image, self.crop_size, self.min_crop_scale, rng)
                if rng.random() < 0.5:
                    image = ImageOps.mirror(image)
                yield make_sample(image, label, rng, self.degrade)
            else:
                yield make_sample(center_crop(image, self.crop_size), label, rng, None)


def _chain_shards(shards: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    for shard in shards:
        yield from iter_shard(shard)


def _buffer_shuffle(
    items: Iterator[Sample], size: int, rng: np.random.Generator
) -> Iterator[Sample]:
    """Shuffle a stream with a fixed-size buffer (webdataset's approach)."""
    buffer: list[Sample] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = int(rng.integers(len(buffer)))
        buffer[index], item = item, buffer[index]
        yield item
    rng.shuffle(buffer)  # type: ignore[arg-type]
    yield from buffer


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
            scale = size / min(image.size)
            if scale < 1:
                new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image = image.resize(new_size, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            report.skipped[str(path)] = f"{type(exc).__name__}: {exc}"
            continue
        yield _sample_key(path, root, report.written), buffer.getvalue()
        report.written += 1


def _sample_key(path: Path, root: Path, index: int) -> str:
    """`<wnid>_<n>` under a class-id folder, else `<folders>-<stem>_<n>`; no dots or `_`."""
    if class_id_from_key(path.parent.name):
        return f"{path.parent.name}_{index:07d}"
    relative = "-".join(path.relative_to(root).with_suffix("").parts)
    return f"{re.sub(r'[^A-Za-z0-9-]+', '-', relative)}_{index:07d}"
