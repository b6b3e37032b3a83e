"""The calibrated default vividness stored in a weights file: export, apply, report."""

import json

import pytest
import torch
from PIL import Image

from commands import rechroma
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.hints import Hint
from rechroma.models.checkpoint import read_info


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    ramp = torch.linspace(0, 255, 64).round().to(torch.uint8)
    return Image.fromarray((ramp[None, :] // 2 + ramp[:, None] // 2).numpy(), "L")


def test_export_stores_the_gain_and_the_colorizer_applies_it(
    tiny_hint_weights, photo, tmp_path
) -> None:
    out = tmp_path / "calibrated.safetensors"
    result = rechroma("export-weights", str(tiny_hint_weights), str(out), "--chroma-gain", "0.75")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["chroma_gain"] == 0.75
    assert read_info(out).chroma_gain == 0.75

    raw, calibrated = Colorizer.load(tiny_hint_weights), Colorizer.load(out)
    assert calibrated.chroma_gain == 0.75
    raw_ab = raw.predict(photo).ab
    assert raw_ab.abs().max() > 1  # the random head gives real colour to scale
    torch.testing.assert_close(calibrated.predict(photo).ab, 0.75 * raw_ab)
    # Vividness still scales on top: 2 x 0.75 is the raw colour at 1.5, byte for byte.
    assert calibrated.render(calibrated.predict(photo), 2.0).tobytes() == (
        raw.render(raw_prediction := raw.predict(photo), 1.5).tobytes()
    )
    assert (
        raw.render(raw_prediction, 1.0).tobytes()
        != calibrated.render(calibrated.predict(photo), 1.0).tobytes()
    )

    # Hints fix colours, so they are answered without the gain.
    hints = [Hint(20, 20, "#c0302a")]
    torch.testing.assert_close(
        calibrated.predict(photo, hints=hints).ab, raw.predict(photo, hints=hints).ab
    )

    # Exporting again without --chroma-gain keeps the stored one.
    again = tmp_path / "again.safetensors"
    assert rechroma("export-weights", str(out), str(again)).returncode == 0
    assert read_info(again).chroma_gain == 0.75


def test_an_impossible_gain_is_a_clear_error(tiny_hint_weights, tmp_path) -> None:
    out = tmp_path / "bad.safetensors"
    result = rechroma("export-weights", str(tiny_hint_weights), str(out), "--chroma-gain", "-2")
    assert result.returncode != 0
    assert "chroma gain" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
