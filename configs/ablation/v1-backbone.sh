#!/usr/bin/env bash
# The v1 backbone ablation (docs/MODEL.md): v0's U-Net, lite0-unet from random weights and
# lite0-unet from the ImageNet weights, each trained alike on configs/v1.toml's data for
# the same short budget (400 steps of 16 crops at 96 px, Huber on ab only, no hints, no
# frozen phase, no EMA), so the rows differ only in the network and its start.
# Usage: bash configs/ablation/v1-backbone.sh [ROW...]  (rows: unet lite0-random lite0-imagenet;
# then `eval`: photos-val at render size 96, the size trained at, to docs/eval/ablation-v1-backbone)
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
same=(
  --set train.steps=400 --set train.batch_size=16 --set train.threads=1
  --set train.ckpt_every=400 --set train.ema_decay=0
  --set data.crop_size=96 --set "data.crop_sizes=[]" --set data.workers=0
  --set optim.lr=1e-3 --set optim.warmup_steps=50
  --set loss.colorfulness_weight=0 --set hints.probability=0
  --set init.freeze_encoder_steps=0
)
row() {
  local name=$1
  shift
  "$RECHROMA" --quiet train --config configs/v1.toml --run-dir "runs/ablation-v1/$name" "${same[@]}" "$@"
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(unet lite0-random lite0-imagenet)
for name in "${rows[@]}"; do
  case "$name" in
    unet) row unet --set 'model.name="unet"' --set init.imagenet_encoder=false ;;
    lite0-random) row lite0-random --set init.imagenet_encoder=false ;;
    lite0-imagenet) row lite0-imagenet ;;
    eval)  # copied under the row names, which name the report's rows
      named=$(mktemp -d)
      for model in lite0-imagenet lite0-random unet; do
        cp "runs/ablation-v1/$model/checkpoints/step_0000400.safetensors" "$named/$model.safetensors"
      done
      "$RECHROMA" --quiet eval ../shared/data/photos-val --out docs/eval/ablation-v1-backbone \
        --weights "$named/lite0-imagenet.safetensors" --compare "$named/lite0-random.safetensors" \
        --compare "$named/unet.safetensors" --render-size 96 --grid 6 --seed 0 ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
  esac
done
