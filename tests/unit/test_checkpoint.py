import pytest
import torch

from rechroma.errors import CheckpointError
from rechroma.models import build_generator
from rechroma.models.checkpoint import file_sha256, load_generator, read_info, save_weights


def test_round_trip_is_strict_and_exact(tmp_path) -> None:
    kwargs = {"width": 8, "depth": 3, "max_channels": 32, "global_context": False}
    model = build_generator("unet", **kwargs).eval()
    path = save_weights(
        tmp_path / "w.safetensors", model, "unet", kwargs, step=42, config={"note": "x"}
    )
    loaded, info = load_generator(path)
    assert info.step == 42 and info.model_kwargs == kwargs and info.config == {"note": "x"}
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert len(file_sha256(path)) == 64


def test_mismatched_weights_are_refused(tmp_path) -> None:
    small = {"width": 8, "depth": 3, "max_channels": 32, "global_context": True}
    path = save_weights(
        tmp_path / "w.safetensors",
        build_generator("unet", **small),
        "unet",
        {**small, "width": 12},
        step=0,
    )
    with pytest.raises(CheckpointError, match="does not fit"):
        load_generator(path)


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", b"\x80\x04pickle"])
def test_non_weights_files_are_refused(tmp_path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        read_info(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.safetensors")
