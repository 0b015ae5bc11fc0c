#!/usr/bin/env bash
# Issue 25's check of the leave-one-out shortcut: is "the bundled base with a painting's norms removed" as good a
# start for --add-style as "a base that never saw the painting"? The bundled chain (a 173-minute distillation from
# a teacher that itself saw all six paintings) cannot be rerun without a painting on this CPU, so this trains small
# bases the same way, from random weights, once on all six paintings and once on five of them per left-out painting;
# `python -m bench new_style --protocol --base DIR/final.pt` then adds the left-out painting to each
# (docs/quality.md, "the leave-one-out shortcut"). Resumable: run it again and it continues where it stopped.
#   nohup scripts/train_loo_bases.sh > /work/runs/loo-bases.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-/work/runs/loo-bases}
PHOTOS=${PHOTOS:-/work/trainphotos}
STEPS=${STEPS:-2400}
LEFT_OUT=${LEFT_OUT:-starry_night shipwreck}
ALL=(starry_night the_scream shipwreck woman-with-hat-matisse udnie great_wave)
BIN=.venv/bin
$BIN/python -m bench photo_split --link "$PHOTOS"

base() {  # base DIR PAINTING...: finished, resumed or started
    local dir=$1; shift
    if [ -f "$dir/final.pt" ]; then echo "$dir: finished"; return; fi
    if [ -f "$dir/checkpoint.pt" ]; then $BIN/restyle train --resume "$dir"; return; fi
    local styles=()
    for s in "$@"; do styles+=(--style-image ../shared/data/styles/$s.jpg); done
    $BIN/restyle train --out "$dir" --arch lite "${styles[@]}" --data "$PHOTOS" --steps "$STEPS" --image-size 128 \
        --batch-size 4 --style-size 384 --style-weight 2 --palette-weight 1 \
        --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --identity-steps 200 --lr 2e-3 --seed 0 \
        --log-every 20 --checkpoint-every 100 --sample-every 1000
}

base "$RUNS/all6" "${ALL[@]}"
for out in $LEFT_OUT; do
    keep=()
    for s in "${ALL[@]}"; do [ "$s" = "$out" ] || keep+=("$s"); done
    base "$RUNS/without-$out" "${keep[@]}"
done
