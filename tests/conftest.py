"""Shared fixtures: synthetic shards, tiny configs and models, real photos from ../shared."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rechroma.models import build_generator
from rechroma.models.checkpoint import save_weights
from rechroma.training.config import Config, DataConfig, ModelConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECHROMA_SHARED", REPO.parent / "shared"))
CLASSES = ("n01443537", "n01629819", "n02123045")


def smooth_photo(rng: np.random.Generator, size: int = 48) -> Image.Image:
    """A colourful, smooth test image: random colour gradients, like a blurry photo."""
    ys, xs = np.mgrid[0:size, 0:size] / size
    channels = [
        np.clip(
            rng.uniform(0.2, 0.8) + rng.uniform(-0.4, 0.4) * xs + rng.uniform(-0.4, 0.4) * ys, 0, 1
        )
        for _ in range(3)
    ]
    return Image.fromarray((np.stack(channels, -1) * 255).astype(np.uint8))


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two train shards (labelled RGB, grayscale, one corrupt member, one text file) + val."""
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    for index in range(2):
        members = [
            (f"{CLASSES[i % 3]}_{index}{i}.jpg", _jpeg(smooth_photo(rng))) for i in range(10)
        ]
        members.append((f"{CLASSES[0]}_gray{index}.jpg", _jpeg(smooth_photo(rng).convert("L"))))
        members.append((f"{CLASSES[1]}_broken{index}.jpg", b"\xff\xd8 not really a jpeg"))
        members.append((f"readme{index}.txt", b"not an image"))
        write_shard(root / f"train-{index:03d}.tar", members)
    write_shard(
        root / "val-000.tar", [(f"val_{i}.jpg", _jpeg(smooth_photo(rng))) for i in range(6)]
    )
    return root


@pytest.fixture()
def tiny_config(shard_dir: Path) -> Config:
    """A config small enough to train a few steps in seconds."""
    return Config(
        data=DataConfig(
            train_shards=(str(shard_dir / "train-*.tar"),),
            val_shards=(str(shard_dir / "val-*.tar"),),
            crop_size=32,
            shuffle_buffer=8,
            workers=0,
        ),
        model=ModelConfig(width=8, depth=3, max_channels=32),
        train=replace(
            TrainConfig(),
            steps=4,
            batch_size=4,
            threads=1,
            log_every=1,
            ckpt_every=2,
            val_batches=1,
        ),
    )


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained width-8 generator saved as a real weights file."""
    torch.manual_seed(0)
    kwargs = {"width": 8, "depth": 3, "max_channels": 32, "global_context": True}
    model = build_generator("unet", **kwargs)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_weights(path, model, "unet", kwargs, step=0)


@pytest.fixture(scope="session")
def tiny_hint_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained lite0-unet (small decoder, random output layer) that takes hints."""
    torch.manual_seed(0)
    kwargs = {"decoder_channels": [32, 16, 16, 8, 8]}
    model = build_generator("lite0-unet", **kwargs)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    path = tmp_path_factory.mktemp("weights") / "tiny-lite0.safetensors"
    return save_weights(path, model, "lite0-unet", kwargs, step=0)


@pytest.fixture(scope="session")
def photos_val() -> Path:
    """The 200 real photos that ../shared/data provides."""
    folder = SHARED / "data" / "photos-val"
    assert folder.is_dir(), f"tests need {folder} (set RECHROMA_SHARED to the shared folder)"
    return folder


@pytest.fixture(scope="session")
def real_photo(photos_val: Path) -> Path:
    return sorted(photos_val.glob("*.JPEG"))[0]


@pytest.fixture(scope="session")
def start_server():
    """Start a real uvicorn server on a free loopback port: `start_server(settings, colorizer,
    restorer=None)`
    returns its base URL; every server stops at the end of the session."""
    import socket
    import threading
    import time

    import uvicorn

    from rechroma.server.app import create_app, uvicorn_limits
    from rechroma.server.settings import ServerSettings

    servers = []

    def start(settings, colorizer, restorer=None) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        app = create_app(settings, colorizer=colorizer, restorer=restorer)
        limits = uvicorn_limits(settings or ServerSettings())
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **limits)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def colorizer(tiny_weights: Path):
    """The untrained tiny generator behind the real Colorizer, at a small render size."""
    from rechroma.inference.colorizer import Colorizer

    return Colorizer.load(tiny_weights, render_size=64, threads=1)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Everything rechroma caches (ONNX graphs, fetched weights) goes to a folder of this
    session's, shared by its tests and the commands they start, never the user's cache."""
    os.environ.setdefault("RECHROMA_CACHE", str(tmp_path_factory.mktemp("cache")))
