#!/bin/sh
# attn train from the outside: config and flag errors are one-line messages
# with a non-zero exit; a short run leaves a complete run directory that
# attn info and attn average read; a resumed run keeps its config; a
# read-only or corrupted run directory gives a clear error and no checkpoint
# is damaged.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d)
cleanup() { chattr -i "$dir/ro" 2>/dev/null; umount "$dir/full" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
. "$(dirname "$0")/lib.sh"

# expect_error NAME PATTERN CMD...: non-zero exit, one stderr line "attn: ..." matching PATTERN
expect_error() {
    name=$1; pattern=$2; shift 2
    if "$@" > "$dir/out" 2> "$dir/err"; then fail "$name: exit status 0"; return; fi
    lines=$(wc -l < "$dir/err")
    if [ "$lines" -eq 1 ] && grep -q "^attn: .*$pattern" "$dir/err"; then pass "$name: $(cat "$dir/err")"
    else fail "$name: expected one line matching '$pattern', got: $(cat "$dir/err")"; fi
}

cat > "$dir/tiny.conf" <<'CONF'
# a tiny copy task
task = copy
copy_symbols = 6
copy_max_len = 6
copy_train_size = 400
copy_valid_size = 30
max_len = 10
batch_sentences = 16
batch_tokens = 0
d_model = 16
n_heads = 2
d_ff = 32
n_enc_layers = 1
n_dec_layers = 1
pos_max_len = 16
schedule = inverse_sqrt
lr = 0.005
warmup_steps = 10
max_steps = 40
valid_every = 20
log_every = 10
save_every = 10
keep_last = 2
threads = 1
CONF

# --- flags and config errors
"$ATTN" train --help | grep -q "usage: attn train" && pass "--help" || fail "--help"
"$ATTN" train --dump-config > "$dir/defaults.conf" && grep -q "^beta2 *= 0.98 " "$dir/defaults.conf" &&
    pass "--dump-config prints the defaults" || fail "--dump-config"
"$ATTN" train --config "$dir/defaults.conf" --dump-config | cmp -s - "$dir/defaults.conf" &&
    pass "the dumped config reads back to the same dump" || fail "dump round trip"
"$ATTN" train --config "$dir/tiny.conf" --dump-config --d-model 32 --lr=0.1 | grep -q "^d_model *= 32 " &&
    pass "--key value and --key=value overrides" || fail "overrides"
expect_error "unknown override" "unknown config key 'd_modle'" "$ATTN" train --config "$dir/tiny.conf" --d_modle 3 --dump-config
printf 'd_model = 16\nwarmup = 10\n' > "$dir/bad.conf"
expect_error "unknown key in a file" "bad.conf:2: unknown config key 'warmup'" "$ATTN" train --config "$dir/bad.conf" --out "$dir/x"
printf 'lr = fast\n' > "$dir/bad2.conf"
expect_error "bad value" "bad2.conf:1: bad value for lr: 'fast' is not a number" "$ATTN" train --config "$dir/bad2.conf" --out "$dir/x"
printf 'd_model = 16\nlr = 0.1\377\n' > "$dir/bad3.conf"
expect_error "invalid UTF-8 in a config file" "bad3.conf:2: invalid UTF-8 (byte 0xFF)" "$ATTN" train --config "$dir/bad3.conf" --out "$dir/x"
expect_error "inconsistent config" "not a multiple of n_heads" "$ATTN" train --config "$dir/tiny.conf" --n-heads 3 --out "$dir/x"
expect_error "missing --out" "--out RUN_DIR is required" "$ATTN" train --config "$dir/tiny.conf"
expect_error "bad matmul" "bad value for matmul" "$ATTN" train --config "$dir/tiny.conf" --matmul fp8 --out "$dir/x"
if grep -q avx512_bf16 /proc/cpuinfo; then
    if "$ATTN" train --config "$dir/tiny.conf" --matmul bf16 --max-steps 3 --quiet --out "$dir/bf16" 2> "$dir/err" &&
       grep -q '^matmul *= bf16' "$dir/bf16/config.conf"; then pass "matmul = bf16 trains"
    else fail "matmul = bf16 trains: $(cat "$dir/err")"; fi
else
    echo "INFO no AVX512-BF16 here: matmul = bf16 run skipped"
fi
expect_error "empty --out" "--out is empty" "$ATTN" train --config "$dir/tiny.conf" --out ""
expect_error "a copy task too large for the machine" "copy task: .* need at least .* GB, more than this machine's" \
    "$ATTN" train --config "$dir/tiny.conf" --copy-train-size 100000000 --copy-max-len 1000 --max-len 1002 --pos-max-len 1100 --out "$dir/bigcopy" --quiet
long_dir=$dir$(printf '/%0200d' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)
expect_error "a run dir path too long for the file names" "--out is [0-9]* bytes long, at most 3800" \
    "$ATTN" train --config "$dir/tiny.conf" --out "$long_dir" --quiet
expect_error "a model too large for the machine" "GB (.*parameters.*), more than this machine's" \
    "$ATTN" train --config "$dir/tiny.conf" --d-model 100000 --n-heads 2 --d-ff 1000000 --out "$dir/huge" --quiet
expect_error "missing config file" "nope.conf: No such file" "$ATTN" train --config "$dir/nope.conf" --out "$dir/x"
expect_error "missing data file" "missing.tsv: No such file" "$ATTN" train --task tsv --train "$dir/missing.tsv" --out "$dir/x"
[ ! -e "$dir/x" ] && pass "no run directory is created for a bad config" || fail "a run directory was created for a bad config"

# --- a short run
if "$ATTN" train --config "$dir/tiny.conf" --out "$dir/run" 2> "$dir/log"; then
    pass "train the tiny copy task"
    for f in config.conf last.safetensors last.state.safetensors best.safetensors metrics.jsonl src.tokenizer; do
        [ -s "$dir/run/$f" ] || fail "run directory lacks $f"
    done
    n=$(ls "$dir/run" | grep -c '^step-.*\.safetensors$')
    [ "$n" -eq 2 ] && pass "keep_last 2 keeps 2 step checkpoints" || fail "keep_last: $n step checkpoints"
    grep -q '"type":"valid","step":20,' "$dir/run/metrics.jsonl" && grep -q '"valid_exact"' "$dir/run/metrics.jsonl" &&
        pass "metrics.jsonl has validation records" || fail "metrics.jsonl"
    grep -q "^step 10/40 .*loss" "$dir/log" && pass "plain log lines off a terminal" || fail "log lines: $(head -3 "$dir/log")"
    "$ATTN" info --model "$dir/run/best.safetensors" > "$dir/info" && grep -q "^parameters: " "$dir/info" &&
        grep -q "encoder self-attention" "$dir/info" && grep -q "^source tokenizer: char" "$dir/info" &&
        pass "attn info" || fail "attn info: $(cat "$dir/info")"
    "$ATTN" info --model "$dir/run/best.safetensors" --config | grep -q "^copy_train_size *= 400 " &&
        pass "the training config is stored in the checkpoint" || fail "info --config"
    "$ATTN" average --out "$dir/avg.safetensors" --run "$dir/run" --last 2 > /dev/null &&
        "$ATTN" info --model "$dir/avg.safetensors" > /dev/null && pass "attn average of the last 2" || fail "attn average"
    expect_error "average too many" "holds 2 step checkpoints, --last asks for 5" "$ATTN" average --out "$dir/a.safetensors" --run "$dir/run"
    step_file=$(ls "$dir/run"/step-*.safetensors | tail -n 1)
    cp "$step_file" "$dir/step.before"
    expect_error "average onto one of its checkpoints" "is one of the checkpoints" \
        "$ATTN" average --out "$step_file" "$dir/run/best.safetensors" "$step_file"
    cmp -s "$step_file" "$dir/step.before" && pass "the checkpoint named as --out is untouched" || fail "average replaced its input"
    expect_error "average with an empty --out" "--out FILE is required" "$ATTN" average --out "" "$step_file"
    printf 'abc\tabc\n' > "$dir/pairs.tsv"
    cp "$dir/run/best.safetensors" "$dir/best.before"
    expect_error "info --dump-logits onto its model" "is one of the inputs" \
        "$ATTN" info --model "$dir/run/best.safetensors" --dump-logits "$dir/pairs.tsv" --out "$dir/run/best.safetensors"
    cmp -s "$dir/run/best.safetensors" "$dir/best.before" && pass "the model named as --out is untouched" || fail "info replaced its model"
    printf 'abc\tabc\n%s\ta\n' "$(printf '%040d' 0)" > "$dir/long.tsv"
    expect_error "info --dump-logits of a pair over max_len" "long.tsv:2: 41 source and 2 target tokens with </s>: over the model's max_len" \
        "$ATTN" info --model "$dir/run/best.safetensors" --dump-logits "$dir/long.tsv" --out "$dir/logits.safetensors"
else
    fail "training the tiny copy task: $(cat "$dir/log")"
fi

# --- decoded validation: greedy exact match equals the teacher-forced "exact"
if "$ATTN" train --config "$dir/tiny.conf" --out "$dir/decoded" --decode-metric g2p --best-metric wer --quiet; then
    bad=$(grep '"type":"valid"' "$dir/decoded/metrics.jsonl" |
        sed 's/.*"valid_exact":\([0-9.]*\),"valid_wer":\([0-9.]*\).*/\1 \2/' | awk '$1 + $2 != 100 { n++ } END { print n + 0 }')
    n=$(grep -c '"valid_wer"' "$dir/decoded/metrics.jsonl")
    [ "$n" -ge 2 ] && [ "$bad" = 0 ] && pass "greedy-decoded WER = 100 - teacher-forced exact at all $n validations" ||
        fail "decoded WER and exact disagree ($bad of $n records)"
else
    fail "training with decode_metric g2p"
fi
expect_error "best metric needs decoding" "best_metric = bleu needs decode_metric = bleu" "$ATTN" train --config "$dir/tiny.conf" --best-metric bleu --out "$dir/x"

# --- resuming keeps the run's config
expect_error "resume with another model" "started with d_model = 16, now 32" "$ATTN" train --out "$dir/run" --d-model 32
expect_error "resume with another config file" "was started with" "$ATTN" train --config "$dir/tiny.conf" --out "$dir/run" --lr 0.1
mkdir -p "$dir/other" && touch "$dir/other/file"
expect_error "not a run directory" "not an attn run directory" "$ATTN" train --config "$dir/tiny.conf" --out "$dir/other"
mkdir -p "$dir/killed" && touch "$dir/killed/config.conf.tmp.4242"
if "$ATTN" train --config "$dir/tiny.conf" --out "$dir/killed" --max-steps 2 --quiet 2> "$dir/err" && [ -f "$dir/killed/config.conf" ]; then
    pass "a run killed before its first config.conf starts afresh"
else
    fail "a run killed before its first config.conf starts afresh: $(cat "$dir/err")"
fi

# --- damaged or unwritable run directories
cp -r "$dir/run" "$dir/corrupt"
size=$(stat -c %s "$dir/corrupt/last.safetensors")
printf 'XXXX' | dd of="$dir/corrupt/last.safetensors" bs=1 seek=$((size - 8)) conv=notrunc 2> /dev/null
expect_error "corrupt checkpoint" "corrupt/last.safetensors: corrupt file" "$ATTN" train --out "$dir/corrupt" --max-steps 50 --quiet
head -c 1000 "$dir/run/last.state.safetensors" > "$dir/trunc.state"
cp -r "$dir/run" "$dir/truncated" && cp "$dir/trunc.state" "$dir/truncated/last.state.safetensors" &&
    cp "$dir/trunc.state" "$dir/truncated/last.prev.state.safetensors"
expect_error "truncated state" "no consistent" "$ATTN" train --out "$dir/truncated" --max-steps 50 --quiet

cp -r "$dir/run" "$dir/torn"
head -c 1000 "$dir/run/last.state.safetensors" > "$dir/torn/last.state.safetensors"
"$ATTN" train --out "$dir/torn" --max-steps 50 2> "$dir/log" && grep -q "resuming from .*last.prev.safetensors at step 30" "$dir/log" &&
    pass "a torn last.state falls back to the previous consistent pair (step 30)" || fail "torn state: $(cat "$dir/log")"

cp -r "$dir/run" "$dir/ro"
if chattr +i "$dir/ro" 2> /dev/null || chmod a-w "$dir/ro"; then
    if touch "$dir/ro/probe" 2> /dev/null; then
        rm -f "$dir/ro/probe"; echo "INFO cannot make a read-only directory here; skipped"
    else
        cp "$dir/ro/last.safetensors" "$dir/before"
        expect_error "read-only run directory" "ro/config.conf: cannot write" "$ATTN" train --out "$dir/ro" --max-steps 50 --quiet
        cmp -s "$dir/before" "$dir/ro/last.safetensors" && pass "the checkpoint in the read-only directory is intact" ||
            fail "read-only run directory: checkpoint changed"
    fi
    chattr -i "$dir/ro" 2> /dev/null; chmod u+w "$dir/ro"
fi

# A full disk: a small tmpfs that holds the model file but not the state.
mkdir -p "$dir/full"
if mount -t tmpfs -o size=40k tmpfs "$dir/full" 2> /dev/null; then
    expect_error "full run directory" "No space left on device (the previous file is intact)" \
        "$ATTN" train --config "$dir/tiny.conf" --out "$dir/full/run" --quiet
    if [ -e "$dir/full/run/last.safetensors" ]; then
        "$ATTN" info --model "$dir/full/run/last.safetensors" > /dev/null && pass "the file written before the disk filled is whole" ||
            fail "a checkpoint on the full disk is damaged"
    fi
    umount "$dir/full"
else
    echo "INFO cannot mount a small tmpfs here; the full-disk case is skipped"
fi

[ $fails -eq 0 ]
