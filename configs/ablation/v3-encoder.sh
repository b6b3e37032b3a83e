#!/usr/bin/env bash
# Issue #39's encoder comparison (docs/MODEL.md): EfficientNet-Lite2 against Lite0 under
# the same U-Net decoder, at equal CPU time on configs/v3.toml's mix. Both start from their
# ImageNet weights with a fresh decoder, the whole network trained, with v3's data, crops,
# hints, perceptual and colourfulness losses (no PatchGAN: a GAN on an untrained decoder
# mostly learns artefacts), one thread each. Each row's length is its share of BUDGET_S
# (default 30 min): a 30-step probe measures its step time on this machine under the same
# load, and the run gets BUDGET_S / that many steps, its cosine schedule complete.
# Both are scored by the validation loss per source that training logs at the end, and
# `benchmarks/validation_shards.py` on the held-out validation shards.
# Usage: bash configs/ablation/v3-encoder.sh [ROW...]  (rows: lite0 lite2)
set -euo pipefail
cd "$(dirname "$0")/../.."
RECHROMA=${RECHROMA:-.venv/bin/rechroma}
BUDGET_S=${BUDGET_S:-1800}
same=(
  --set 'init.generator=""' --set init.imagenet_encoder=true --set init.freeze_encoder_steps=0
  --set optim.lr=6e-4 --set optim.warmup_steps=50 --set optim.min_lr_ratio=0.05
  --set loss.adversarial_weight=0 --set train.threads=1
)
run() {  # run NAME MODEL STEPS [more --set ...]
  local name=$1 model=$2 steps=$3
  shift 3
  rm -rf "runs/ablation-v3/$name"
  "$RECHROMA" --quiet train --config configs/v3.toml --run-dir "runs/ablation-v3/$name" \
    --set "model.name=\"$model\"" "${same[@]}" --set "train.steps=$steps" \
    --set "train.ckpt_every=$steps" "$@"
}
seconds_per_step() {  # from a probe's log: the mean of steps 10-30 (after the warm-up)
  python3 - "$1/log.jsonl" <<'EOF'
import json, sys
rows = {r["step"]: r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "train"}
print((rows[30]["elapsed_s"] - rows[10]["elapsed_s"]) / 20)
EOF
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(lite0 lite2)
for name in "${rows[@]}"; do
  case "$name" in
    lite0 | lite2)
      model="$name-unet"
      run "probe-$name" "$model" 30 --set train.log_every=10 --set train.val_batches=0
      per_step=$(seconds_per_step "runs/ablation-v3/probe-$name")
      steps=$(python3 -c "print(int($BUDGET_S / $per_step))")
      echo "$name: $per_step s a step, $steps steps in $BUDGET_S s" >&2
      run "$name" "$model" "$steps"
      ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
  esac
done
