#!/bin/sh
# End-to-end tests of attn translate, attn score and attn eval on a tiny
# copy-task model trained here in about a second.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"
expect_error() {  # name, pattern, command...: non-zero exit and an "attn: ..." line matching pattern
    name=$1; pattern=$2; shift 2
    "$@" > "$dir/out" 2> "$dir/err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "^attn: .*$pattern" "$dir/err"; then pass "$name"
    else fail "$name: rc=$rc stderr=$(head -3 "$dir/err")"; fi
}
near() { awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= tol) }'; }

"$ATTN" train --out "$dir/run" --quiet --task copy --copy_symbols 8 --copy_max_len 8 \
    --copy_train_size 2000 --copy_valid_size 50 --max_len 16 --pos_max_len 32 \
    --d_model 32 --n_heads 4 --d_ff 64 --n_enc_layers 1 --n_dec_layers 1 \
    --dropout_emb 0 --dropout_residual 0 --dropout_attn 0 --dropout_ffn 0 \
    --schedule constant --lr 0.003 --warmup_steps 0 --label_smoothing 0 \
    --batch_sentences 64 --batch_tokens 0 --max_steps 300 --valid_every 300 --threads 2 > "$dir/train.log" 2>&1
model="$dir/run/best.safetensors"
if [ ! -f "$model" ]; then
    fail "attn train made a model for the decoding tests: $(tail -3 "$dir/train.log")"
    exit 1
fi
pass "attn train made a tiny copy model"

printf '%s\n' abc hgfe "" a hhhhhhh "   " bad cafe > "$dir/src"
"$ATTN" translate --model "$model" < "$dir/src" > "$dir/greedy" 2> "$dir/err"
check "translate exits 0" "$?" 0
check "translate writes one line per input line" "$(wc -l < "$dir/greedy")" "$(wc -l < "$dir/src")"
check "empty and blank lines give empty outputs" "$(sed -n '3p;6p' "$dir/greedy" | tr -d '\n')" ""
check "the copy model copies a short string" "$(head -1 "$dir/greedy")" "abc"

"$ATTN" translate --model "$model" --beam 1 --batch-size 3 < "$dir/src" > "$dir/beam1"
check "beam 1 with another batch size gives the greedy output" "$(cat "$dir/beam1")" "$(cat "$dir/greedy")"

"$ATTN" translate --model "$model" --buffer-size 8 --batch-size 2 < "$dir/src" > "$dir/buffered"
check "a buffer sorted by length keeps outputs in input order" "$(cat "$dir/buffered")" "$(cat "$dir/greedy")"

"$ATTN" translate --model "$model" --beam 4 --nbest 3 < "$dir/src" > "$dir/nbest"
check "--nbest 3 prints three lines per input" "$(wc -l < "$dir/nbest")" $((3 * $(wc -l < "$dir/src")))
bad_format=$(grep -cvE '^[0-9]+ \|\|\| .* \|\|\| -?[0-9]+\.[0-9]+$' "$dir/nbest")
check "n-best lines are 'index ||| hypothesis ||| score'" "$bad_format" 0
check "n-best indices count from 0 in input order" "$(cut -d' ' -f1 "$dir/nbest" | uniq | tr '\n' ' ')" "0 1 2 3 4 5 6 7 "

# beam score (alpha 0) of the best hypothesis == -(attn score of that pair)
head -1 "$dir/nbest" > "$dir/first"
hyp=$(sed 's/^0 ||| \(.*\) ||| .*$/\1/' "$dir/first"); beam_score=$(sed 's/.* ||| //' "$dir/first")
printf 'abc\t%s\n' "$hyp" | "$ATTN" score --model "$model" > "$dir/nll"
if near "$beam_score" "-$(cat "$dir/nll")" 1e-4; then pass "beam score equals minus attn score of the pair"
else fail "beam score $beam_score vs attn score $(cat "$dir/nll")"; fi

# score: one number per line; truncation; errors
printf 'abc\tabc\nab\tba\n\t\na\t\n' | "$ATTN" score --model "$model" > "$dir/scores"
check "score prints one NLL per line" "$(grep -cE '^[0-9]+\.[0-9]{6}$' "$dir/scores")" 4
expect_error "score: a line without a tab is an error naming it" "standard input:2: no tab" \
    sh -c "printf 'abc\tabc\nabc\n' | '$ATTN' score --model '$model'"
expect_error "score: invalid UTF-8 names the line" "standard input:1:2: invalid UTF-8" \
    sh -c "printf 'a\377\tb\n' | '$ATTN' score --model '$model'"

# translate: invalid UTF-8, very long lines, bad flags, missing files
expect_error "translate: invalid UTF-8 names the line" "standard input:2:3: invalid UTF-8" \
    sh -c "printf 'abc\nab\300\n' | '$ATTN' translate --model '$model'"
awk 'BEGIN { for (i = 0; i < 5000; i++) printf "abcdefgh"; print "" }' > "$dir/long"
"$ATTN" translate --model "$model" < "$dir/long" > "$dir/long.out" 2> "$dir/long.err"
check "a very long line is translated (exit 0)" "$?" 0
check "a very long line gives one output line" "$(wc -l < "$dir/long.out")" 1
if grep -q "^attn: warning: line 1: source of 40000 tokens truncated to 15" "$dir/long.err"; then pass "a very long line is truncated with a warning"
else fail "truncation warning: $(cat "$dir/long.err")"; fi
expect_error "translate: unknown flag" "unknown flag '--frobnicate'" "$ATTN" translate --model "$model" --frobnicate
expect_error "translate: bad --matmul" "bad value for --matmul: 'fp16'" "$ATTN" translate --model "$model" --matmul fp16
# --matmul bf16: the copy model still copies (bf16 keeps about 3 digits of
# each input; this model's margins are far wider), or a one-line refusal on
# a CPU without AVX512-BF16.
"$ATTN" translate --model "$model" --matmul bf16 < "$dir/src" > "$dir/bf16" 2> "$dir/bf16.err"
if [ $? -eq 0 ]; then check "translate --matmul bf16 gives the float32 outputs" "$(cat "$dir/bf16")" "$(cat "$dir/greedy")"
elif grep -q "^attn: --matmul bf16 needs a CPU with AVX512-BF16" "$dir/bf16.err"; then pass "translate --matmul bf16 is refused on this CPU"
else fail "translate --matmul bf16: $(head -3 "$dir/bf16.err")"; fi
expect_error "translate: bad beam" "bad value for --beam" "$ATTN" translate --model "$model" --beam 0
expect_error "translate: nbest above beam" "nbest 3 exceeds the beam size 2" "$ATTN" translate --model "$model" --beam 2 --nbest 3
expect_error "translate: missing model file" "$dir/nope.safetensors" "$ATTN" translate --model "$dir/nope.safetensors"
expect_error "translate: no --model" "needs --model" "$ATTN" translate
expect_error "translate: a beam too large for the batch is refused, not an abort" "lower --batch-size" \
    "$ATTN" translate --model "$model" --beam 1000 --batch-size 4096

# sampling: seeded, independent of the batch size
"$ATTN" translate --model "$model" --sample --temperature 1.5 --seed 7 < "$dir/src" > "$dir/s1"
"$ATTN" translate --model "$model" --sample --temperature 1.5 --seed 7 --batch-size 2 < "$dir/src" > "$dir/s2"
check "sampling with a seed repeats for any batch size" "$(cat "$dir/s2")" "$(cat "$dir/s1")"
"$ATTN" translate --model "$model" --sample --top-k 1 < "$dir/src" > "$dir/s3"
check "top-k 1 sampling equals greedy" "$(cat "$dir/s3")" "$(cat "$dir/greedy")"

# attention weights: one JSON line per non-empty input
"$ATTN" translate --model "$model" --attention "$dir/attn.jsonl" < "$dir/src" > /dev/null
check "attention file has a line per non-empty input" "$(wc -l < "$dir/attn.jsonl")" 6
if head -1 "$dir/attn.jsonl" | grep -q '^{"index":0,"source":\["a","b","c","</s>"\],"target":\[.*\],"attention":\[\[[0-9.,]*\]'; then
    pass "attention lines hold source, target and weights"
else fail "attention line: $(head -c 200 "$dir/attn.jsonl")"; fi

# streaming: the first output arrives while the input is still open
mkfifo "$dir/fifo"
"$ATTN" translate --model "$model" --batch-size 1 < "$dir/fifo" > "$dir/stream" &
pid=$!
exec 3> "$dir/fifo"
echo abc >&3
n=0; while [ $n -lt 200 ] && [ ! -s "$dir/stream" ]; do sleep 0.1; n=$((n + 1)); done
check "translate streams: output before the end of input" "$(cat "$dir/stream")" "abc"
exec 3>&-
wait $pid

# eval: table and JSON; its BLEU equals attn bleu on its hypotheses
printf 'abc\tabc\nhgfe\thgfe\ncafe\tcafe\nbad\tbad\nag\tag\nfeed\tfeed\n' > "$dir/eval.tsv"
"$ATTN" eval --model "$model" --data "$dir/eval.tsv" --hyps "$dir/eval.hyp" > "$dir/eval.out" 2> "$dir/eval.err"
check "eval exits 0" "$?" 0
json=$(tail -1 "$dir/eval.out")
for key in bleu chrf wer per exact loss ppl token_acc; do
    echo "$json" | grep -q "\"$key\":[0-9.]*" && pass "eval JSON has $key" || fail "eval JSON lacks $key: $json"
done
grep -q '^BLEU ' "$dir/eval.out" && grep -q '^exact match ' "$dir/eval.out" && pass "eval prints a table" || fail "eval table"
cut -f2 "$dir/eval.tsv" > "$dir/eval.ref"
bleu_cli=$("$ATTN" bleu -b -r "$dir/eval.ref" < "$dir/eval.hyp")
bleu_eval=$(echo "$json" | sed 's/.*"bleu":\([0-9.]*\).*/\1/')
if near "$bleu_cli" "$bleu_eval" 0.006; then pass "eval BLEU equals attn bleu on its hypotheses ($bleu_cli)"
else fail "eval BLEU $bleu_eval vs attn bleu $bleu_cli"; fi
chrf_cli=$("$ATTN" chrf -b -r "$dir/eval.ref" < "$dir/eval.hyp")
chrf_eval=$(echo "$json" | sed 's/.*"chrf":\([0-9.]*\).*/\1/')
if near "$chrf_cli" "$chrf_eval" 0.006; then pass "eval chrF equals attn chrf on its hypotheses ($chrf_cli)"
else fail "eval chrF $chrf_eval vs attn chrf $chrf_cli"; fi
"$ATTN" eval --model "$model" --data "$dir/eval.tsv" --metrics wer,exact > "$dir/eval2.out"
check "eval --metrics picks metrics" "$(tail -1 "$dir/eval2.out" | grep -c '"bleu"')" 0
printf 'abc\tabc\nabc\tabd\n' > "$dir/multi.tsv"
"$ATTN" eval --model "$model" --data "$dir/multi.tsv" --metrics wer,per > "$dir/multi.out"
check "eval groups equal sources into one segment with two references" \
    "$(grep -c '(2 pairs, 1 segments)' "$dir/multi.out")" 1
expect_error "eval: missing tab names the line" "bad.tsv:2: no tab" \
    sh -c "printf 'a\ta\nb\n' > '$dir/bad.tsv'; '$ATTN' eval --model '$model' --data '$dir/bad.tsv'"
expect_error "eval: unknown metric" "unknown metric 'bleurt'" "$ATTN" eval --model "$model" --data "$dir/eval.tsv" --metrics bleurt
expect_error "eval: --max-len is the input cap, checked" "bad value for --max-len" "$ATTN" eval --model "$model" --data "$dir/eval.tsv" --max-len 1

# a BOM and CRLF line ends read as in every other command
printf '\357\273\277abc\r\nhgfe\r\n' | "$ATTN" translate --model "$model" > "$dir/bom.out"
check "translate: a BOM and CRLF are not part of the source" "$(cat "$dir/bom.out")" "$(printf 'abc\nhgfe\n' | "$ATTN" translate --model "$model")"
check "score: a BOM is not part of the source" "$(printf '\357\273\277abc\tabc\n' | "$ATTN" score --model "$model")" \
    "$(printf 'abc\tabc\n' | "$ATTN" score --model "$model")"

# corrupt model files: one line naming the problem once
printf '\010\000\000\000\000\000\000\000{"a":   ' > "$dir/badjson.safetensors"
expect_error "translate: a corrupt header names the problem" "badjson.safetensors: corrupt safetensors header: unexpected end" \
    "$ATTN" translate --model "$dir/badjson.safetensors"
check "the error names the file once" "$(grep -o 'corrupt safetensors header' "$dir/err" | wc -l)" 1
head -c 5000 "$model" > "$dir/truncated.safetensors"
expect_error "score: a truncated model" "truncated.safetensors" "$ATTN" score --model "$dir/truncated.safetensors"
expect_error "eval: a tokenizer given as the model" "not a safetensors file" "$ATTN" eval --model "$dir/run/src.tokenizer" --data "$dir/eval.tsv"

# an output path that is one of the inputs is refused, not truncated
cp "$model" "$dir/copy.safetensors"; cp "$dir/eval.tsv" "$dir/copy.tsv"
expect_error "translate: --attention onto the model is refused" "is the model file" \
    sh -c "echo abc | '$ATTN' translate --model '$dir/copy.safetensors' --attention '$dir/copy.safetensors'"
expect_error "eval: --hyps onto the data is refused" "is an input file" \
    "$ATTN" eval --model "$dir/copy.safetensors" --data "$dir/copy.tsv" --hyps "$dir/copy.tsv"
check "... and both inputs are intact" "$(cmp "$model" "$dir/copy.safetensors" && cmp "$dir/eval.tsv" "$dir/copy.tsv" && echo intact)" "intact"

# output that cannot be written is an error, never exit 0
echo abc > "$dir/one"
"$ATTN" translate --model "$model" --attention "$dir/attn2.jsonl" < "$dir/one" >&- 2> "$dir/err"
check "translate with stdout closed fails" "$? $(grep -c '^attn: standard output is closed' "$dir/err")" "1 1"
check "... and writes no translation into another file" "$(cat "$dir/attn2.jsonl" 2>/dev/null | grep -vc '^{')" 0
if [ -c /dev/full ]; then
    expect_error "translate to a full disk" "standard output: write error" sh -c "'$ATTN' translate --model '$model' < '$dir/src' > /dev/full"
    expect_error "translate: attention to a full disk" "/dev/full: write error" sh -c "'$ATTN' translate --model '$model' --attention /dev/full < '$dir/src'"
    expect_error "score to a full disk" "standard output: write error" sh -c "printf 'a\tb\n' | '$ATTN' score --model '$model' > /dev/full"
    expect_error "eval to a full disk" "standard output: write error" sh -c "'$ATTN' eval --model '$model' --data '$dir/eval.tsv' > /dev/full"
fi

[ $fails -eq 0 ]
