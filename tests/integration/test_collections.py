"""`prepare-collections`: shards from photo collections in real Git repositories."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rechroma.data.collections import (
    Collection,
    DuplicateIndex,
    build_collection_shards,
    examine,
    load_collections,
)
from rechroma.data.shards import iter_shard
from rechroma.errors import DataError


def _photo(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A colourful photo-like picture with structure, different for every seed."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def _encode(image: Image.Image, kind: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def _commit_repo(root: Path, files: dict[str, bytes]) -> str:
    """A Git repository at root/repo holding `files`; returns the commit id."""
    work = root / "repo"
    for name, data in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "photos"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, check=True)
    # A later commit changes a photo: the pinned commit, not HEAD, must be read.
    first_file = sorted(files)[0]
    (work / first_file).write_bytes(_encode(_photo(999)))
    subprocess.run([*git, "commit", "-q", "-am", "later"], check=True)
    return head.stdout.decode().strip()


@pytest.fixture(scope="module")
def collections_setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two collections in two repositories, a sources.json, and a shared shard."""
    root = tmp_path_factory.mktemp("collections")
    mirrors = root / "mirrors"
    first = {f"img/p{i:02d}.jpg": _encode(_photo(i)) for i in range(8)}
    first["img/p08.png"] = _encode(_photo(8), "PNG")
    first["img/in-class/n01443537/p09.jpg"] = _encode(_photo(9))
    first["img/gray.jpg"] = _encode(_photo(20).convert("L").convert("RGB"))
    first["img/smaller-copy.jpg"] = _encode(_photo(3).resize((72, 48)))
    first["img/squashed-copy.jpg"] = _encode(_photo(4).resize((64, 64)))
    first["img/broken.jpg"] = b"\xff\xd8\xff" + b"not a photo" * 40
    first["img/excluded.jpg"] = _encode(_photo(21))
    first["img/notes.txt"] = b"not a photo"
    first["other/outside-prefix.jpg"] = _encode(_photo(22))
    second = {f"p{i}.jpg": _encode(_photo(100 + i)) for i in range(5)}
    second["same-bytes-as-first.jpg"] = first["img/p05.jpg"]
    second["like-shared.jpg"] = _encode(_photo(50))
    commit_a = _commit_repo(mirrors / "someone+first", first)
    commit_b = _commit_repo(mirrors / "other+second", second)
    sources_dir = root / "sources"
    (sources_dir / "exclude").mkdir(parents=True)
    (sources_dir / "exclude" / "first.txt").write_text("img/excluded.jpg\n")
    sources = [
        {"name": "first", "repo": "someone/first", "commit": commit_a, "prefix": "img",
         "exclude": "exclude/first.txt", "licence": "CC0"},
        {"name": "second", "repo": "other/second", "commit": commit_b, "prefix": ".",
         "licence": "research"},
    ]  # fmt: skip
    (sources_dir / "sources.json").write_text(json.dumps(sources))
    shared = root / "shared"
    (shared / "faces").mkdir(parents=True)
    copy = _encode(_photo(50).resize((60, 40)))
    with tarfile.open(shared / "faces" / "train-000.tar", "w") as tar:
        info = tarfile.TarInfo("x_1.jpg")
        info.size = len(copy)
        tar.addfile(info, io.BytesIO(copy))
    return {
        "mirrors": mirrors,
        "sources": sources_dir / "sources.json",
        "shared": shared,
        "commit_a": commit_a,
    }


def _build(setup: dict, out: Path, **kwargs) -> list:
    collections = load_collections(setup["sources"])
    return build_collection_shards(
        collections, setup["mirrors"], out, setup["sources"].parent, setup["shared"], size=40,
        holdout=2, workers=1, progress=False, **kwargs,
    )  # fmt: skip


def _members(shard: Path) -> dict[str, bytes]:
    return dict(iter_shard(shard))


def test_shards_drop_excluded_broken_gray_and_duplicate_photos(collections_setup, tmp_path):
    first, second = _build(collections_setup, tmp_path / "out", caps={"second": 2})
    assert (first.listed, first.excluded, first.unreadable, first.gray) == (15, 1, 1, 1)
    # The smaller and the squashed copy of p03/p04 are found by content.
    assert first.duplicates == 2 and first.duplicate_of == {"first": 2}
    assert (first.val, first.train) == (2, 8)
    # Byte-identical to a photo of "first", and a resized copy of the shared photo.
    assert second.duplicate_of == {"first": 1, "shared:faces": 1}
    assert (second.val, second.train, second.capped) == (2, 2, 1)
    out = tmp_path / "out" / "first"
    val, train = _members(out / "val-000.tar"), _members(out / "train-000.tar")
    assert len(val) == 2 and len(train) == 8 and not set(val) & set(train)
    for data in [*val.values(), *train.values()]:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and min(image.size) == 40
    # The photo in an ImageNet class folder keeps its class as the key prefix.
    rows = [line.split("\t") for line in (out / "index.tsv").read_text().splitlines()[1:]]
    keys = {row[2]: row[0] for row in rows}
    assert keys["img/in-class/n01443537/p09.jpg"].startswith("n01443537_")
    assert {row[0] for row in rows} == set(val) | set(train)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [c["licence"] for c in report["collections"]] == ["CC0", "research"]


def test_the_pinned_commit_is_read_and_builds_are_byte_identical(collections_setup, tmp_path):
    _build(collections_setup, tmp_path / "a")
    _build(collections_setup, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 7  # report.json, and index.tsv, val and train per collection
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # p00 changed after the pinned commit; the shards hold the pinned photo's blob.
    pinned = subprocess.run(
        ["git", "--git-dir", str(collections_setup["mirrors"] / "someone+first" / "repo" / ".git"),
         "rev-parse", f"{collections_setup['commit_a']}:img/p00.jpg"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    rows = (tmp_path / "a" / "first" / "index.tsv").read_text().splitlines()
    assert any(row.split("\t")[2:4] == ["img/p00.jpg", pinned] for row in rows)


def test_a_collection_smaller_than_its_holdout_is_refused(collections_setup, tmp_path):
    with pytest.raises(DataError, match="fewer than the holdout"):
        build_collection_shards(
            load_collections(collections_setup["sources"])[1:],
            collections_setup["mirrors"],
            tmp_path,
            collections_setup["sources"].parent,
            None,
            holdout=50,
            workers=1,
            progress=False,
        )


def test_a_missing_repository_says_how_to_get_it(collections_setup, tmp_path):
    missing = Collection("x", "nobody/nothing", "0" * 40, ".", "CC0")
    with pytest.raises(DataError, match="fetch the repository"):
        build_collection_shards(
            [missing], collections_setup["mirrors"], tmp_path, tmp_path, None, progress=False
        )


def test_duplicate_index_tells_copies_from_look_alikes() -> None:
    index = DuplicateIndex()
    original = examine(_encode(_photo(1, (300, 200))))
    assert original is not None
    index.add(original, "a")
    assert index.find(examine(_encode(_photo(1, (150, 100))))) == "a"  # type: ignore[arg-type]
    assert index.find(examine(_encode(_photo(2, (300, 200))))) is None  # type: ignore[arg-type]
    # Plain white backgrounds with different objects share hash bits but not thumbnails.
    blank = np.full((200, 300, 3), 250, np.uint8)
    shirt, shoe = blank.copy(), blank.copy()
    shirt[40:160, 100:200] = (200, 30, 30)
    shoe[120:170, 40:260] = (30, 30, 160)
    index.add(examine(_encode(Image.fromarray(shirt))), "shirt")  # type: ignore[arg-type]
    assert index.find(examine(_encode(Image.fromarray(shoe)))) is None  # type: ignore[arg-type]


def test_cli_writes_the_shards_and_prints_a_summary(collections_setup, tmp_path):
    out = tmp_path / "shards"
    result = subprocess.run(
        [sys.executable, "-m", "rechroma", "-q", "prepare-collections",
         str(collections_setup["mirrors"]), str(out),
         "--sources", str(collections_setup["sources"]),
         "--shared-data", str(collections_setup["shared"]), "--holdout", "2", "--size", "40",
         "--cap", "first=3", "--workers", "2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["collections"]["first"] == {"train": 3, "val": 2}
    with tarfile.open(out / "first" / "train-000.tar") as tar:
        assert len(tar.getnames()) == 3
    bad = subprocess.run(
        [sys.executable, "-m", "rechroma", "prepare-collections", str(collections_setup["mirrors"]),
         str(out), "--sources", str(collections_setup["sources"]), "--cap", "nothing=3"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "not listed" in bad.stderr
