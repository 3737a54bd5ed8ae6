#!/bin/sh
# End-to-end tests of `attn prepare`: cleaning counts per rule, BOM/CRLF
# input, deterministic splits, two-file input, user-given valid/test files,
# and bad inputs (missing tab, empty file, invalid UTF-8, a 10 MB line, a
# directory, ...) each failing with one `attn: FILE:LINE: ...` line.
ATTN=${ATTN:-$PWD/build/attn}
export LC_ALL=C  # byte-order sort, whatever the locale
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

sample="$here/data/prepare_sample.tsv"
"$ATTN" prepare --out "$dir/a" --max-tokens 10 --max-ratio 3 --valid 2 --test 2 --seed 4 "$sample" > "$dir/out" 2>&1
check "prepare exits 0" "$?" "0"
check "prepare reports each rule" "$(grep -E 'dropped|kept|read' "$dir/out" | tr -s ' ' | tr '\n' '|')" \
    "$sample: 14 pairs read| dropped control 1| dropped empty 1| dropped too-long 1| dropped ratio 1| dropped duplicate 1| kept 9|"
check "split sizes 5/2/2" "$(cat "$dir/a/train.tsv" | wc -l) $(cat "$dir/a/valid.tsv" | wc -l) $(cat "$dir/a/test.tsv" | wc -l)" "5 2 2"
check "the parts hold exactly the kept pairs" "$(cat "$dir/a/train.tsv" "$dir/a/valid.tsv" "$dir/a/test.tsv" | sort | tr '\t\n' '=|')" \
    "agua=water|casa=house|el perro=the dog|gato=cat|hola mundo=hello world|luna=moon|sol=sun|Ñandú=RHEA|árbol=tree|"
check "outputs have no BOM and no CR" "$(cat "$dir/a"/*.tsv | grep -c "$(printf '\r')\|$(printf '\357\273\277')")" "0"

"$ATTN" prepare --out "$dir/b" --max-tokens 10 --max-ratio 3 --valid 2 --test 2 --seed 4 "$sample" > /dev/null
check "same seed, same split" "$(cat "$dir/a"/*.tsv | cksum)" "$(cat "$dir/b"/*.tsv | cksum)"
same=1
for seed in 5 6 7; do
    "$ATTN" prepare --out "$dir/c$seed" --max-tokens 10 --max-ratio 3 --valid 2 --test 2 --seed $seed "$sample" > /dev/null
    cmp -s "$dir/a/valid.tsv" "$dir/c$seed/valid.tsv" || same=0
done
check "other seeds, another split" "$same" "0"

"$ATTN" prepare --out "$dir/l" --lowercase --valid 0 --test 0 "$sample" > /dev/null
check "lowercase" "$(grep -c '^ñandú	rhea$' "$dir/l/train.tsv")" "1"
check "defaults keep the long and unbalanced pairs" "$(wc -l < "$dir/l/train.tsv")" "11"

"$ATTN" prepare --out "$dir/f" --valid 1 --test 1 "$here/data/prepare_src.txt" "$here/data/prepare_tgt.txt" > /dev/null
check "two aligned files (CRLF, no final newline)" "$(cat "$dir/f"/*.tsv | sort | tr '\t\n' '=|')" "cuatro=four|dos=two|tres=three|uno=one|"

printf 'x\ty\n  gato \tcat\n' > "$dir/given.tsv"
"$ATTN" prepare --out "$dir/g" --valid-file "$dir/given.tsv" --test 0 "$sample" > "$dir/out" 2>&1
check "--valid-file: cleaned and written as valid" "$(tr '\t\n' '=|' < "$dir/g/valid.tsv")" "x=y|gato=cat|"
check "--valid-file: train keeps everything else" "$(wc -l < "$dir/g/train.tsv") $(wc -l < "$dir/g/test.tsv")" "11 0"

# Bad inputs: non-zero exit, exactly one line on stderr, "attn: " first.
bad() {  # name, expected substring, args...
    name=$1; want=$2; shift 2
    "$ATTN" prepare --out "$dir/bad" "$@" > /dev/null 2> "$dir/err"; rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l < "$dir/err")" -eq 1 ] && grep -q "^attn: .*$want" "$dir/err"; then
        pass "bad input: $name"
    else
        fail "bad input: $name: rc=$rc stderr='$(head -c 300 "$dir/err")'"
    fi
}
printf 'a\tb\nno tab\n' > "$dir/notab.tsv"
bad "missing tab" "notab.tsv:2: no tab" "$dir/notab.tsv"
: > "$dir/empty.tsv"
bad "empty file" "empty.tsv: empty file" "$dir/empty.tsv"
printf 'a\tb\nc\td\nbad \377 byte\tx\n' > "$dir/latin.tsv"
bad "invalid UTF-8" "latin.tsv:3:5: invalid UTF-8" "$dir/latin.tsv"
{ printf 'a\tb\n'; head -c 10485760 /dev/zero | tr '\0' 'x'; printf '\ty\n'; } > "$dir/long.tsv"
bad "10 MB line" "long.tsv:2: line is 10485762 bytes" "$dir/long.tsv"
mkdir "$dir/adir"
bad "directory" "adir: is a directory" "$dir/adir"
bad "missing file" "nope.tsv" "$dir/nope.tsv"
bad "two tabs" "tabs.tsv:1: more than one tab" "$(printf 'a\tb\tc\n' > "$dir/tabs.tsv"; echo "$dir/tabs.tsv")"
printf 'one\ntwo\n' > "$dir/s.txt"; printf 'uno\n' > "$dir/t.txt"
bad "unaligned files" "has 2 lines but" "$dir/s.txt" "$dir/t.txt"
bad "split too large" "exceed" --valid 8 --test 8 "$sample"
bad "bad --valid" "bad value for --valid" --valid abc "$sample"
bad "bad --max-ratio" "max-ratio" --max-ratio 0.5 "$sample"
bad "unknown flag" "unknown flag '--frobnicate'" --frobnicate "$sample"
bad "three inputs" "too many inputs" "$sample" "$sample" "$sample"
: > "$dir/notadir"
"$ATTN" prepare --out "$dir/notadir" "$sample" > /dev/null 2> "$dir/err"
check "output path that is a file" "$? $(grep -c 'not a directory' "$dir/err")" "1 1"

# the report on stdout must not be lost silently either
"$ATTN" prepare --out "$dir/h" "$sample" >&- 2> "$dir/err"
check "stdout closed: one-line error" "$? $(grep -c '^attn: standard output is closed' "$dir/err")" "1 1"
if [ -c /dev/full ]; then
    "$ATTN" prepare --out "$dir/i" "$sample" > /dev/full 2> "$dir/err"
    check "stdout on a full disk: one-line error" "$? $(grep -c '^attn: standard output: write error' "$dir/err")" "1 1"
fi

[ $fails -eq 0 ]
