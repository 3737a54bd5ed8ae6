#!/bin/sh
# End-to-end tests of `attn tokenizer learn/encode/decode`: byte-exact round
# trips of a committed Bible sample (249 verse pairs, Spanish RV1909 and
# English WEB from data/bible.sh) and of edge-case lines, dropout, and
# one-line errors for bad flags, files and input.
ATTN=${ATTN:-$PWD/build/attn}
DATA=tests/data
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"
same_file() { if cmp -s "$2" "$3"; then pass "$1"; else fail "$1: $2 and $3 differ"; fi; }

cut -f1 "$DATA/tok_bible_sample.tsv" > "$dir/text"
cut -f2 "$DATA/tok_bible_sample.tsv" >> "$dir/text"
cat "$DATA/tok_edge.txt" >> "$dir/text"

# BPE learned from the TSV (both columns)
"$ATTN" tokenizer learn --type bpe --vocab-size 1200 --out "$dir/bpe.tok" "$DATA/tok_bible_sample.tsv" 2> "$dir/log"
check "learn bpe exits 0" "$?" "0"
check "learn bpe: 1200 pieces" "$(sed -n 4p "$dir/bpe.tok")" "pieces 1200"
"$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" < "$dir/text" > "$dir/pieces"
check "encode: one output line per input line" "$(wc -l < "$dir/pieces")" "$(wc -l < "$dir/text")"
"$ATTN" tokenizer decode --tokenizer "$dir/bpe.tok" < "$dir/pieces" > "$dir/decoded"
same_file "bpe pieces round-trip the sample and edge lines byte-exactly" "$dir/decoded" "$dir/text"
"$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" --ids < "$dir/text" > "$dir/ids"
"$ATTN" tokenizer decode --tokenizer "$dir/bpe.tok" --ids < "$dir/ids" > "$dir/decoded_ids"
same_file "bpe ids round-trip byte-exactly" "$dir/decoded_ids" "$dir/text"
check "encode: pieces of a known line" "$(echo 'y la tierra' | "$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok")" "▁y ▁la ▁tierra"
check "encode: leading and double spaces" "$(printf ' y  la\n' | "$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok")" "▁ ▁y ▁ ▁la"
check "decode: stops at </s>, skips <s>" "$(echo '<s> ▁y ▁la </s> ▁tierra' | "$ATTN" tokenizer decode --tokenizer "$dir/bpe.tok")" "y la"

# dropout: deterministic from the seed, decodes to the text, p=1 is characters
"$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" --dropout 0.2 --seed 5 < "$dir/text" > "$dir/drop1"
"$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" --dropout 0.2 --seed 5 < "$dir/text" > "$dir/drop2"
"$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" --dropout 0.2 --seed 6 < "$dir/text" > "$dir/drop3"
same_file "dropout: same seed, same pieces" "$dir/drop1" "$dir/drop2"
if cmp -s "$dir/drop1" "$dir/drop3" || cmp -s "$dir/drop1" "$dir/pieces"; then fail "dropout: another seed or none changes the pieces"
else pass "dropout: another seed or none changes the pieces"; fi
"$ATTN" tokenizer decode --tokenizer "$dir/bpe.tok" < "$dir/drop1" > "$dir/drop_decoded"
same_file "dropout pieces decode to the text" "$dir/drop_decoded" "$dir/text"
check "dropout 1: characters" "$(echo 'la tierra' | "$ATTN" tokenizer encode --tokenizer "$dir/bpe.tok" --dropout 1)" "▁ l a ▁ t i e r r a"

# char tokenizer with byte fallback round-trips everything too
"$ATTN" tokenizer learn --type char --byte-fallback --out "$dir/char.tok" "$DATA/tok_bible_sample.tsv" 2> /dev/null
"$ATTN" tokenizer encode --tokenizer "$dir/char.tok" < "$dir/text" | "$ATTN" tokenizer decode --tokenizer "$dir/char.tok" > "$dir/char_decoded"
same_file "char (byte fallback) round-trips byte-exactly" "$dir/char_decoded" "$dir/text"
check "char: pieces" "$(echo 'Dios é' | "$ATTN" tokenizer encode --tokenizer "$dir/char.tok")" "D i o s ▁ é"

# word tokenizer (phoneme strings)
printf '%s\n' "HH AH0 L OW1" "W ER1 L D" > "$dir/phones"
"$ATTN" tokenizer learn --type word --out "$dir/word.tok" "$dir/phones" 2> /dev/null
check "word: ids" "$(echo 'L  OW1 ZZ' | "$ATTN" tokenizer encode --tokenizer "$dir/word.tok" --ids)" "4 9 1"
check "word: decode" "$(echo '8 5 4 9' | "$ATTN" tokenizer decode --tokenizer "$dir/word.tok" --ids)" "HH AH0 L OW1"

# errors: non-zero exit and exactly one "attn: ..." line naming the problem
expect_error() {  # name, pattern, command... (stdin from $dir/stdin)
    name=$1; pattern=$2; shift 2
    "$@" < "$dir/stdin" > "$dir/out" 2> "$dir/err"; rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l < "$dir/err")" -eq 1 ] && grep -q "^attn: .*$pattern" "$dir/err"; then pass "$name"
    else fail "$name: rc=$rc, stderr: $(cat "$dir/err")"; fi
}
: > "$dir/stdin"
T="$ATTN tokenizer"
expect_error "no action" "missing action" $T
expect_error "unknown action" "unknown action 'frobnicate'" $T frobnicate
expect_error "unknown flag" "unknown flag '--bogus'" $T learn --bogus --out "$dir/x.tok" "$dir/text"
expect_error "bad --type" "unknown tokenizer type 'morse'" $T learn --type morse --out "$dir/x.tok" "$dir/text"
expect_error "bad --vocab-size" "bad value for --vocab-size" $T learn --vocab-size lots --out "$dir/x.tok" "$dir/text"
expect_error "--vocab-size without value" "needs a value" $T learn --out "$dir/x.tok" --vocab-size
expect_error "vocab too small for bpe" "too small" $T learn --vocab-size 100 --out "$dir/x.tok" "$dir/text"
expect_error "missing --out" "--out TOKFILE is required" $T learn "$dir/text"
expect_error "no input file" "no input FILE" $T learn --out "$dir/x.tok"
expect_error "missing input file" "nope.txt" $T learn --out "$dir/x.tok" "$dir/nope.txt"
expect_error "directory as input" "is a directory" $T learn --out "$dir/x.tok" "$dir"
: > "$dir/empty.txt"
expect_error "empty input" "empty.txt: empty file" $T learn --out "$dir/x.tok" "$dir/empty.txt"
printf '\n\n' > "$dir/blank.txt"
expect_error "only blank lines" "no text to learn from" $T learn --out "$dir/x.tok" "$dir/blank.txt"
printf 'good line\nbad \377 line\n' > "$dir/bad.txt"
expect_error "learn: invalid UTF-8 names file and line" "bad.txt:2:5: invalid UTF-8" $T learn --out "$dir/x.tok" "$dir/bad.txt"
expect_error "missing --tokenizer" "--tokenizer TOKFILE is required" $T encode
expect_error "tokenizer file missing" "nope.tok" $T encode --tokenizer "$dir/nope.tok"
expect_error "not a tokenizer" "not an attn tokenizer" $T encode --tokenizer "$dir/text"
head -n 600 "$dir/bpe.tok" > "$dir/truncated.tok"
expect_error "truncated tokenizer" "unexpected end" $T decode --tokenizer "$dir/truncated.tok"
expect_error "bad --dropout" "bad value for --dropout" $T encode --tokenizer "$dir/bpe.tok" --dropout 2
expect_error "dropout on a char tokenizer" "needs a bpe tokenizer" $T encode --tokenizer "$dir/char.tok" --dropout 0.1
cp "$dir/bad.txt" "$dir/stdin"
expect_error "encode: invalid UTF-8 names the line" "standard input:2:5: invalid UTF-8" $T encode --tokenizer "$dir/bpe.tok"
printf '▁y ▁la\n▁y notapiece\n' > "$dir/stdin"
expect_error "decode: unknown piece" "standard input:2: unknown piece 'notapiece'" $T decode --tokenizer "$dir/bpe.tok"
printf '5 6\n7 99999\n' > "$dir/stdin"
expect_error "decode: id out of range" "standard input:2: bad id '99999'" $T decode --tokenizer "$dir/bpe.tok" --ids
# outputs that cannot be written: never replaced, never exit 0
mkfifo "$dir/fifo"
expect_error "learn --out a FIFO is refused" "fifo: exists and is not a regular file" $T learn --type char --out "$dir/fifo" "$dir/phones"
check "learn --out a FIFO leaves it a FIFO" "$([ -p "$dir/fifo" ] && echo fifo)" "fifo"
cp "$dir/phones" "$dir/phones2"
expect_error "learn --out an input file is refused" "is an input file" $T learn --type word --out "$dir/phones2" "$dir/phones2"
check "... and the input is intact" "$(cmp "$dir/phones" "$dir/phones2" && echo intact)" "intact"
expect_error "learn --out a directory is refused" "not a regular file" $T learn --type char --out "$dir" "$dir/phones"
printf 'la tierra\n' > "$dir/stdin"
expect_error "encode with stdout closed" "standard output is closed" sh -c "$T encode --tokenizer '$dir/bpe.tok' >&-"
if [ -c /dev/full ]; then
    expect_error "encode to a full disk" "standard output: write error" sh -c "$T encode --tokenizer '$dir/bpe.tok' > /dev/full"
    printf '5 6\n' > "$dir/stdin"
    expect_error "decode to a full disk" "standard output: write error" sh -c "$T decode --ids --tokenizer '$dir/bpe.tok' > /dev/full"
fi
check "help exits 0" "$("$ATTN" tokenizer --help > /dev/null; echo $?)" "0"

[ $fails -eq 0 ]
