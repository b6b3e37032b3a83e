"""`blend-weights`: a fine-tuned model interpolated with its base, as a shippable file."""

import json

import pytest
import torch

from commands import rechroma
from rechroma.errors import CheckpointError
from rechroma.models import build_generator
from rechroma.models.checkpoint import blend_weights, load_model, read_info, save_weights

KWARGS = {"decoder_channels": [32, 16, 16, 8, 8]}


def _weights(path, seed: int, step: int, **kwargs):
    torch.manual_seed(seed)
    model = build_generator("lite0-unet", **(kwargs or KWARGS))
    return save_weights(path, model, "lite0-unet", kwargs or KWARGS, step=step, chroma_gain=0.9)


@pytest.fixture()
def pair(tmp_path):
    return _weights(tmp_path / "base.safetensors", 0, 100), _weights(
        tmp_path / "tuned.safetensors", 1, 250
    )


def test_blend_is_the_weighted_mean_of_the_two_networks(pair) -> None:
    base, tuned = pair
    base_state = load_model(base)[0].state_dict()
    tuned_state = load_model(tuned)[0].state_dict()
    model, info = blend_weights(base, tuned, 0.25)
    state = model.state_dict()
    floats = [name for name, value in state.items() if value.is_floating_point()]
    assert any(not base_state[n].equal(tuned_state[n]) for n in floats)
    for name in floats:
        expected = 0.75 * base_state[name] + 0.25 * tuned_state[name]
        torch.testing.assert_close(state[name], expected)
    assert (info.step, info.chroma_gain) == (250, 0.9)
    assert info.config["blend"]["amount"] == 0.25
    for amount, source in ((0.0, base_state), (1.0, tuned_state)):
        end = blend_weights(base, tuned, amount)[0].state_dict()
        assert all(torch.equal(end[n], source[n]) for n in floats)


def test_different_networks_or_amounts_are_refused(pair, tmp_path) -> None:
    base, _ = pair
    other = _weights(tmp_path / "other.safetensors", 2, 10, decoder_channels=[16, 16, 8, 8, 8])
    with pytest.raises(CheckpointError, match="not the same network"):
        blend_weights(base, other, 0.5)
    with pytest.raises(CheckpointError, match="outside"):
        blend_weights(base, base, 1.5)


def test_cli_writes_a_new_file_and_never_an_input(pair, tmp_path) -> None:
    base, tuned = pair
    out = tmp_path / "blend.safetensors"
    result = rechroma(
        "blend-weights", str(base), str(tuned), str(out), "--amount", "0.5", "--fp16",
        "--chroma-gain", "1.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["chroma_gain"] == 1.1
    info = read_info(out)
    assert info.chroma_gain == 1.1 and info.config["blend"]["base"] == "base.safetensors"

    before = tuned.read_bytes()
    refused = rechroma("blend-weights", str(base), str(tuned), str(tuned), "--amount", "0.5")
    assert refused.returncode != 0 and "is an input" in refused.stderr
    assert tuned.read_bytes() == before
