#!/bin/sh
# End-to-end tests of `attn bleu` and `attn chrf` on sacreBLEU's README
# example (expected lines copied from mjpost/sacrebleu README.md).
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

printf '%s\n' "The dog bit the man." "It wasn't surprising." "The man had just bitten him." > "$dir/hyp"
printf '%s\n' "The dog bit the man." "It was not unexpected." "The man bit him first." > "$dir/ref1"
# no final newline: the last line still counts
printf '%s\n%s\n%s' "The dog had bit the man." "No one was surprised." "The man had bitten the dog." > "$dir/ref2"

out=$("$ATTN" bleu --ref "$dir/ref1" --ref "$dir/ref2" < "$dir/hyp")
check "bleu line as sacreBLEU README" "$(echo "$out" | head -1)" \
    "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
check "bleu signature" "$(echo "$out" | sed -n 2p | sed 's/version:.*/version:/')" \
    "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:"
check "bleu --score-only and --input" "$("$ATTN" bleu -b -i "$dir/hyp" -r "$dir/ref1" -r "$dir/ref2")" "48.53"
check "bleu --tokenize none (test_bleu.py 49.1919566)" \
    "$("$ATTN" bleu -b --tokenize none -r "$dir/ref1" -r "$dir/ref2" < "$dir/hyp")" "49.19"
check "bleu --max-order 2 (test_bleu.py 60.50)" \
    "$("$ATTN" bleu -b --max-order 2 -r "$dir/ref1" -r "$dir/ref2" < "$dir/hyp")" "60.50"

out=$("$ATTN" chrf --ref "$dir/ref1" --ref "$dir/ref2" < "$dir/hyp")
check "chrf line as sacreBLEU README" "$(echo "$out" | head -1)" "chrF2 = 59.73"
check "chrf signature" "$(echo "$out" | sed -n 2p | sed 's/version:.*/version:/')" \
    "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:"

# CRLF input scores the same as LF input
sed 's/$/\r/' "$dir/hyp" > "$dir/hyp_crlf"
check "bleu reads CRLF files" "$("$ATTN" bleu -b -r "$dir/ref1" -r "$dir/ref2" < "$dir/hyp_crlf")" "48.53"

# errors: non-zero exit and one "attn: ..." line
expect_error() {  # name, pattern, command...
    name=$1; pattern=$2; shift 2
    "$@" > "$dir/out" 2> "$dir/err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "^attn: .*$pattern" "$dir/err"; then pass "$name"
    else fail "$name: rc=$rc stderr=$(cat "$dir/err")"; fi
}
head -2 "$dir/hyp" > "$dir/hyp2"
expect_error "bleu mismatched line counts" "has 2 lines but reference" sh -c "'$ATTN' bleu -r '$dir/ref1' < '$dir/hyp2'"
expect_error "chrf mismatched line counts" "has 2 lines but reference" sh -c "'$ATTN' chrf -r '$dir/ref1' < '$dir/hyp2'"
expect_error "bleu without --ref" "at least one --ref" sh -c "'$ATTN' bleu < '$dir/hyp'"
expect_error "bleu missing reference file" "$dir/nope" sh -c "'$ATTN' bleu -r '$dir/nope' < '$dir/hyp'"
printf 'ok\nbad \377 byte\nok\n' > "$dir/bad"
expect_error "bleu invalid UTF-8 names the line" "standard input:2:5: invalid UTF-8" sh -c "'$ATTN' bleu -r '$dir/ref1' < '$dir/bad'"
printf 'ok\nnul \000 byte\nok\n' > "$dir/nul"
expect_error "bleu rejects a NUL byte naming the line" "standard input:2:5: NUL byte" sh -c "'$ATTN' bleu -r '$dir/ref1' < '$dir/nul'"
expect_error "bleu bad flag value" "bad value for --smooth" sh -c "'$ATTN' bleu --smooth foo -r '$dir/ref1' < '$dir/hyp'"
expect_error "chrf unknown flag" "unknown flag" sh -c "'$ATTN' chrf --frobnicate -r '$dir/ref1' < '$dir/hyp'"
printf '' > "$dir/empty"
expect_error "bleu empty input" "empty" sh -c "'$ATTN' bleu -r '$dir/empty' < '$dir/empty'"
# a BOM is skipped, like a CRLF line end
{ printf '\357\273\277'; cat "$dir/hyp"; } > "$dir/hyp_bom"
check "bleu skips a BOM" "$("$ATTN" bleu -b -r "$dir/ref1" -r "$dir/ref2" < "$dir/hyp_bom")" "48.53"
expect_error "bleu with stdout closed" "standard output is closed" sh -c "'$ATTN' bleu -r '$dir/ref1' < '$dir/hyp' >&-"
if [ -c /dev/full ]; then
    expect_error "bleu to a full disk" "standard output: write error" sh -c "'$ATTN' bleu -r '$dir/ref1' < '$dir/hyp' > /dev/full"
    expect_error "chrf to a full disk" "standard output: write error" sh -c "'$ATTN' chrf -r '$dir/ref1' < '$dir/hyp' > /dev/full"
fi
"$ATTN" bleu --help | grep -q "usage: attn bleu" && pass "bleu --help" || fail "bleu --help"

[ $fails -eq 0 ]
