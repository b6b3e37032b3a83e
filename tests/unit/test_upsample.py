"""Guided chroma upsampling: the maths against kornia and PyTorch, edges kept, and the
fused full-resolution pass (RGB, and JPEG's 4:2:0 planes) against an exact float
reference."""

import threading
import time

import numpy as np
import pytest
import torch
from kornia.color import ycbcr_to_rgb
from kornia.filters import guided_blur
from PIL import Image
from torch.nn import functional as F

from rechroma.inference import upsample
from rechroma.inference.upsample import (
    Workspace,
    chroma_targets,
    guided_coefficients,
    planes_image,
    upsample_apply,
    upsample_apply_420,
)


def test_coefficients_reproduce_kornias_guided_filter() -> None:
    torch.manual_seed(0)
    guide = torch.rand(1, 24, 32)
    target = torch.rand(2, 24, 32) * 50
    slope, offset = guided_coefficients(guide, target, radius=2, eps=1e-3)
    expected = guided_blur(
        guide[None], target[None], kernel_size=5, eps=1e-3, border_type="replicate"
    )[0]
    torch.testing.assert_close(slope * guide + offset, expected, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize(
    ("small", "full"), [((7, 9), (50, 61)), ((24, 32), (24, 32)), ((3, 5), (600, 7))]
)
def test_bilinear_path_equals_torch_interpolate(monkeypatch, small, full) -> None:
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 97)  # many blocks, uneven last one
    torch.manual_seed(1)
    offset = torch.rand(3, *small) * 100 + 20
    gray = Image.fromarray(np.full(full, 100, dtype=np.uint8))
    y, cb, cr = upsample_apply(gray, torch.zeros_like(offset), offset)
    expected = F.interpolate(offset[None], size=full, mode="bilinear", align_corners=False)[0]
    expected = expected + torch.tensor([100.0, 128.0, 128.0]).view(3, 1, 1)
    got = torch.from_numpy(np.stack([y, cb, cr])).float()
    assert (got - expected.clamp(0, 255)).abs().max() <= 0.5 + 1e-3


def test_gray_prediction_keeps_the_input_exactly() -> None:
    rng = np.random.default_rng(0)
    luma = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    gray = Image.fromarray(luma)
    small_luma = torch.from_numpy(np.array(gray.resize((15, 10)))).float()[None] / 255
    targets = chroma_targets(small_luma.expand(3, -1, -1), small_luma)
    slope, offset = guided_coefficients(small_luma, targets)
    for space in ("rgb", "ycbcr"):
        planes = upsample_apply(gray, slope / 255, offset, space=space)
        mode = {"rgb": "RGB", "ycbcr": "YCbCr"}[space]
        rgb = np.asarray(planes_image(planes, mode).convert("RGB"))
        assert np.abs(rgb.astype(int) - luma[..., None]).max() <= 1


def step_scene(full: int = 256, small: int = 32) -> tuple[Image.Image, torch.Tensor, torch.Tensor]:
    """A dark left half and a light right half, blue only on the right.

    The low-resolution chroma is what downsampling a real photo gives: pixels that
    straddle the edge get a mix, in proportion to the luma they mix.
    """
    luma = np.full((full, full), 60, dtype=np.uint8)
    luma[:, full // 2 + 3 :] = 190  # the edge falls between low-resolution pixels
    gray = Image.fromarray(luma)
    small_luma = torch.from_numpy(np.array(gray.resize((small, small), Image.BILINEAR)))
    small_luma = small_luma.float()[None] / 255
    targets = torch.zeros(3, small, small)
    light_share = (small_luma[0] - 60 / 255) / (130 / 255)
    targets[1] = 40.0 * light_share.clamp(0, 1)  # Cb
    return gray, small_luma, targets


def test_guided_colour_stops_at_the_edge_where_bilinear_bleeds() -> None:
    gray, small_luma, targets = step_scene()
    slope, offset = guided_coefficients(small_luma, targets)
    cb_guided = upsample_apply(gray, slope / 255, offset)[1]
    cb_bilinear = upsample_apply(gray, torch.zeros_like(targets), targets)[1]
    dark = np.asarray(gray) < 128
    # Blue that leaks onto the dark side, summed over it.
    leak_guided = np.abs(cb_guided[dark].astype(int) - 128).sum()
    leak_bilinear = np.abs(cb_bilinear[dark].astype(int) - 128).sum()
    assert leak_guided < 0.25 * leak_bilinear
    # And the light side still gets its colour.
    assert np.median(cb_guided[~dark]) >= 128 + 35


def exact_rgb(gray: Image.Image, slope: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """What the fused pass approximates, in float at full resolution: A and b upsampled
    whole by PyTorch, applied to Y, converted by kornia, clipped once, in RGB."""
    size = gray.size[::-1]
    y = torch.from_numpy(np.array(gray)).float()
    a_full = F.interpolate(slope[None], size=size, mode="bilinear", align_corners=False)[0]
    b_full = F.interpolate(offset[None], size=size, mode="bilinear", align_corners=False)[0]
    ycbcr = (a_full * y + b_full) / 255
    ycbcr[0] += y / 255
    ycbcr[1:] += 0.5
    # kornia clips its output to [0, 1]; mid-gray plus the unclipped change does not.
    middle = torch.full_like(ycbcr, 0.5)
    change = (ycbcr - middle) / 8
    return ((ycbcr_to_rgb((middle + change)[None])[0] - 0.5) * 8 + 0.5).clamp(0, 1) * 255


def exact_ycbcr(gray: Image.Image, slope: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Y', Cb, Cr in float at full resolution, unclipped, from A and b upsampled whole."""
    size = gray.size[::-1]
    y = torch.from_numpy(np.array(gray)).float()
    a_full = F.interpolate(slope[None], size=size, mode="bilinear", align_corners=False)[0]
    b_full = F.interpolate(offset[None], size=size, mode="bilinear", align_corners=False)[0]
    ycbcr = a_full * y + b_full
    ycbcr[0] += y
    ycbcr[1:] += 128
    return ycbcr


def jpeg_420_means(plane: torch.Tensor) -> torch.Tensor:
    """The 2x2 block means a JPEG encoder stores of a full-size chroma plane, an odd last
    row or column padded by copying it, as libjpeg pads."""
    height, width = plane.shape
    padded = F.pad(plane[None, None], (0, width % 2, 0, height % 2), mode="replicate")
    return F.avg_pool2d(padded, 2)[0, 0]


def photo_scene(photo: Image.Image, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A and b as the renderer makes them for `photo`: a random colour per render pixel,
    fitted to the photo's own luma by the guided filter."""
    small_size = (max(1, photo.width // 10), max(1, photo.height // 10))
    small_luma = torch.from_numpy(np.array(photo.resize(small_size))).float()[None] / 255
    colour = torch.rand(3, *small_size[::-1], generator=torch.Generator().manual_seed(seed))
    slope, offset = guided_coefficients(small_luma, chroma_targets(colour, small_luma))
    return slope / 255, offset


@pytest.mark.parametrize("threads", [1, 2])
def test_420_planes_are_the_full_size_ycbcr_as_jpeg_stores_it(
    monkeypatch, real_photo, threads
) -> None:
    """Y' as exact as the RGB pass; Cb and Cr within rounding of the full-size chroma
    averaged over 2x2 pixels (the encoder's own downsampling), at odd sizes too. Their
    rounding is a level and a half at most: Pillow's 2x2 mean of Y is a whole level,
    off by up to half a level times A (large here: a new colour every 10 pixels)."""
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 5_000)
    photo = Image.open(real_photo).convert("L")
    workspace = Workspace(threads)
    crops = [(0, 0, photo.width, photo.height), (17, 9, 350, 250), (40, 0, 41, 200)]
    crops.append((0, 100, 151, 101))  # one row
    for index, box in enumerate(crops):
        gray = photo.crop(box)
        slope, offset = photo_scene(gray, index)
        planes = upsample_apply_420(gray, slope, offset, workspace=workspace)
        exact = exact_ycbcr(gray, slope, offset)
        assert planes.size == gray.size
        luma_error = (torch.from_numpy(planes.y).float() - exact[0].clamp(0, 255)).abs()
        assert luma_error.max() <= 0.5 + 0.05, gray.size
        for got, full in zip((planes.cb, planes.cr), exact[1:], strict=True):
            expected = jpeg_420_means(full).clamp(0, 255)
            assert got.shape == expected.shape == ((gray.height + 1) // 2, (gray.width + 1) // 2)
            assert got.flags.c_contiguous
            error = (torch.from_numpy(got).float() - expected).abs()
            assert error.max() <= 1.5, gray.size
            assert error.mean() < 0.4, gray.size  # rounding alone: 0.25


def test_420_planes_reuse_the_workspace_and_agree_across_threads(monkeypatch) -> None:
    gray, slope, offset = varied_scenes()[0]
    one = upsample_apply_420(gray, slope, offset, workspace=Workspace(1))
    first = [plane.copy() for plane in (one.y, one.cb, one.cr)]
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 700)
    workspace = Workspace(3)
    again = upsample_apply_420(gray, slope, offset, workspace=workspace)
    assert all(
        np.array_equal(a, b) for a, b in zip(first, (again.y, again.cb, again.cr), strict=True)
    )
    smaller = upsample_apply_420(gray.crop((0, 0, 100, 100)), slope, offset, workspace=workspace)
    assert smaller.y.ctypes.data == again.y.ctypes.data  # no new buffer for a smaller photo


def varied_scenes() -> list[tuple[Image.Image, torch.Tensor, torch.Tensor]]:
    """A real photo's luma at odd sizes and strong, noisy coefficients (colour that the
    clamps have to cut), plus a 1-pixel-wide and a 1-pixel-high image."""
    rng = np.random.default_rng(3)
    scenes = []
    for full, small in [((333, 517), (40, 62)), ((1, 200), (1, 9)), ((150, 1), (8, 1))]:
        luma = rng.integers(0, 256, full, dtype=np.uint8)
        slope = torch.from_numpy(rng.normal(0, 0.4, (3, *small))).float()
        offset = torch.from_numpy(rng.normal(0, 40, (3, *small))).float()
        scenes.append((Image.fromarray(luma), slope, offset))
    return scenes


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_rgb_pass_is_within_rounding_of_the_exact_result(
    monkeypatch, real_photo, threads
) -> None:
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 5_000)  # many blocks per row group
    photo = Image.open(real_photo).convert("L")
    small_luma = torch.from_numpy(np.array(photo.resize((48, 36)))).float()[None] / 255
    colour = torch.rand(3, 36, 48, generator=torch.Generator().manual_seed(0))
    slope, offset = guided_coefficients(small_luma, chroma_targets(colour, small_luma))
    workspace = Workspace(threads)
    for gray, a, b in [(photo, slope / 255, offset), *varied_scenes()]:
        got = upsample_apply(gray, a, b, workspace=workspace, space="rgb")
        error = (torch.from_numpy(got).float() - exact_rgb(gray, a, b)).abs()
        # Float32 in a different order: a hair over the half level of rounding.
        assert error.max() <= 0.5 + 0.05, gray.size


def test_threads_and_blocks_give_the_same_bytes(monkeypatch) -> None:
    gray, slope, offset = varied_scenes()[0]
    one = upsample_apply(gray, slope, offset, workspace=Workspace(1)).copy()
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 700)
    assert np.array_equal(upsample_apply(gray, slope, offset, workspace=Workspace(3)), one)


def test_a_stalled_thread_leaves_its_work_to_the_others(monkeypatch) -> None:
    """A neighbour process holding a core stalls one of our threads: the others take
    the blocks (claimed one group at a time), instead of waiting at a fixed split."""
    done_by: dict[str, int] = {}
    original = upsample._fused_block
    stalled = threading.Event()

    def spy(*args) -> None:
        name = threading.current_thread().name
        if name != "MainThread" and not stalled.is_set():
            stalled.set()
            time.sleep(0.5)  # this thread's core is busy elsewhere
        done_by[name] = done_by.get(name, 0) + 1
        original(*args)

    monkeypatch.setattr(upsample, "_fused_block", spy)
    # Blocks of at most 10 rows, so that there are dozens to share out (a 64-pixel-wide photo would
    # otherwise be one block).
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 640)
    gray = Image.new("L", (64, 400), 90)
    slope, offset = torch.zeros(3, 40, 8), torch.full((3, 40, 8), 10.0)
    planes = upsample_apply(gray, slope, offset, workspace=Workspace(2))
    assert sum(done_by.values()) > 30
    assert done_by["MainThread"] >= sum(done_by.values()) - 1
    assert (planes[0] == 100).all() and (planes[1:] == 138).all()


def test_workspace_reuses_its_buffers_but_not_for_huge_photos(monkeypatch) -> None:
    workspace = Workspace(1)
    first = workspace.planes(100, 120)
    assert workspace.planes(90, 110).ctypes.data == first.ctypes.data  # a smaller photo
    monkeypatch.setattr(upsample, "KEEP_PIXELS", 20_000)
    huge = workspace.planes(200, 200)
    assert huge.shape == (3, 200, 200)
    assert workspace.planes(100, 120).ctypes.data == first.ctypes.data  # still kept


def test_blocks_stay_within_block_pixels(monkeypatch) -> None:
    blocks = []
    original = upsample._fused_block

    def spy(luma, planes, scratch, wide, lower_row, row_weight, top, bottom) -> None:
        blocks.append((top, bottom))
        original(luma, planes, scratch, wide, lower_row, row_weight, top, bottom)

    monkeypatch.setattr(upsample, "_fused_block", spy)
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 1000)
    gray = Image.new("L", (100, 95), 128)
    upsample_apply(gray, torch.zeros(3, 2, 4), torch.zeros(3, 2, 4))
    assert max(bottom - top for top, bottom in blocks) == 10
    covered = sorted(row for top, bottom in blocks for row in range(top, bottom))
    assert covered == list(range(95))


def test_small_photos_blocks_span_rows_and_give_the_same_bytes(monkeypatch) -> None:
    """A small photo's rows are gathered from several low-resolution rows per block (few
    NumPy calls); the bytes are those of one low-resolution row per block."""
    rng = np.random.default_rng(5)
    gray = Image.fromarray(rng.integers(0, 256, (203, 301), dtype=np.uint8))
    slope, offset = torch.randn(3, 24, 36) * 0.3, torch.randn(3, 24, 36) * 40
    blocks = []
    original = upsample._fused_block

    def spy(luma, planes, scratch, wide, lower_row, row_weight, top, bottom) -> None:
        blocks.append(len(set(lower_row[top:bottom].tolist())))
        original(luma, planes, scratch, wide, lower_row, row_weight, top, bottom)

    monkeypatch.setattr(upsample, "_fused_block", spy)
    gathered = upsample_apply(gray, slope, offset, space="rgb").copy()
    assert blocks == [24]  # the whole photo in one block, across all 24 rows
    monkeypatch.setattr(upsample, "BLOCK_PIXELS", 301)  # one output row per block
    blocks.clear()
    one_row_each = upsample_apply(gray, slope, offset, space="rgb").copy()
    assert set(blocks) == {1}
    np.testing.assert_array_equal(gathered, one_row_each)
