"""Model registry: every generator is built by name, so configs and checkpoints name it."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from rechroma.errors import ConfigError
from rechroma.models.classifier import Classifier
from rechroma.models.defect_unet import DefectUNet
from rechroma.models.efficientnet_lite import EfficientNetLite0
from rechroma.models.lite_unet import Lite0UNet, Lite2UNet
from rechroma.models.patchgan import PatchDiscriminator
from rechroma.models.unet import UNet

_GENERATORS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "lite0-unet": Lite0UNet,
    "lite2-unet": Lite2UNet,
}
# Networks that help training (pretraining, perceptual loss, adversary) but never colorize.
_AUXILIARY: dict[str, Callable[..., nn.Module]] = {
    "classifier": Classifier,
    # Restoration: where a scanned print is damaged (rechroma.restoration).
    "defect-unet": DefectUNet,
    "efficientnet-lite0": EfficientNetLite0,
    "patchgan": PatchDiscriminator,
}


def list_generators() -> list[str]:
    """Names accepted by `build_generator`."""
    return sorted(_GENERATORS)


def generator_parameters(name: str) -> set[str]:
    """The keyword arguments network `name`'s constructor takes (a generator, or any
    registered network a config may train, such as the defect detector)."""
    return set(inspect.signature(model_factory(name)).parameters)


def with_default_kwargs(name: str, kwargs: dict[str, object]) -> dict[str, object]:
    """`kwargs` with network `name`'s constructor defaults filled in: a file saved before
    an option existed holds the same network as one saved with the option's default."""
    defaults = {
        key: param.default
        for key, param in inspect.signature(model_factory(name)).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    return {**defaults, **kwargs}


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a generator (L -> ab) by registry name with its keyword arguments."""
    try:
        factory = _GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {list_generators()}") from None
    return factory(**kwargs)


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The constructor of any registered network, generator or auxiliary, by name."""
    factory = _GENERATORS.get(name) or _AUXILIARY.get(name)
    if factory is None:
        known = sorted(_GENERATORS) + sorted(_AUXILIARY)
        raise ConfigError(f"unknown model {name!r}; choose one of {known}")
    return factory


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build any registered network, generator or auxiliary, by name."""
    return model_factory(name)(**kwargs)
