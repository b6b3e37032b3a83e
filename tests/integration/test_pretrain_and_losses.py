"""Classifier pretraining and the full v1 recipe (encoder init, perceptual, colourfulness,
PatchGAN, EMA, multi-scale) on tiny synthetic shards."""

import json
from dataclasses import replace

import pytest
import torch

from rechroma.errors import ConfigError
from rechroma.models.checkpoint import load_generator, load_model, read_info
from rechroma.training.config import (
    ClassifierConfig,
    DataConfig,
    InitConfig,
    LossConfig,
    ModelConfig,
    PretrainConfig,
    TrainConfig,
)
from rechroma.training.pretrain import pretrain
from rechroma.training.train import train

TINY_MODEL = ModelConfig(width=8, depth=3, max_channels=32)


def pretrain_config(tiny_config, kind: str) -> PretrainConfig:
    return PretrainConfig(
        data=replace(tiny_config.data, test_shards=1),
        model=TINY_MODEL,
        train=TrainConfig(steps=3, batch_size=4, threads=1, log_every=1),
        classifier=ClassifierConfig(input=kind),
    )


@pytest.fixture()
def classifiers(tiny_config, tmp_path) -> dict:
    return {
        kind: pretrain(pretrain_config(tiny_config, kind), tmp_path / kind, progress=False)
        for kind in ("l", "rgb")
    }


def test_pretraining_reports_held_out_accuracy(classifiers) -> None:
    for kind, result in classifiers.items():
        assert result.test_images == 11  # the held-out shard's labelled, decodable photos
        assert 0.0 <= result.top1 <= result.top5 <= 1.0
        model, info = load_model(result.weights)
        assert info.model_name == "classifier" and info.config["test"]["top1"] == result.top1
        channels = 1 if kind == "l" else 3
        assert model(torch.zeros(2, channels, 32, 32)).shape == (2, 3)  # 3 classes
        log = [json.loads(line) for line in (result.weights.parent / "log.jsonl").open()]
        assert [r["kind"] for r in log] == ["train"] * 3 + ["test"]


def test_full_recipe_trains_and_ships_the_ema(tiny_config, classifiers, tmp_path) -> None:
    cfg = replace(
        tiny_config,
        data=replace(tiny_config.data, crop_size=32, crop_sizes=(16, 24, 32)),
        model=TINY_MODEL,
        train=replace(tiny_config.train, steps=4, ema_decay=0.5),
        loss=LossConfig(
            perceptual_weight=0.5,
            perceptual_classifier=str(classifiers["rgb"].weights),
            colorfulness_weight=0.1,
            colorfulness_mode="match",
            adversarial_weight=0.1,
            adversarial_start=2,
        ),
        init=InitConfig(encoder=str(classifiers["l"].weights), freeze_encoder_steps=2),
    )
    run_dir = tmp_path / "run"
    final = train(cfg, run_dir, progress=False)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").open()]
    train_records = [r for r in records if r["kind"] == "train"]
    assert all({"pixel", "perceptual", "colorfulness"} <= set(r) for r in train_records)
    assert "d_loss" not in train_records[0] and "d_loss" in train_records[-1]
    assert read_info(final).config["loss"]["adversarial_weight"] == 0.1

    # The checkpoint holds the EMA, and the raw weights sit in the optimizer state.
    shipped, _ = load_generator(final)
    state = torch.load(final.with_suffix(".optim.pt"), weights_only=True)
    raw = state["generator"]
    name = "head.weight"
    assert not torch.equal(shipped.state_dict()[name], raw[name])
    assert "discriminator" in state and "d_optimizer" in state

    from rechroma.evaluation.plots import plot_training_log

    assert plot_training_log(run_dir).stat().st_size > 10_000  # curves with the loss terms

    # Resuming restores the generator, its EMA and the discriminator.
    longer = replace(cfg, train=replace(cfg.train, steps=5))
    assert train(longer, run_dir, resume=True, progress=False).name == "step_0000005.safetensors"


def test_frozen_encoder_keeps_its_pretrained_weights(tiny_config, classifiers, tmp_path) -> None:
    cfg = replace(
        tiny_config,
        model=TINY_MODEL,
        train=replace(tiny_config.train, steps=2),
        init=InitConfig(encoder=str(classifiers["l"].weights), freeze_encoder_steps=10),
    )
    final = train(cfg, tmp_path / "run", progress=False)
    trained, _ = load_generator(final)
    classifier, _ = load_model(classifiers["l"].weights)
    name = "stem.0.0.weight"
    torch.testing.assert_close(
        trained.encoder.state_dict()[name], classifier.encoder.state_dict()[name]
    )


def test_wrong_classifier_kinds_are_refused(tiny_config, classifiers, tmp_path) -> None:
    as_encoder = replace(
        tiny_config, model=TINY_MODEL, init=InitConfig(encoder=str(classifiers["rgb"].weights))
    )
    with pytest.raises(ConfigError, match="pretrained on L"):
        train(as_encoder, tmp_path / "a", progress=False)
    as_perceptual = replace(
        tiny_config,
        model=TINY_MODEL,
        loss=LossConfig(perceptual_weight=1.0, perceptual_classifier=str(classifiers["l"].weights)),
    )
    with pytest.raises(ConfigError, match="RGB"):
        train(as_perceptual, tmp_path / "b", progress=False)
    unknown_input = replace(
        pretrain_config(tiny_config, "l"), classifier=ClassifierConfig(input="cmyk")
    )
    with pytest.raises(ConfigError, match="classifier.input"):
        pretrain(unknown_input, tmp_path / "c", progress=False)
    unknown_mode = replace(
        tiny_config,
        model=TINY_MODEL,
        loss=LossConfig(colorfulness_weight=0.1, colorfulness_mode="most"),
    )
    with pytest.raises(ConfigError, match="colorfulness_mode"):
        train(unknown_mode, tmp_path / "d", progress=False)
    assert not (tmp_path / "d" / "log.jsonl").exists()  # refused before any step


def test_pretrain_needs_labelled_shards(shard_dir, tmp_path) -> None:
    from rechroma.errors import DataError

    cfg = PretrainConfig(
        data=DataConfig(train_shards=(str(shard_dir / "val-*.tar"),), test_shards=0)
    )
    with pytest.raises(DataError, match="class ids"):
        pretrain(cfg, tmp_path, progress=False)
