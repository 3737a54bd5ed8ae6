#!/bin/sh
# attn's BPE against SentencePiece's BPE on the same corpus (both sides of the
# Bible training split, one sentence a line) and vocabulary size, 1 thread:
# learning time, encoding throughput, tokens per sentence, and whether
# decode(encode(x)) == x for every line.
#
# usage: sh bench/tokenizer_bench.sh [VOCAB_SIZE] [TSV]   (defaults 8000, data/bible/train.tsv)
# Needs: make (build/attn), data/bible.sh run once, python3-sentencepiece.
set -eu
VOCAB=${1:-8000}
TSV=${2:-data/bible/train.tsv}
ATTN=${ATTN:-build/attn}
PY=/usr/bin/python3
[ -x "$ATTN" ] || { echo "tokenizer_bench: $ATTN missing: run make first" >&2; exit 1; }
[ -f "$TSV" ] || { echo "tokenizer_bench: $TSV missing: run data/bible.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cut -f1 "$TSV" > "$work/corpus.txt"
cut -f2 "$TSV" >> "$work/corpus.txt"
lines=$(wc -l < "$work/corpus.txt")

now() { date +%s.%N; }
# best of 3 wall-clock seconds of a command (stdin, stdout given as $2, $3)
best_of_3() {
    best=""
    for _ in 1 2 3; do
        t0=$(now); sh -c "$1" < "$2" > "$3"; t1=$(now)
        best=$(echo "$t0 $t1 ${best:-999999}" | awk '{d = $2 - $1; print (d < $3 ? d : $3)}')
    done
    echo "$best"
}

learn_s=$(best_of_3 "$ATTN tokenizer learn --type bpe --vocab-size $VOCAB --out $work/attn.tok $work/corpus.txt 2>/dev/null" /dev/null /dev/null)
encode_s=$(best_of_3 "$ATTN tokenizer encode --tokenizer $work/attn.tok --ids" "$work/corpus.txt" "$work/attn.ids")
tokens=$(wc -w < "$work/attn.ids")
"$ATTN" tokenizer encode --tokenizer "$work/attn.tok" < "$work/corpus.txt" > "$work/attn.pieces"
"$ATTN" tokenizer decode --tokenizer "$work/attn.tok" < "$work/attn.pieces" > "$work/attn.decoded"
if cmp -s "$work/attn.decoded" "$work/corpus.txt"; then exact=yes; else exact=no; fi

set -- $("$PY" bench/spm_bench.py "$work/corpus.txt" "$VOCAB" "$work")
spm_learn_s=$1 spm_encode_s=$2 spm_tokens=$3 spm_exact=$([ "$5" = 1 ] && echo yes || echo no)

echo "corpus: $TSV, both columns, $lines sentences; vocabulary $VOCAB; 1 thread"
echo
echo "| tokenizer | learn (s) | encode (tokens/s) | tokens/sentence | exact round trip |"
echo "|---|---|---|---|---|"
awk -v l="$learn_s" -v e="$encode_s" -v t="$tokens" -v n="$lines" -v x="$exact" \
    'BEGIN { printf "| attn bpe | %.2f | %.2fM | %.2f | %s |\n", l, t / e / 1e6, t / n, x }'
awk -v l="$spm_learn_s" -v e="$spm_encode_s" -v t="$spm_tokens" -v n="$lines" -v x="$spm_exact" \
    'BEGIN { printf "| SentencePiece bpe | %.2f | %.2fM | %.2f | %s |\n", l, t / e / 1e6, t / n, x }'
awk -v a="$learn_s" -v b="$spm_learn_s" -v e="$encode_s" -v t="$tokens" -v f="$spm_encode_s" -v u="$spm_tokens" \
    'BEGIN { printf "\nattn vs SentencePiece: learning %.1fx faster, encoding %.1fx the tokens/s\n", b / a, (t / e) / (u / f) }'
