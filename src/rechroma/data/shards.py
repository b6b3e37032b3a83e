"""Streaming (L, ab) samples from webdataset-style tar shards.

A shard is a plain tar of JPEGs; member `n01443537_42.jpg` has key `n01443537_42`, and
the key's prefix before `_` is the ImageNet class id when there is one. Shards are read
sequentially without unpacking, each DataLoader worker opening its own.
"""

from __future__ import annotations

import glob
import io
import logging
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import IterableDataset, get_worker_info

from rechroma.color import normalize_ab, normalize_l, rgb_to_lab
from rechroma.data.degrade import DegradeConfig, degrade_lightness
from rechroma.errors import DataError

logger = logging.getLogger(__name__)

SHARD_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_WNID = re.compile(r"^n\d{8}$")
_T = TypeVar("_T")


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


def read_key_lists(paths: Iterable[str | Path]) -> frozenset[str]:
    """The sample keys listed in text files, one per line (blank lines ignored)."""
    keys: set[str] = set()
    for path in paths:
        try:
            keys.update(Path(path).read_text().split())
        except OSError as exc:
            raise DataError(f"cannot read the key list {path}: {exc}") from exc
    return frozenset(keys)


def source_name(shard: Path) -> str:
    """The source a shard belongs to: its folder's name (`faces`, `caltech101`, ...)."""
    return shard.parent.name or shard.stem


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
    epoch, plus a buffer), forever when `repeat`. The loader workers of all processes
    split the stream: whole shards each when there are enough, else every n-th photo.
    Evaluation mode centre-crops, keeps the input clean and reads in order. Randomness
    depends only on `seed`, the epoch and the reader, so a run with the same seed, worker
    count and process count sees the same stream.
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
    # Keys never read (photos that duplicate evaluation photos; see `read_key_lists`).
    skip_keys: frozenset[str] = frozenset()
    # Distributed training: this process's rank among `world_size`; each reads its part.
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not self.shards:
            raise DataError("no shards given")

    def __iter__(self) -> Iterator[Sample]:
        worker = get_worker_info()
        local_id, local_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        # Every loader worker of every process is one reader; readers split the shards.
        worker_id = self.rank * local_workers + local_id
        num_workers = self.world_size * local_workers
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
        members = self._members(shards, worker_id, num_workers)
        if self.train and self.shuffle_buffer > 1:
            # Shuffle the encoded bytes, not decoded crops: a buffer of thousands of
            # JPEGs costs megabytes where the same number of float crops costs gigabytes.
            members = _buffer_shuffle(members, self.shuffle_buffer, rng)
        yield from self._samples(members, rng)

    def _members(
        self, shards: list[Path], worker_id: int, num_workers: int
    ) -> Iterator[tuple[str, bytes]]:
        """This worker's `(key, bytes)`: whole shards when there are enough, else every n-th."""
        by_shard = len(shards) >= num_workers
        mine = shards[worker_id::num_workers] if by_shard else shards
        for index, member in enumerate(_chain_shards(mine)):
            if by_shard or index % num_workers == worker_id:
                yield member

    def _samples(
        self, members: Iterable[tuple[str, bytes]], rng: np.random.Generator
    ) -> Iterator[Sample]:
        for key, data in members:
            if key in self.skip_keys:
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


@dataclass
class MixedDataset(IterableDataset):
    """Endless samples drawn from several datasets, each with a fixed probability.

    Sources differ in size by orders of magnitude (50,000 Tiny ImageNet crops against
    6,000 scenes); sampling by weight, not by count, decides what the model sees most.
    """

    datasets: Sequence[IterableDataset]
    weights: Sequence[float]
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.datasets) != len(self.weights) or not self.datasets:
            raise DataError("a mix needs one weight per source, and at least one source")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise DataError(f"mix weights must be >= 0 with a positive sum: {self.weights}")

    def __iter__(self) -> Iterator[Sample]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0, len(self.datasets)])
        probabilities = np.asarray(self.weights, dtype=np.float64)
        probabilities /= probabilities.sum()
        streams = [iter(dataset) for dataset in self.datasets]
        while True:
            stream = streams[int(rng.choice(len(streams), p=probabilities))]
            try:
                yield next(stream)
            except StopIteration:
                return


def _chain_shards(shards: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    for shard in shards:
        yield from iter_shard(shard)


def _buffer_shuffle(items: Iterable[_T], size: int, rng: np.random.Generator) -> Iterator[_T]:
    """Shuffle a stream with a fixed-size buffer (webdataset's approach)."""
    buffer: list[_T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = int(rng.integers(len(buffer)))
        buffer[index], item = item, buffer[index]
        yield item
    rng.shuffle(buffer)  # type: ignore[arg-type]
    yield from buffer
