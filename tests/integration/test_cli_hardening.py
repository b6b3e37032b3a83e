"""The command line under hostile or unlucky use: each test is one failure found in the wild.

Real subprocesses, real files, the tiny untrained model (the behaviour under test is the
plumbing around it). Full and read-only disks are real filesystems: a tiny or read-only
tmpfs mounted in a private mount namespace (`unshare`), where the kernel allows it.
"""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_files import damaged_exif_photo
from clips import write_clip
from commands import rechroma


def _photo(path: Path, size=(96, 64), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not _can_unshare(), reason="private mount namespaces (unshare -rm) are not allowed here"
)


def _rechroma_on_mount(mount: Path, options: str, *args: str) -> subprocess.CompletedProcess:
    """`rechroma --quiet ARGS` with a tmpfs (`mount -o OPTIONS`) mounted at `mount`.

    The mount lives only as long as the namespace, so the files left on it are listed
    on stdout after the command (as `left: PATH` lines); the exit status is rechroma's.
    """
    command = [sys.executable, "-m", "rechroma", "--quiet", *args]
    where = shlex.quote(str(mount))
    script = (
        f"mount -t tmpfs -o {options} tmpfs {where} && {shlex.join(command)}; status=$?; "
        f"find {where} -type f -printf 'left: %p\\n'; exit $status"
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )


# 3. The original can be overwritten.


def test_output_that_is_the_input_is_refused_even_with_overwrite(tmp_path, tiny_weights) -> None:
    photo = _photo(tmp_path / "photo.png")
    before = photo.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for out in (photo, link):
        result = rechroma(
            "colorize", str(photo), str(out), "--overwrite", "--weights", str(tiny_weights)
        )
        assert result.returncode == 3
        assert "would overwrite an input" in result.stderr
        assert photo.read_bytes() == before


def test_folder_into_itself_or_its_parent(tmp_path, tiny_weights) -> None:
    scans = tmp_path / "parent" / "scans"
    scans.mkdir(parents=True)
    _photo(scans / "a.png")
    same = rechroma("colorize", str(scans), str(scans), "--weights", str(tiny_weights))
    assert same.returncode == 3 and "OUT is the input folder itself" in same.stderr
    # Into the parent: the photos are found, and the outputs land beside the folder.
    parent = rechroma(
        "colorize", str(scans), str(tmp_path / "parent"), "--weights", str(tiny_weights)
    )
    assert parent.returncode == 0, parent.stderr
    assert (tmp_path / "parent" / "a.png").is_file()
    # ... unless an output would land on an input: parent/scans/scans/b.png -> parent/scans/b.png
    (scans / "scans").mkdir()
    _photo(scans / "scans" / "b.png")
    _photo(scans / "b.png", seed=1)
    before = (scans / "b.png").read_bytes()
    clash = rechroma(
        "colorize",
        str(scans),
        str(tmp_path / "parent"),
        "--overwrite",
        "--weights",
        str(tiny_weights),
    )
    assert clash.returncode == 3 and "would overwrite an input" in clash.stderr
    assert (scans / "b.png").read_bytes() == before


# 4. Damaged EXIF fails the photo; a panorama too wide for WebP.


@pytest.mark.parametrize("format_name", ["JPEG", "WEBP"])
def test_damaged_exif_is_dropped_and_the_photo_coloured(
    tmp_path, tiny_weights, format_name
) -> None:
    src = tmp_path / f"damaged.{format_name.lower()}"
    src.write_bytes(damaged_exif_photo(format_name))
    out = tmp_path / f"out.{format_name.lower()}"
    result = rechroma("colorize", str(src), str(out), "--weights", str(tiny_weights))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert Image.open(out).size == Image.open(src).size


def test_panorama_too_wide_for_webp_gets_a_reason(tmp_path, tiny_weights) -> None:
    src = tmp_path / "pano.png"
    Image.new("L", (20000, 50), 100).save(src)
    result = rechroma(
        "colorize", str(src), str(tmp_path / "pano.webp"), "--weights", str(tiny_weights)
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "16383 pixels a side" in result.stderr
    assert not list(tmp_path.glob("*.webp")) and not list(tmp_path.glob(".*part"))


# 5. A full disk leaves half files; 7. read-only output folder.


@needs_mounts
def test_full_disk_leaves_nothing_half_written_and_still_summarises(tmp_path, tiny_weights) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    for index in range(4):
        _photo(src / f"p{index}.png", size=(400, 300), seed=index)  # ~360 KB out as RGB PNG
    mount = tmp_path / "small"
    mount.mkdir()
    failures = tmp_path / "failures.tsv"
    result = _rechroma_on_mount(
        mount,
        "size=1m",
        "colorize",
        str(src),
        str(mount / "out"),
        "--weights",
        str(tiny_weights),
        "--failures",
        str(failures),
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed (" in result.stderr and "cannot write output" in result.stderr
    rows = list(csv.reader(failures.open(), delimiter="\t"))
    assert rows[0] == ["path", "reason", "message"] and len(rows) >= 2
    assert all(row[1] == "cannot write output" for row in rows[1:])
    left = [line for line in result.stdout.splitlines() if line.startswith("left: ")]
    # Some outputs fitted, the rest failed whole: no temporary file stays behind.
    assert left and all(line.endswith(".png") and "/." not in line for line in left)
    assert len(left) + len(rows) - 1 == 4


@needs_mounts
def test_read_only_output_is_refused_before_any_work(tmp_path, tiny_weights) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    _photo(src / "a.png")
    mount = tmp_path / "ro"
    mount.mkdir()
    result = _rechroma_on_mount(
        mount, "ro", "colorize", str(src), str(mount / "out"), "--weights", str(tiny_weights)
    )
    assert result.returncode == 3
    assert "cannot write there" in result.stderr and "Read-only file system" in result.stderr
    assert "Traceback" not in result.stderr


@needs_mounts
def test_video_to_a_read_only_folder_blames_the_output(tmp_path, tiny_weights) -> None:
    clip = write_clip(tmp_path / "good.mp4", frames=4)
    mount = tmp_path / "ro"
    mount.mkdir()
    result = _rechroma_on_mount(
        mount, "ro", "colorize", str(clip), str(mount / "x.mp4"), "--weights", str(tiny_weights)
    )
    assert result.returncode != 0
    assert "cannot write there" in result.stderr
    assert "damaged" not in result.stderr and "truncated" not in result.stderr


# 8. Hints parsing.


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        (b'{"hints": [{"x": ' + b"9" * 5000 + b', "y": 1, "color": "#ffffff"}]}', "not valid JSON"),
        (b'{"hints": [{"x": ' + b"9" * 400 + b', "y": 1, "color": "#ffffff"}]}', "finite numbers"),
        (b"\xff\xfe\xfa\xfb not utf", "not valid JSON"),
    ],
)
def test_hostile_hints_files_get_one_line(tmp_path, tiny_hint_weights, content, reason) -> None:
    photo = _photo(tmp_path / "p.png")
    hints = tmp_path / "hints.json"
    hints.write_bytes(content)
    result = rechroma(
        "colorize", str(photo), str(tmp_path / "o.png"), "--hints", str(hints),
        "--weights", str(tiny_hint_weights),
    )  # fmt: skip
    assert result.returncode == 2  # a bad hint is a mistake on the command line
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0]


# 10. Silent skips; 11. newlines in the failures TSV.


def test_links_to_folders_are_followed_and_broken_links_named(tmp_path, tiny_weights) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _photo(elsewhere / "linked.png")
    src = tmp_path / "scans"
    src.mkdir()
    _photo(src / "plain.png")
    (src / "more").symlink_to(elsewhere, target_is_directory=True)
    (src / "loop").symlink_to(src, target_is_directory=True)  # must not recurse forever
    (src / "gone.png").symlink_to(tmp_path / "deleted.png")
    out = tmp_path / "out"
    result = rechroma("colorize", str(src), str(out), "--weights", str(tiny_weights), timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "plain.png").is_file() and (out / "more" / "linked.png").is_file()
    assert "1 file skipped: links that lead nowhere: gone.png" in result.stderr
    assert "1 broken links" in result.stderr


def test_failures_tsv_keeps_a_newline_in_a_name_in_one_row(tmp_path, tiny_weights) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    _photo(src / "good.png")
    (src / "bad\nname.png").write_bytes(b"not a png")
    (src / "tab\there.png").write_bytes(b"not a png either")
    out = tmp_path / "out"
    result = rechroma("colorize", str(src), str(out), "--weights", str(tiny_weights))
    assert result.returncode == 1
    rows = list(csv.reader((out / "rechroma-failures.tsv").open(newline=""), delimiter="\t"))
    assert len(rows) == 3
    assert sorted(Path(row[0]).name for row in rows[1:]) == ["bad\nname.png", "tab\there.png"]


# 12. Options checked once, up front, argparse-style.


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--threads", "0", "--threads: 0 is not in 1..256"),
        ("--render-size", "0", "--render-size: 0 is not in 32..1024"),
        ("--quality", "1000", "--quality: 1000 is not in 1..100"),
        ("--vividness", "9", "--vividness: 9 is not in [0, 4]"),
        ("--jobs", "0", "--jobs/-j: 0 is not in 1..256"),
        ("--stabilize", "1", "--stabilize: 1 is not in [0, 1)"),
    ],
)
def test_bad_options_exit_2_before_any_work(tmp_path, option, value, message) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    _photo(src / "a.png")
    result = rechroma("colorize", str(src), str(tmp_path / "out"), option, value)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_rerun_with_other_options_says_it_skipped(tmp_path, tiny_weights) -> None:
    photo = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    rechroma("colorize", str(photo), str(out), "--weights", str(tiny_weights), check=True)
    again = rechroma(
        "colorize", str(photo), str(out), "--vividness", "2", "--weights", str(tiny_weights)
    )
    assert again.returncode == 0
    assert "1 skipped (output exists)" in again.stderr
    assert "not redone with this run's options" in again.stderr


def test_quiet_and_json_after_the_subcommand(tmp_path, tiny_weights) -> None:
    import json

    src = tmp_path / "scans"
    src.mkdir()
    _photo(src / "a.png")
    (src / "notes.txt").write_text("hello")
    result = subprocess.run(
        [sys.executable, "-m", "rechroma", "colorize", str(src), str(tmp_path / "out"),
         "-q", "--json", "--weights", str(tiny_weights)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] == [str(tmp_path / "out" / "a.png")]
    assert summary["not_images"] == [str(src / "notes.txt")]
    assert summary["failed"] == [] and summary["skipped"] == []


def test_stdin_to_stdout(tmp_path, tiny_weights) -> None:
    photo = _photo(tmp_path / "p.png", size=(120, 80))
    result = subprocess.run(
        [sys.executable, "-m", "rechroma", "-q", "colorize", "-", "-",
         "--weights", str(tiny_weights)],
        input=photo.read_bytes(), capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "from-stdout.png"
    out.write_bytes(result.stdout)
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (120, 80) and image.mode == "RGB"


# 2. Orphaned workers.


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_exit_when_the_parent_is_killed(tmp_path) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    for index in range(30):
        _photo(src / f"p{index:02d}.png", size=(800, 600), seed=index)
    parent = subprocess.Popen(
        [sys.executable, "-m", "rechroma", "-q", "colorize", str(src), str(tmp_path / "out"),
         "--jobs", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        # Wait until both workers have loaded the model and written something.
        while time.monotonic() < deadline:
            workers = [pid for pid in _children(parent.pid) if _is_worker(pid)]
            if len(workers) >= 2 and any((tmp_path / "out").glob("*.png")):
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers never started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived their parent"
    finally:
        parent.kill()


def _is_worker(pid: int) -> bool:
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except OSError:
        return False
    return state != "Z"


def test_a_million_pixel_wide_strip_is_coloured_and_jpeg_says_why_not(tiny_weights, tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("L", (1_000_000, 90), 128).save(strip)
    weights = ["--weights", str(tiny_weights), "--threads", "1"]
    result = rechroma("colorize", str(strip), str(tmp_path / "out.png"), *weights)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (1_000_000, 90)
    jpeg = rechroma("colorize", str(strip), str(tmp_path / "out.jpg"), *weights)
    assert jpeg.returncode == 1 and "Traceback" not in jpeg.stderr
    assert "65500" in jpeg.stderr and not (tmp_path / "out.jpg").exists()


@pytest.mark.slow
def test_a_clip_killed_while_encoding_leaves_nothing_under_its_name(tiny_weights, tmp_path):
    clip = write_clip(tmp_path / "reel.mp4", frames=480, size=(256, 192))
    out = tmp_path / "colour" / "reel.mp4"
    options = ["--weights", str(tiny_weights), "--threads", "1", "--network-every", "1"]
    command = [sys.executable, "-m", "rechroma", "-q", "colorize", str(clip), str(out), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        partial = out.with_name(".reel.partial.mp4")
        deadline = time.monotonic() + 120
        # Kill it once its output is open for encoding.
        while time.monotonic() < deadline and process.poll() is None and not partial.exists():
            time.sleep(0.02)
        assert process.poll() is None, "the clip finished before it could be interrupted"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    assert not out.exists()
    # The rerun does the clip whole and takes its partial file away.
    rerun = rechroma(*command[4:])
    assert rerun.returncode == 0, rerun.stderr
    assert out.stat().st_size > 4096 and not partial.exists()
