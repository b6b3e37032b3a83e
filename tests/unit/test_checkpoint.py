import pytest
import torch

from rechroma.errors import CheckpointError
from rechroma.models import build_generator, build_model
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


def test_fp16_storage_halves_the_file_and_loads_as_fp32(tmp_path) -> None:
    kwargs = {"decoder_channels": [32, 16, 16, 8, 8]}
    torch.manual_seed(0)
    model = build_generator("lite0-unet", **kwargs).eval()
    torch.nn.init.normal_(model.head.weight, std=0.1)
    full = save_weights(tmp_path / "full.safetensors", model, "lite0-unet", kwargs, step=3)
    half = save_weights(
        tmp_path / "half.safetensors", model, "lite0-unet", kwargs, step=3, dtype=torch.float16
    )
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, info = load_generator(half)
    assert info.step == 3 and all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=2e-3, rtol=0)


def test_chroma_gain_round_trips_and_defaults_to_one(tmp_path) -> None:
    kwargs = {"width": 8, "depth": 3, "max_channels": 32, "global_context": False}
    model = build_generator("unet", **kwargs)
    plain = save_weights(tmp_path / "plain.safetensors", model, "unet", kwargs, step=1)
    tuned = save_weights(
        tmp_path / "tuned.safetensors", model, "unet", kwargs, step=1, chroma_gain=0.8
    )
    assert read_info(plain).chroma_gain == 1.0
    assert read_info(tuned).chroma_gain == 0.8
    with pytest.raises(CheckpointError, match="chroma gain"):
        save_weights(tmp_path / "bad.safetensors", model, "unet", kwargs, step=1, chroma_gain=0)


def test_a_detectors_threshold_round_trips_and_is_absent_by_default(tmp_path) -> None:
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    model = build_model("defect-unet", **kwargs)
    plain = save_weights(tmp_path / "plain.safetensors", model, "defect-unet", kwargs, step=1)
    tuned = save_weights(
        tmp_path / "tuned.safetensors", model, "defect-unet", kwargs, 1, defect_threshold=0.55
    )
    assert read_info(plain).defect_threshold is None
    assert read_info(tuned).defect_threshold == 0.55
    with pytest.raises(CheckpointError, match="defect threshold"):
        save_weights(
            tmp_path / "bad.safetensors", model, "defect-unet", kwargs, 1, defect_threshold=1.0
        )


def test_a_detectors_scales_round_trip_and_are_checked(tmp_path) -> None:
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    model = build_model("defect-unet", **kwargs)
    plain = save_weights(tmp_path / "plain.safetensors", model, "defect-unet", kwargs, step=1)
    scaled = save_weights(
        tmp_path / "scaled.safetensors", model, "defect-unet", kwargs, 1, defect_scales=(1, 0.5)
    )
    assert read_info(plain).defect_scales is None
    assert read_info(scaled).defect_scales == (1.0, 0.5)
    for bad in ((0.5,), (1, 0), (1, 2), (), (1, 0.8, 0.6, 0.4, 0.2)):
        with pytest.raises(CheckpointError, match="defect scales"):
            save_weights(
                tmp_path / "bad.safetensors", model, "defect-unet", kwargs, 1, defect_scales=bad
            )


@pytest.mark.parametrize(
    ("model", "key", "value"),
    [("unet", "chroma_gain", v) for v in ("nan", "-1", "9", "loud")]
    + [("defect-unet", "defect_threshold", v) for v in ("nan", "0", "1", "high")]
    + [("defect-unet", "defect_scales", v) for v in ("0.5", "[0.5]", "[1, 3]", "[]", "{")],
)
def test_a_damaged_calibration_is_refused(tmp_path, model: str, key: str, value: str) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file(
        {"x": torch.zeros(1)},
        str(path),
        metadata={"model_name": model, "model_kwargs": "{}", key: value},
    )
    with pytest.raises(CheckpointError, match="not a rechroma weights file"):
        read_info(path)
