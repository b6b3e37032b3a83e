"""Model registry: every generator is built by name, so configs and checkpoints name it."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from rechroma.errors import ConfigError
from rechroma.models.unet import UNet

_GENERATORS: dict[str, Callable[..., nn.Module]] = {"unet": UNet}


def list_generators() -> list[str]:
    """Names accepted by `build_generator`."""
    return sorted(_GENERATORS)


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a generator (L -> ab) by registry name with its keyword arguments."""
    try:
        factory = _GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {list_generators()}") from None
    return factory(**kwargs)
