import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rechroma.data.prepare import prepare_shards
from rechroma.data.shards import (
    MixedDataset,
    ShardDataset,
    build_class_index,
    class_id_from_key,
    expand_shards,
    read_key_lists,
    split_shards,
)
from rechroma.errors import DataError


def test_expand_and_split_by_shard(shard_dir) -> None:
    shards = expand_shards([shard_dir / "train-*.tar", shard_dir / "train-000.tar"])
    assert [p.name for p in shards] == ["train-000.tar", "train-001.tar"]
    assert split_shards(shards, "train", 1) == shards[:1]
    assert split_shards(shards, "test", 1) == shards[1:]
    assert split_shards(shards, "train", 0) == shards
    with pytest.raises(DataError):
        split_shards(shards, "train", 2)


def test_class_ids_come_from_keys(shard_dir) -> None:
    assert class_id_from_key("n01443537_42") == "n01443537"
    assert class_id_from_key("val_12") is None
    assert class_id_from_key("ILSVRC2012_val_00022538") is None
    index = build_class_index(expand_shards([shard_dir / "train-*.tar"]))
    assert index == {"n01443537": 0, "n01629819": 1, "n02123045": 2}


def _collect(dataset: ShardDataset, count: int | None = None, workers: int = 0) -> list:
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)
    items = []
    for item in loader:
        items.append(item)
        if count is not None and len(items) == count:
            break
    return items


def test_eval_stream_reads_every_image_once_and_skips_broken(shard_dir) -> None:
    shards = expand_shards([shard_dir / "train-*.tar"])
    dataset = ShardDataset(
        shards, crop_size=24, train=False, repeat=False, class_index=build_class_index(shards)
    )
    samples = _collect(dataset)
    # 10 RGB + 1 grayscale per shard; the corrupt JPEG and the text file are skipped.
    assert len(samples) == 22
    first = samples[0]
    assert first.lightness.shape == (1, 24, 24) and first.ab.shape == (2, 24, 24)
    assert first.lightness.min() >= -1 and first.lightness.max() <= 1
    assert {s.label for s in samples} == {0, 1, 2}
    gray = [s for s in samples if s.ab.abs().max() < 0.01]
    assert len(gray) == 2  # the 1-channel JPEGs decode fine, with no chroma


def test_training_stream_is_deterministic_by_seed(shard_dir) -> None:
    shards = expand_shards([shard_dir / "train-*.tar"])

    def first_batch(seed: int) -> torch.Tensor:
        dataset = ShardDataset(shards, crop_size=24, seed=seed, shuffle_buffer=6)
        return torch.stack([s.lightness for s in _collect(dataset, 8)])

    assert torch.equal(first_batch(1), first_batch(1))
    assert not torch.equal(first_batch(1), first_batch(2))


def test_training_degrades_input_only(shard_dir) -> None:
    shards = expand_shards([shard_dir / "train-*.tar"])
    from rechroma.data.degrade import DegradeConfig

    always = DegradeConfig(prob=1.0, fade=1.0, grain=1.0)
    samples = _collect(ShardDataset(shards, crop_size=24, degrade=always), 6)
    for sample in samples:
        assert not torch.allclose(sample.lightness, sample.clean_lightness)
    clean = _collect(ShardDataset(shards, crop_size=24, degrade=None), 6)
    for sample in clean:
        assert torch.equal(sample.lightness, sample.clean_lightness)


def test_workers_split_the_stream_without_overlap(shard_dir) -> None:
    shards = expand_shards([shard_dir / "train-*.tar"])
    dataset = ShardDataset(shards, crop_size=16, train=False, repeat=False)
    single = _collect(dataset)
    double = _collect(dataset, workers=2)
    key = lambda s: s.ab.sum().item()  # noqa: E731
    assert sorted(map(key, single)) == pytest.approx(sorted(map(key, double)))


def test_fewer_shards_than_workers_still_splits_by_sample(shard_dir) -> None:
    dataset = ShardDataset([shard_dir / "val-000.tar"], crop_size=16, train=False, repeat=False)
    assert len(_collect(dataset, workers=2)) == 6


def test_listed_keys_are_never_read(shard_dir, tmp_path) -> None:
    listed = tmp_path / "keys.txt"
    listed.write_text("val_0\nval_3\n\n")
    skip = read_key_lists([listed])
    assert skip == {"val_0", "val_3"}
    dataset = ShardDataset(
        [shard_dir / "val-000.tar"], crop_size=16, train=False, repeat=False, skip_keys=skip
    )
    assert len(_collect(dataset)) == 4
    with pytest.raises(DataError, match="key list"):
        read_key_lists([tmp_path / "missing.txt"])


def test_prepare_packs_a_folder_and_counts_what_it_skips(tmp_path) -> None:
    src = tmp_path / "photos"
    (src / "n01443537").mkdir(parents=True)
    (src / "holiday" / "1950").mkdir(parents=True)
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    big.save(src / "n01443537" / "a.JPEG")
    big.save(src / "holiday" / "1950" / "beach.png")
    big.convert("L").save(src / "holiday" / "scan.tif")
    Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)).save(src / "small.webp")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (src / "notes.txt").write_text("ignored: not a photo suffix")

    report = prepare_shards(src, tmp_path / "out", size=128, shard_size=3, progress=False)
    assert report.written == 4
    assert list(report.skipped) == [str(src / "broken.jpg")]
    assert [p.name for p in report.shards] == ["train-000.tar", "train-001.tar"]
    with tarfile.open(report.shards[0]) as tar:
        names = tar.getnames()
    assert any(name.startswith("holiday-1950-beach_") for name in names)
    assert build_class_index(report.shards) == {"n01443537": 0}
    samples = _collect(ShardDataset(report.shards, crop_size=32, train=False, repeat=False))
    assert len(samples) == 4


def test_prepare_shrinks_but_never_enlarges(tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (400, 300), "red").save(src / "big.png")
    Image.new("RGB", (40, 30), "blue").save(src / "small.png")
    report = prepare_shards(src, tmp_path / "out", size=100, progress=False)
    with tarfile.open(report.shards[0]) as tar:
        sizes = sorted(Image.open(tar.extractfile(m)).size for m in tar.getmembers())
    assert sizes == [(40, 30), (133, 100)]


def test_mixed_stream_draws_sources_by_weight(shard_dir) -> None:
    index = build_class_index([shard_dir / "train-000.tar"])

    def source(shard: str, seed: int) -> ShardDataset:
        return ShardDataset([shard_dir / shard], crop_size=8, seed=seed, class_index=index)

    # Training keys carry a class, validation keys none (-1): the label tells the source.
    mix = MixedDataset([source("train-000.tar", 0), source("val-000.tar", 1)], [0.8, 0.2], seed=3)
    first = [sample.label for sample in _collect(mix, 400)]
    assert first == [sample.label for sample in _collect(mix, 400)]  # seeded
    share = np.mean([label == -1 for label in first])
    assert 0.14 < share < 0.26


def test_mixed_stream_needs_one_weight_per_source(shard_dir) -> None:
    source = ShardDataset([shard_dir / "val-000.tar"], crop_size=8)
    with pytest.raises(DataError):
        MixedDataset([source], [0.5, 0.5])
    with pytest.raises(DataError):
        MixedDataset([source], [0.0])


@pytest.mark.parametrize("workers", [0, 2])
def test_processes_read_disjoint_parts_that_cover_the_shards(shard_dir, workers) -> None:
    """Distributed training: ranks (and their loader workers) never read the same photo."""
    shards = expand_shards([shard_dir / "train-*.tar"])

    def seen(rank: int, world_size: int) -> list[float]:
        dataset = ShardDataset(
            shards, crop_size=16, train=False, repeat=False, rank=rank, world_size=world_size
        )
        return sorted(round(s.ab.sum().item(), 4) for s in _collect(dataset, workers=workers))

    everything = seen(0, 1)
    first, second = seen(0, 2), seen(1, 2)
    assert first and second and not set(first) & set(second)
    assert sorted(first + second) == everything
