"""`rechroma restore`, `colorize --restore` and `Restorer`: real files, a real detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from commands import rechroma
from rechroma.data.print_damage import DamageConfig, damage_photo
from rechroma.models import build_model
from rechroma.models.checkpoint import save_weights
from rechroma.restoration import Restorer
from rechroma.restoration import restorer as restorer_module
from rechroma.restoration.restorer import TILE, _spans, inpaint_strips
from rechroma.restoration.tone import is_faded, repair_tone


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> Path:
    """An untrained small detector whose output layer says "damage" where the photo is
    bright: a stand-in with a known, checkable answer."""
    torch.manual_seed(0)
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    model = build_model("defect-unet", **kwargs)
    path = tmp_path_factory.mktemp("detector") / "tiny-detector.safetensors"
    return save_weights(path, model, "defect-unet", kwargs, step=0)


def _photo(size=(320, 240), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    base = 70 + 90 * xs / size[0] + 10 * np.sin(ys / 9)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def test_tiles_cover_every_pixel_once() -> None:
    for length in (100, TILE, TILE + 1, 3 * TILE + 17):
        kept = np.zeros(length, int)
        for start, end, keep_start, keep_end in _spans(length):
            assert end - start <= TILE and start <= keep_start < keep_end <= end
            kept[keep_start:keep_end] += 1
        assert (kept == 1).all()


def test_tiled_detection_equals_the_whole_photo(tiny_detector, monkeypatch) -> None:
    restorer = Restorer.load(tiny_detector)
    photo = Image.fromarray(_photo())
    whole = np.asarray(restorer.probability(photo)).astype(int)
    # Tiles far smaller than the photo (5 x 4 of them), overlapping by more than the
    # tiny network's receptive field: the seams must not show.
    monkeypatch.setattr(restorer_module, "TILE", 112)
    monkeypatch.setattr(restorer_module, "OVERLAP", 24)
    assert len(_spans(photo.width)) == 5 and len(_spans(photo.height)) == 4
    tiled = np.asarray(restorer.probability(photo)).astype(int)
    assert np.abs(tiled - whole).max() <= 1


def test_smaller_scales_add_to_the_working_size_answer(tmp_path) -> None:
    # The tiny detector with its output layer sharpened, so its answers differ by scale.
    torch.manual_seed(0)
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    model = build_model("defect-unet", **kwargs)
    with torch.no_grad():
        model.head.weight.mul_(40)
    detector = save_weights(tmp_path / "sharp.safetensors", model, "defect-unet", kwargs, step=0)
    photo = Image.fromarray(_photo((480, 360)))
    alone = np.asarray(Restorer.load(detector).probability(photo)).astype(int)
    scaled = Restorer.load(detector, scales=(1.0, 0.5))
    assert scaled.scales == (1.0, 0.5)
    both = np.asarray(scaled.probability(photo)).astype(int)
    half = Restorer.load(detector).probability(photo.resize((240, 180), Image.Resampling.BOX))
    half = np.asarray(half.resize(photo.size, Image.Resampling.BILINEAR)).astype(int)
    # The most confident of the two answers at each pixel (to a level of rounding).
    assert np.abs(both - np.maximum(alone, half)).max() <= 2
    assert (half > alone + 2).any() and (both > alone + 2).any()
    # A photo whose half would be a thumbnail is looked at at its own size only.
    small = Image.fromarray(_photo((300, 200)))
    at_own_size = Restorer.load(detector).probability(small)
    np.testing.assert_array_equal(np.asarray(scaled.probability(small)), np.asarray(at_own_size))


def test_the_fill_in_strips_equals_the_whole_photo_fill() -> None:
    import cv2

    clean = np.tile(_photo(), (3, 2))  # 640 x 720: three strips of 240 rows
    damaged = damage_photo(
        clean, np.random.default_rng(2), DamageConfig(scratch_prob=1, crack_prob=1, dust=(40, 60))
    )
    mask = damaged.mask.astype(np.uint8)
    whole = cv2.inpaint(damaged.image, mask, 3, cv2.INPAINT_TELEA)
    assert np.array_equal(inpaint_strips(damaged.image, mask, 3, workers=3), whole)


def test_only_masked_pixels_change(tiny_detector) -> None:
    restorer = Restorer.load(tiny_detector)
    clean = _photo()
    damaged = damage_photo(clean, np.random.default_rng(1), DamageConfig(scratch_prob=1))
    result = restorer.restore(Image.fromarray(damaged.image), tone="off", mask=damaged.mask)
    out = np.asarray(result.photo.gray)
    assert np.array_equal(out[~damaged.mask], damaged.image[~damaged.mask])
    # Filling the true mask brings the photo back close to the clean one.
    error_before = np.abs(damaged.image.astype(int) - clean)[damaged.mask].mean()
    error_after = np.abs(out.astype(int) - clean)[damaged.mask].mean()
    assert error_after < 0.3 * error_before


def test_the_detector_runs_on_a_large_photo_in_tiles(tiny_detector) -> None:
    restorer = Restorer.load(tiny_detector)
    big = Image.fromarray(np.tile(_photo(), (6, 6)))  # 1920 x 1440: shrunk, then tiled
    probability = restorer.probability(big)
    assert probability.size == big.size and probability.mode == "L"
    assert restorer.detect(big).shape == (big.height, big.width)


def test_tone_repair_only_when_faded() -> None:
    healthy = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1)))
    faded = Image.fromarray((np.asarray(healthy) * 0.4 + 90).astype(np.uint8))
    assert not is_faded(healthy) and is_faded(faded)
    assert repair_tone(healthy, "auto") is healthy
    stretched = np.asarray(repair_tone(faded, "auto"))
    assert stretched.min() <= 3 and stretched.max() >= 252
    half = np.asarray(repair_tone(faded, "on", strength=0.5)).astype(int)
    inside = (stretched > 5) & (stretched < 250)  # away from the clipped ends
    expected = (np.asarray(faded).astype(int) + stretched) / 2
    assert np.abs(half - expected)[inside].max() <= 1
    assert np.asarray(repair_tone(faded, "clahe")).std() > np.asarray(faded).std()


def test_restore_command_on_a_folder(tiny_detector, tmp_path) -> None:
    src = tmp_path / "scans"
    (src / "box").mkdir(parents=True)
    Image.fromarray(_photo()).save(src / "a.png")
    Image.fromarray(_photo(seed=1)).convert("RGB").save(src / "box" / "b.jpg")
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = rechroma(
        "restore", str(src), str(out), "--detector", str(tiny_detector), "--save-mask", "--json"
    )
    assert result.returncode == 1, result.stderr  # the broken file
    summary = json.loads(result.stdout)
    assert sorted(summary["done"]) == sorted([str(out / "a.png"), str(out / "box" / "b.jpg")])
    assert summary["failed"][0]["reason"] == "not a supported image"
    restored = Image.open(out / "box" / "b.jpg")
    assert restored.size == (320, 240) and restored.mode == "L"
    mask = Image.open(out / "box" / "b.mask.png")
    assert mask.size == (320, 240) and set(np.unique(np.asarray(mask))) <= {0, 255}
    again = rechroma("restore", str(src), str(out), "--detector", str(tiny_detector))
    assert "2 skipped (output exists)" in again.stderr


def test_colorize_with_restore(tiny_detector, tiny_weights, tmp_path) -> None:
    src = tmp_path / "scan.png"
    damaged = damage_photo(_photo(), np.random.default_rng(2), DamageConfig(scratch_prob=1))
    Image.fromarray(damaged.image).save(src)
    out = tmp_path / "colour.png"
    result = rechroma(
        "colorize", str(src), str(out), "--restore", "--detector", str(tiny_detector),
        "--save-mask", "--tone", "off", "--weights", str(tiny_weights),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (320, 240) and Image.open(out).mode == "RGB"
    assert (tmp_path / "colour.mask.png").is_file()


def test_eval_restore_reports_and_draws(tiny_detector, photos_val, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(photos_val.glob("*.JPEG"))[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    result = rechroma(
        "eval-restore", str(folder), "--out", str(tmp_path / "report"),
        "--detector", str(tiny_detector), "--max-side", "256",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert summary["count"] == 3
    assert {"psnr_damaged", "psnr_repaired", "f1", "false_repair_share"} <= set(summary["median"])
    assert Image.open(tmp_path / "report" / "grid.png").width == 4 * 200


def test_hand_masks_are_met_within_two_pixels() -> None:
    from rechroma.evaluation.restore import REAL_TOLERANCE_PX, mask_scores

    truth = np.zeros((100, 100), bool)
    truth[50, 10:90] = True  # a crack drawn by hand, one pixel wide
    for shift, expected in ((0, 1.0), (1, 1.0), (2, 1.0), (3, 0.0)):
        found = np.roll(truth, shift, axis=0)
        scores = mask_scores(found, truth, REAL_TOLERANCE_PX)
        assert scores["precision"] == scores["recall"] == expected, shift
    found = truth.copy()
    found[5:15, 5:15] = True  # a blotch far from any crack: found, but not damage
    scores = mask_scores(found, truth, REAL_TOLERANCE_PX)
    assert scores["recall"] == 1.0 and scores["precision"] == pytest.approx(80 / 180)


def test_eval_restore_scores_real_prints_against_hand_masks(tiny_detector, tmp_path) -> None:
    from rechroma.evaluation.restore import REAL_TOLERANCE_PX, mask_scores

    prints = tmp_path / "real"
    prints.mkdir()
    elsewhere = tmp_path / "scans"
    elsewhere.mkdir()
    for name, folder, seed in (("cracked", prints, 1), ("creased", elsewhere, 2)):
        photo = _photo(seed=seed)
        photo[100:103, 40:280] = 250  # bright paper showing through a crack
        Image.fromarray(photo).save(folder / f"{name}.png")
        mask = np.zeros_like(photo)
        mask[100:103, 40:280] = 255
        Image.fromarray(mask).save(prints / f"{name}-mask.png")
    # A print kept elsewhere is named in the folder's sources.json.
    (prints / "sources.json").write_text(json.dumps({"creased": {"image": "../scans/creased.png"}}))
    out = tmp_path / "report"
    result = rechroma(
        "eval-restore", str(elsewhere), "--out", str(out), "--detector", str(tiny_detector),
        "--real", str(prints), "--max-side", "256",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    real = json.loads((out / "metrics.json").read_text())["real_damage"]
    assert sorted(real["prints"]) == ["cracked", "creased"] and real["tolerance_px"] == 2
    restorer = Restorer.load(tiny_detector)
    for name, folder in (("cracked", prints), ("creased", elsewhere)):
        found = restorer.restore(Image.open(folder / f"{name}.png"), tone="off").mask
        truth = np.asarray(Image.open(prints / f"{name}-mask.png")) > 127
        expected = mask_scores(found, truth, REAL_TOLERANCE_PX)
        for key, value in expected.items():
            assert real["prints"][name][key] == pytest.approx(value)
        assert real["prints"][name]["marked_share"] == pytest.approx(truth.mean())
    assert "## Real damage" in (out / "report.md").read_text()
    assert Image.open(out / "real.png").width == 4 * 260

    # A mask that does not fit its print is refused with a reason.
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(prints / "cracked-mask.png")
    result = rechroma(
        "eval-restore", str(elsewhere), "--out", str(out), "--detector", str(tiny_detector),
        "--real", str(prints), "--max-side", "256",
    )  # fmt: skip
    assert result.returncode != 0 and "10x10 mask for a 320x240 print" in result.stderr
    assert "Traceback" not in result.stderr

    # A photo too small for the damage generator is skipped with a line, not a crash.
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(elsewhere / "stamp.png")
    result = rechroma(
        "eval-restore", str(elsewhere), "--out", str(out), "--detector", str(tiny_detector),
    )  # fmt: skip
    assert result.returncode == 0 and "stamp.png: 10x10 is too small" in result.stderr
    assert json.loads((out / "metrics.json").read_text())["count"] == 1


@pytest.fixture(scope="module")
def restore_server(start_server, tiny_weights, tiny_detector) -> str:
    from rechroma.inference.colorizer import Colorizer
    from rechroma.server.settings import ServerSettings

    return start_server(
        ServerSettings(),
        Colorizer.load(tiny_weights, render_size=64, threads=1),
        Restorer.load(tiny_detector),
    )


def test_restore_route_answers_the_photo_or_its_mask(restore_server) -> None:
    import io

    import httpx

    buffer = io.BytesIO()
    Image.fromarray(_photo()).save(buffer, format="PNG")
    files = {"file": ("scan.png", buffer.getvalue(), "image/png")}
    photo = httpx.post(f"{restore_server}/api/restore", files=files, timeout=60)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert int(photo.headers["x-repaired-pixels"]) >= 0
    assert Image.open(io.BytesIO(photo.content)).size == (320, 240)
    mask = httpx.post(
        f"{restore_server}/api/restore", files=files, data={"answer": "mask"}, timeout=60
    )
    assert Image.open(io.BytesIO(mask.content)).mode == "L"
    bad = httpx.post(
        f"{restore_server}/api/restore", files=files, data={"tone": "sepia"}, timeout=60
    )
    assert bad.status_code == 422
    coloured = httpx.post(
        f"{restore_server}/api/colorize", files=files, data={"restore": "true"}, timeout=60
    )
    assert coloured.status_code == 200
    assert Image.open(io.BytesIO(coloured.content)).mode == "RGB"


def test_a_drawn_mask_is_repaired_exactly(restore_server) -> None:
    import io

    import httpx

    photo, mask = io.BytesIO(), io.BytesIO()
    Image.fromarray(_photo()).save(photo, format="PNG")
    drawn = np.zeros((60, 80), np.uint8)  # a quarter-size mask: scaled up to the photo
    drawn[10:20, 30:40] = 255
    Image.fromarray(drawn).save(mask, format="PNG")
    files = [
        ("file", ("scan.png", photo.getvalue(), "image/png")),
        ("mask", ("mask.png", mask.getvalue(), "image/png")),
    ]
    answer = httpx.post(f"{restore_server}/api/restore", files=files, timeout=60)
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["x-repaired-pixels"]) == 40 * 40  # 10x10 at 4x4 each
    no_restore = httpx.post(f"{restore_server}/api/colorize", files=files, timeout=60)
    assert no_restore.status_code == 422 and "mask" in no_restore.json()["detail"]


def test_the_detector_trains_and_fine_tunes_from_weights(tiny_config, tmp_path) -> None:
    from dataclasses import replace

    from rechroma.errors import ConfigError
    from rechroma.models.checkpoint import load_model
    from rechroma.training.config import InitConfig, LossConfig, ModelConfig
    from rechroma.training.train import train

    cfg = replace(
        tiny_config,
        task="restore",
        model=ModelConfig(name="defect-unet", width=4, depth=2, max_channels=8),
        loss=replace(LossConfig(), positive_weight=2.0, hard_negative_weight=0.1),
    )
    first = train(cfg, tmp_path / "a", progress=False)
    model, info = load_model(first)
    assert info.model_name == "defect-unet" and info.step == 4
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in trained] == [1, 2, 3, 4]
    assert all(r["hard_negative"] > 0 for r in trained)
    assert all(0 <= r["f1"] <= 1 for r in records if r["kind"] == "val")

    # Fine-tuning starts from the given weights: after a step at a zero learning rate,
    # its weights are those it started from (normalisation statistics still move).
    still = replace(
        cfg,
        init=InitConfig(generator=str(first)),
        optim=replace(cfg.optim, lr=0.0),
        train=replace(cfg.train, steps=1, ckpt_every=1, val_batches=0),
    )
    tuned, _ = load_model(train(still, tmp_path / "b", progress=False))
    tuned_weights = dict(tuned.named_parameters())
    for name, value in model.named_parameters():
        torch.testing.assert_close(tuned_weights[name], value)
    wider = replace(still, model=replace(still.model, width=8))
    with pytest.raises(ConfigError, match="init.generator"):
        train(wider, tmp_path / "c", progress=False)


def test_imagenet_context_starts_from_a_plain_detector_unchanged(tiny_config, tmp_path) -> None:
    from dataclasses import replace

    from rechroma.errors import ConfigError
    from rechroma.models.checkpoint import load_model
    from rechroma.models.efficientnet_lite import imagenet_state_dict
    from rechroma.training.config import InitConfig, ModelConfig
    from rechroma.training.train import train

    plain = replace(
        tiny_config,
        task="restore",
        model=ModelConfig(name="defect-unet", width=4, depth=5, max_channels=16),
    )
    plain_file = train(plain, tmp_path / "plain", progress=False)
    start, _ = load_model(plain_file)
    context = replace(
        plain,
        model=replace(plain.model, imagenet_context=True),
        init=InitConfig(generator=str(plain_file)),
        train=replace(plain.train, steps=2, ckpt_every=1, val_batches=0),
    )
    with pytest.raises(ConfigError, match="imagenet_encoder"):
        train(context, tmp_path / "no-trunk", progress=False)
    context = replace(context, init=replace(context.init, imagenet_encoder=True))
    still = replace(
        context, optim=replace(context.optim, lr=0.0), train=replace(context.train, steps=1)
    )
    tuned, info = load_model(train(still, tmp_path / "ctx0", progress=False))
    assert info.model_kwargs["imagenet_context"] is True
    # The U-Net's weights are the plain detector's and the trunk's are ImageNet's...
    tuned_weights = dict(tuned.named_parameters())
    for name, value in start.named_parameters():
        torch.testing.assert_close(tuned_weights[name], value)
    imagenet = imagenet_state_dict()
    gray_stem = imagenet["trunk.stem.1.weight"].sum(1, keepdim=True)
    assert torch.equal(tuned.context.stem[1].weight, gray_stem)
    # ...and with the fusion at zero the answers are those of the U-Net alone.
    alone = build_model("defect-unet", **{**info.model_kwargs, "imagenet_context": False})
    alone.load_state_dict(tuned.state_dict(), strict=False)
    photo = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(tuned.eval()(photo), alone.eval()(photo))

    # Trained on, the fusion learns while the trunk, batch-norm statistics too, stays put.
    moved, _ = load_model(train(context, tmp_path / "ctx", progress=False))
    trunk = dict(tuned.context.state_dict())
    for name, value in moved.context.state_dict().items():
        assert torch.equal(value, trunk[name]), name
    assert any(conv.weight.abs().sum() > 0 for conv in moved.context_fuse.values())
    assert not moved.train().context.training

    # Told to, the trunk's weights learn too (at a share of the rate); its statistics not.
    tuning = replace(context, optim=replace(context.optim, context_lr_ratio=0.1))
    tuned_trunk, _ = load_model(train(tuning, tmp_path / "tuned", progress=False))
    after = tuned_trunk.context.state_dict()
    assert not torch.equal(after["stem.1.weight"], trunk["stem.1.weight"])
    assert torch.equal(after["stem.2.running_mean"], trunk["stem.2.running_mean"])


def test_eval_restore_can_draw_damage_at_a_scans_scale(tiny_detector, tmp_path) -> None:
    from rechroma.errors import InvalidOptionError
    from rechroma.evaluation.restore import evaluate_restoration, write_restore_report

    folder = tmp_path / "thumbnails"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(_photo((120, 90), seed=index)).save(folder / f"{index}.png")
    restorer = Restorer.load(tiny_detector)
    as_is = evaluate_restoration(restorer, folder, max_side=512, progress=False)
    enlarged = evaluate_restoration(restorer, folder, max_side=512, enlarge_to=400, progress=False)
    assert as_is.grid[0][1][0].size == (120, 90)
    assert enlarged.grid[0][1][0].size == (400, 300)
    assert enlarged.summary["enlarge_to"] == 400 and as_is.summary["enlarge_to"] is None
    with pytest.raises(InvalidOptionError, match="enlarge-to"):
        evaluate_restoration(restorer, folder, max_side=256, enlarge_to=400, progress=False)

    # Grainy prints: the grain is part of the clean photo the repair is scored against.
    grainy = evaluate_restoration(restorer, folder, max_side=512, grain=6, progress=False)
    for plain_row, grainy_row in zip(as_is.grid, grainy.grid, strict=True):
        plain_clean, grainy_clean = (
            np.asarray(row[1][3], dtype=float) for row in (plain_row, grainy_row)
        )
        assert 4 < (grainy_clean - plain_clean).std() < 8
    assert grainy.summary["grain"] == 6 and as_is.summary["grain"] == 0
    write_restore_report(grainy, tmp_path / "report")
    assert "film grain of 6 levels" in (tmp_path / "report" / "report.md").read_text()


def test_the_detector_file_carries_its_threshold(tiny_detector, tiny_weights, tmp_path) -> None:
    from rechroma.restoration.restorer import DEFAULT_THRESHOLD

    calibrated = tmp_path / "calibrated.safetensors"
    result = rechroma(
        "export-weights", str(tiny_detector), str(calibrated), "--defect-threshold", "0.6"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["defect_threshold"] == 0.6
    assert Restorer.load(tiny_detector).threshold == DEFAULT_THRESHOLD
    assert Restorer.load(calibrated).threshold == 0.6
    assert Restorer.load(calibrated, threshold=0.3).threshold == 0.3  # the caller's wins
    photo = Image.fromarray(_photo())
    np.testing.assert_array_equal(
        Restorer.load(calibrated).detect(photo), Restorer.load(tiny_detector).detect(photo, 0.6)
    )
    # Re-exporting (e.g. to fp16) keeps it; a colorizer's weights have no use for one.
    again = tmp_path / "again.safetensors"
    assert rechroma("export-weights", str(calibrated), str(again), "--fp16").returncode == 0
    assert Restorer.load(again).threshold == 0.6
    # Its scales too: the threshold was chosen with them.
    scaled = tmp_path / "scaled.safetensors"
    result = rechroma("export-weights", str(calibrated), str(scaled), "--defect-scales", "1", "0.5")
    assert json.loads(result.stdout)["defect_scales"] == [1.0, 0.5]
    assert Restorer.load(scaled).scales == (1.0, 0.5) and Restorer.load(calibrated).scales == (1.0,)
    assert Restorer.load(scaled).threshold == 0.6
    wrong = rechroma(
        "export-weights", str(calibrated), str(tmp_path / "y.safetensors"), "--defect-scales", "0.5"
    )
    assert wrong.returncode != 0 and "defect scales" in wrong.stderr
    refused = rechroma(
        "export-weights",
        str(tiny_weights),
        str(tmp_path / "x.safetensors"),
        "--defect-threshold",
        "0.5",
    )
    assert refused.returncode != 0 and "damage detector" in refused.stderr
    assert not (tmp_path / "x.safetensors").exists()
