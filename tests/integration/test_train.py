import json

import pytest
import torch

from rechroma.checkpoint import load_generator
from rechroma.config import OptimConfig
from rechroma.train import get_lr, latest_checkpoint, train


def test_learning_rate_warms_up_then_decays() -> None:
    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    rates = [get_lr(step, 100, cfg) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=0.01)


def test_short_run_writes_loadable_checkpoints_logs_and_samples(tiny_config, tmp_path) -> None:
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
    assert all(r["val_loss"] > 0 for r in records if r["kind"] == "val")
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


def test_resume_without_checkpoints_is_an_error(tiny_config, tmp_path) -> None:
    from rechroma.errors import CheckpointError

    with pytest.raises(CheckpointError):
        train(tiny_config, tmp_path / "empty", resume=True, progress=False)
