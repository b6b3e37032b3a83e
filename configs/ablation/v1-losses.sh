#!/usr/bin/env bash
# The v1 loss ablation (docs/MODEL.md): short fine-tunes of v1 at step 4,500 (the decoder
# trained, the encoder still frozen), each 200 steps of 16 crops at 128 px from
# configs/v1.toml's data, differing only in the loss terms: the run's own losses (Huber
# and colourfulness "match"), then each with the perceptual loss on the pretrained Lite0's
# features, then with a PatchGAN. No EMA, so each row is its last weights.
# Needs runs/v1/checkpoints/step_0003750.safetensors (run b's step 3,750: 4,500 in all).
# Usage: bash configs/ablation/v1-losses.sh [ROW...]  (rows: control perceptual gan; then
# `eval`: photos-val at render size 128 beside the start, to docs/eval/ablation-v1-losses)
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
start=${START:-runs/v1/checkpoints/step_0003750.safetensors}
same=(
  --set "init.generator=\"$start\"" --set init.imagenet_encoder=false
  --set init.freeze_encoder_steps=200
  --set train.steps=200 --set train.batch_size=16 --set train.threads=1
  --set train.ckpt_every=200 --set train.ema_decay=0
  --set data.crop_size=128 --set "data.crop_sizes=[]" --set data.workers=0
  --set optim.lr=1e-4 --set optim.warmup_steps=20 --set optim.min_lr_ratio=1.0
)
row() {
  local name=$1
  shift
  "$RECHROMA" --quiet train --config configs/v1.toml --run-dir "runs/ablation-v1/$name" "${same[@]}" "$@"
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(control perceptual gan)
for name in "${rows[@]}"; do
  case "$name" in
    control) row control ;;
    perceptual) row perceptual --set loss.perceptual_weight=0.02 ;;
    gan) row gan --set loss.adversarial_weight=0.01 --set loss.adversarial_start=50 ;;
    eval)  # copied under the row names, which name the report's rows
      named=$(mktemp -d)
      cp "$start" "$named/start.safetensors"
      compare=()
      for model in control perceptual gan; do
        cp "runs/ablation-v1/$model/checkpoints/step_0000200.safetensors" "$named/$model.safetensors"
        compare+=(--compare "$named/$model.safetensors")
      done
      "$RECHROMA" --quiet eval ../shared/data/photos-val --out docs/eval/ablation-v1-losses \
        --weights "$named/start.safetensors" "${compare[@]}" --render-size 128 --grid 6 --seed 0 ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
  esac
done
