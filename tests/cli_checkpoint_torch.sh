#!/bin/sh
# An attn checkpoint loaded into the PyTorch reference (tools/reference.py)
# gives the same logits on a batch: within 1e-5 relative (norm-wise over the
# non-pad positions), for a post-LN ReLU untied model and a pre-LN GELU model
# with shared embeddings and a tied generator.
ATTN=${ATTN:-$PWD/build/attn}
PY=/usr/bin/python3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

if ! $PY -c 'import torch, numpy' 2>/dev/null; then
    echo "FAIL PyTorch is not installed for $PY (apt-get install python3-torch)"
    exit 1
fi

cat > "$dir/tiny.conf" <<'CONF'
task = reverse
copy_symbols = 12
copy_max_len = 9
copy_train_size = 500
copy_valid_size = 20
max_len = 12
batch_sentences = 16
batch_tokens = 0
d_model = 16
n_heads = 2
d_ff = 32
n_enc_layers = 2
n_dec_layers = 2
pos_max_len = 20
schedule = constant
lr = 0.01
max_steps = 12
valid_every = 0
log_every = 6
keep_last = 0
threads = 1
CONF
printf 'abc\tcba\nlkjihgfed\tdefghijkl\nb\tb\nzz q\tq zz\n' > "$dir/pairs.tsv"

# compare DIR NAME...: for each NAME, DIR/NAME.attn.safetensors against
# DIR/NAME.torch.safetensors, relative norm-wise over the non-pad targets;
# prints PASS/FAIL lines (one Python start-up for all).
compare() {
    $PY - "$@" <<'PYEOF'
import json, struct, sys
import numpy as np

def read(path):  # safetensors, F32 only (what both sides write)
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {k: np.frombuffer(body[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(v["shape"])
            for k, v in header.items()}

failed = 0
for name in sys.argv[2:]:
    a = read(f"{sys.argv[1]}/{name}.attn.safetensors")
    b = read(f"{sys.argv[1]}/{name}.torch.safetensors")
    mask = a["tgt_out"] != 0
    x, y = a["logits"][mask].astype(np.float64), b["logits"][mask].astype(np.float64)
    rel = np.linalg.norm(x - y) / np.linalg.norm(y)
    loss_rel = abs(float(a["loss"][0]) - float(b["loss"][0])) / abs(float(b["loss"][0]))
    ok = rel < 1e-5 and loss_rel < 1e-5
    failed += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}: attn checkpoint in PyTorch: logits rel diff {rel:.2e} "
          f"(max abs {np.abs(x - y).max():.2e}), loss rel diff {loss_rel:.2e}")
sys.exit(1 if failed else 0)
PYEOF
}

# Trains a variant a little and dumps attn's logits; adds its triple to $triples.
triples=""
names=""
make_variant() {
    name=$1; shift
    run="$dir/$name"
    if ! "$ATTN" train --config "$dir/tiny.conf" --out "$run" --quiet "$@" 2> "$dir/err"; then
        fail "$name: training failed: $(cat "$dir/err")"; return
    fi
    if "$ATTN" info --model "$run/last.safetensors" --dump-logits "$dir/pairs.tsv" --out "$dir/$name.attn.safetensors" > /dev/null; then
        triples="$triples $run/last.safetensors $dir/$name.attn.safetensors $dir/$name.torch.safetensors"
        names="$names $name"
    else
        fail "$name: dumping attn's logits failed"
    fi
}

make_variant postln_relu_untied
make_variant preln_gelu_shared_tied --norm-first 1 --activation gelu --joint-vocab 1 --share-embeddings 1 --tie-generator 1
make_variant postln_tied --tie-generator 1 --dropout-attn 0.2

# One PyTorch start-up loads every checkpoint and writes its logits.
if [ -n "$triples" ] && $PY tools/reference.py logits $triples > "$dir/torch.log" 2>&1; then
    compare "$dir" $names || fails=$((fails + 1))
else
    fail "reference.py logits failed: $(tail -3 "$dir/torch.log")"
fi

[ $fails -eq 0 ]
