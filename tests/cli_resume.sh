#!/bin/sh
# Exact resume: a run killed with SIGKILL at a random step, then resumed,
# ends with the same bytes (weights, Adam moments, EMA) as the run that was
# never stopped; so does a run stopped by SIGINT (Ctrl-C), which saves and
# exits 0 at whatever step it is. Dropout, gradient accumulation, clipping
# and the weight EMA are on, with 2 threads, so every piece of state counts.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

cat > "$dir/tiny.conf" <<'CONF'
task = copy
copy_symbols = 8
copy_max_len = 8
copy_train_size = 1000
copy_valid_size = 50
max_len = 12
batch_sentences = 24
batch_tokens = 0
d_model = 24
n_heads = 2
d_ff = 48
n_enc_layers = 1
n_dec_layers = 1
pos_max_len = 16
dropout_emb = 0.1
dropout_residual = 0.1
dropout_attn = 0.1
dropout_ffn = 0.1
label_smoothing = 0.1
schedule = inverse_sqrt
lr = 0.003
warmup_steps = 20
clip_norm = 0.5
accum_steps = 2
ema_decay = 0.99
max_steps = 150
valid_every = 40
log_every = 5
save_every = 10
keep_last = 2
threads = 2
CONF

# The tensor bytes of a safetensors file (everything after the header, whose
# metadata legitimately differs: the tag and the time).
data_of() {
    header_len=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    tail -c +$((header_len + 9)) "$1"
}

same_data() {
    data_of "$1" > "$dir/a.bin"; data_of "$2" > "$dir/b.bin"
    [ -s "$dir/a.bin" ] && cmp -s "$dir/a.bin" "$dir/b.bin"
}

# Waits until metrics.jsonl of run $1 has a train record with step >= $2.
wait_for_step() {
    i=0
    while [ $i -lt 600 ]; do
        last=$(grep '"type":"train"' "$1/metrics.jsonl" 2>/dev/null | tail -n 1 | sed 's/.*"step":\([0-9]*\).*/\1/')
        [ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
        sleep 0.02; i=$((i + 1))
    done
    return 1
}

steps_increase() {
    grep '"type":"train"' "$1/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/' |
        awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { exit bad }'
}

random_step() { awk -v lo="$1" -v hi="$2" 'BEGIN { srand(); print int(lo + rand() * (hi - lo)) }'; }

"$ATTN" train --config "$dir/tiny.conf" --out "$dir/full" --quiet || { fail "uninterrupted run failed"; exit 1; }

# --- SIGKILL at a random step, then resume
k=$(random_step 15 120)
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/killed" --quiet &
pid=$!
if wait_for_step "$dir/killed" "$k" && kill -9 $pid 2>/dev/null; then
    wait $pid 2>/dev/null
    at=$(grep '"type":"train"' "$dir/killed/metrics.jsonl" | tail -n 1 | sed 's/.*"step":\([0-9]*\).*/\1/')
    echo "INFO killed with SIGKILL after step $at (waited for step $k)"
    if "$ATTN" train --out "$dir/killed" --quiet 2> "$dir/err"; then
        same_data "$dir/full/last.safetensors" "$dir/killed/last.safetensors" &&
            pass "SIGKILL after step $at + resume: final weights identical to the uninterrupted run" ||
            fail "SIGKILL after step $at + resume: final weights differ"
        same_data "$dir/full/last.state.safetensors" "$dir/killed/last.state.safetensors" &&
            pass "SIGKILL + resume: Adam moments and EMA identical" || fail "SIGKILL + resume: optimizer state differs"
        steps_increase "$dir/killed" && pass "metrics.jsonl has no repeated steps after the resume" ||
            fail "metrics.jsonl repeats steps after the resume"
    else
        fail "resume after SIGKILL failed: $(cat "$dir/err")"
    fi
else
    fail "could not kill the run at step $k"; wait $pid 2>/dev/null
fi

# --- SIGINT (Ctrl-C): saves at the current step and exits 0
k=$(random_step 15 120)
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/interrupted" --quiet &
pid=$!
if wait_for_step "$dir/interrupted" "$k" && kill -INT $pid 2>/dev/null; then
    wait $pid; rc=$?
    [ $rc -eq 0 ] && pass "SIGINT exits with status 0" || fail "SIGINT exit status $rc"
    step=$("$ATTN" info --model "$dir/interrupted/last.safetensors" | sed -n 's/.*, step \([0-9]*\)$/\1/p')
    [ -n "$step" ] && [ "$step" -lt 150 ] && pass "SIGINT saved a checkpoint at step $step" ||
        fail "SIGINT did not save mid-run (step '$step')"
    if "$ATTN" train --out "$dir/interrupted" --quiet 2> "$dir/err"; then
        same_data "$dir/full/last.safetensors" "$dir/interrupted/last.safetensors" &&
            pass "SIGINT at step $step + resume: final weights identical to the uninterrupted run" ||
            fail "SIGINT at step $step + resume: final weights differ"
    else
        fail "resume after SIGINT failed: $(cat "$dir/err")"
    fi
else
    fail "could not interrupt the run at step $k"; wait $pid 2>/dev/null
fi

# --- SIGTERM during setup (a million pairs to generate and tokenize): the
# run ends at the next stage of setup with one line and status 1, before
# anything but config.conf is written
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/setup" --copy-train-size 1000000 --max-steps 1 --quiet 2> "$dir/err" &
pid=$!
sleep 0.3; kill -TERM $pid; wait $pid; rc=$?
if [ $rc -eq 1 ] && grep -q "^attn: interrupted (signal 15) before the first step" "$dir/err"; then
    pass "SIGTERM during setup: one attn: line and status 1"
elif [ $rc -eq 0 ]; then
    echo "INFO setup finished before the signal (a fast machine): nothing to check"
else
    fail "SIGTERM during setup: status $rc: $(cat "$dir/err")"
fi
[ ! -e "$dir/setup/last.safetensors" ] && [ ! -e "$dir/setup/metrics.jsonl" ] &&
    pass "an interrupted setup leaves no checkpoint or metrics behind" || fail "an interrupted setup wrote files"

# --- BPE-dropout: each epoch is encoded anew from (seed, epoch); a run stopped
# mid-epoch and resumed re-encodes that epoch identically
bpe="--src-tokenizer bpe --tgt-tokenizer bpe --src-vocab-size 300 --tgt-vocab-size 300 --bpe-dropout 0.2 \
     --copy-max-len 12 --max-len 16 --pos-max-len 20 --copy-train-size 600 --max-steps 100"
if "$ATTN" train --config "$dir/tiny.conf" --out "$dir/bpe_full" $bpe --quiet &&
   "$ATTN" train --config "$dir/tiny.conf" --out "$dir/bpe_split" $bpe --max-steps 47 --quiet &&
   "$ATTN" train --out "$dir/bpe_split" --max-steps 100 --quiet; then
    same_data "$dir/bpe_full/last.safetensors" "$dir/bpe_split/last.safetensors" &&
        pass "BPE-dropout run stopped at step 47 and resumed: identical weights" || fail "BPE-dropout resume: weights differ"
else
    fail "BPE-dropout runs failed"
fi

# --- the spike detector's windows are saved: with spike_action = scale_lr and
# a low threshold the rate is scaled at steps that depend on the losses
# before the stop, and the resumed run still matches
spike="--spike-action scale_lr --spike-zscore 1.5 --max-steps 100"
if "$ATTN" train --config "$dir/tiny.conf" --out "$dir/spike_full" $spike --quiet 2> /dev/null &&
   "$ATTN" train --config "$dir/tiny.conf" --out "$dir/spike_split" $spike --max-steps 47 --quiet 2> /dev/null &&
   "$ATTN" train --out "$dir/spike_split" --max-steps 100 --quiet 2> /dev/null; then
    scalings=$(grep -c '"action":"scale_lr"' "$dir/spike_full/metrics.jsonl")
    same_data "$dir/spike_full/last.safetensors" "$dir/spike_split/last.safetensors" &&
        pass "spike_action scale_lr ($scalings rate scalings), stopped at 47 and resumed: identical weights" ||
        fail "spike_action scale_lr resume: weights differ"
else
    fail "spike_action runs failed"
fi

# --- a finished run resumed again does nothing; a larger budget continues it.
# Its last checkpoint comes after the final validation (step 150 is no
# multiple of valid_every), so resuming it keeps that record in metrics.jsonl.
cp "$dir/full/metrics.jsonl" "$dir/full.metrics"
out=$("$ATTN" train --out "$dir/full" 2>&1) && echo "$out" | grep -q "budget is already reached" &&
    pass "a finished run says its budget is reached" || fail "finished run: $out"
cmp -s "$dir/full.metrics" "$dir/full/metrics.jsonl" && tail -n 1 "$dir/full.metrics" | grep -q '"type":"valid","step":150,' &&
    pass "resuming a finished run keeps its final validation record" || fail "resuming a finished run lost metrics records"
cp -r "$dir/full" "$dir/emptied"
: > "$dir/emptied/metrics.jsonl"
"$ATTN" train --out "$dir/emptied" --max-steps 160 --quiet && [ "$(tr -d '\000' < "$dir/emptied/metrics.jsonl" | wc -c)" = "$(wc -c < "$dir/emptied/metrics.jsonl")" ] &&
    pass "a metrics.jsonl shorter than at the checkpoint is not padded with NUL bytes on resume" || fail "metrics.jsonl padded with NUL bytes"
"$ATTN" train --out "$dir/full" --max-steps 160 --quiet &&
    step=$("$ATTN" info --model "$dir/full/last.safetensors" | sed -n 's/.*, step \([0-9]*\)$/\1/p') &&
    [ "$step" = 160 ] && pass "--max-steps 160 extends a finished run to step 160" || fail "extending the run (step '$step')"

[ $fails -eq 0 ]
