#!/usr/bin/env bash
# Score every ablation row on photos-val in one table, with one grid of the same photos
# (gray input | each variant | ground truth): docs/eval/ablation/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
rows=$(mktemp -d)
last() { ls "runs/ablation/$1/checkpoints/"step_*.safetensors | tail -1; }
cp runs/v0/rechroma-v0.safetensors "$rows/v0.safetensors"
cp runs/v0/checkpoints/step_0001000.safetensors "$rows/v0-step1000.safetensors"
cp "$(last scratch)" "$rows/scratch-1000.safetensors"
cp "$(last encoder)" "$rows/pretrained-encoder-1000.safetensors"
cp "$(last pixel)" "$rows/v0+200-pixel.safetensors"
cp "$(last perceptual)" "$rows/+perceptual.safetensors"
cp "$(last gan)" "$rows/+gan.safetensors"
cp "$(last colour)" "$rows/+colourfulness.safetensors"
cp "$(last final)" "$rows/final-multiscale.safetensors"
cp "$(last final-no-degrade)" "$rows/final-no-degrade.safetensors"
# configs/ablation/v0-match.toml: 3,000 steps with the "match" colourfulness loss.
cp "$(ls runs/v0-match/checkpoints/step_*.safetensors | tail -1)" "$rows/v1-match-3000.safetensors"
compare=()
for name in v0-step1000 scratch-1000 pretrained-encoder-1000 v0+200-pixel +perceptual +gan \
    +colourfulness final-multiscale final-no-degrade v1-match-3000; do
  compare+=(--compare "$rows/$name.safetensors")
done
"$RECHROMA" --quiet eval ../shared/data/photos-val --out docs/eval/ablation --weights "$rows/v0.safetensors" \
  "${compare[@]}" --grid 8 --seed 0 "$@"
# Twelve columns of photos are megabytes as PNG; JPEG keeps docs/ small.
"${PYTHON:-.venv/bin/python}" - <<'PY'
from pathlib import Path
from PIL import Image
folder = Path("docs/eval/ablation")
for name in ("grid", "worst"):
    Image.open(folder / f"{name}.png").convert("RGB").save(folder / f"{name}.jpg", quality=85)
    (folder / f"{name}.png").unlink()
report = folder / "report.md"
report.write_text(report.read_text().replace(".png)", ".jpg)"))
PY
