"""The print-damage generator: seeded, exact masks, scale-aware, never in place."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rechroma.data.print_damage import DamageConfig, DamagedShards, ScanConfig, damage_photo

ALL = DamageConfig(
    scratch_prob=1, dust_prob=1, hair_prob=1, crack_prob=1, fold_prob=1, dark_share=0.5
)
NONE = DamageConfig(scratch_prob=0, dust_prob=0, hair_prob=0, crack_prob=0, fold_prob=0)


def _photo(height=300, width=400) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return (60 + 120 * (xs / width) + 20 * np.sin(ys / 17)).astype(np.uint8)


def test_same_seed_same_damage_other_seed_other_damage() -> None:
    photo = _photo()
    a = damage_photo(photo, np.random.default_rng(7), ALL)
    b = damage_photo(photo, np.random.default_rng(7), ALL)
    c = damage_photo(photo, np.random.default_rng(8), ALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_the_mask_is_where_the_photo_changed() -> None:
    photo = _photo()
    before = photo.copy()
    damaged = damage_photo(photo, np.random.default_rng(1), ALL)
    assert np.array_equal(photo, before)  # never in place
    change = np.abs(damaged.image.astype(int) - photo.astype(int))
    assert 0.001 < damaged.mask.mean() < 0.2
    assert change[damaged.mask].min() >= 5  # every masked pixel visibly changed
    # Outside the mask only the soft fringe of a defect differs, and faintly.
    assert np.percentile(change[~damaged.mask], 99.5) <= 12
    assert damaged.image.dtype == np.uint8 and damaged.image.shape == photo.shape


def test_defects_grow_with_the_photo() -> None:
    small = damage_photo(_photo(300, 400), np.random.default_rng(3), ALL)
    large = damage_photo(_photo(1200, 1600), np.random.default_rng(3), ALL)
    # The same defects at 16x the pixels: the damaged share stays of the same order.
    assert 0.3 < large.mask.mean() / small.mask.mean() < 3


def test_no_damage_when_every_kind_is_off() -> None:
    damaged = damage_photo(_photo(), np.random.default_rng(0), NONE)
    assert not damaged.mask.any() and np.abs(damaged.image.astype(int) - _photo()).max() <= 1


def test_only_gray_uint8_is_taken() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\) uint8"):
        damage_photo(np.zeros((10, 10, 3), np.uint8), np.random.default_rng(0))


def _pairs(shard_dir: Path, scan: ScanConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    dataset = DamagedShards(
        [shard_dir / "val-000.tar"], crop_size=48, train=False, repeat=False, damage=ALL, scan=scan
    )
    return [(x.numpy()[0], y.numpy()[0]) for x, y in dataset]


def test_scanner_noise_lies_over_the_damage_too(shard_dir: Path) -> None:
    plain = ScanConfig(grain=0, jpeg=0)
    clean = _pairs(shard_dir, plain)
    noisy = _pairs(shard_dir, ScanConfig(grain=0, jpeg=0, sensor_noise=1, sensor_noise_std=(6, 6)))
    assert len(clean) == len(noisy) == 6
    for (clean_x, clean_mask), (noisy_x, noisy_mask) in zip(clean, noisy, strict=True):
        assert np.array_equal(clean_mask, noisy_mask)  # the same damage, still to be found
        difference = (noisy_x - clean_x) * 127.5
        damaged = clean_mask > 0.5
        assert damaged.any()
        assert 3 < difference[damaged].std() < 9 and 3 < difference[~damaged].std() < 9


def test_a_crease_is_lit_on_one_side_and_shadowed_on_the_other() -> None:
    gray = np.full((400, 400), 128, np.uint8)
    creased = damage_photo(gray, np.random.default_rng(2), replace(NONE, crease_prob=1))
    change = creased.image.astype(int) - 128
    assert creased.mask.any()
    assert (change[creased.mask] > 20).any() and (change[creased.mask] < -20).any()


def test_faint_defects_change_the_photo_less() -> None:
    gray = np.full((400, 400), 128, np.uint8)
    scratches = replace(NONE, scratch_prob=1, scratches=(6, 6), dark_share=0)
    strong = damage_photo(gray, np.random.default_rng(4), scratches)
    faint = damage_photo(gray, np.random.default_rng(4), replace(scratches, faint_share=1))
    assert faint.mask.any()
    assert np.median(faint.image[faint.mask]) < np.median(strong.image[strong.mask]) - 10


def test_real_print_kinds_leave_the_default_damage_as_it_was() -> None:
    """The new kinds draw nothing, and take no random numbers, unless switched on: the
    seeded evaluation damage the bars were set on stays the same."""
    photo = _photo()
    before = damage_photo(photo, np.random.default_rng(3), ALL)
    explicit = replace(ALL, emulsion_prob=0.0, flake_prob=0.0, edge_prob=0.0)
    after = damage_photo(photo, np.random.default_rng(3), explicit)
    assert np.array_equal(before.image, after.image)


def test_emulsion_cracks_wander_in_width_with_ragged_edges() -> None:
    from scipy import ndimage

    cracks = replace(NONE, emulsion_prob=1.0, emulsion_cracks=(3, 3), blur=(0.0, 0.0))
    damaged = damage_photo(_photo(1000, 1000), np.random.default_rng(5), cracks, scale=1.0)
    assert damaged.mask.any()
    # Half the width of the crack at each pixel of its middle line: thin and wide stretches.
    depth = ndimage.distance_transform_edt(damaged.mask)
    ridge = damaged.mask & (depth == ndimage.maximum_filter(depth, size=3))
    widths = 2 * depth[ridge]
    assert np.percentile(widths, 10) <= 2.5 and np.percentile(widths, 90) >= 4.5


def test_flakes_and_worn_edges_mark_what_they_draw() -> None:
    photo = _photo()
    edges = damage_photo(photo, np.random.default_rng(2), replace(NONE, edge_prob=1.0), scale=1.0)
    border = np.zeros_like(edges.mask)
    border[:12], border[-12:], border[:, :12], border[:, -12:] = True, True, True, True
    assert edges.mask.any() and edges.mask[border].mean() > 0.05
    # A worn border stays near the border (at most 3% of the side, and a torn corner).
    inner = np.zeros_like(edges.mask)
    inner[100:200, 120:280] = True
    assert not edges.mask[inner].any()
    flakes = replace(NONE, flake_prob=1.0, flakes=(5, 5))
    damaged = damage_photo(photo, np.random.default_rng(4), flakes, scale=1.0)
    changed = np.abs(damaged.image.astype(int) - photo.astype(int)) >= 6
    assert damaged.mask.any() and not (damaged.mask & ~changed).any()
