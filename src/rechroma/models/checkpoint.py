"""Checkpoints: safetensors weights with the model name, config, step and version inside.

Weights never go through pickle. Optimizer state (needed only to resume) sits beside
them and is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from rechroma import __version__
from rechroma.errors import CheckpointError
from rechroma.models import build_generator, build_model

# The largest calibrated gain a weights file may carry (the colorizer's vividness range).
MAX_CHROMA_GAIN = 4.0


def _check_chroma_gain(gain: float) -> float:
    """`gain` if it lies in (0, MAX_CHROMA_GAIN]; ValueError otherwise (NaN included)."""
    if not 0.0 < gain <= MAX_CHROMA_GAIN:
        raise ValueError(f"chroma gain {gain} is outside (0, {MAX_CHROMA_GAIN:g}]")
    return gain


def _check_defect_threshold(threshold: float) -> float:
    """`threshold` if it lies in (0, 1); ValueError otherwise (NaN included)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"defect threshold {threshold} is outside (0, 1)")
    return threshold


# A detector looks at most at this many scales (each costs its share of the first).
MAX_DEFECT_SCALES = 4


def _check_defect_scales(scales: tuple[float, ...]) -> tuple[float, ...]:
    """`scales` if it is 1 to MAX_DEFECT_SCALES factors in (0, 1], the first 1 (the
    working size itself); ValueError otherwise."""
    if not 1 <= len(scales) <= MAX_DEFECT_SCALES:
        raise ValueError(f"{len(scales)} defect scales; 1 to {MAX_DEFECT_SCALES} are allowed")
    if scales[0] != 1.0 or not all(0.0 < s <= 1.0 for s in scales):
        raise ValueError(f"defect scales {list(scales)} must start at 1 and lie in (0, 1]")
    return tuple(scales)


@dataclass(frozen=True)
class CheckpointInfo:
    """What a weights file says about itself."""

    model_name: str
    model_kwargs: dict[str, Any]
    step: int
    version: str
    config: dict[str, Any]
    # Default chroma multiplier chosen for these weights on a validation split (see
    # benchmarks/choose_vividness.py); 1 = the network's raw output.
    chroma_gain: float = 1.0
    # A damage detector's probability threshold, chosen for these weights on held-out
    # photos (benchmarks/restore_thresholds.py); None: the restorer's default.
    defect_threshold: float | None = None
    # The scales (of the working size) a damage detector looks at, the threshold chosen
    # with them; None: the working size alone.
    defect_scales: tuple[float, ...] | None = None


def save_weights(
    path: Path,
    model: nn.Module,
    model_name: str,
    model_kwargs: dict[str, Any],
    step: int,
    config: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    chroma_gain: float = 1.0,
    defect_threshold: float | None = None,
    defect_scales: tuple[float, ...] | None = None,
) -> Path:
    """Write `model`'s weights and self-description to a safetensors file.

    With `dtype` (e.g. float16, for a file half the size) floating-point tensors are
    stored in it; loading casts them back to the model's own precision. `chroma_gain` is
    the calibrated default vividness the colorizer applies to the network's ab;
    `defect_threshold` a damage detector's calibrated threshold and `defect_scales` the
    scales it was calibrated at.
    """
    try:
        _check_chroma_gain(chroma_gain)
        if defect_threshold is not None:
            _check_defect_threshold(defect_threshold)
        if defect_scales is not None:
            defect_scales = _check_defect_scales(tuple(float(s) for s in defect_scales))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    metadata = {
        "model_name": model_name,
        "model_kwargs": json.dumps(model_kwargs),
        "step": str(step),
        "rechroma_version": __version__,
        "config": json.dumps(config or {}),
        "chroma_gain": repr(float(chroma_gain)),
    }
    if defect_threshold is not None:
        metadata["defect_threshold"] = repr(float(defect_threshold))
    if defect_scales is not None:
        metadata["defect_scales"] = json.dumps(list(defect_scales))
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half checkpoint
    return path


def read_info(path: Path) -> CheckpointInfo:
    """Read a weights file's metadata without loading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        return CheckpointInfo(
            model_name=meta["model_name"],
            model_kwargs=json.loads(meta["model_kwargs"]),
            step=int(meta.get("step", 0)),
            version=meta.get("rechroma_version", "unknown"),
            config=json.loads(meta.get("config", "{}")),
            chroma_gain=_check_chroma_gain(float(meta.get("chroma_gain", "1.0"))),
            defect_threshold=_check_defect_threshold(float(meta["defect_threshold"]))
            if "defect_threshold" in meta
            else None,
            defect_scales=_check_defect_scales(tuple(map(float, json.loads(meta["defect_scales"]))))
            if "defect_scales" in meta
            else None,
        )
    except FileNotFoundError as exc:
        raise CheckpointError(f"weights file not found: {path}") from exc
    except (OSError, SafetensorError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a rechroma weights file: {exc}") from exc


def load_generator(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointInfo]:
    """Build the generator a weights file names and load it strictly, in eval mode."""
    return load_model(path, device, build=build_generator)


def load_model(
    path: Path,
    device: str | torch.device = "cpu",
    build: Callable[..., nn.Module] = build_model,
) -> tuple[nn.Module, CheckpointInfo]:
    """Build any registered network a weights file names and load it strictly, in eval mode."""
    info = read_info(path)
    model = build(info.model_name, **info.model_kwargs)
    try:
        state = load_file(str(path), device=str(device))
        model.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not fit model {info.model_name!r}: {exc}") from exc
    return model.to(device).eval(), info


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, to name exactly which weights produced a result."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def blend_weights(base: Path, tuned: Path, amount: float) -> tuple[nn.Module, CheckpointInfo]:
    """Interpolate two files of the same network: (1 - amount) x base + amount x tuned.

    A model fine-tuned on new data forgets some of what its base knew; the weights halfway
    between often keep both (WiSE-FT, Wortsman et al. 2022). `tuned` gives the description
    (step, config, chroma gain) and every non-float tensor (BatchNorm's batch counters);
    the blend is recorded in the config.
    """
    if not 0.0 <= amount <= 1.0:
        raise CheckpointError(f"blend amount {amount} is outside [0, 1]")
    base_model, base_info = load_model(base)
    model, info = load_model(tuned)
    if (base_info.model_name, base_info.model_kwargs) != (info.model_name, info.model_kwargs):
        raise CheckpointError(
            f"cannot blend {base} ({base_info.model_name} {base_info.model_kwargs}) with "
            f"{tuned} ({info.model_name} {info.model_kwargs}): not the same network"
        )
    base_state = base_model.state_dict()
    blended = {
        name: torch.lerp(base_state[name].float(), value.float(), amount).to(value.dtype)
        if value.is_floating_point()
        else value
        for name, value in model.state_dict().items()
    }
    model.load_state_dict(blended, strict=True)
    record = {"base": base.name, "base_sha256": file_sha256(base), "amount": amount}
    config = {**info.config, "blend": record}
    return model, replace(info, config=config)
