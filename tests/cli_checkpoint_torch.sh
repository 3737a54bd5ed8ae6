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
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

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

# compare ATTN_DUMP TORCH_OUT: relative norm-wise difference over non-pad targets
compare() {
    $PY - "$1" "$2" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
import numpy as np
from reference import read_safetensors
a, _ = read_safetensors(sys.argv[1])
b, _ = read_safetensors(sys.argv[2])
mask = a["tgt_out"] != 0
x, y = a["logits"][mask].astype(np.float64), b["logits"][mask].astype(np.float64)
rel = np.linalg.norm(x - y) / np.linalg.norm(y)
loss_rel = abs(float(a["loss"][0]) - float(b["loss"][0])) / abs(float(b["loss"][0]))
print(f"logits rel diff {rel:.2e} (max abs {np.abs(x - y).max():.2e}), loss rel diff {loss_rel:.2e}")
sys.exit(0 if rel < 1e-5 and loss_rel < 1e-5 else 1)
PYEOF
}

check_variant() {
    name=$1; shift
    run="$dir/$name"
    if ! "$ATTN" train --config "$dir/tiny.conf" --out "$run" --quiet "$@" 2> "$dir/err"; then
        fail "$name: training failed: $(cat "$dir/err")"; return
    fi
    "$ATTN" info --model "$run/last.safetensors" --dump-logits "$dir/pairs.tsv" --out "$dir/$name.attn.safetensors" > /dev/null &&
    $PY tools/reference.py logits "$run/last.safetensors" "$dir/$name.attn.safetensors" "$dir/$name.torch.safetensors" > /dev/null ||
        { fail "$name: dumping the logits failed"; return; }
    if result=$(compare "$dir/$name.attn.safetensors" "$dir/$name.torch.safetensors"); then
        pass "$name: checkpoint in PyTorch gives attn's logits: $result"
    else
        fail "$name: PyTorch logits differ: $result"
    fi
}

check_variant postln_relu_untied
check_variant preln_gelu_shared_tied --norm-first 1 --activation gelu --joint-vocab 1 --share-embeddings 1 --tie-generator 1
check_variant postln_tied --tie-generator 1 --dropout-attn 0.2

[ $fails -eq 0 ]
