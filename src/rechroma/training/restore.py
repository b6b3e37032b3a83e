"""Training the print-damage detector: `rechroma train` with `task = "restore"`.

The same run directory, config file, log, checkpoints and resume as a colorizer's run
(`rechroma.training.train`), on different pairs: gray crops of the shards' photos with
generated print damage (`rechroma.data.print_damage`) and its exact mask. The loss is
binary cross-entropy, weighted towards the rare damaged pixels, plus a soft Dice term,
which keeps thin scratches from vanishing under the background's weight.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from rechroma.data.print_damage import DamagedShards
from rechroma.data.shards import MixedDataset, expand_shards
from rechroma.errors import ConfigError, DataError
from rechroma.models import build_model, with_default_kwargs
from rechroma.models.checkpoint import load_model, save_weights
from rechroma.models.efficientnet_lite import load_imagenet_trunk
from rechroma.training.config import Config, config_to_dict
from rechroma.training.train import (
    RunLog,
    append_log,
    checkpoint_path,
    get_lr,
    latest_checkpoint,
    set_lr,
    use_bf16,
)

logger = logging.getLogger(__name__)


def detector_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    positive_weight: float = 8.0,
    dice_weight: float = 0.5,
    hard_negative_weight: float = 0.0,
    hard_negative_share: float = 0.005,
) -> dict[str, torch.Tensor]:
    """Weighted BCE and soft Dice of `(B, 1, H, W)` logits against a {0, 1} mask, plus
    (with `hard_negative_weight`) the mean BCE of the worst `hard_negative_share` of the
    clean pixels."""
    per_pixel = F.binary_cross_entropy_with_logits(
        logits,
        mask,
        pos_weight=torch.tensor(positive_weight, device=logits.device),
        reduction="none",
    )
    bce = per_pixel.mean()
    probability = torch.sigmoid(logits)
    overlap = (probability * mask).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + mask.sum(dim=(1, 2, 3))
    dice = 1 - ((2 * overlap + 1) / (total + 1)).mean()
    losses = {"bce": bce, "dice": dice, "loss": bce + dice_weight * dice}
    if hard_negative_weight > 0:
        if not 0.0 < hard_negative_share <= 1.0:
            raise ValueError(f"hard_negative_share {hard_negative_share} is outside (0, 1]")
        # Damaged pixels are left out of the ranking (a clean pixel's BCE is never 0).
        clean = per_pixel.masked_fill(mask > 0.5, 0.0).flatten()
        count = max(1, round(hard_negative_share * int((mask <= 0.5).sum())))
        hard = clean.topk(count, sorted=False).values.mean()
        losses["hard_negative"] = hard
        losses["loss"] = losses["loss"] + hard_negative_weight * hard
    return losses


def mask_scores(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Precision, recall and F1 of a boolean mask against the true one, over all pixels."""
    hits = (predicted & truth).sum().item()
    precision = hits / max(1, predicted.sum().item())
    recall = hits / max(1, truth.sum().item())
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def train_detector(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> Path:
    """Train the defect detector per `cfg` in `run_dir`; returns the last checkpoint."""
    torch.manual_seed(cfg.train.seed)
    torch.set_num_threads(cfg.train.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg.model.name, **cfg.model.kwargs())
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, cfg),
        lr=cfg.optim.lr,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
        weight_decay=cfg.optim.weight_decay,
    )
    start = 0
    last = latest_checkpoint(run_dir) if resume else None
    if last is None and cfg.init.imagenet_encoder:
        if getattr(model, "context", None) is None:
            raise ConfigError("init.imagenet_encoder needs model.imagenet_context = true")
        load_imagenet_trunk(model.context)
    if last is None and cfg.init.generator:
        _start_from(model, Path(cfg.init.generator), cfg)
    if last is not None:
        loaded, info = load_model(last)
        model.load_state_dict(loaded.state_dict())
        state = torch.load(last.with_suffix(".optim.pt"), weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = info.step
        logger.info("resumed from %s at step %d", last, start)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))
    batches = iter(_loader(cfg, seed=cfg.train.seed + start))
    val = _validation_set(cfg)
    log = RunLog(run_dir / "log.jsonl", cfg.train)
    bar = tqdm(
        total=cfg.train.steps, initial=start, desc="train", unit="step", disable=not progress
    )
    path = checkpoint_path(run_dir, start)
    bf16 = use_bf16(cfg.train, torch.device("cpu"))
    model.train()
    for step in range(start, cfg.train.steps):
        lr = set_lr(optimizer, get_lr(step, cfg.train.steps, cfg.optim))
        images, masks = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        losses = detector_loss(logits.float(), masks, **_loss_weights(cfg))
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        smoothed = log.step(step + 1, lr, {k: v.item() for k, v in losses.items()})
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed['loss']:.4f}", lr=f"{lr:.2e}")
        done = step + 1
        if done % cfg.train.ckpt_every == 0 or done == cfg.train.steps:
            path = _save(run_dir, model, optimizer, cfg, done)
            if val is not None:
                scores = _validate(model, val, cfg)
                model.train()
                append_log(run_dir / "log.jsonl", kind="val", step=done, **scores)
                logger.info("step %d: val F1 %.3f -> %s", done, scores["f1"], path)
    bar.close()
    return path


def _loss_weights(cfg: Config) -> dict[str, float]:
    return {
        "positive_weight": cfg.loss.positive_weight,
        "dice_weight": cfg.loss.dice_weight,
        "hard_negative_weight": cfg.loss.hard_negative_weight,
        "hard_negative_share": cfg.loss.hard_negative_share,
    }


def _parameter_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """The network's weights for AdamW; an ImageNet trunk, when it is to learn at all, in
    a group of its own at `optim.context_lr_ratio` of the learning rate."""
    ratio = cfg.optim.context_lr_ratio
    context = getattr(model, "context", None)
    if ratio < 0:
        raise ConfigError(f"optim.context_lr_ratio {ratio} is negative")
    if context is None or ratio == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    context.requires_grad_(True)
    trunk = {id(p) for p in context.parameters()}
    rest = [p for p in model.parameters() if id(p) not in trunk]
    return [{"params": rest}, {"params": list(context.parameters()), "lr_scale": ratio}]


def _start_from(model: nn.Module, path: Path, cfg: Config) -> None:
    """Fine-tune: the network starts from a detector's weights (safetensors, same shape).

    A detector without ImageNet context may start one with it: its weights fill the
    U-Net, the trunk keeps what `init.imagenet_encoder` loaded, and the zero-initialised
    fusion leaves the start's answers unchanged.
    """
    loaded, info = load_model(path)
    wanted = with_default_kwargs(cfg.model.name, cfg.model.kwargs())
    found = with_default_kwargs(info.model_name, info.model_kwargs)
    adding_context = bool(wanted.get("imagenet_context")) and not found.get("imagenet_context")
    if adding_context:
        found = {**found, "imagenet_context": True}
    if (info.model_name, found) != (cfg.model.name, wanted):
        raise ConfigError(
            f"init.generator {path} holds a {info.model_name!r} {info.model_kwargs}, not the "
            f"config's {cfg.model.name!r} {cfg.model.kwargs()}"
        )
    if adding_context and not cfg.init.imagenet_encoder:
        raise ConfigError("adding ImageNet context to a detector needs init.imagenet_encoder")
    result = model.load_state_dict(loaded.state_dict(), strict=not adding_context)
    new = [k for k in result.missing_keys if not k.startswith(("context.", "context_fuse."))]
    if new or result.unexpected_keys:
        raise ConfigError(
            f"init.generator {path}: weights do not fit ({new or result.unexpected_keys})"
        )
    logger.info("starting from %s (its step %d)", path, info.step)


def _dataset(cfg: Config, patterns: tuple[str, ...], train: bool, seed: int) -> DamagedShards:
    shards = expand_shards(patterns)
    if not shards:
        raise DataError(f"no shards match {list(patterns)}")
    return DamagedShards(
        shards,
        crop_size=cfg.data.crop_size,
        train=train,
        seed=seed,
        repeat=train,
        min_crop_scale=cfg.data.min_crop_scale,
        shuffle_buffer=cfg.data.shuffle_buffer,
        degrade=None,
        damage=cfg.data.damage,
        scan=cfg.data.scan,
    )


def _loader(cfg: Config, seed: int) -> DataLoader:
    weights = cfg.data.train_weights
    if weights:
        sources = [
            _dataset(cfg, (pattern,), True, seed + index)
            for index, pattern in enumerate(cfg.data.train_shards)
        ]
        dataset: DamagedShards | MixedDataset = MixedDataset(sources, weights, seed)
    else:
        dataset = _dataset(cfg, cfg.data.train_shards, True, seed)
    return DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        num_workers=cfg.data.workers,
        persistent_workers=cfg.data.workers > 0,
    )


def _validation_set(cfg: Config) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """A fixed set of damaged crops (seeded per photo), batched."""
    if not cfg.data.val_shards or cfg.train.val_batches <= 0:
        return None
    dataset = _dataset(cfg, cfg.data.val_shards, False, seed=10_000)
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size)
    batches = []
    for index, batch in enumerate(loader):
        if index >= cfg.train.val_batches:
            break
        batches.append(batch)
    return batches or None


@torch.inference_mode()
def _validate(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], cfg: Config
) -> dict:
    model.eval()
    predicted, truth, loss = [], [], 0.0
    for images, masks in batches:
        logits = model(images)
        loss += detector_loss(logits, masks, **_loss_weights(cfg))["loss"].item()
        predicted.append(logits > 0)
        truth.append(masks > 0.5)
    scores = mask_scores(torch.cat(predicted), torch.cat(truth))
    return {"val_loss": loss / len(batches), **scores}


def _save(run_dir: Path, model: nn.Module, optimizer, cfg: Config, step: int) -> Path:
    path = checkpoint_path(run_dir, step)
    save_weights(path, model, cfg.model.name, cfg.model.kwargs(), step, config_to_dict(cfg))
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, path.with_suffix(".optim.pt"))
    return path
