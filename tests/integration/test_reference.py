"""Colour from a reference photo: the shipped model, real photos, the library and the CLI."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from commands import rechroma
from rechroma import colorize
from rechroma.evaluation.reference import counterfactual_reference, turn_chroma
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.reference import (
    MIN_MATCHES,
    Match,
    ReferenceOptions,
    ReferencePhotoError,
    ReferenceSet,
    load_reference,
    load_references,
    reference_hints,
    thin,
)


@pytest.fixture(scope="module")
def shipped() -> Colorizer:
    torch.set_num_threads(2)
    return Colorizer.load(runtime="torch")


@pytest.fixture(scope="module")
def birds(photos_val: Path) -> list[Image.Image]:
    """Three colourful photos of photos-val at 256 x 256, as `rechroma eval` reads them."""
    names = ("n01530575_brambling", "n01558993_robin", "n01440764_tench")
    return [
        Image.open(photos_val / f"{name}.JPEG").convert("RGB").resize((256, 256)) for name in names
    ]


def _psnr(image: Image.Image, target: Image.Image) -> float:
    error = np.mean((np.asarray(image, float) - np.asarray(target, float)) ** 2)
    return 10 * math.log10(255**2 / error)


def test_a_turned_reference_brings_its_colours(shipped, birds) -> None:
    # The truth's chroma turned 90 degrees: colours the model could never guess, so the
    # gain can only come from the reference.
    for index, truth in enumerate(birds):
        target = turn_chroma(truth, 90)
        reference_image = counterfactual_reference(target, np.random.default_rng(index))
        gray = truth.convert("L")
        reference = load_reference(shipped, reference_image)
        hints = reference_hints(shipped, gray, [reference])
        assert len(hints) >= MIN_MATCHES
        guided = shipped.colorize(gray, reference=ReferenceSet((reference,)))
        automatic = shipped.colorize(gray)
        assert _psnr(guided, target) > _psnr(automatic, target) + 2.0


def test_an_unrelated_reference_is_mostly_ignored(shipped, birds) -> None:
    changes = []
    for index, truth in enumerate(birds):
        other = birds[(index + 1) % len(birds)]
        gray = truth.convert("L")
        guided = shipped.colorize(gray, reference=load_references(shipped, other))
        changes.append(_psnr(guided, truth) - _psnr(shipped.colorize(gray), truth))
    assert sorted(changes)[1] > -1.0  # the median of three


def test_a_reference_never_changes_the_lightness(shipped, birds) -> None:
    truth = birds[0]
    gray = truth.convert("L")
    reference = load_references(shipped, ImageOps.mirror(turn_chroma(truth, 120)))
    out = shipped.colorize(gray, reference=reference)
    # Only a*, b* come from the reference: the output's L* is the photo's, as close as the
    # automatic colour's is (both within the gamut clamp's rounding).
    lightness = _lightness(gray.convert("RGB"))
    error = np.abs(_lightness(out) - lightness)
    automatic = np.abs(_lightness(shipped.colorize(gray)) - lightness)
    assert error.mean() < automatic.mean() + 0.5 and np.percentile(error, 99) < 3
    assert np.asarray(out.convert("RGB")).std(axis=2).mean() > 3  # and it is in colour


def _lightness(image: Image.Image) -> np.ndarray:
    from rechroma.color import rgb_to_lab

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(pixels.permute(2, 0, 1))[0].numpy()


def test_strength_zero_is_the_automatic_colour_and_fallback_global_moves_it(shipped, birds) -> None:
    gray = birds[0].convert("L")
    automatic = np.asarray(shipped.colorize(gray), dtype=int)
    reference = load_reference(shipped, ImageOps.mirror(turn_chroma(birds[0], 90)))
    none = np.asarray(shipped.colorize(gray, reference=ReferenceSet((reference,), 0.0)), int)
    assert np.abs(none - automatic).max() <= 1
    half = np.asarray(shipped.colorize(gray, reference=ReferenceSet((reference,), 0.5)), int)
    full = np.asarray(shipped.colorize(gray, reference=ReferenceSet((reference,), 1.0)), int)
    assert 0 < np.abs(half - automatic).mean() < np.abs(full - automatic).mean()
    # A flat red card matches nothing: "none" keeps the automatic colour, "global" takes
    # the card's statistics (redder).
    card = Image.new("RGB", (200, 150), (200, 40, 40))
    card.paste((180, 60, 50), (20, 20, 120, 100))
    kept = shipped.colorize(gray, reference=load_references(shipped, card))
    moved = shipped.colorize(gray, reference=load_references(shipped, card, fallback="global"))
    assert np.abs(np.asarray(kept, int) - automatic).max() <= 1
    red = np.asarray(moved, float)
    assert (red[..., 0] - red[..., 1]).mean() > (automatic[..., 0] - automatic[..., 1]).mean() + 5


def test_references_come_in_every_form_and_a_folder_pools_them(shipped, birds, tmp_path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    for index, bird in enumerate(birds[:2]):
        bird.save(folder / f"{index}.jpg")
    (folder / "notes.txt").write_text("not a photo")
    pooled = load_references(shipped, folder)
    assert len(pooled.references) == 2
    encoded = io.BytesIO()
    birds[0].save(encoded, "PNG")
    forms = [
        folder / "0.jpg",
        str(folder / "0.jpg"),
        encoded.getvalue(),
        birds[0],
        np.asarray(birds[0]),
        np.asarray(birds[0], dtype=np.float32) / 255,
    ]
    for form in forms:
        assert load_reference(shipped, form).descriptors.shape[0] > 100
    # A panorama is matched at most 768 px long: its cells stay few.
    panorama = birds[0].resize((3000, 150))
    assert load_reference(shipped, panorama).descriptors.shape[0] <= (768 // 8) * (40 // 8)
    # Read once per colorizer, however many photos a worker colours.
    options = ReferenceOptions((folder,))
    assert options.load(shipped) is options.load(shipped)
    # The library: every input kind takes a reference too.
    out = colorize(birds[1].convert("L"), reference=folder / "0.jpg", colorizer=shipped)
    assert out.size == (256, 256) and out.mode == "RGB"


def test_a_reference_that_cannot_be_used_says_why(shipped, birds, tmp_path) -> None:
    gray = tmp_path / "gray.png"
    birds[0].convert("L").convert("RGB").save(gray)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        gray: "gray",
        corrupt: "corrupt.jpg",
        tmp_path / "missing.jpg": "no such file",
        empty: "holds no photos",
    }
    for source, reason in cases.items():
        with pytest.raises(ReferencePhotoError, match=reason):
            load_references(shipped, source)
    big = tmp_path / "big.png"
    birds[0].save(big)
    with pytest.raises(ReferencePhotoError, match="megapixels"):
        load_reference(shipped, big, max_pixels=1000)


def test_a_model_without_hints_refuses_a_reference(tiny_weights, birds) -> None:
    from rechroma.errors import InvalidOptionError

    colorizer = Colorizer.load(tiny_weights, runtime="torch")
    with pytest.raises(InvalidOptionError, match="hints"):
        load_reference(colorizer, birds[0])


def test_thinning_keeps_the_most_confident_spread_out() -> None:
    ab = torch.zeros(2)
    matches = [Match(0, 0, ab, 0.9), Match(0, 1, ab, 0.95), Match(5, 5, ab, 0.5)]
    kept = thin(matches, max_hints=5, spacing=2)
    assert [(m.row, m.col) for m in kept] == [(0, 1), (5, 5)]
    assert len(thin(matches, max_hints=1)) == 1


def test_the_cli_colours_with_a_reference_and_refuses_a_gray_one(birds, tmp_path) -> None:
    photo = tmp_path / "bird.png"
    birds[0].convert("L").save(photo)
    reference = tmp_path / "ref.jpg"
    ImageOps.mirror(birds[0]).save(reference)
    result = rechroma(
        "colorize",
        str(photo),
        str(tmp_path / "out.png"),
        "--reference",
        str(reference),
        "--reference-strength",
        "0.8",
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (256, 256)
    gray = tmp_path / "gray.png"
    birds[0].convert("L").save(gray)
    refused = rechroma("colorize", str(photo), str(tmp_path / "x.png"), "--reference", str(gray))
    assert refused.returncode != 0 and "gray" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def reference_server(start_server, shipped) -> str:
    from rechroma.server.settings import ServerSettings

    settings = ServerSettings(max_upload_bytes=2_000_000, max_pixels=4_000_000, max_files=3)
    return start_server(settings, shipped)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_api_colours_with_reference_files_and_shows_the_matches(
    reference_server, birds
) -> None:
    import httpx

    truth = birds[0]
    target = turn_chroma(truth, 90)
    photo = ("bird.png", _png(truth.convert("L")), "image/png")
    reference = ("ref.png", _png(ImageOps.mirror(target)), "image/png")
    plain = httpx.post(f"{reference_server}/api/colorize", files=[("file", photo)], timeout=60)
    guided = httpx.post(
        f"{reference_server}/api/colorize",
        files=[("file", photo), ("reference", reference)],
        timeout=60,
    )
    assert plain.status_code == guided.status_code == 200, guided.text
    plain_image, guided_image = (
        Image.open(io.BytesIO(r.content)).convert("RGB") for r in (plain, guided)
    )
    assert _psnr(guided_image, target) > _psnr(plain_image, target) + 2.0
    # The matches, as the page shows them: pins in pixels of the photo, in colour groups.
    matched = httpx.post(
        f"{reference_server}/api/match",
        files=[("file", photo), ("reference", reference)],
        timeout=60,
    )
    assert matched.status_code == 200, matched.text
    body = matched.json()
    assert (body["width"], body["height"]) == (256, 256)
    assert len(body["hints"]) >= MIN_MATCHES
    assert all(0 <= h["x"] < 256 and 0 <= h["y"] < 256 and "group" in h for h in body["hints"])
    # Sent back as hints (a person's edited pins), they colour as the reference did.
    from rechroma.inference.hints import hints_from_json

    assert len(hints_from_json(body)) == len(body["hints"])


def test_the_api_refuses_a_gray_reference_and_bad_options(reference_server, birds) -> None:
    import httpx

    photo = ("bird.png", _png(birds[0].convert("L")), "image/png")
    gray = ("gray.png", _png(birds[0].convert("L")), "image/png")
    refused = httpx.post(
        f"{reference_server}/api/colorize",
        files=[("file", photo), ("reference", gray)],
        timeout=60,
    )
    assert refused.status_code == 422 and "gray" in refused.json()["detail"]
    corrupt = ("ref.jpg", b"\xff\xd8\xff\xe0 broken", "image/jpeg")
    refused = httpx.post(
        f"{reference_server}/api/match", files=[("file", photo), ("reference", corrupt)], timeout=60
    )
    assert refused.status_code == 422 and "ref.jpg" in refused.json()["detail"]
    strong = httpx.post(
        f"{reference_server}/api/colorize",
        files=[("file", photo), ("reference", photo)],
        data={"reference_strength": "2"},
        timeout=60,
    )
    assert strong.status_code == 422 and "strength" in strong.json()["detail"]
    many = [("reference", ("r.png", _png(birds[1]), "image/png"))] * 5
    assert (
        httpx.post(
            f"{reference_server}/api/colorize", files=[("file", photo), *many], timeout=60
        ).status_code
        == 413
    )
    no_reference = httpx.post(f"{reference_server}/api/match", files=[("file", photo)], timeout=60)
    assert no_reference.status_code == 400 and "reference" in no_reference.json()["detail"]
    assert httpx.get(f"{reference_server}/api/health").status_code == 200


class _OneOffColours:
    """The shipped colorizer, except that one photo's first pass comes out in colours
    turned 120 degrees: the folder's odd one out."""

    def __init__(self, inner: Colorizer, odd: Image.Image) -> None:
        self.inner, self.odd = inner, odd

    def colorize(self, image, *args, **kwargs):
        out = self.inner.colorize(image, *args, **kwargs)
        return turn_chroma(out, 120) if image is self.odd else out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_consistent_brings_the_odd_photo_to_the_folders_colours(shipped, birds) -> None:
    from rechroma.inference.consistent import consistent_hints, first_pass_copy

    truth = birds[0]
    views = [
        truth,
        ImageOps.mirror(truth),
        truth.crop((20, 10, 250, 240)),
        truth.crop((0, 30, 230, 256)),
    ]
    photos = [(first_pass_copy(view.convert("L")), view.size) for view in views]
    colorizer = _OneOffColours(shipped, photos[0][0])
    answers = consistent_hints(colorizer, photos)
    assert len(answers[0]) >= MIN_MATCHES
    assert sum(len(hints) for hints in answers[1:]) < len(answers[0]) / 2
    # The odd photo's hints carry the others' colours, not its own turned ones.
    from rechroma.color import rgb_to_lab

    automatic = shipped.colorize(photos[0][0])
    odd = turn_chroma(automatic, 120)

    def ab_at(image: Image.Image, hint) -> torch.Tensor:
        pixel = torch.tensor(image.getpixel((int(hint.x), int(hint.y))), dtype=torch.float32)
        return rgb_to_lab(pixel[:, None, None] / 255)[1:, 0, 0]

    def hint_ab(hint) -> torch.Tensor:
        return rgb_to_lab(torch.tensor(hint.rgb())[:, None, None])[1:, 0, 0]

    nearer = [
        (hint_ab(h) - ab_at(automatic, h)).norm() < (hint_ab(h) - ab_at(odd, h)).norm()
        for h in answers[0]
    ]
    assert sum(nearer) > 0.8 * len(nearer)


def test_the_cli_colours_a_folder_consistently(birds, tmp_path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    for index, bird in enumerate(birds):
        bird.convert("L").save(folder / f"{index}.png")
    result = rechroma("colorize", str(folder), str(tmp_path / "out"), "--consistent")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
    refused = rechroma("colorize", str(folder / "0.png"), str(tmp_path / "x.png"), "--consistent")
    assert refused.returncode != 0 and "folder" in refused.stderr


def test_a_clip_takes_its_colours_from_a_reference_still(birds, tmp_path) -> None:
    import av

    from rechroma.evaluation.video import make_pan_clip

    truth = birds[1]
    clip = make_pan_clip(truth, tmp_path / "pan.mp4", size=(192, 128), seconds=0.5, audio=False)
    still = tmp_path / "still.png"
    turned = turn_chroma(truth, 90)
    turned.save(still)
    outs = {}
    for name, extra in (("plain", []), ("guided", ["--reference", str(still)])):
        out = tmp_path / f"{name}.mp4"
        result = rechroma("colorize", str(clip), str(out), *extra)
        assert result.returncode == 0, result.stderr
        with av.open(str(out)) as container:
            frames = [f.to_image() for f in container.decode(video=0)]
        outs[name] = frames[len(frames) // 2]

    # The pan is close on the robin, whose orange breast turned 90 degrees is green: the
    # clip coloured from the still is greener (lower a*) than the automatic one.
    def mean_a(image: Image.Image) -> float:
        from rechroma.color import rgb_to_lab

        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255)
        return float(rgb_to_lab(pixels.permute(2, 0, 1))[1].mean())

    assert mean_a(outs["guided"]) < mean_a(outs["plain"]) - 5


def test_a_video_job_takes_reference_stills(reference_server, birds, tmp_path) -> None:
    import time

    import av
    import httpx

    from rechroma.evaluation.video import make_pan_clip

    truth = birds[1]
    clip = make_pan_clip(truth, tmp_path / "pan.mp4", size=(192, 128), seconds=0.4, audio=False)
    still = ("still.png", _png(turn_chroma(truth, 90)), "image/png")
    gray = ("gray.png", _png(truth.convert("L")), "image/png")
    refused = httpx.post(
        f"{reference_server}/api/videos",
        files=[("file", ("pan.mp4", clip.read_bytes(), "video/mp4")), ("reference", gray)],
        timeout=60,
    )
    assert refused.status_code == 422 and "gray" in refused.json()["detail"]
    submitted = httpx.post(
        f"{reference_server}/api/videos",
        files=[("file", ("pan.mp4", clip.read_bytes(), "video/mp4")), ("reference", still)],
        timeout=60,
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    deadline = time.monotonic() + 120
    while (status := httpx.get(f"{reference_server}{job['status_url']}").json())["state"] not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["state"] == "done", status
    out = tmp_path / "out.mp4"
    out.write_bytes(httpx.get(f"{reference_server}{status['result_url']}").content)
    with av.open(str(out)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    from rechroma.color import rgb_to_lab

    middle = torch.from_numpy(np.asarray(frames[len(frames) // 2], np.float32) / 255)
    # The robin's breast, turned 90 degrees, is green: a* well below zero on average.
    assert float(rgb_to_lab(middle.permute(2, 0, 1))[1].mean()) < -5


def test_eval_reference_reports_every_method_for_each_mode(birds, tmp_path) -> None:
    import json

    folder = tmp_path / "photos"
    folder.mkdir()
    for index, bird in enumerate(birds):
        bird.save(folder / f"{index}.png")
    for mode in ("counterfactual", "unrelated", "frames"):
        out = tmp_path / mode
        result = rechroma(
            "eval", str(folder), "--reference", mode, "--out", str(out), "--grid", "2", "-q"
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads((out / "metrics.json").read_text())
        assert summary["mode"] == mode and summary["count"] == 3
        methods = summary["methods"]
        assert list(methods) == ["no reference", "global transfer", "reference", "oracle"]
        assert (out / "grid.jpg").is_file() and "grid.jpg" in (out / "report.md").read_text()
        if mode == "counterfactual":  # colours no model could guess: only the reference's
            assert methods["reference"]["psnr_median"] > methods["no reference"]["psnr_median"] + 2
    refused = rechroma(
        "eval",
        str(folder),
        "--reference",
        "counterfactual",
        "--hints",
        "3",
        "--out",
        str(tmp_path / "x"),
    )
    assert refused.returncode != 0 and "--reference" in refused.stderr
