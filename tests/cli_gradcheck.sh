#!/bin/sh
# attn gradcheck: the finite-difference check of every layer's backward pass
# passes, prints one line per parameter tensor of every case, and fails
# loudly on bad flags.
ATTN=${ATTN:-./build/attn}
out=$(mktemp); err=$(mktemp); trap 'rm -f "$out" "$err"' EXIT
check() { if [ "$1" -eq 0 ]; then echo "PASS $2"; else echo "FAIL $2"; fi; }

"$ATTN" gradcheck > "$out" 2> "$err"; rc=$?
check $rc "gradcheck exits 0"
[ $rc -eq 0 ] || cat "$out" "$err"
# 4 cases: 68 + 67 + 66 + 67 tensors (untied, tied, shared+tied, shared)
n=$(grep -c ' ok$' "$out")
check $([ "$n" -eq 268 ]; echo $?) "gradcheck prints 268 tensor lines, all ok (got $n)"
for spec in postln-relu-untied:68 preln-gelu-tied:67 postln-gelu-shared-drop:66 preln-relu-shared-drop:67; do
    c=${spec%:*}; want=${spec#*:}
    k=$(grep -c "^$c " "$out")
    check $([ "$k" -eq "$want" ]; echo $?) "case $c checks every tensor ($k of $want)"
done
for t in src_embed.weight generator.bias transformer.decoder.layers.1.multihead_attn.in_proj_weight \
         transformer.encoder.layers.1.norm2.bias transformer.decoder.norm.weight; do
    k=$(grep -c " $t " "$out")
    check $([ "$k" -eq 4 ]; echo $?) "tensor $t checked in all 4 cases"
done
grep '^gradcheck:' "$out" | sed 's/^/INFO /'
check $(grep -q FAILED "$out"; [ $? -ne 0 ]; echo $?) "no tensor FAILED"

"$ATTN" gradcheck --case nope > /dev/null 2> "$err"; rc=$?
check $([ $rc -ne 0 ] && grep -q "^attn: gradcheck: no case named 'nope'" "$err"; echo $?) "unknown case is an error"
"$ATTN" gradcheck --eps > /dev/null 2> "$err"; rc=$?
check $([ $rc -ne 0 ] && grep -q "^attn: --eps needs a value" "$err"; echo $?) "missing flag value is an error"
"$ATTN" gradcheck --tol -1 > /dev/null 2> "$err"; rc=$?
check $([ $rc -ne 0 ] && grep -q "^attn: bad value for --tol" "$err"; echo $?) "bad flag value is an error"
"$ATTN" gradcheck --frobnicate > /dev/null 2> "$err"; rc=$?
check $([ $rc -ne 0 ] && grep -q "^attn: gradcheck: unknown flag" "$err"; echo $?) "unknown flag is an error"
# An impossible tolerance makes it fail with a non-zero status.
"$ATTN" gradcheck --case preln-gelu-tied --tol 1e-9 > "$out" 2> "$err"; rc=$?
check $([ $rc -ne 0 ] && grep -q FAILED "$out" && grep -q "over the tolerance" "$err"; echo $?) "a tensor over tolerance fails the run"
"$ATTN" gradcheck --help | grep -q "usage: attn gradcheck"
check $? "gradcheck --help"
