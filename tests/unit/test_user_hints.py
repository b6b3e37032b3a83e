"""Colour hints as a person gives them: parsing, checking, and placing at render size."""

import json

import pytest
import torch

from rechroma.color import AB_SCALE, rgb_to_lab
from rechroma.inference.hints import (
    MAX_HINTS,
    Hint,
    HintError,
    as_hints,
    hint_channels,
    hints_from_json,
    hints_to_json,
    parse_hint,
    validate_hints,
)


def test_command_line_form() -> None:
    assert parse_hint("412,300,#2b4c9a") == Hint(412, 300, "#2b4c9a")
    assert parse_hint(" 1.5, 2 ,2B4C9A, 8") == Hint(1.5, 2, "2B4C9A", 8)


def test_colours_are_hex_or_css_names_kept_as_hex() -> None:
    assert parse_hint("5,6,navy") == Hint(5, 6, "#000080")
    assert parse_hint("5,6,DarkRed,3").color == "#8b0000"
    assert Hint(1, 2, "#F0A").color == "#ff00aa"
    assert Hint(1, 2, "2B4C9A") == Hint(1, 2, "#2b4c9a")
    for colour in ("rgb(1,2,3)", "", "#12345", "transparent-ish"):
        with pytest.raises(HintError, match="not a colour like #2b4c9a or navy"):
            Hint(1, 2, colour)


def test_library_hints_may_be_tuples_dicts_or_hints() -> None:
    given = [(10, 20, "red"), (1.5, 2, "#00ff00", 4), {"x": 3, "y": 4, "colour": "navy"}]
    given += [{"x": 5, "y": 6, "color": "#0000ff", "radius": 2}, Hint(7, 8, "white")]
    assert as_hints(given) == (
        Hint(10, 20, "#ff0000"),
        Hint(1.5, 2, "#00ff00", 4),
        Hint(3, 4, "#000080"),
        Hint(5, 6, "#0000ff", 2),
        Hint(7, 8, "#ffffff"),
    )
    assert as_hints(None) == ()
    for bad, message in [
        ([(1, 2)], "is not \\(x, y, colour\\)"),
        (["1,2,red"], "is not \\(x, y, colour\\)"),
        ([{"x": 1, "y": 2}], "needs x, y and color"),
        ([(1, "2", "red")], "numbers"),
        ([(1, 2, "mauvish")], "not a colour"),
    ]:
        with pytest.raises(HintError, match=message):
            as_hints(bad)


@pytest.mark.parametrize(
    "text",
    [
        "412,300",
        "a,b,#2b4c9a",
        "1,2,#2b4c9",
        "1,2,bleu",
        "1,2,#2b4c9a,big",
        "1,2,3,4,5",
        "1,nan,red",
    ],
)
def test_bad_command_line_hints_are_refused(text: str) -> None:
    with pytest.raises(HintError):
        parse_hint(text)


def test_json_round_trip_and_bare_list() -> None:
    hints = [Hint(10, 20, "#ff0000"), Hint(5.5, 6, "#00ff00", radius=4), Hint(1, 2, "red", 3, 7)]
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
        ('{"hints": [{"x": 1, "y": 2, "color": 255}]}', "255 is not a colour"),
        ('{"hints": [{"x": 1, "y": 2, "color": "#zzzzzz"}]}', "not a colour like #2b4c9a"),
        ('{"hints": [{"x": 1, "y": 2, "color": "red", "group": -1}]}', "group must be"),
        ('{"hints": [{"x": 1, "y": 2, "color": "red", "group": 1.5}]}', "group must be"),
        ('{"hints": [{"x": 1, "y": 2, "color": "red", "group": true}]}', "group must be"),
        ('{"hints": [{"x": 1, "y": 2, "color": "red", "group": 256}]}', "group must be"),
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
