import json

import pytest
import torch

from rechroma.models.checkpoint import load_generator
from rechroma.training.config import OptimConfig
from rechroma.training.train import get_lr, latest_checkpoint, train


def test_learning_rate_warms_up_then_decays() -> None:
    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    rates = [get_lr(step, 100, cfg) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=0.01)


def test_short_run_writes_loadable_checkpoints_logs_and_samples(
    tiny_config, shard_dir, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    final = train(tiny_config, run_dir, progress=False)
    assert final == run_dir / "checkpoints" / "step_0000004.safetensors"
    model, info = load_generator(final)
    assert info.step == 4 and info.config["model"]["width"] == 8
    sidecar = json.loads(final.with_suffix(".json").read_text())
    assert sidecar["step"] == 4 and sidecar["config"] == info.config
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    val = [r for r in records if r["kind"] == "val"]
    assert len(val) == 2 and all(r["val_loss"] > 0 for r in val)
    # Per source (a shard's folder), and overall as the mean of the sources.
    assert all(r["sources"] == {shard_dir.name: r["val_loss"]} for r in val)
    assert (run_dir / "samples" / "step_0000004.png").is_file()
    assert json.loads((run_dir / "config.json").read_text())["train"]["steps"] == 4


def test_resume_continues_from_the_newest_checkpoint(tiny_config, tmp_path) -> None:
    from dataclasses import replace

    run_dir = tmp_path / "run"
    train(tiny_config, run_dir, progress=False)
    longer = replace(tiny_config, train=replace(tiny_config.train, steps=6))
    final = train(longer, run_dir, resume=True, progress=False)
    assert final.name == "step_0000006.safetensors"
    assert latest_checkpoint(run_dir) == final
    steps = [
        json.loads(line)["step"]
        for line in (run_dir / "log.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_keeps_the_moving_average(tiny_config, tmp_path) -> None:
    """The EMA restored from the checkpoint goes on averaging: after one more step it is
    the decayed mix of the restored average and the new raw weights, not the raw weights."""
    from dataclasses import replace

    cfg = replace(tiny_config, train=replace(tiny_config.train, ema_decay=0.5))
    run_dir = tmp_path / "run"
    restored, _ = load_generator(train(cfg, run_dir, progress=False))
    longer = replace(cfg, train=replace(cfg.train, steps=5))
    final = train(longer, run_dir, resume=True, progress=False)
    average, _ = load_generator(final)
    raw = torch.load(final.with_suffix(".optim.pt"), weights_only=True)["generator"]
    name = "head.weight" if "head.weight" in raw else next(iter(raw))
    expected = 0.5 * restored.state_dict()[name] + 0.5 * raw[name]
    torch.testing.assert_close(average.state_dict()[name], expected)


def test_resume_does_not_need_the_weights_the_run_started_from(tiny_config, tmp_path) -> None:
    """A long run outlives its start: the init file may be gone from the tree (as v2-wip
    went when v3-wip replaced it) and the run still resumes from its own checkpoint."""
    from dataclasses import replace

    from rechroma.training.config import InitConfig

    start = tmp_path / "start.safetensors"
    train(tiny_config, tmp_path / "first", progress=False).rename(start)
    cfg = replace(tiny_config, init=InitConfig(generator=str(start)))
    run_dir = tmp_path / "run"
    train(cfg, run_dir, progress=False)
    start.unlink()
    longer = replace(cfg, train=replace(cfg.train, steps=6))
    assert train(longer, run_dir, resume=True, progress=False).name == "step_0000006.safetensors"


def test_resume_without_checkpoints_is_an_error(tiny_config, tmp_path) -> None:
    from rechroma.errors import CheckpointError

    with pytest.raises(CheckpointError):
        train(tiny_config, tmp_path / "empty", resume=True, progress=False)


def test_lite0_unet_trains_from_imagenet_weights_with_hints_and_a_mix(tiny_config, tmp_path):
    """A few steps of the v1 recipe's parts: pretrained Lite0, mixed sources, hints, the
    perceptual loss on Lite0 features, a frozen-encoder phase, EMA."""
    from dataclasses import replace

    from rechroma.models.efficientnet_lite import imagenet_state_dict
    from rechroma.training.config import (
        HintConfig,
        InitConfig,
        LossConfig,
        ModelConfig,
    )

    data = tiny_config.data
    cfg = replace(
        tiny_config,
        data=replace(
            data,
            train_shards=(data.train_shards[0], data.val_shards[0]),
            train_weights=(0.7, 0.3),
            crop_sizes=(32, 64),
            crop_size=64,
        ),
        model=ModelConfig(name="lite0-unet", decoder_channels=(32, 16, 16, 8, 8)),
        init=InitConfig(imagenet_encoder=True, freeze_encoder_steps=2),
        loss=LossConfig(
            perceptual_weight=0.01,
            perceptual_classifier="efficientnet-lite0",
            colorfulness_weight=0.1,
            colorfulness_mode="match",
        ),
        hints=HintConfig(probability=1.0, mean_points=3),
        train=replace(tiny_config.train, ema_decay=0.9, bf16=True),
    )
    final = train(cfg, tmp_path / "run", progress=False)
    model, info = load_generator(final)
    assert info.model_name == "lite0-unet" and info.model_kwargs == {
        "decoder_channels": [32, 16, 16, 8, 8]
    }
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in log]
    losses = [r for r in records if r["kind"] == "train"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in losses)
    assert "perceptual" in losses[0] and "colorfulness" in losses[0]
    # Frozen for two steps, then trained: the encoder moved away from ImageNet's weights,
    # and its stem learned to read the hint channels (they start at zero).
    stem = model.encoder.stem[1].weight
    imagenet_stem = imagenet_state_dict()["trunk.stem.1.weight"]
    assert not torch.allclose(stem[:, :1], imagenet_stem.sum(dim=1, keepdim=True))
    assert stem[:, 1:].abs().sum() > 0


def test_bf16_is_used_only_where_the_cpu_supports_it() -> None:
    from rechroma.training.config import TrainConfig
    from rechroma.training.train import use_bf16

    cpu = torch.device("cpu")
    assert use_bf16(TrainConfig(bf16=False), cpu) is False
    supported = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert use_bf16(TrainConfig(bf16=True), cpu) is supported
