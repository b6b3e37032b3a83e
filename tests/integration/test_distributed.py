"""Data-parallel training under torchrun: two CPU processes with the gloo backend."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from rechroma.models.checkpoint import load_generator


def torchrun(run_dir: Path, shard_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    torchrun_bin = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun_bin) if torchrun_bin.exists() else shutil.which("torchrun")]
    settings = {
        "data.train_shards": f'["{shard_dir}/train-*.tar"]',
        "data.val_shards": f'["{shard_dir}/val-*.tar"]',
        "data.workers": "0",
        "data.crop_size": "32",
        "data.shuffle_buffer": "4",
        "model.width": "8",
        "model.depth": "3",
        "model.max_channels": "32",
        "train.batch_size": "4",
        "train.ckpt_every": "2",
        "train.log_every": "1",
        "train.threads": "1",
        "train.ema_decay": "0.9",
        "loss.adversarial_weight": "0.01",
        "loss.adversarial_start": "1",
    }
    overrides = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            *command,
            "--standalone",  # a rendezvous on a free loopback port
            "--nproc_per_node",
            "2",
            "-m",
            "rechroma",
            "--quiet",
            "train",
            "--run-dir",
            str(run_dir),
            *overrides,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_two_gloo_processes_train_checkpoint_and_resume(shard_dir, tmp_path) -> None:
    run_dir = tmp_path / "run"
    first = torchrun(run_dir, shard_dir, "--set", "train.steps=4")
    assert first.returncode == 0, first.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == [1, 2, 3, 4]  # rank 0 alone logs: each step once
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if r["kind"] == "train")
    assert any("d_loss" in r for r in records)  # the discriminator trained under DDP too
    model, info = load_generator(run_dir / "checkpoints" / "step_0000004.safetensors")
    assert info.step == 4
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(1, 1, 32, 32))).all()

    resumed = torchrun(run_dir, shard_dir, "--set", "train.steps=6", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run_dir / "checkpoints" / "step_0000006.safetensors").is_file()
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
