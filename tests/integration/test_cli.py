"""`rechroma` run as users run it: a subprocess, real files, the shipped weights."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from commands import rechroma
from rechroma.color import rgb_to_lab
from rechroma.inference.colorizer import DEFAULT_WEIGHTS


def _lightness(path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))[0].numpy()


def test_shipped_weights_are_small_safetensors() -> None:
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size < 20 * 1024 * 1024


def test_colorize_a_real_photo_keeps_size_and_lightness(real_photo, tmp_path) -> None:
    out = tmp_path / "out.jpg"
    result = rechroma("colorize", str(real_photo), str(out), check=True)
    assert result.stdout.strip() == str(out)
    source, colored = Image.open(real_photo), Image.open(out)
    assert colored.size == source.size and colored.mode == "RGB"
    # The output's L is the input's own, up to JPEG re-encoding.
    assert np.abs(_lightness(out) - _lightness(real_photo)).mean() < 1.5
    lab = rgb_to_lab(torch.from_numpy(np.asarray(colored, dtype=np.float32) / 255).permute(2, 0, 1))
    assert lab[1:].abs().mean() > 1.0  # it added colour


def test_onnx_runtime_and_pytorch_give_the_same_photo(real_photo, tmp_path) -> None:
    """The default runtime (ONNX Runtime on a CPU) and --runtime torch colour alike."""
    default, torch_out = tmp_path / "default.png", tmp_path / "torch.png"
    rechroma("colorize", str(real_photo), str(default), check=True)
    rechroma("colorize", str(real_photo), str(torch_out), "--runtime", "torch", check=True)
    a = np.asarray(Image.open(default), dtype=np.int16)
    b = np.asarray(Image.open(torch_out), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


def test_colorize_a_large_photo_at_full_size(real_photo, tmp_path) -> None:
    big = tmp_path / "big.png"
    Image.open(real_photo).convert("L").resize((4000, 3000)).save(big)
    out = tmp_path / "big-color.jpg"
    rechroma("colorize", str(big), str(out), check=True)
    assert Image.open(out).size == (4000, 3000)


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.jpg", b""), ("text.jpg", b"hello, not an image"), ("missing.jpg", None)],
)
def test_bad_input_gives_one_clear_line_and_nonzero_exit(tmp_path, name, content) -> None:
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    result = rechroma("colorize", str(src), str(tmp_path / "out.png"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_truncated_jpeg_is_refused(real_photo, tmp_path) -> None:
    src = tmp_path / "cut.jpg"
    src.write_bytes(real_photo.read_bytes()[:5000])
    result = rechroma("colorize", str(src), str(tmp_path / "out.png"))
    assert result.returncode != 0 and "truncated" in result.stderr


def test_folder_mirrors_tree_skips_existing_and_survives_bad_files(photos_val, tmp_path) -> None:
    src = tmp_path / "in"
    (src / "family" / "1952").mkdir(parents=True)
    photos = sorted(photos_val.glob("*.JPEG"))[:2]
    Image.open(photos[0]).convert("L").save(src / "family" / "1952" / "beach.png")
    Image.open(photos[1]).convert("L").save(src / "portrait.tif")
    (src / "family" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    out = tmp_path / "out"

    first = rechroma("colorize", str(src), str(out))
    assert first.returncode == 1  # one failed, the rest done
    assert (out / "family" / "1952" / "beach.png").is_file()
    assert (out / "portrait.tif").is_file()
    assert "broken.jpg" in first.stderr and "2 done" in first.stderr

    failures = (out / "rechroma-failures.tsv").read_text().splitlines()
    assert failures[0] == "path\treason\tmessage" and len(failures) == 2
    assert failures[1].startswith(str(src / "family" / "broken.jpg") + "\tunreadable\t")

    rechroma("colorize", str(src), str(out), "--format", "webp")
    assert (out / "portrait.webp").is_file()
    rerun = rechroma("colorize", str(src), str(out))
    assert "0 done, 2 skipped" in rerun.stderr


def test_prepare_command_reports_counts(photos_val, tmp_path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for photo in sorted(photos_val.glob("*.JPEG"))[:3]:
        (src / photo.name).write_bytes(photo.read_bytes())
    (src / "bad.png").write_bytes(b"not png")
    result = rechroma("prepare", str(src), str(tmp_path / "shards"), "--size", "96", check=True)
    report = json.loads(result.stdout)
    assert report["written"] == 3 and report["skipped"] == 1 and len(report["shards"]) == 1


def test_train_command_with_overrides(tiny_config, shard_dir, tmp_path) -> None:
    result = rechroma(
        "train",
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        f'data.train_shards=["{shard_dir}/train-*.tar"]',
        "--set",
        f'data.val_shards=["{shard_dir}/val-*.tar"]',
        "--set",
        "data.workers=0",
        "--set",
        "data.crop_size=32",
        "--set",
        "data.shuffle_buffer=4",
        "--set",
        "model.width=8",
        "--set",
        "model.depth=3",
        "--set",
        "model.max_channels=32",
        "--set",
        "train.steps=2",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.ckpt_every=2",
        "--set",
        "train.threads=1",
        check=True,
    )
    checkpoint = json.loads(result.stdout)["checkpoint"]
    assert checkpoint.endswith("step_0000002.safetensors")
    bad = rechroma("train", "--set", "train.stepz=2", "--run-dir", str(tmp_path / "x"))
    assert bad.returncode == 3 and "stepz" in bad.stderr


def test_worker_processes_share_a_batch_and_report_every_failure(photos_val, tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photos = sorted(photos_val.glob("*.JPEG"))[:6]
    for index, photo in enumerate(photos):
        Image.open(photo).convert("L").resize((160, 120)).save(src / f"p{index}.jpg")
    (src / "notes.png").write_text("not a photo at all")
    (src / "cut.jpg").write_bytes((src / "p0.jpg").read_bytes()[:700])
    out, failures = tmp_path / "out", tmp_path / "failed.tsv"

    result = rechroma("colorize", str(src), str(out), "--jobs", "2", "--failures", str(failures))
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.jpg" for i in range(6)]
    assert sorted(result.stdout.split()) == sorted(str(out / f"p{i}.jpg") for i in range(6))
    assert "6 done, 0 skipped (output exists), 2 failed" in result.stderr
    assert "1 not a supported image" in result.stderr and "1 unreadable" in result.stderr
    listed = {line.split("\t")[0] for line in failures.read_text().splitlines()[1:]}
    assert listed == {str(src / "notes.png"), str(src / "cut.jpg")}


@pytest.mark.parametrize("vividness", ["0", "2.5"])
def test_vividness_scales_colour(real_photo, tmp_path, vividness) -> None:
    src = tmp_path / "gray.png"
    Image.open(real_photo).convert("L").resize((200, 150)).save(src)
    outputs = {}
    for value in ("1", vividness):
        dst = tmp_path / f"v{value}.png"
        rechroma("colorize", str(src), str(dst), "--vividness", value, check=True)
        rgb = np.asarray(Image.open(dst).convert("RGB"), dtype=int)
        outputs[value] = (rgb.max(axis=2) - rgb.min(axis=2)).mean()  # mean chroma
    if vividness == "0":
        assert outputs["0"] <= 1.0  # gray: R = G = B up to rounding
    else:
        assert outputs[vividness] > 1.8 * outputs["1"]


def test_out_of_range_vividness_is_refused_before_any_work(real_photo, tmp_path) -> None:
    result = rechroma("colorize", str(real_photo), str(tmp_path / "o.png"), "--vividness", "9")
    assert result.returncode == 2 and "--vividness: 9 is not in [0, 4]" in result.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_folder_of_iphone_heic_photos_is_colorized(real_photo, tmp_path) -> None:
    import pillow_heif

    src = tmp_path / "iphone"
    src.mkdir()
    photo = Image.open(real_photo).convert("RGB")
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):
        pillow_heif.from_pillow(photo).save(src / name, quality=80)
    result = rechroma("colorize", str(src), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for name in ("IMG_0001.jpg", "IMG_0002.jpg"):  # HEIC is read, JPEG is written
        with Image.open(tmp_path / "out" / name) as out:
            assert out.size == photo.size and out.format == "JPEG"
    assert "2 done" in result.stderr


def test_files_that_are_not_images_are_listed_not_ignored(real_photo, tmp_path) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    Image.open(real_photo).convert("L").save(src / "photo.png")
    for name in ("notes.txt", "scan.xcf", "index.pdf"):
        (src / name).write_text("not a photo")
    (src / ".DS_Store").write_bytes(b"\x00\x00")  # hidden: not the user's file
    result = rechroma("colorize", str(src), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "3 files skipped: not images: index.pdf, notes.txt, scan.xcf" in result.stderr
    assert "1 done" in result.stderr and "3 not images" in result.stderr


def test_a_folder_with_nothing_to_colorize_says_so_and_fails(tmp_path) -> None:
    src = tmp_path / "documents"
    src.mkdir()
    (src / "letter.docx").write_bytes(b"PK\x03\x04")
    result = rechroma("colorize", str(src), str(tmp_path / "out"))
    assert result.returncode != 0
    assert "1 file skipped: not images: letter.docx" in result.stderr
    assert "no photos or clips to colorize" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = rechroma("colorize", str(empty), str(tmp_path / "out2"))
    assert result.returncode != 0 and "no photos or clips to colorize" in result.stderr


def test_hints_on_the_command_line_change_the_colour_there(real_photo, tiny_hint_weights, tmp_path):
    photo = tmp_path / "photo.png"
    Image.open(real_photo).convert("L").resize((240, 160)).save(photo)
    weights = ["--weights", str(tiny_hint_weights)]
    plain = rechroma("colorize", str(photo), str(tmp_path / "plain.png"), *weights)
    hinted = rechroma(
        "colorize", str(photo), str(tmp_path / "hinted.png"), *weights, "--hint", "60,80,#d01010"
    )
    assert plain.returncode == hinted.returncode == 0, hinted.stderr
    a = np.asarray(Image.open(tmp_path / "plain.png"), dtype=np.float32)
    b = np.asarray(Image.open(tmp_path / "hinted.png"), dtype=np.float32)
    assert np.abs(a - b)[70:90, 50:70].mean() > np.abs(a - b)[:, 180:].mean()

    hints_file = tmp_path / "hints.json"
    hints_file.write_text('{"hints": [{"x": 60, "y": 80, "color": "#d01010"}]}')
    from_file = rechroma(
        "colorize", str(photo), str(tmp_path / "file.png"), *weights, "--hints", str(hints_file)
    )
    assert from_file.returncode == 0
    assert (tmp_path / "file.png").read_bytes() == (tmp_path / "hinted.png").read_bytes()


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        ("60,80", "X,Y,COLOUR"),
        ("60,80,#d0101", "not a colour like #2b4c9a or navy"),
        ("60,80,greenish", "not a colour like #2b4c9a or navy"),
        ("999,80,#d01010", "outside the 240x160 photo"),
        ("10,159,red,99999", "radius 99999 is outside"),
    ],
)
def test_bad_hints_get_one_clear_line(real_photo, tiny_hint_weights, tmp_path, hint, message):
    photo = tmp_path / "photo.png"
    Image.open(real_photo).convert("L").resize((240, 160)).save(photo)
    result = rechroma(
        "colorize", str(photo), str(tmp_path / "o.png"), "--weights", str(tiny_hint_weights),
        "--hint", hint,
    )  # fmt: skip
    # Every bad hint alike: a mistake on the command line, exit 2, one "error:" line.
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rechroma: error: ")
    assert "Traceback" not in result.stderr and not (tmp_path / "o.png").exists()


def test_hints_take_css_colour_names_on_a_turned_photo(real_photo, tiny_hint_weights, tmp_path):
    photo = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 240x160, shown upright 160x240
    Image.open(real_photo).convert("L").resize((240, 160)).save(photo, exif=exif)
    weights = ["--weights", str(tiny_hint_weights)]
    named = rechroma(
        "colorize", str(photo), str(tmp_path / "a.png"), *weights, "--hint", "20,200,navy"
    )
    hexed = rechroma(
        "colorize", str(photo), str(tmp_path / "b.png"), *weights, "--hint", "20,200,#000080"
    )
    assert named.returncode == hexed.returncode == 0, named.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_hints_need_a_model_that_takes_them(real_photo, tiny_weights, tmp_path) -> None:
    result = rechroma(
        "colorize", str(real_photo), str(tmp_path / "o.png"), "--weights", str(tiny_weights),
        "--hint", "1,1,#ffffff",
    )  # fmt: skip
    assert result.returncode != 0 and "does not take colour hints" in result.stderr


def test_a_folder_takes_hint_files_by_name(real_photo, tiny_hint_weights, tmp_path) -> None:
    src, hints = tmp_path / "in", tmp_path / "hints"
    (src / "box").mkdir(parents=True)
    (hints / "box").mkdir(parents=True)
    gray = Image.open(real_photo).convert("L").resize((120, 80))
    for name in ("a.png", "b.png", "c.png"):
        gray.save(src / "box" / name)
    (hints / "box" / "a.json").write_text('[{"x": 30, "y": 40, "color": "#10d010"}]')
    (hints / "box" / "c.json").write_text("[{broken")
    out = tmp_path / "out"
    result = rechroma(
        "colorize", str(src), str(out), "--weights", str(tiny_hint_weights), "--hints", str(hints)
    )
    assert result.returncode == 1 and "2 done" in result.stderr and "1 bad hints" in result.stderr
    a, b = (np.asarray(Image.open(out / "box" / n)) for n in ("a.png", "b.png"))
    assert not np.array_equal(a, b)  # a had a hint, b (no file) was automatic
    assert "c.json" in (out / "rechroma-failures.tsv").read_text()


def test_eval_with_hints_from_the_truth(
    photos_val, tiny_weights, tiny_hint_weights, tmp_path
) -> None:
    result = rechroma(
        "eval", str(photos_val), "--out", str(tmp_path / "e"), "--weights",
        str(tiny_hint_weights), "--limit", "3", "--hints", "5", "--grid", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["protocol"]["hints"] == 5
    assert "5 colour hints per photo" in (tmp_path / "e" / "report.md").read_text()
    refused = rechroma(
        "eval", str(photos_val), "--out", str(tmp_path / "u"), "--weights", str(tiny_weights),
        "--hints", "5",
    )  # fmt: skip
    assert refused.returncode != 0 and "does not take colour hints" in refused.stderr


def test_paths_never_run_into_the_progress_bar(real_photo, tiny_weights, tmp_path) -> None:
    """On a terminal, stdout's paths and stderr's bar share the screen: each path starts
    a line of its own (the bar is cleared first), never after the bar's text."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    src = tmp_path / "in"
    src.mkdir()
    for index in range(4):
        Image.open(real_photo).convert("L").resize((64, 48)).save(src / f"p{index}.png")
    leader, follower = pty.openpty()
    # 40 rows of 120 columns: a new pty has none, and tqdm draws nothing in no columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "rechroma", "colorize", str(src), str(tmp_path / "out"),
         "--weights", str(tiny_weights), "--threads", "1"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=300) == 0
    text = screen.decode()
    assert "photo/s" in text or "it/s" in text  # the bar was drawn
    for index in range(4):
        path = str(tmp_path / "out" / f"p{index}.png")
        start = text.index(path)
        before = text[:start]
        line_start = max(before.rfind("\n"), before.rfind("\r"))
        assert before[line_start + 1 :].strip() == "", repr(text[line_start - 80 : start + 10])


def test_out_defaults_to_beside_the_input_and_colourize_is_an_alias(
    real_photo, tiny_weights, tmp_path
) -> None:
    photo = tmp_path / "old photo.jpg"
    Image.open(real_photo).convert("L").resize((64, 48)).save(photo)
    folder = tmp_path / "scans"
    (folder / "box").mkdir(parents=True)
    Image.open(real_photo).resize((64, 48)).save(folder / "box" / "a.png")
    weights = ["--weights", str(tiny_weights)]
    one = rechroma("colourize", str(photo), *weights)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == str(tmp_path / "old photo-colour.jpg")
    assert Image.open(tmp_path / "old photo-colour.jpg").size == (64, 48)
    many = rechroma("colorize", str(folder), *weights)
    assert many.returncode == 0, many.stderr
    assert (tmp_path / "scans-colour" / "box" / "a.png").is_file()
    again = rechroma("colorize", str(photo), *weights)  # the output exists: skipped, not redone
    assert again.returncode == 0 and "skipped" in again.stderr


def test_a_closed_pipe_ends_quietly(real_photo, tiny_weights, tmp_path) -> None:
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    for index in range(3):
        Image.open(real_photo).convert("L").resize((64, 48)).save(src / f"p{index}.png")
    command = [sys.executable, "-m", "rechroma", "-q", "colorize", str(src), str(tmp_path / "o"),
               "--weights", str(tiny_weights)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # as `| head -0` would
    _, stderr = process.communicate(timeout=300)
    assert b"Traceback" not in stderr and process.returncode in (0, 141), stderr


def test_colorize_help_groups_its_options() -> None:
    text = rechroma("colorize", "--help").stdout
    headings = [line for line in text.splitlines() if line and not line[0].isspace()]
    groups = ["colour:", "output files:", "repair of old prints:", "model and speed:"]
    groups += ["video clips:", "many photos: worker processes, Ray:"]
    assert [h for h in headings if h in groups] == groups
    colour = text[text.index("\ncolour:") : text.index("\noutput files:")]
    assert "--vividness" in colour and "--hint " in colour and "--ray" not in colour
