"""Colour hints as a person gives them: parsing, checking, and placing at render size."""

import json

import pytest
import torch

from rechroma.color import AB_SCALE, rgb_to_lab
from rechroma.inference.hints import (
    MAX_HINTS,
    Hint,
    HintError,
    hint_channels,
    hints_from_json,
    hints_to_json,
    parse_hint,
    validate_hints,
)


def test_command_line_form() -> None:
    assert parse_hint("412,300,#2b4c9a") == Hint(412, 300, "#2b4c9a")
    assert parse_hint(" 1.5, 2 ,2B4C9A, 8") == Hint(1.5, 2, "2B4C9A", 8)


@pytest.mark.parametrize(
    "text", ["412,300", "a,b,#2b4c9a", "1,2,#2b4c9", "1,2,blue", "1,2,#2b4c9a,big", "1,2,3,4,5"]
)
def test_bad_command_line_hints_are_refused(text: str) -> None:
    with pytest.raises(HintError):
        parse_hint(text)


def test_json_round_trip_and_bare_list() -> None:
    hints = [Hint(10, 20, "#ff0000"), Hint(5.5, 6, "#00ff00", radius=4)]
    assert hints_from_json(hints_to_json(hints)) == hints
    bare = json.dumps([{"x": 10, "y": 20, "color": "#ff0000"}])
    assert hints_from_json(bare) == hints[:1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"points": []}', "must be"),
        ('{"hints": [{"x": 1, "y": 2}]}', "needs x, y and color"),
        ('{"hints": [{"x": "1", "y": 2, "color": "#000000"}]}', "numbers"),
        ('{"hints": [{"x": true, "y": 2, "color": "#000000"}]}', "numbers"),
        ('{"hints": [{"x": 1, "y": 2, "color": 255}]}', "color must be a string"),
        ('{"hints": [{"x": 1, "y": 2, "color": "#zzzzzz"}]}', "not an sRGB hex"),
    ],
)
def test_malformed_json_gets_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(HintError, match=message):
        hints_from_json(text)


def test_too_many_hints_are_refused() -> None:
    many = [{"x": 1, "y": 1, "color": "#000000"}] * (MAX_HINTS + 1)
    with pytest.raises(HintError, match="at most"):
        hints_from_json(json.dumps(many))


def test_hints_outside_the_photo_are_refused() -> None:
    validate_hints([Hint(0, 0, "#000000"), Hint(99.9, 49.9, "#000000")], 100, 50)
    for x, y in [(100, 10), (-1, 10), (10, 50)]:
        with pytest.raises(HintError, match="outside the 100x50 photo"):
            validate_hints([Hint(x, y, "#000000")], 100, 50)


def test_channels_carry_the_colours_chroma_at_the_scaled_point() -> None:
    channels = hint_channels([Hint(300, 100, "#2b4c9a")], size=(400, 200), shape=(50, 100))
    mask = channels[2]
    assert mask.sum() == 9 and mask[24:27, 74:77].all()  # 3x3 around (75, 25)
    rgb = torch.tensor([0x2B, 0x4C, 0x9A], dtype=torch.float32).view(3, 1, 1) / 255
    expected = rgb_to_lab(rgb)[1:, 0, 0] / AB_SCALE
    torch.testing.assert_close(channels[:2, 25, 75], expected)
    assert channels[:2][:, mask == 0].abs().sum() == 0


def test_radius_is_in_pixels_of_the_original() -> None:
    channels = hint_channels([Hint(200, 100, "#ff0000", radius=40)], (400, 200), (50, 100))
    assert channels[2].sum() == 21 * 21  # 40 px of the original are 10 at render size
    point = hint_channels([Hint(200, 100, "#ff0000", radius=0)], (400, 200), (50, 100))
    assert point[2].sum() == 1
