#!/bin/sh
# The main job, end to end on a fresh Debian machine: install what attn needs,
# build, fetch the CMU Pronouncing Dictionary (npm), train a small
# grapheme-to-phoneme Transformer for a few minutes, then spell some words
# out in phonemes and score the held-out test words.
#
#   sudo sh demo.sh                 # about 8 minutes on 2 cores
#   MINUTES=20 sh demo.sh           # a longer run gives a better model
set -eu
cd "$(dirname "$0")"
MINUTES=${MINUTES:-5}
RUN=${RUN:-runs/demo-g2p}

need=""
for p in gcc make npm python3; do command -v $p >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
    echo "== installing build-essential npm python3"
    if [ "$(id -u)" -ne 0 ]; then echo "demo.sh: missing$need; run as root (sudo sh demo.sh) to install them" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq build-essential make npm python3 >/dev/null
fi

echo "== building"
make -j2 >/dev/null

echo "== fetching CMUdict (npm cmu-pronouncing-dictionary) into data/cmudict/"
sh data/cmudict.sh
wc -l data/cmudict/train.tsv data/cmudict/valid.tsv data/cmudict/test.tsv

echo "== training a G2P model for $MINUTES minutes into $RUN (Ctrl-C saves; rerun to resume)"
./attn train --config configs/cmudict.conf --out "$RUN" --max-minutes "$MINUTES" \
    --d-model 128 --d-ff 512 --n-enc-layers 2 --n-dec-layers 2 \
    --schedule inverse_sqrt --lr 0.002 --warmup-steps 300 --batch-tokens 3000 \
    --valid-every 250 --log-every 50 --decode-max-sentences 1000

echo "== spelling out some words (beam 4)"
printf 'transformer\nattention\nphoneme\ncomputer\nsupercalifragilistic\n' > "$RUN/words.txt"
./attn translate --model "$RUN/best.safetensors" --beam 4 < "$RUN/words.txt" | paste "$RUN/words.txt" -

echo "== scoring 1000 held-out test words (greedy)"
head -n 1000 data/cmudict/test.tsv > "$RUN/test1000.tsv"
./attn eval --model "$RUN/best.safetensors" --data "$RUN/test1000.tsv" --metrics wer,per,exact,loss
