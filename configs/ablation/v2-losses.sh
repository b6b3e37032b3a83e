#!/usr/bin/env bash
# The v2 loss comparison at equal budget (docs/MODEL.md): from rechroma-v2-wip (v2 at step
# 1,250), 300 steps each of configs/v2.toml's data, batch and crops, differing only in the
# loss terms:
#   control  the run's first balance: perceptual 0.02, colourfulness "match" 0.1, no PatchGAN
#   colour   perceptual 0.005, colourfulness 0.3 (the colour terms outweigh the perceptual)
#   gan      colour, plus the PatchGAN at 0.003 from the first step
# The lr is held at the run's (2e-4, no warm-up, no decay) so no row gets an annealing
# bonus, and the EMA decay is 0.99: at the run's 0.999, 300 steps would leave 74% of the
# start in every row's weights and hide the differences.
# The gan row is what configs/v2.toml now runs. Judged on the held-out faces and places
# shards (never photos-val) by the matched-colour PSNR: the colour both vivid and right.
# The start is the wip file as of commit 9022851 (later commits replace it): START=FILE.
# Usage: bash configs/ablation/v2-losses.sh [ROW...]  (rows: control colour gan; then `eval`:
# the held-out shards, to docs/eval/ablation-v2-losses/{faces,places})
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
start=${START:-src/rechroma/weights/rechroma-v2-wip.safetensors}
steps=${STEPS:-300}
same=(
  --set "init.generator=\"$start\""
  --set "train.steps=$steps" --set "train.ckpt_every=$steps" --set train.ema_decay=0.99
  --set optim.warmup_steps=0 --set optim.min_lr_ratio=1.0
)
row() {
  local name=$1
  shift
  "$RECHROMA" --quiet train --config configs/v2.toml --run-dir "runs/ablation-v2/$name" "${same[@]}" "$@"
}
control=(--set loss.perceptual_weight=0.02 --set loss.colorfulness_weight=0.1)
colour=(--set loss.perceptual_weight=0.005 --set loss.colorfulness_weight=0.3)
late_gan=(--set loss.adversarial_start=9000)  # not within these 300 steps
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(control colour gan eval)
for name in "${rows[@]}"; do
  case "$name" in
    control) row control "${control[@]}" "${late_gan[@]}" ;;
    colour) row colour "${colour[@]}" "${late_gan[@]}" ;;
    gan) row gan "${colour[@]}" --set loss.adversarial_start=0 ;;
    eval)  # copied under the row names, which name the report's rows
      named=$(mktemp -d)
      cp "$start" "$named/start.safetensors"
      compare=()
      for model in control colour gan; do
        cp "runs/ablation-v2/$model/checkpoints/step_$(printf %07d "$steps").safetensors" \
          "$named/$model.safetensors"
        compare+=(--compare "$named/$model.safetensors")
      done
      for split in faces/train-003 places/train-002; do
        "$RECHROMA" --quiet eval "../shared/data/$split.tar" --limit 400 --size 160 \
          --out "docs/eval/ablation-v2-losses/${split%%/*}" \
          --weights "$named/start.safetensors" "${compare[@]}" --grid 6 --seed 0
      done ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
  esac
done
