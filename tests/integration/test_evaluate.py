"""`rechroma eval` end to end on real photos and on a tar shard."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from rechroma.evaluation.evaluate import GRAY_BASELINE, evaluate, gray_baseline, write_report
from rechroma.evaluation.plots import plot_training_log
from rechroma.inference.colorizer import Colorizer
from rechroma.training.train import train


@pytest.fixture(scope="module")
def tiny_colorizer(tiny_weights) -> Colorizer:
    return Colorizer.load(tiny_weights, render_size=64, threads=1)


def test_folder_report_has_every_output(tiny_colorizer, photos_val, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(photos_val.glob("*.JPEG"))[:5]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    Image.new("RGB", (90, 70), (120, 120, 120)).save(folder / "already-gray.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff nope")

    result = evaluate(
        {"tiny": tiny_colorizer.colorize}, folder, size=64, grid_count=3, progress=False
    )
    write_report(result, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["count"] == 5 and summary["skipped_gray"] == 1 and summary["unreadable"] == 1
    assert set(summary["methods"]) == {"tiny", GRAY_BASELINE}
    with (tmp_path / "out" / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    grid = Image.open(tmp_path / "out" / "grid.png")
    worst = Image.open(tmp_path / "out" / "worst.png")
    assert grid.size == worst.size and grid.width == 3 * 160  # gray input | tiny | truth
    assert "![side by side](grid.png)" in (tmp_path / "out" / "report.md").read_text()


def test_gray_baseline_psnr_matches_an_independent_computation(photos_val, tmp_path) -> None:
    photo = sorted(photos_val.glob("*.JPEG"))[3]
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / photo.name).write_bytes(photo.read_bytes())
    result = evaluate({}, folder, size=256, progress=False)
    truth = Image.open(photo).convert("RGB").resize((256, 256), Image.Resampling.BICUBIC)
    expected = peak_signal_noise_ratio(
        np.asarray(truth), np.asarray(gray_baseline(truth)), data_range=255
    )
    assert result.summary["methods"][GRAY_BASELINE]["psnr"]["mean"] == pytest.approx(expected)


def test_worst_grid_holds_the_lowest_psnr(tiny_colorizer, shard_dir, tmp_path) -> None:
    result = evaluate(
        {"tiny": tiny_colorizer.colorize},
        shard_dir / "train-000.tar",
        size=32,
        grid_count=2,
        progress=False,
    )
    psnrs = sorted((r["psnr"], r["image"]) for r in result.rows if r["method"] == "tiny")
    assert [name for name, _ in result.worst] == [name for _, name in psnrs[:2]]


def test_eval_command_on_a_tar_shard_with_compare(tiny_weights, shard_dir, tmp_path) -> None:
    out = tmp_path / "report"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rechroma",
            "-q",
            "eval",
            str(shard_dir / "val-000.tar"),
            "--out",
            str(out),
            "--model",
            str(tiny_weights),
            "--compare",
            str(tiny_weights),
            "--size",
            "48",
            "--render-size",
            "32",
            "--grid",
            "2",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    summary = json.loads((out / "metrics.json").read_text())
    assert list(summary["methods"]) == ["tiny", "tiny-2", GRAY_BASELINE]
    assert summary["count"] == 6 and summary["models"]["tiny"]["sha256"]
    assert summary["methods"]["tiny"] == summary["methods"]["tiny-2"]


def test_training_curves_plot(tiny_config, tmp_path) -> None:
    train(tiny_config, tmp_path / "run", progress=False)
    png = plot_training_log(tmp_path / "run")
    assert Image.open(png).size[0] > 500


def test_training_curves_show_each_validation_source(tiny_config, shard_dir, tmp_path) -> None:
    import shutil
    from dataclasses import replace

    for source in ("faces", "cars"):
        (tmp_path / source).mkdir()
        shutil.copy(shard_dir / "val-000.tar", tmp_path / source / "val-000.tar")
    data = replace(tiny_config.data, val_shards=(str(tmp_path / "*" / "val-000.tar"),))
    train(replace(tiny_config, data=data), tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    val = [r for r in records if r["kind"] == "val"]
    assert [sorted(r["sources"]) for r in val] == [["cars", "faces"]] * 2
    # The same photos in both: the overall loss is their mean, and equal to each.
    assert val[0]["sources"]["cars"] == pytest.approx(val[0]["sources"]["faces"])
    assert val[0]["val_loss"] == pytest.approx(val[0]["sources"]["cars"])
    png = plot_training_log(tmp_path / "run")
    assert Image.open(png).size[0] > 2000  # loss, loss terms, sources, schedule


def test_lpips_is_reported_when_weights_are_given(tiny_colorizer, shard_dir, tmp_path) -> None:
    import torch

    from rechroma.evaluation.lpips import AlexNetTrunk, load_lpips

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in AlexNetTrunk().features.state_dict().items()}
    torch.save(state, tmp_path / "alexnet.pth")
    result = evaluate(
        {"tiny": tiny_colorizer.colorize},
        shard_dir / "val-000.tar",
        size=64,
        lpips=load_lpips(tmp_path / "alexnet.pth"),
        progress=False,
    )
    assert result.summary["lpips"].startswith("available")
    figures = result.summary["methods"]
    assert figures["tiny"]["lpips"]["mean"] > 0
    assert all("lpips" in row for row in result.rows)
    write_report(result, tmp_path / "out")
    assert "| tiny |" in (tmp_path / "out" / "report.md").read_text()


def test_fid_is_reported_against_the_ground_truth(tiny_colorizer, shard_dir, tmp_path) -> None:
    import torch

    from rechroma.evaluation.fid import InceptionFeatures

    torch.manual_seed(0)
    inception = InceptionFeatures().eval()
    result = evaluate(
        {"tiny": tiny_colorizer.colorize},
        shard_dir / "val-000.tar",
        size=48,
        inception=inception,
        progress=False,
    )
    assert result.summary["fid"].startswith("available")
    assert all(fig["fid"] >= 0 for fig in result.summary["methods"].values())
    write_report(result, tmp_path / "out")
    assert "| FID |" in (tmp_path / "out" / "report.md").read_text()


def test_matched_colour_psnr_is_the_psnr_at_the_truths_colourfulness(photos_val, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(photos_val.glob("*.JPEG"))[:8]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    shipped = Colorizer.load(threads=1)
    result = evaluate({"v1": shipped}, folder, size=128, grid_count=2, progress=False)
    figures = result.summary["methods"]["v1"]
    matched = figures["matched_colour"]
    truth_cf = result.summary["truth_colorfulness"]
    assert matched["reached"] and abs(matched["colorfulness"] - truth_cf) <= 0.05
    assert matched["vividness"] > 1.0  # a muted model must be turned up to match
    # Independently: colour every photo at that vividness and average skimage's PSNR.
    psnrs = []
    for photo in sorted(folder.glob("*.JPEG")):
        truth = Image.open(photo).convert("RGB").resize((128, 128), Image.Resampling.BICUBIC)
        colour = shipped.colorize(gray_baseline(truth), vividness=matched["vividness"])
        psnrs.append(peak_signal_noise_ratio(np.asarray(truth), np.asarray(colour), data_range=255))
    assert matched["psnr"] == pytest.approx(float(np.mean(psnrs)), abs=1e-3)
    # The frontier's point at vividness 1 is the table's default figure.
    (at_one,) = [p for p in figures["frontier"] if p["vividness"] == 1.0]
    assert at_one["psnr"] == pytest.approx(figures["psnr"]["mean"], abs=1e-6)
    assert "frontier" not in result.summary["methods"][GRAY_BASELINE]
    write_report(result, tmp_path / "out")
    assert Image.open(tmp_path / "out" / "frontier.png").size[0] > 400
    assert "matched-colour PSNR" in (tmp_path / "out" / "report.md").read_text()
