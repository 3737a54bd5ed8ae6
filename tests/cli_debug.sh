#!/bin/sh
# The debugging aids of attn train, provoked on purpose: --overfit-batch
# passes on a healthy model and fails (exit 1, with its loss curve) when the
# model cannot learn; a NaN weight stops the run with the offending tensor
# named, the batch saved and the last checkpoint untouched (nan_action = stop),
# or ends it after too many skipped steps (nan_action = skip); stats_every
# writes per-layer and per-sublayer statistics into metrics.jsonl.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

cat > "$dir/tiny.conf" <<'CONF'
task = copy
copy_symbols = 6
copy_max_len = 6
copy_train_size = 400
copy_valid_size = 30
max_len = 10
batch_sentences = 16
batch_tokens = 0
d_model = 32
n_heads = 2
d_ff = 64
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
threads = 1
CONF

# --overfit-batch: one batch of 16 strings, learned to a loss below 0.05
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/of" --overfit-batch --max_steps 300 > "$dir/of.out" 2>&1
check "overfit-batch on a healthy model exits 0" "$?" "0"
grep -q "overfit-batch: passed: loss .* < 0.05 at step [0-9]* (loss by step: 1: " "$dir/of.out" \
    && pass "overfit-batch prints the verdict and the curve: $(grep -o 'passed.*' "$dir/of.out" | cut -c1-90)..." \
    || fail "overfit-batch verdict: $(tail -2 "$dir/of.out")"
check "overfit-batch trains without dropout or smoothing" \
    "$(grep -E '^(label_smoothing|dropout_residual|overfit_batch) ' "$dir/of/config.conf" | tr -s ' ' | cut -d' ' -f1,3 | tr '\n' ' ')" \
    "dropout_residual 0 label_smoothing 0 overfit_batch 1 "
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/of2" --overfit-batch --max_steps 20 --lr 1e-6 > "$dir/of2.out" 2> "$dir/of2.err"
check "overfit-batch with a learning rate far too low exits 1" "$?" "1"
grep -q "^attn: overfit-batch: failed: loss [0-9.]* after 20 steps, not below 0.05 (loss by step: 1: .*, 20: " "$dir/of2.err" \
    && pass "overfit-batch failure names the loss and the curve" || fail "overfit-batch failure: $(cat "$dir/of2.err")"

# A NaN in a weight of the last checkpoint (written as a crashed or buggy
# update would leave it, with a valid data hash): the resumed run must stop
# at its first step, name the poisoned layer (decoder layer 0: backward
# meets the NaN there first), save the batch, damage no checkpoint.
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/nan" --max_steps 20 > /dev/null 2>&1
check "a short run to poison" "$?" "0"
PY=$(command -v /usr/bin/python3 || command -v python3)
if [ -z "$PY" ]; then
    echo "INFO python3 not found: NaN checkpoint tests skipped"
else
    "$PY" - "$dir/nan/last.safetensors" <<'EOF'
import json, struct, sys
path = sys.argv[1]
raw = bytearray(open(path, 'rb').read())
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
base = 8 + n
t = header['transformer.decoder.layers.0.linear1.weight']
raw[base + t['data_offsets'][0]:base + t['data_offsets'][0] + 4] = struct.pack('<I', 0x7fc00000)
# the checkpoint's data hash: FNV-1a 64 over the 32-bit words of the tensors in file order
h = 0xcbf29ce484222325
spans = sorted(v['data_offsets'] for k, v in header.items() if k != '__metadata__')
for b, e in spans:
    for (w,) in struct.iter_unpack('<I', bytes(raw[base + b:base + e])):
        h = ((h ^ w) * 0x100000001b3) & 0xffffffffffffffff
old = header['__metadata__']['data_hash'].encode()
new = ('%016x' % h).encode()
at = raw.index(b'"data_hash":"' + old) + len(b'"data_hash":"')
raw[at:at + 16] = new
open(path, 'wb').write(raw)
EOF
    cp -r "$dir/nan" "$dir/nan_skip"
    before=$(cat "$dir/nan"/*.safetensors | cksum)
    "$ATTN" train --config "$dir/tiny.conf" --out "$dir/nan" --max_steps 40 > "$dir/nan.out" 2> "$dir/nan.err"
    check "NaN weight: the run stops with exit 1" "$?" "1"
    grep -q "^attn: step 21: non-finite gradient at step 21 in [0-9]* of [0-9]* tensors: nearest the output transformer.decoder.layers.0.[a-z0-9_.]* (layer 0) at element [0-9]* (nan); earliest affected src_embed.weight; the last checkpoint is intact" "$dir/nan.err" \
        && pass "NaN: one error line names the step and the poisoned tensor: $(tail -1 "$dir/nan.err" | cut -c1-160)..." \
        || fail "NaN message: $(cat "$dir/nan.err")"
    check "NaN: no checkpoint was written or changed" "$(cat "$dir/nan"/*.safetensors | cksum)" "$before"
    "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); assert b['B'] == len(b['src']) == 16 and len(b['tgt_out'][0]) == b['T']" \
        "$dir/nan/nan_batch.json" && pass "NaN: the batch is saved as nan_batch.json" || fail "nan_batch.json"
    check "NaN: a diag record in metrics.jsonl" "$(grep -c '"type":"diag","step":21,"action":"stop"' "$dir/nan/metrics.jsonl")" "1"
    "$ATTN" train --config "$dir/tiny.conf" --out "$dir/nan_skip" --max_steps 40 --nan_action skip > "$dir/skip.out" 2> "$dir/skip.err"
    check "nan_action = skip: 9 skipped steps, then a stop at the 10th" "$?:$(grep -c '^skip: non-finite' "$dir/skip.err")" "1:9"
    grep -q "10 steps in a row skipped: training has diverged" "$dir/skip.err" && pass "skip: the stop says why" \
        || fail "skip stop message: $(cat "$dir/skip.err")"
fi

# per-layer statistics every 10 steps
"$ATTN" train --config "$dir/tiny.conf" --out "$dir/st" --max_steps 20 --stats_every 10 > /dev/null 2>&1
check "stats_every: a layer_stats and an activation_stats record per 10 steps" \
    "$(grep -c '"type":"layer_stats"' "$dir/st/metrics.jsonl") $(grep -c '"type":"activation_stats"' "$dir/st/metrics.jsonl")" "2 2"
grep '"type":"layer_stats","step":20' "$dir/st/metrics.jsonl" | grep -q '"encoder.layers.0":{"grad_norm":[0-9.e-]*,"weight_norm":[0-9.e-]*,"update_ratio":[0-9.e-]*}' \
    && pass "layer stats: gradient norm, weight norm, update ratio per layer" || fail "layer stats: $(grep layer_stats "$dir/st/metrics.jsonl" | head -1 | cut -c1-200)"
grep '"type":"activation_stats","step":20' "$dir/st/metrics.jsonl" | grep -q '"decoder.layers.0.cross_attn":{"mean":.*"attention_entropy":{"encoder.layers.0.self_attn":[0-9.]*' \
    && pass "activation stats: sublayer outputs and attention entropy" || fail "activation stats"

[ $fails -eq 0 ]
