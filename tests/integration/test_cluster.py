"""`rechroma colorize IN OUT --ray`: a local Ray (2 CPUs, loopback, no dashboard) must
write exactly the files, and report exactly the failures, that the local path does."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_files import png_header_only
from commands import rechroma

pytest.importorskip("ray", reason="the cluster extra is part of the test set-up (Makefile)")


def _archive(root: Path, real_photo: Path) -> Path:
    """A small archive with the kinds of file a scan folder holds, good and bad."""
    src = root / "archive"
    (src / "1950s").mkdir(parents=True)
    photo = Image.open(real_photo).convert("RGB").resize((320, 240))
    photo.convert("L").save(src / "1950s" / "street.png")
    photo.save(src / "colour.jpg", quality=90)
    photo.convert("CMYK").save(src / "print.jpg")
    photo.convert("P").save(src / "palette.gif")
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(src / "faded.png")
    deep = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(src / "1950s" / "scan16.png")
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    (src / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    (src / "empty.jpg").write_bytes(b"")
    (src / "letter.jpg").write_text("Dear Aunt Mary,\n" * 40)
    (src / "bomb.png").write_bytes(png_header_only(40_000, 40_000))
    (src / "notes.txt").write_text("box 12, 1950-1958")
    return src


@pytest.mark.slow
def test_ray_writes_the_same_bytes_and_failures_as_the_local_path(real_photo, tmp_path) -> None:
    src = _archive(tmp_path, real_photo)
    # One torch thread, as each Ray actor runs (`--ray-threads 1`): with two, the network's
    # sums run in another order and a few pixels come out one level apart.
    local = rechroma("colorize", str(src), str(tmp_path / "local"), "--threads", "1")
    on_ray = rechroma("colorize", str(src), str(tmp_path / "ray"), "--ray", "--ray-actors", "2")
    assert local.returncode == on_ray.returncode == 1  # four bad files failed, the rest done
    assert "6 done" in on_ray.stderr and "4 failed" in on_ray.stderr, on_ray.stderr[-2000:]
    assert "1 file skipped: not images: notes.txt" in on_ray.stderr

    def files(folder: str) -> dict[Path, bytes]:
        root = tmp_path / folder
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*.*")}

    local_files, ray_files = files("local"), files("ray")
    assert sorted(local_files) == sorted(ray_files) and len(local_files) == 7
    for relative, content in local_files.items():
        if relative.name != "rechroma-failures.tsv":
            assert ray_files[relative] == content, f"{relative} differs on Ray"

    def failures(folder: str) -> list[str]:
        lines = (tmp_path / folder / "rechroma-failures.tsv").read_text().splitlines()
        return sorted(lines[1:])

    assert failures("local") == failures("ray") and len(failures("ray")) == 4

    again = rechroma("colorize", str(src), str(tmp_path / "ray"), "--ray")
    assert "0 done, 6 skipped" in again.stderr  # resume: existing outputs are kept
