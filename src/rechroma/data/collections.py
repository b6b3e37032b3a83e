"""Training shards from public photo collections kept in Git repositories.

`../shared/data/more-photos/sources.json` names each collection's repository, the commit
to read, the folder inside it and a list of files to leave out (photos that duplicate
the evaluation photos). `build_collection_shards` reads the photos straight out of bare
Git directories (no checkout), and makes every collection's shards deterministically:

1. the collection's JPEG/PNG files at the pinned commit, sorted by path, less the
   excluded ones;
2. each photo decoded (EXIF-rotated, RGB), skipped when unreadable;
3. gray photos stored as RGB (and near-monochrome ones) dropped by colourfulness;
4. duplicates dropped: a photo whose content matches one already kept (the shared shards
   and photos-val first, then the collections in order) by a difference hash of its
   gray thumbnail, confirmed on a 16x16 thumbnail, so resized, re-encoded or squashed
   copies are caught as well as byte-identical ones;
5. the survivors ordered by a hash of their path (a fixed shuffle), the first `holdout`
   written as the collection's validation shard, the next `cap` (all by default) as its
   training shards, each photo shrunk to a short side of `size` (never enlarged).

Every collection's folder also gets `index.tsv` (key, split, source path, blob id) and
the whole build `report.json`: counts per step and collection, licences.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import subprocess
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from rechroma.color import colorfulness
from rechroma.data.prepare import shrink_to_jpeg, shrunk_size
from rechroma.data.shards import class_id_from_key, iter_shard
from rechroma.errors import DataError

logger = logging.getLogger(__name__)

PHOTO_PATTERN = re.compile(r"\.(jpe?g|png)$", re.IGNORECASE)
# Gray photos stored as RGB score 0-1 and toned monochrome (sepia, cyanotype) 2-4 on
# Hasler & Suesstrunk's scale, while the duller colour photos of these collections
# (silver cars on gray roads, white clothes on white) score 5 and up (measured on
# samples of 300 a collection): 4 drops the first two and keeps the third.
MIN_COLORFULNESS = 4.0
# Two photos are one when the 64-bit difference hashes of their gray thumbnails differ in
# at most this many bits and their 16x16 thumbnails by at most `MAX_THUMB_DIFFERENCE`
# gray levels on average: copies resized, re-encoded or squashed differ by 0-3 bits and
# 1-3 levels, photos that merely look alike (two shirts on white) by far more.
MAX_HASH_DISTANCE = 4
MAX_THUMB_DIFFERENCE = 6.0
# The shared shards and photos that the new ones must not duplicate.
SHARED_SETS = ("photos-val", "tiny-imagenet", "imagenette", "scenes", "faces", "places")


@dataclass(frozen=True)
class Collection:
    """One entry of `sources.json`."""

    name: str
    repo: str
    commit: str
    prefix: str
    licence: str
    content: str = ""
    photos: int = 0
    drop_prefix: str = ""
    exclude: str = ""  # a file of paths to leave out, relative to sources.json


@dataclass
class CollectionReport:
    """What became of one collection's files."""

    name: str
    licence: str
    listed: int = 0
    excluded: int = 0
    unreadable: int = 0
    gray: int = 0
    duplicates: int = 0
    capped: int = 0
    val: int = 0
    train: int = 0
    shards: list[str] = field(default_factory=list)
    # Where the duplicates' first copies are: "shared:faces", "cars", ...
    duplicate_of: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Examined:
    """A decoded photo's measurements and, when asked for, its shard-ready JPEG."""

    width: int
    height: int
    colorfulness: float
    dhash: int
    thumb: bytes  # 16x16 gray, row-major
    jpeg: bytes = b""


def load_collections(sources: Path) -> list[Collection]:
    """The collections listed in a `sources.json`."""
    try:
        entries = json.loads(sources.read_text())
        return [Collection(**entry) for entry in entries]
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read the collections list {sources}: {exc}") from exc


def find_git_dir(mirrors: Path, repo: str) -> Path:
    """The bare Git directory of `owner/name` under `mirrors` (named `owner+name`)."""
    base = mirrors / repo.replace("/", "+")
    for candidate in (base / "repo" / ".git", base / "repo", base / ".git", base):
        if (candidate / "objects").is_dir():
            return candidate
    raise DataError(f"{repo}: no Git directory under {base} (fetch the repository first)")


def list_photos(collection: Collection, git_dir: Path) -> list[tuple[str, str]]:
    """`(path, blob id)` of the collection's photos at its commit, sorted."""
    command = ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", collection.commit]
    if collection.prefix not in ("", "."):
        command += ["--", collection.prefix]
    try:
        listing = subprocess.run(command, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DataError(f"{collection.repo}: cannot list commit {collection.commit}") from exc
    photos = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, raw_path = entry.split(b"\t", 1)
        _mode, kind, blob = meta.split()[:3]
        path = raw_path.decode()
        if kind != b"blob" or not PHOTO_PATTERN.search(path):
            continue
        if collection.drop_prefix and path.startswith(collection.drop_prefix):
            continue
        photos.append((path, blob.decode()))
    return sorted(photos)


def read_blobs(git_dir: Path, blobs: Iterable[str]) -> Iterator[bytes]:
    """The contents of `blobs`, in order (b"" for one missing from the copy)."""
    process = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for blob in blobs:
            process.stdin.write(f"{blob}\n".encode())
            process.stdin.flush()
            header = process.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":  # "<id> missing"
                yield b""
                continue
            data = process.stdout.read(int(header[2]))
            process.stdout.read(1)  # the newline after each object
            yield data
    finally:
        process.stdin.close()
        process.wait()


def examine(data: bytes, size: int = 0, quality: int = 90) -> Examined | None:
    """Measure a photo and, with `size`, encode it shrunk to that short side; None if broken."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    if min(image.size) < 16:
        return None
    small = image.copy()
    small.thumbnail((128, 128), Image.Resampling.BILINEAR)
    rgb = torch.from_numpy(np.asarray(small, dtype=np.float32)).permute(2, 0, 1)[None]
    gray = image.convert("L")
    # Difference hash (Krawetz): is each pixel of a 9x8 thumbnail brighter than its
    # right-hand neighbour. Every thumbnail ignores the aspect, so squashed copies match.
    hash_pixels = np.asarray(gray.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (hash_pixels[:, :-1] > hash_pixels[:, 1:]).flatten()
    thumb = np.asarray(gray.resize((16, 16), Image.Resampling.BOX), dtype=np.uint8)
    jpeg = shrink_to_jpeg(image, size, quality) if size else b""
    width, height = shrunk_size(image.width, image.height, size) if size else image.size
    return Examined(
        width=width,
        height=height,
        colorfulness=float(colorfulness(rgb)[0]),
        dhash=int(np.packbits(bits).view(">u8")[0]),
        thumb=thumb.tobytes(),
        jpeg=jpeg,
    )


class DuplicateIndex:
    """Photos seen so far, to find a new one's earlier copy by content.

    Lookup is multi-index hashing: the 64-bit hash is cut into `MAX_HASH_DISTANCE + 1`
    pieces, and two hashes within that distance agree exactly on at least one piece
    (pigeonhole), so only photos sharing a piece are compared.
    """

    def __init__(self) -> None:
        pieces = MAX_HASH_DISTANCE + 1
        self._cuts = [round(64 * i / pieces) for i in range(pieces + 1)]
        self._tables: list[dict[int, list[int]]] = [{} for _ in range(pieces)]
        self._hashes: list[int] = []
        self._thumbs: list[np.ndarray] = []
        self._origins: list[str] = []

    def _pieces(self, dhash: int) -> Iterator[tuple[int, int]]:
        for table, (low, high) in enumerate(zip(self._cuts, self._cuts[1:], strict=False)):
            yield table, (dhash >> low) & ((1 << (high - low)) - 1)

    def find(self, photo: Examined) -> str | None:
        """The origin of an earlier copy of `photo`, or None."""
        candidates: set[int] = set()
        for table, piece in self._pieces(photo.dhash):
            candidates.update(self._tables[table].get(piece, ()))
        if not candidates:
            return None
        thumb = np.frombuffer(photo.thumb, dtype=np.uint8).astype(np.int16)
        for index in sorted(candidates):
            if (self._hashes[index] ^ photo.dhash).bit_count() > MAX_HASH_DISTANCE:
                continue
            if np.abs(self._thumbs[index] - thumb).mean() <= MAX_THUMB_DIFFERENCE:
                return self._origins[index]
        return None

    def add(self, photo: Examined, origin: str) -> None:
        """Remember `photo`, found again as coming from `origin`."""
        index = len(self._hashes)
        self._hashes.append(photo.dhash)
        self._thumbs.append(np.frombuffer(photo.thumb, dtype=np.uint8).astype(np.int16))
        self._origins.append(origin)
        for table, piece in self._pieces(photo.dhash):
            self._tables[table].setdefault(piece, []).append(index)


def index_shared_photos(
    shared_data: Path, index: DuplicateIndex, workers: int = 2, progress: bool = True
) -> int:
    """Add every photo of the shared shards and photos-val to `index`; returns how many."""
    items: list[tuple[str, bytes]] = []
    for name in SHARED_SETS:
        folder = shared_data / name
        for path in sorted(folder.glob("*.tar")):
            items.extend((f"shared:{name}", data) for _key, data in iter_shard(path))
        for path in sorted(folder.glob("*")):
            if path.is_file() and PHOTO_PATTERN.search(path.name):
                items.append((f"shared:{name}", path.read_bytes()))
    if not items:
        raise DataError(f"no shared photos under {shared_data} to deduplicate against")
    added = 0
    examined = _examine_all((data for _origin, data in items), 0, 90, workers)
    bar = tqdm(examined, total=len(items), desc="shared photos", unit="photo", disable=not progress)
    for (origin, _data), photo in zip(items, bar, strict=True):
        if photo is not None:
            index.add(photo, origin)
            added += 1
    return added


def build_collection_shards(
    collections: Sequence[Collection],
    mirrors: Path,
    out_dir: Path,
    sources_dir: Path,
    shared_data: Path | None,
    size: int = 256,
    quality: int = 90,
    holdout: int = 300,
    caps: dict[str, int] | None = None,
    shard_size: int = 5000,
    workers: int = 2,
    progress: bool = True,
) -> list[CollectionReport]:
    """Make each collection's shards under `out_dir/<name>/`; see the module docstring.

    `caps` limits a collection's training photos (its validation shard is not capped).
    Collections are read in the given order; a photo that duplicates one of an earlier
    collection (or of the shared data) is dropped from the later one.
    """
    caps = caps or {}
    unknown = set(caps) - {c.name for c in collections}
    if unknown:
        raise DataError(f"caps name collections that are not listed: {sorted(unknown)}")
    index = DuplicateIndex()
    if shared_data is not None:
        count = index_shared_photos(shared_data, index, workers, progress)
        logger.info("indexed %d shared photos for deduplication", count)
    reports = []
    for collection in collections:
        report = _build_one(
            collection,
            find_git_dir(mirrors, collection.repo),
            out_dir / collection.name,
            sources_dir,
            index,
            size,
            quality,
            holdout,
            caps.get(collection.name),
            shard_size,
            workers,
            progress,
        )
        logger.info(
            "%s: %d train, %d val (%d gray, %d duplicates, %d capped, %d unreadable)",
            report.name,
            report.train,
            report.val,
            report.gray,
            report.duplicates,
            report.capped,
            report.unreadable,
        )
        reports.append(report)
    summary = {
        "size": size,
        "quality": quality,
        "holdout": holdout,
        "caps": caps,
        "min_colorfulness": MIN_COLORFULNESS,
        "collections": [asdict(r) for r in reports],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return reports


def _build_one(
    collection: Collection,
    git_dir: Path,
    out_dir: Path,
    sources_dir: Path,
    index: DuplicateIndex,
    size: int,
    quality: int,
    holdout: int,
    cap: int | None,
    shard_size: int,
    workers: int,
    progress: bool,
) -> CollectionReport:
    report = CollectionReport(collection.name, collection.licence)
    excluded: set[str] = set()
    if collection.exclude:
        excluded = set((sources_dir / collection.exclude).read_text().split())
    photos = list_photos(collection, git_dir)
    kept_paths = [(p, b) for p, b in photos if p not in excluded]
    report.listed, report.excluded = len(photos), len(photos) - len(kept_paths)
    blobs = read_blobs(git_dir, (blob for _path, blob in kept_paths))
    examined = _examine_all(blobs, size, quality, workers)
    bar = tqdm(
        examined, total=len(kept_paths), desc=collection.name, unit="photo", disable=not progress
    )
    kept: list[tuple[str, str, Examined]] = []
    for (path, blob), photo in zip(kept_paths, bar, strict=True):
        if photo is None:
            report.unreadable += 1
        elif photo.colorfulness < MIN_COLORFULNESS:
            report.gray += 1
        elif (origin := index.find(photo)) is not None:
            report.duplicates += 1
            report.duplicate_of[origin] = report.duplicate_of.get(origin, 0) + 1
        else:
            index.add(photo, collection.name)
            kept.append((path, blob, photo))
    # A fixed shuffle: the order of a hash of each path, so the split and the cap do not
    # depend on how the repository sorts its folders (all the cats before the dogs).
    kept.sort(key=lambda item: hashlib.sha256(f"{collection.name}/{item[0]}".encode()).digest())
    if len(kept) <= holdout:
        raise DataError(f"{collection.name}: only {len(kept)} photos, fewer than the holdout")
    val, train = kept[:holdout], kept[holdout:]
    if cap is not None and len(train) > cap:
        report.capped, train = len(train) - cap, train[:cap]
    report.val, report.train = len(val), len(train)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.tar"):
        stale.unlink()
    rows = ["key\tsplit\tpath\tblob\twidth\theight\tcolorfulness"]
    number = 0  # keys run on across the splits, so each is unique in the collection
    for split, items in (("val", val), ("train", train)):
        for shard_number, start in enumerate(range(0, len(items), shard_size)):
            shard = out_dir / f"{split}-{shard_number:03d}.tar"
            members = []
            for path, blob, photo in items[start : start + shard_size]:
                key = _key(collection.name, path, number)
                number += 1
                members.append((key, photo.jpeg))
                rows.append(
                    f"{key}\t{split}\t{path}\t{blob}\t{photo.width}\t{photo.height}"
                    f"\t{photo.colorfulness:.2f}"
                )
            _write_shard(shard, members)
            report.shards.append(shard.name)
    (out_dir / "index.tsv").write_text("\n".join(rows) + "\n")
    return report


def _key(collection: str, path: str, number: int) -> str:
    """`<wnid>_<n>` when the photo sits in an ImageNet class folder, else `<collection>_<n>`.

    The prefix before `_` is what the shard readers take as a class (or the source).
    """
    for part in reversed(Path(path).parts[:-1]):
        if class_id_from_key(part):
            return f"{part}_{number:06d}"
    return f"{re.sub(r'[^A-Za-z0-9-]+', '-', collection)}_{number:06d}"


def _write_shard(path: Path, members: Sequence[tuple[str, bytes]]) -> None:
    """A plain tar of `<key>.jpg` members, with fixed metadata so builds are byte-identical."""
    partial = path.with_suffix(".tar.partial")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, data in members:
            info = tarfile.TarInfo(f"{key}.jpg")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    partial.replace(path)


def _examine_all(
    items: Iterable[bytes], size: int, quality: int, workers: int
) -> Iterator[Examined | None]:
    """`examine` over a stream, in order, in `workers` processes (in this one for 1)."""
    if workers <= 1:
        for data in items:
            yield examine(data, size, quality)
        return
    # Workers limited to one thread each: torch in every process would otherwise start
    # as many threads as there are cores, and they would fight.
    pool = get_context("spawn").Pool(workers, initializer=torch.set_num_threads, initargs=(1,))
    with pool:
        yield from pool.imap(_examine_packed, ((d, size, quality) for d in items), chunksize=32)


def _examine_packed(arguments: tuple[bytes, int, int]) -> Examined | None:
    return examine(*arguments)
