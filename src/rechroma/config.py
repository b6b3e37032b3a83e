"""Training configuration: nested frozen dataclasses, a TOML file, then --set overrides.

Order of precedence: code defaults < TOML file < `--set section.key=value`. Every key is
checked against the dataclass fields by name and converted to the field's type, so a
typo fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rechroma.degrade import DegradeConfig
from rechroma.errors import ConfigError

SHARED_DATA = "../shared/data"


@dataclass(frozen=True)
class DataConfig:
    """Where training photos come from and how they are cut."""

    train_shards: tuple[str, ...] = (f"{SHARED_DATA}/tiny-imagenet/train-*.tar",)
    val_shards: tuple[str, ...] = (f"{SHARED_DATA}/tiny-imagenet/val-*.tar",)
    # The last `test_shards` training shards are held out as a test split.
    test_shards: int = 0
    crop_size: int = 64
    # Multi-scale training: each batch is resized to one of these sizes (empty: crop_size
    # only). Crops are cut at crop_size, so it should be the largest.
    crop_sizes: tuple[int, ...] = ()
    min_crop_scale: float = 0.5
    shuffle_buffer: int = 2000
    workers: int = 1
    degrade: DegradeConfig = field(default_factory=DegradeConfig)


@dataclass(frozen=True)
class ModelConfig:
    """Generator architecture; every field but `name` goes to its constructor."""

    name: str = "unet"
    width: int = 16
    depth: int = 5
    max_channels: int = 256
    global_context: bool = True

    def kwargs(self) -> dict[str, Any]:
        """Constructor arguments for `rechroma.models.build_generator`."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "name"}


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio * lr`."""

    lr: float = 2e-3
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    warmup_steps: int = 200
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Length, batch, loss and bookkeeping of one run."""

    steps: int = 10_000
    batch_size: int = 32
    loss: str = "huber"
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    log_every: int = 25
    ckpt_every: int = 500
    val_batches: int = 8
    # Exponential moving average of the generator's weights; checkpoints hold the EMA.
    # 0 turns it off.
    ema_decay: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    """Weights of the generator's losses (0 turns one off) beside the pixel loss."""

    pixel_weight: float = 1.0
    perceptual_weight: float = 0.0
    # RGB classifier weights for the perceptual loss (`rechroma pretrain`, input "rgb").
    perceptual_classifier: str = ""
    perceptual_levels: int = 3
    colorfulness_weight: float = 0.0
    # "maximize" (DDColor: more colour is always better) or "match" (as colourful as
    # the true photo, per image; see `rechroma.losses.colorfulness_loss`).
    colorfulness_mode: str = "maximize"
    adversarial_weight: float = 0.0
    # Step at which the adversarial phase starts: before it, G learns without a GAN
    # (DeOldify's NoGAN lesson: a GAN on an untrained G mostly learns artefacts).
    adversarial_start: int = 0


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The PatchGAN discriminator and its optimizer (Adam, betas 0 and 0.9)."""

    width: int = 32
    layers: int = 3
    lr: float = 2e-4


@dataclass(frozen=True)
class InitConfig:
    """Where the generator's weights start; empty strings mean random initialisation."""

    # A generator's weights to fine-tune (a shipped model or a checkpoint).
    generator: str = ""
    # A classifier pretrained on L (`rechroma pretrain`) whose encoder becomes G's.
    encoder: str = ""
    # Keep the pretrained encoder fixed for this many steps while the decoder catches up.
    freeze_encoder_steps: int = 0


@dataclass(frozen=True)
class Config:
    """Everything a training run needs; saved with every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    init: InitConfig = field(default_factory=InitConfig)


@dataclass(frozen=True)
class ClassifierConfig:
    """What a pretrained classifier sees and how it is regularized."""

    # "l": the colorizer's own input (its encoder is pretrained this way);
    # "rgb": colour photos (features for the perceptual loss).
    input: str = "l"
    label_smoothing: float = 0.1
    dropout: float = 0.2


@dataclass(frozen=True)
class PretrainConfig:
    """A classifier pretraining run on the class labels in the shard keys."""

    data: DataConfig = field(default_factory=lambda: DataConfig(test_shards=1))
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(loss="cross_entropy"))
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a (partial) nested dict, checking names and types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key {path!r}; known: {sorted(known)}")
        kwargs[key] = _coerce(hints[key], value, path)
    return cls(**kwargs)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    cls: type = Config,
) -> Any:
    """Defaults, then `base` (a saved run's config), then the TOML file, then overrides.

    `cls` is the top-level config dataclass: `Config` for colorizers, `PretrainConfig`
    for classifier pretraining.
    """
    values: dict[str, Any] = json.loads(json.dumps(base or {}))
    if path is not None:
        try:
            _deep_update(values, tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    for override in overrides or []:
        dotted, sep, raw = override.partition("=")
        if not sep or not dotted:
            raise ConfigError(f"override {override!r} is not of the form section.key=value")
        *parents, leaf = dotted.strip().split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a section")
        node[leaf] = _parse_scalar(raw.strip())
    return config_from_dict(cls, values)


def _deep_update(target: dict[str, Any], updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _parse_scalar(raw: str) -> Any:
    """Read an override's value as TOML (numbers, booleans, arrays), else as a bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path!r} is a section; got {value!r}")
        return config_from_dict(hint, value, f"{path}.")
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        items = value if isinstance(value, list | tuple) else [value]
        return tuple(_coerce(item_type, item, path) for item in items)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{path!r}: union types are not supported in configs")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{path!r} must be {getattr(hint, '__name__', hint)}; got {value!r}")


@dataclass(frozen=True)
class ServerSettings:
    """Web server limits and model choice; every limit answers with a clear 4xx."""

    weights: Path | None = None
    render_size: int | None = None
    threads: int | None = None  # torch threads for inference; PyTorch's default when None
    max_upload_bytes: int = 40 * 1024 * 1024  # per file
    max_pixels: int = 100_000_000
    max_files: int = 20  # per request
    # Photos colorized at once; more requests wait their turn, up to `max_queue` of them.
    inference_workers: int = 1
    # Requests admitted beyond the workers; the next one gets 503 with Retry-After.
    max_queue: int = 16
    retry_after_s: int = 5
    # Origins allowed to call the API from other sites' pages; none (CORS off) by default.
    cors_origins: tuple[str, ...] = ()
