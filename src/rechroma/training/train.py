"""Training loop: `train(cfg, run_dir)` reads shards, fits the generator, writes checkpoints.

A run directory holds `config.json` (the resolved config), `log.jsonl` (one line per
logged step), `checkpoints/step_NNNNNNN.safetensors` (weights + config + step, loadable
by `rechroma.models.checkpoint.load_generator`) with a `.json` copy of that description and
`.optim.pt` (optimizer state, for resuming) beside each, and
`samples/step_NNNNNNN.png` grids (gray input | prediction | truth) from the val split.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from rechroma.color import l_ab_to_rgb
from rechroma.data.hints import sample_hints
from rechroma.data.shards import (
    MixedDataset,
    Sample,
    ShardDataset,
    build_class_index,
    expand_shards,
    read_key_lists,
    source_name,
    split_shards,
)
from rechroma.errors import CheckpointError, ConfigError, DataError
from rechroma.models import build_generator, build_model
from rechroma.models.checkpoint import load_generator, load_model, save_weights
from rechroma.models.efficientnet_lite import (
    EfficientNetLite0,
    LiteTrunk,
    imagenet_state_dict,
    load_imagenet_trunk,
)
from rechroma.training.config import (
    Config,
    OptimConfig,
    PretrainConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from rechroma.training.distributed import DistributedContext, unwrap
from rechroma.training.losses import (
    PerceptualLoss,
    check_colorfulness_mode,
    colorfulness_loss,
    discriminator_hinge_loss,
    generator_hinge_loss,
    pixel_loss,
)

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


def get_lr(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate at `step`: linear warm-up, then cosine down to `min_lr_ratio * lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def resolve_device(name: str) -> torch.device:
    """ "auto" picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the weights for `step` go in a run directory."""
    return run_dir / CHECKPOINT_DIR / f"step_{step:07d}.safetensors"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest weights file in a run directory, or None."""
    found = sorted((run_dir / CHECKPOINT_DIR).glob("step_*.safetensors"))
    return found[-1] if found else None


def load_run_config(run_dir: Path) -> Config:
    """The resolved config a run directory was started with."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no config.json; is it a rechroma run directory?")
    return config_from_dict(Config, json.loads(path.read_text()))


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> Path:
    """Train a generator per `cfg` in `run_dir` and return the final checkpoint's path.

    Losses: the pixel loss, plus (when their weights are non-zero) the perceptual loss
    on a pretrained classifier's features, the colourfulness loss, and from
    `loss.adversarial_start` on, a PatchGAN's hinge loss. With `train.ema_decay`, the
    checkpoints hold an exponential moving average of the generator's weights. A model
    that takes colour hints gets hints simulated from the truth (`cfg.hints`).

    With `resume`, weights, optimizer states and step come from the newest checkpoint in
    `run_dir`; the data stream is reseeded with the step so it does not replay. Under
    torchrun, every process runs this with its own part of the data (see
    `rechroma.training.distributed`); all return the final checkpoint's path.
    """
    if cfg.task == "restore":
        from rechroma.training.restore import train_detector

        return train_detector(cfg, run_dir, resume, progress)
    if cfg.task != "colorize":
        raise ConfigError(f"task {cfg.task!r} is not 'colorize' or 'restore'")
    context = DistributedContext.from_environment(cfg.train.device)
    try:
        return _train(cfg, run_dir, resume, progress, context)
    finally:
        context.close()


def _train(
    cfg: Config, run_dir: Path, resume: bool, progress: bool, context: DistributedContext
) -> Path:
    torch.manual_seed(cfg.train.seed)  # the same initial weights in every process
    torch.set_num_threads(cfg.train.threads)
    device = context.device(resolve_device(cfg.train.device))
    run_dir.mkdir(parents=True, exist_ok=True)

    net = build_generator(cfg.model.name, **cfg.model.kwargs()).to(device)
    if not resume:  # a resumed run's checkpoint replaces every weight; its init files may be gone
        _initialise(net, cfg, device)
    # Channels-last runs oneDNN's and cuDNN's fast kernels (depthwise convolutions ~2.5x
    # faster on this CPU); the results are the same up to float rounding.
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=cfg.optim.lr,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
        weight_decay=cfg.optim.weight_decay,
    )
    parts = _Parts.build(cfg, net, device, keep_ema=context.is_main)
    start_step = 0
    if resume:
        start_step = _restore(run_dir, net, optimizer, parts, device)
    # After restoring: DistributedDataParallel copies rank 0's weights to every process.
    model = context.wrap(net, device, may_skip_params=cfg.init.freeze_encoder_steps > 0)
    if parts.discriminator is not None:
        parts.discriminator = context.wrap(parts.discriminator, device, may_skip_params=False)
    if context.is_main:
        (run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    train_shards, val_shards = _resolve_shards(cfg)
    class_index = build_class_index(train_shards)
    batches = train_batches(
        cfg,
        train_shards,
        class_index,
        seed=cfg.train.seed + start_step,
        rank=context.rank,
        world_size=context.world_size,
    )
    val_loaders = _val_loaders(cfg, val_shards) if val_shards and context.is_main else {}
    sizes = list(cfg.data.crop_sizes) or [cfg.data.crop_size]
    # Seeded alike in every process: all take the same size at each step, none waits.
    size_rng = np.random.default_rng([cfg.train.seed, start_step])

    log_path = run_dir / "log.jsonl"
    model.train()
    bar = tqdm(
        total=cfg.train.steps,
        initial=start_step,
        desc="train",
        unit="step",
        disable=not (progress and context.is_main),
    )
    log = RunLog(log_path, cfg.train, write=context.is_main)
    last_path = checkpoint_path(run_dir, start_step)
    for step in range(start_step, cfg.train.steps):
        lr = set_lr(optimizer, get_lr(step, cfg.train.steps, cfg.optim))
        if cfg.init.freeze_encoder_steps:
            # A frozen encoder also keeps its batch-norm statistics (eval mode): its
            # features stay the pretrained ones, as they will be at inference.
            learning = step >= cfg.init.freeze_encoder_steps
            net.encoder.requires_grad_(learning)
            net.encoder.train(learning)
        batch = _resize_batch(next(batches), int(size_rng.choice(sizes)), device)
        losses = _train_step(model, optimizer, parts, batch, cfg, step, context.rank)
        smoothed = log.step(step + 1, lr, losses)
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed['loss']:.4f}", lr=f"{lr:.2e}")
        done = step + 1
        due = done % cfg.train.ckpt_every == 0 or done == cfg.train.steps
        if due and context.is_main:
            shipped = parts.shipped(net)
            last_path = _save(run_dir, shipped, net, optimizer, parts, cfg, done)
            if val_loaders:
                by_source = _validate(shipped, val_loaders, cfg, device, run_dir, done)
                val_loss = float(np.mean(list(by_source.values())))
                append_log(log_path, kind="val", step=done, val_loss=val_loss, sources=by_source)
                logger.info("step %d: val loss %.4f -> %s", done, val_loss, last_path)
        elif due:
            last_path = checkpoint_path(run_dir, done)
    bar.close()
    if start_step >= cfg.train.steps:
        last_path = latest_checkpoint(run_dir) or last_path
    return last_path


@dataclass
class _Parts:
    """What a run trains or uses beside the generator; None where the config turns it off."""

    perceptual: PerceptualLoss | None = None
    discriminator: nn.Module | None = None
    d_optimizer: torch.optim.Optimizer | None = None
    ema: AveragedModel | None = None
    bf16: bool = False  # autocast the forward passes in bfloat16

    @classmethod
    def build(
        cls, cfg: Config, model: nn.Module, device: torch.device, keep_ema: bool = True
    ) -> _Parts:
        parts = cls(bf16=use_bf16(cfg.train, device))
        if cfg.loss.colorfulness_weight > 0:
            # Here, before any step, rather than at the first loss.
            check_colorfulness_mode(cfg.loss.colorfulness_mode, "loss.colorfulness_mode")
        if cfg.loss.perceptual_weight > 0:
            if not cfg.loss.perceptual_classifier:
                raise ConfigError("loss.perceptual_weight > 0 needs loss.perceptual_classifier")
            classifier = _perceptual_network(cfg.loss.perceptual_classifier, device)
            parts.perceptual = PerceptualLoss(classifier, cfg.loss.perceptual_levels).to(device)
        if cfg.loss.adversarial_weight > 0:
            parts.discriminator = build_model(
                "patchgan", width=cfg.discriminator.width, layers=cfg.discriminator.layers
            ).to(device)
            parts.d_optimizer = torch.optim.Adam(
                parts.discriminator.parameters(), lr=cfg.discriminator.lr, betas=(0.0, 0.9)
            )
        if cfg.train.ema_decay > 0 and keep_ema:  # only the process that saves needs it
            parts.ema = AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay), use_buffers=True
            )
        return parts

    def shipped(self, model: nn.Module) -> nn.Module:
        """The weights a checkpoint holds: the EMA when there is one."""
        return self.ema.module if self.ema is not None else model


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast: always on CUDA; on a CPU when asked for and its cores support it."""
    if device.type == "cuda":
        return True
    if not cfg.bf16:
        return False
    # Without AVX512-BF16 or AMX, oneDNN falls back to reference kernels that run bf16
    # convolutions 10-50x slower than fp32: measured on an AVX2-only EPYC.
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True
    logger.warning("train.bf16: this CPU has no bf16 support (AVX512-BF16/AMX); using fp32")
    return False


def _initialise(model: nn.Module, cfg: Config, device: torch.device) -> None:
    """Start from a generator's weights, ImageNet weights, and/or a classifier's encoder."""
    if cfg.init.imagenet_encoder:
        if not isinstance(getattr(model, "encoder", None), LiteTrunk):
            raise ConfigError("init.imagenet_encoder needs model.name 'lite0-unet' or 'lite2-unet'")
        load_imagenet_trunk(model.encoder)
        logger.info("encoder initialised from ImageNet weights (%s)", model.encoder.variant)
    if cfg.init.generator:
        loaded, _ = load_generator(Path(cfg.init.generator), device)
        model.load_state_dict(loaded.state_dict(), strict=True)
        logger.info("generator initialised from %s", cfg.init.generator)
    if cfg.init.encoder:
        classifier, _ = load_model(Path(cfg.init.encoder), device)
        if getattr(classifier, "in_channels", None) != 1:
            raise ConfigError(f"{cfg.init.encoder}: the encoder must be pretrained on L input")
        try:
            model.encoder.load_state_dict(classifier.encoder.state_dict(), strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"{cfg.init.encoder}: its encoder does not fit model {cfg.model}: {exc}"
            ) from exc
        logger.info("encoder initialised from %s", cfg.init.encoder)


def _perceptual_network(name: str, device: torch.device) -> nn.Module:
    """The ImageNet Lite0 for "efficientnet-lite0", else a classifier's weights file."""
    if name == "efficientnet-lite0":
        network = EfficientNetLite0()
        network.load_state_dict(imagenet_state_dict(), strict=True)
        return network.to(device).eval()
    classifier, _ = load_model(Path(name), device)
    return classifier


def _resize_batch(batch: Sample, size: int, device: torch.device) -> Sample:
    """Move a batch to `device`, resized to `size` (multi-scale training)."""

    def fit(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        if x.shape[-1] == size and x.shape[-2] == size:
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)

    return Sample(fit(batch.lightness), fit(batch.ab), batch.label, fit(batch.clean_lightness))


def _train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    parts: _Parts,
    batch: Sample,
    cfg: Config,
    step: int,
    rank: int = 0,
) -> dict[str, float]:
    """One discriminator update (in the adversarial phase), then one generator update."""
    device = batch.ab.device
    adversarial = parts.discriminator is not None and step >= cfg.loss.adversarial_start
    hints = None
    if getattr(unwrap(model), "takes_hints", False):
        rng = np.random.default_rng([cfg.train.seed, step, 1, rank])
        hints = sample_hints(
            batch.ab, rng, cfg.hints.probability, cfg.hints.mean_points, cfg.hints.max_patch
        )
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=parts.bf16):
        pred = model(batch.lightness) if hints is None else model(batch.lightness, hints)
    pred = pred.float()
    losses: dict[str, float] = {}

    if adversarial:
        assert parts.discriminator is not None and parts.d_optimizer is not None
        # Real and fake in one call: one forward per backward, as DDP wants.
        scores = parts.discriminator(
            batch.clean_lightness.repeat(2, 1, 1, 1), torch.cat([batch.ab, pred.detach()])
        )
        real, fake = scores.chunk(2)
        d_loss = discriminator_hinge_loss(real, fake)
        parts.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        parts.d_optimizer.step()
        losses["d_loss"] = d_loss.item()

    pixel = pixel_loss(pred, batch.ab, cfg.train.loss)
    total = cfg.loss.pixel_weight * pixel
    losses["pixel"] = pixel.item()
    if parts.perceptual is not None or cfg.loss.colorfulness_weight > 0:
        # Colour images with the true lightness: these losses judge the colours only.
        pred_rgb = l_ab_to_rgb(batch.clean_lightness, pred)
        true_rgb = None
        if parts.perceptual is not None or cfg.loss.colorfulness_mode == "match":
            true_rgb = l_ab_to_rgb(batch.clean_lightness, batch.ab)
        if parts.perceptual is not None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=parts.bf16):
                perceptual = parts.perceptual(pred_rgb, true_rgb).float()
            total = total + cfg.loss.perceptual_weight * perceptual
            losses["perceptual"] = perceptual.item()
        if cfg.loss.colorfulness_weight > 0:
            colourful = colorfulness_loss(pred_rgb, true_rgb, cfg.loss.colorfulness_mode)
            total = total + cfg.loss.colorfulness_weight * colourful
            losses["colorfulness"] = colourful.item()
    if adversarial:
        assert parts.discriminator is not None
        # The bare network: D's gradients from this pass are discarded, so not averaged.
        g_adv = generator_hinge_loss(unwrap(parts.discriminator)(batch.clean_lightness, pred))
        total = total + cfg.loss.adversarial_weight * g_adv
        losses["g_adv"] = g_adv.item()

    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if cfg.optim.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    if parts.ema is not None:
        parts.ema.update_parameters(unwrap(model))
    losses["loss"] = total.item()
    return losses


def _resolve_shards(cfg: Config) -> tuple[list[Path], list[Path]]:
    all_train = expand_shards(cfg.data.train_shards)
    if not all_train:
        raise DataError(f"no training shards match {list(cfg.data.train_shards)}")
    train_shards = split_shards(all_train, "train", cfg.data.test_shards)
    return train_shards, expand_shards(cfg.data.val_shards)


def train_batches(
    cfg: Config | PretrainConfig,
    shards: list[Path],
    class_index: dict[str, int],
    seed: int,
    degrade: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[Sample]:
    """Endless shuffled training batches per the config's data and train sections.

    With several processes (`rank` of `world_size`), each reads its own part of the
    shards and makes batches of `train.batch_size / world_size`.
    """
    skip_keys = read_key_lists(cfg.data.exclude_keys)

    def source(source_shards: list[Path], source_seed: int) -> ShardDataset:
        return ShardDataset(
            source_shards,
            crop_size=cfg.data.crop_size,
            train=True,
            seed=source_seed,
            min_crop_scale=cfg.data.min_crop_scale,
            shuffle_buffer=cfg.data.shuffle_buffer,
            degrade=cfg.data.degrade if degrade else None,
            class_index=class_index,
            skip_keys=skip_keys,
            rank=rank,
            world_size=world_size,
        )

    weights = cfg.data.train_weights
    dataset: ShardDataset | MixedDataset
    if weights:
        if len(weights) != len(cfg.data.train_shards):
            raise ConfigError("data.train_weights needs one weight per data.train_shards pattern")
        chosen = set(shards)
        sources = [
            [p for p in expand_shards([pattern]) if p in chosen]
            for pattern in cfg.data.train_shards
        ]
        for pattern, found in zip(cfg.data.train_shards, sources, strict=True):
            if not found:
                raise DataError(f"no training shards match {pattern!r}")
        dataset = MixedDataset(
            [source(found, seed + index) for index, found in enumerate(sources)], weights, seed
        )
    else:
        dataset = source(shards, seed)
    if cfg.train.batch_size % world_size:
        raise ConfigError(f"train.batch_size must divide by the {world_size} processes")
    loader = DataLoader(
        dataset,
        batch_size=cfg.train.batch_size // world_size,
        num_workers=cfg.data.workers,
        persistent_workers=cfg.data.workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    return iter(loader)


def _val_loaders(cfg: Config, shards: list[Path]) -> dict[str, DataLoader]:
    """One loader per validation source (a shard's folder), in the order first named."""
    skip_keys = read_key_lists(cfg.data.exclude_keys)
    by_source: dict[str, list[Path]] = {}
    for shard in shards:
        by_source.setdefault(source_name(shard), []).append(shard)
    return {
        name: DataLoader(
            ShardDataset(
                found, crop_size=cfg.data.crop_size, train=False, repeat=False, skip_keys=skip_keys
            ),
            batch_size=cfg.train.batch_size,
            num_workers=0,
        )
        for name, found in by_source.items()
    }


@torch.no_grad()
def _validate(
    model: nn.Module,
    loaders: dict[str, DataLoader],
    cfg: Config,
    device: torch.device,
    run_dir: Path,
    step: int,
) -> dict[str, float]:
    """The mean pixel loss of each source's first `val_batches` batches; saves a sample grid.

    The grid shows the first photos of every source (at most 16 columns).
    """
    model.eval()
    by_source: dict[str, float] = {}
    columns = max(1, 16 // len(loaders))
    shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for name, loader in loaders.items():
        losses = []
        for index, batch in enumerate(loader):
            if index >= cfg.train.val_batches:
                break
            l_in, ab = batch.lightness.to(device), batch.ab.to(device)
            pred = model(l_in).float()
            losses.append(pixel_loss(pred, ab, cfg.train.loss).item())
            if index == 0 and len(shown) * columns < 16:
                shown.append((l_in[:columns].cpu(), pred[:columns].cpu(), ab[:columns].cpu()))
        if losses:
            by_source[name] = float(np.mean(losses))
    model.train()
    if shown:
        grid = [torch.cat(parts) for parts in zip(*shown, strict=True)]
        _save_sample_grid(run_dir / "samples" / f"step_{step:07d}.png", *grid)
    return by_source or {"all": float("nan")}


def _save_sample_grid(path: Path, l_in: torch.Tensor, pred: torch.Tensor, ab: torch.Tensor) -> None:
    """Rows: gray input, prediction, truth; one column per val image."""
    gray = l_ab_to_rgb(l_in, torch.zeros_like(ab))
    rows = [gray, l_ab_to_rgb(l_in, pred), l_ab_to_rgb(l_in, ab)]
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # (3, 3H, N*W)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _save(
    run_dir: Path,
    shipped: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    parts: _Parts,
    cfg: Config,
    step: int,
) -> Path:
    path = checkpoint_path(run_dir, step)
    save_weights(path, shipped, cfg.model.name, cfg.model.kwargs(), step, config_to_dict(cfg))
    # The same description, readable without safetensors: step, model and resolved config.
    sidecar = {"step": step, "model": cfg.model.name, "config": config_to_dict(cfg)}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    state: dict[str, object] = {"optimizer": optimizer.state_dict(), "step": step}
    if parts.ema is not None:
        state["generator"] = model.state_dict()  # the raw weights; the checkpoint has the EMA
    if parts.discriminator is not None and parts.d_optimizer is not None:
        state["discriminator"] = unwrap(parts.discriminator).state_dict()
        state["d_optimizer"] = parts.d_optimizer.state_dict()
    torch.save(state, path.with_suffix(".optim.pt"))
    return path


def _restore(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    parts: _Parts,
    device: torch.device,
) -> int:
    path = latest_checkpoint(run_dir)
    if path is None:
        raise CheckpointError(f"nothing to resume: no checkpoints in {run_dir / CHECKPOINT_DIR}")
    loaded, info = load_generator(path, device)
    model.load_state_dict(loaded.state_dict(), strict=True)
    if parts.ema is not None:
        parts.ema.module.load_state_dict(loaded.state_dict(), strict=True)
        # AveragedModel copies the model into the average on its first update when it has
        # averaged nothing yet: the restored average would be thrown away for the raw
        # weights, and the EMA would start over at every resume.
        parts.ema.n_averaged.fill_(max(1, info.step))
    optim_path = path.with_suffix(".optim.pt")
    if optim_path.is_file():
        state = torch.load(optim_path, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        if "generator" in state:
            model.load_state_dict(state["generator"], strict=True)
        if parts.discriminator is not None and "discriminator" in state:
            parts.discriminator.load_state_dict(state["discriminator"], strict=True)
            assert parts.d_optimizer is not None
            parts.d_optimizer.load_state_dict(state["d_optimizer"])
    else:
        logger.warning("no optimizer state beside %s; resuming with a fresh optimizer", path)
    logger.info("resuming from %s at step %d", path, info.step)
    return info.step


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set every parameter group's learning rate (times its `lr_scale`, if any); returns it."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


class RunLog:
    """Exponentially smoothed losses, written to `log.jsonl` every `log_every` steps."""

    def __init__(self, path: Path, cfg: TrainConfig, write: bool = True) -> None:
        self.path, self.cfg, self.write = path, cfg, write
        self.smoothed: dict[str, float] = {}
        self.started = time.perf_counter()

    def step(self, done: int, lr: float, losses: dict[str, float]) -> dict[str, float]:
        """Fold in one step's losses; log when due. Returns the smoothed losses."""
        for key, value in losses.items():
            previous = self.smoothed.get(key)
            self.smoothed[key] = value if previous is None else 0.98 * previous + 0.02 * value
        if self.write and (done % self.cfg.log_every == 0 or done == self.cfg.steps):
            append_log(
                self.path,
                kind="train",
                step=done,
                **self.smoothed,
                lr=lr,
                images=done * self.cfg.batch_size,
                elapsed_s=round(time.perf_counter() - self.started, 1),
            )
        return self.smoothed


def append_log(path: Path, **record: object) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
