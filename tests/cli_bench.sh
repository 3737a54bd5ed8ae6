#!/bin/sh
# End-to-end test of `attn bench`: one JSON line with every field, the same
# loss on 1 and 2 threads, and one-line errors for bad flags.
# Timings are printed, never checked.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

if "$ATTN" bench --preset tiny --steps 1 --warmup 0 --beam 2 --threads 1 > "$dir/out" 2> "$dir/err"; then
    pass "bench tiny runs"
else
    fail "bench tiny runs: $(cat "$dir/err")"
fi
line=$(cat "$dir/out")
echo "INFO $line"
ok=1
for field in '"impl": "attn"' '"preset": "tiny"' train_tokens_per_s model_gflop_per_step peak_rss_mb last_loss \
             decode_sentences_per_s greedy_tokens_per_s '"beam_size": 2' beam_sentences_per_s; do
    case "$line" in *"$field"*) ;; *) ok=0; echo "missing $field" ;; esac
done
[ "$(echo "$line" | wc -l)" -eq 1 ] || ok=0
case "$line" in "{"*"}") ;; *) ok=0 ;; esac
if [ $ok = 1 ]; then pass "one JSON line with every field"; else fail "one JSON line with every field"; fi

# Nothing in a step depends on the thread count (gemm splits C, never the
# sum; the kernels' reductions run in a fixed order): the same loss, bit for
# bit, on 1 and 2 threads.
loss() { sed 's/.*"last_loss": \([0-9.]*\).*/\1/'; }
l1=$(loss < "$dir/out")
l2=$("$ATTN" bench --preset tiny --steps 1 --warmup 0 --no-decode --threads 2 | loss)
if [ -n "$l1" ] && [ "$l1" = "$l2" ]; then pass "same loss on 1 and 2 threads ($l1)"; else fail "same loss on 1 and 2 threads ($l1 vs $l2)"; fi

expect_error() {  # name, pattern, flags...
    name=$1; pattern=$2; shift 2
    "$ATTN" bench "$@" > "$dir/out" 2> "$dir/err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "^attn: .*$pattern" "$dir/err" && [ "$(wc -l < "$dir/err")" -eq 1 ]; then pass "$name"
    else fail "$name (exit $rc: $(cat "$dir/err"))"; fi
}
expect_error "no preset" "--preset is required"
expect_error "unknown preset" "bad value for --preset"  --preset huge
expect_error "zero threads" "bad value for --threads" --preset tiny --threads 0
expect_error "unknown gemm path" "bad value for --gemm" --preset tiny --gemm fast
expect_error "unknown flag" "unknown flag" --preset tiny --fast
expect_error "missing value" "needs a value" --preset
"$ATTN" bench --help > "$dir/out" 2>&1 && grep -q "usage: attn bench" "$dir/out" && pass "--help" || fail "--help"
[ $fails -eq 0 ]
