#!/usr/bin/env bash
# The v1 ablation (docs/MODEL.md): every short row is `rechroma train` with
# configs/ablation/fine-tune.toml and some losses or augmentations switched off, so
# rows differ in exactly what they name.
# Rows 2-7 fine-tune the shipped v0 for the same 200 steps; "+pretrained encoder" trains
# from the L classifier for 1,000 steps; "scratch" is the same run from random weights.
# Needs: runs/pretrain-l and runs/pretrain-rgb (configs/pretrain-*.toml), runs/v0 (its
# run, and rechroma-v0.safetensors from git history: see fine-tune.toml).
# Usage: bash configs/ablation/run.sh ROW   (or no ROW for all, one after another)
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
single_scale=(--set data.crop_size=64 --set "data.crop_sizes=[]")
no_colour=(--set loss.colorfulness_weight=0)
no_gan=(--set loss.adversarial_weight=0)
no_perceptual=(--set loss.perceptual_weight=0)

row() {
  local name=$1
  shift
  "$RECHROMA" --quiet train --config configs/ablation/fine-tune.toml --run-dir "runs/ablation/$name" "$@"
}

case "${1:-all}" in
  pixel) row pixel "${single_scale[@]}" "${no_perceptual[@]}" "${no_gan[@]}" "${no_colour[@]}" ;;
  perceptual) row perceptual "${single_scale[@]}" "${no_gan[@]}" "${no_colour[@]}" ;;
  gan) row gan "${single_scale[@]}" "${no_colour[@]}" ;;
  colour) row colour "${single_scale[@]}" ;;
  final) row final ;;
  final-no-degrade) row final-no-degrade --set data.degrade.prob=0 ;;
  encoder)
    "$RECHROMA" --quiet train --config configs/ablation/encoder-pixel.toml \
      --run-dir runs/ablation/encoder ;;
  scratch)  # the same 1,000 steps from random weights: the control for "encoder"
    "$RECHROMA" --quiet train --config configs/ablation/encoder-pixel.toml \
      --run-dir runs/ablation/scratch --set 'init.encoder=""' --set init.freeze_encoder_steps=0 ;;
  encoder-full)  # the final recipe for 600 steps on top of the "encoder" row
    row encoder-full --set 'init.generator="runs/ablation/encoder/checkpoints/step_0001000.safetensors"' \
      --set train.steps=600 --set loss.adversarial_start=150 --set train.threads=2 ;;
  all)
    for name in pixel perceptual gan colour final final-no-degrade encoder scratch encoder-full; do
      bash "$0" "$name"
    done ;;
  *) echo "unknown row $1" >&2; exit 2 ;;
esac
