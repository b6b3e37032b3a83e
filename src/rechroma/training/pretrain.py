"""Pretrain a classifier on the class labels in the shard keys (Tiny ImageNet's 200).

`pretrain(cfg, run_dir)` trains `rechroma.models.Classifier` on L (to initialise the
colorizer's encoder) or on RGB (features for the perceptual loss), then reports top-1
accuracy on the held-out test shards. The shared validation shard carries no labels,
so the last `data.test_shards` training shards are the accuracy split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from rechroma.color import l_ab_to_rgb
from rechroma.data.shards import (
    Sample,
    ShardDataset,
    build_class_index,
    expand_shards,
    split_shards,
)
from rechroma.errors import ConfigError, DataError
from rechroma.models import build_model
from rechroma.models.checkpoint import save_weights
from rechroma.training.config import PretrainConfig, config_to_dict
from rechroma.training.train import (
    RunLog,
    append_log,
    get_lr,
    resolve_device,
    set_lr,
    train_batches,
)

logger = logging.getLogger(__name__)

INPUTS = ("l", "rgb")


@dataclass(frozen=True)
class PretrainResult:
    """Where the classifier went and how well it classifies held-out photos."""

    weights: Path
    top1: float
    top5: float
    test_images: int


def classifier_input(batch: Sample, kind: str) -> torch.Tensor:
    """The classifier's input for a batch, in [-1, 1].

    "l" is the colorizer's own (possibly degraded) input; "rgb" is the clean colour photo
    rebuilt from the undegraded L and the true ab.
    """
    if kind == "l":
        return batch.lightness
    return l_ab_to_rgb(batch.clean_lightness, batch.ab) * 2.0 - 1.0


def classifier_kwargs(cfg: PretrainConfig, num_classes: int) -> dict[str, object]:
    """Constructor arguments of the classifier a config describes."""
    return {
        **cfg.model.kwargs(),
        "num_classes": num_classes,
        "in_channels": 1 if cfg.classifier.input == "l" else 3,
        "dropout": cfg.classifier.dropout,
    }


def pretrain(cfg: PretrainConfig, run_dir: Path, progress: bool = True) -> PretrainResult:
    """Train a classifier per `cfg` in `run_dir`; returns its weights path and test accuracy."""
    kind = cfg.classifier.input
    if kind not in INPUTS:
        raise ConfigError(f"classifier.input must be one of {INPUTS}, got {kind!r}")
    torch.manual_seed(cfg.train.seed)
    torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    all_shards = expand_shards(cfg.data.train_shards)
    if not all_shards:
        raise DataError(f"no training shards match {list(cfg.data.train_shards)}")
    train_shards = split_shards(all_shards, "train", cfg.data.test_shards)
    test_shards = split_shards(all_shards, "test", cfg.data.test_shards)
    class_index = build_class_index(all_shards)
    if len(class_index) < 2:
        raise DataError("pretraining needs class ids in the shard keys (wnid_123.jpg)")

    kwargs = classifier_kwargs(cfg, len(class_index))
    model = build_model("classifier", **kwargs).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.optim.lr,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
        weight_decay=cfg.optim.weight_decay,
    )
    # The RGB classifier sees clean colour photos; the L one the colorizer's own input.
    batches = train_batches(cfg, train_shards, class_index, cfg.train.seed, degrade=kind == "l")
    log_path = run_dir / "log.jsonl"
    use_bf16 = device.type == "cuda"
    model.train()
    log = RunLog(log_path, cfg.train)
    bar = tqdm(total=cfg.train.steps, desc=f"pretrain-{kind}", unit="step", disable=not progress)
    for step in range(cfg.train.steps):
        lr = set_lr(optimizer, get_lr(step, cfg.train.steps, cfg.optim))
        batch: Sample = next(batches)
        x = classifier_input(batch, kind).to(device)
        labels = batch.label.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(x)
        loss = F.cross_entropy(
            logits.float(), labels, label_smoothing=cfg.classifier.label_smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        smoothed = log.step(step + 1, lr, {"loss": loss.item()})
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed['loss']:.3f}", lr=f"{lr:.2e}")
    bar.close()

    top1, top5, count = accuracy(model, test_shards, class_index, cfg, device)
    append_log(log_path, kind="test", step=cfg.train.steps, top1=top1, top5=top5, images=count)
    logger.info("%s classifier: top-1 %.3f, top-5 %.3f on %d test photos", kind, top1, top5, count)
    weights = run_dir / f"classifier-{kind}.safetensors"
    record = config_to_dict(cfg) | {"test": {"top1": top1, "top5": top5, "images": count}}
    save_weights(weights, model, "classifier", kwargs, cfg.train.steps, record)
    return PretrainResult(weights, top1, top5, count)


@torch.no_grad()
def accuracy(
    model: nn.Module,
    shards: list[Path],
    class_index: dict[str, int],
    cfg: PretrainConfig,
    device: torch.device,
) -> tuple[float, float, int]:
    """Top-1 and top-5 accuracy over every labelled photo of `shards` (centre crops)."""
    if not shards:
        return float("nan"), float("nan"), 0
    dataset = ShardDataset(
        shards, crop_size=cfg.data.crop_size, train=False, repeat=False, class_index=class_index
    )
    model.eval()
    hits1 = hits5 = count = 0
    for batch in DataLoader(dataset, batch_size=256, num_workers=0):
        keep = batch.label >= 0
        logits = model(classifier_input(batch, cfg.classifier.input).to(device)).float().cpu()
        top = logits[keep].topk(min(5, logits.shape[1]), dim=1).indices
        labels = batch.label[keep][:, None]
        hits1 += int((top[:, :1] == labels).sum())
        hits5 += int((top == labels).any(dim=1).sum())
        count += int(keep.sum())
    model.train()
    return hits1 / max(1, count), hits5 / max(1, count), count
