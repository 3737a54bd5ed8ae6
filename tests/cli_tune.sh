#!/bin/sh
# End-to-end tests of `attn tune` on a tiny copy task: random and ASHA
# searches produce the tables and a best config that attn train accepts;
# rerunning resumes (nothing retrained); a search killed in the middle
# resumes and ends exactly like an uninterrupted one; bad spaces and flags
# fail with one `attn: ...` line.
ATTN=${ATTN:-$PWD/build/attn}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"

cat > "$dir/base.conf" <<'EOF'
task = copy
copy_symbols = 8
copy_min_len = 1
copy_max_len = 6
copy_train_size = 500
copy_valid_size = 100
max_len = 10
batch_sentences = 32
d_model = 32
n_heads = 2
d_ff = 64
n_enc_layers = 1
n_dec_layers = 1
pos_max_len = 16
dropout_emb = 0
dropout_residual = 0
dropout_attn = 0
dropout_ffn = 0
schedule = inverse_sqrt
lr = 3e-3
warmup_steps = 10
clip_norm = 1
valid_every = 10
log_every = 10
save_every = 10
max_steps = 100
threads = 1
EOF
cat > "$dir/space" <<'EOF'
# the learning rate matters most on this task
lr            loguniform 1e-3 3e-2
warmup_steps  choice 0 10
d_ff,d_model  choice 32 64
EOF

"$ATTN" tune --help | grep -q -- "--method" && pass "tune --help lists the flags" || fail "tune --help"

# random search: 4 trials of 30 steps, two at a time
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/r" --method random --trials 4 --steps 30 --jobs 2 > "$dir/r.out" 2>&1
check "random search exits 0" "$?" "0"
check "4 trials in the CSV" "$(tail -n +2 "$dir/r/results.csv" | wc -l)" "4"
check "CSV header" "$(head -1 "$dir/r/results.csv")" "rank,trial,status,valid_loss,rung,steps,seconds,rung0_at_30,lr,warmup_steps,\"d_ff,d_model\",note"
check "every trial done at 30 steps" "$(tail -n +2 "$dir/r/results.csv" | cut -d, -f3,6 | sort -u)" "done,30"
sorted=$(tail -n +2 "$dir/r/results.csv" | cut -d, -f4 | sort -g | tr '\n' ' ')
check "CSV sorted by the objective" "$(tail -n +2 "$dir/r/results.csv" | cut -d, -f4 | tr '\n' ' ')" "$sorted"
best_trial=$(sed -n 2p "$dir/r/results.csv" | cut -d, -f2)
best_loss=$(sed -n 2p "$dir/r/results.csv" | cut -d, -f4)
grep -q "^| 1 | 00$best_trial | done |" "$dir/r/results.md" && pass "markdown table ranks trial $best_trial first" || fail "markdown table"
check "the objective is the trial's best valid_loss" \
    "$(grep '"valid"' "$dir/r/trial_00$best_trial/metrics.jsonl" | sed 's/.*"valid_loss":\([^,]*\),.*/\1/' | sort -g | head -1)" "$best_loss"
"$ATTN" train --config "$dir/r/best.conf" --dump-config > "$dir/best.dump" 2>&1
check "best.conf is a valid config" "$?" "0"
check "best.conf has the full budget" "$(grep '^max_steps ' "$dir/best.dump" | tr -s ' ' | cut -d' ' -f3)" "30"
check "best.conf has the best trial's lr" "$(grep '^lr ' "$dir/best.dump" | tr -s ' ' | cut -d' ' -f3)" \
    "$(sed -n 2p "$dir/r/results.csv" | cut -d, -f9)"

"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/r" --method random --trials 4 --steps 30 --jobs 2 > "$dir/r2.out" 2>&1
check "rerun: resumes and starts nothing" "$(grep -c 'start' "$dir/r2.out") $(grep -c 'resuming .*4 trials recorded' "$dir/r2.out")" "0 1"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/r" --method random --trials 4 --steps 60 > "$dir/r3.out" 2>&1
check "another search in the same directory is refused" "$?:$(grep -c 'different search' "$dir/r3.out")" "1:1"

# ASHA with the same seed: the same configurations, less compute
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/a" --method asha --trials 9 --steps 90 --min-steps 10 > "$dir/a.out" 2>&1
check "asha exits 0" "$?" "0"
check "asha rungs" "$(head -1 "$dir/a.out" | grep -o 'rungs [0-9 ]*')" "rungs 10 30 90"
check "asha trains its best on the full budget" "$(sed -n 2p "$dir/a/results.csv" | cut -d, -f5,6)" "2,90"
total=$(grep 'total training' "$dir/a.out" | grep -o '[0-9]*')
[ "$total" -lt $((9 * 90 / 2)) ] && pass "asha used $total steps, under half of 9 x 90" || fail "asha compute $total"

# a search killed in the middle resumes and ends like the uninterrupted one
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/k" --method asha --trials 9 --steps 90 --min-steps 10 > "$dir/k1.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 500 ] && ! grep -q 'trial 004: start' "$dir/k1.out" 2>/dev/null; do sleep 0.01; i=$((i + 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "the search was killed in the middle" "$(grep -c 'total training' "$dir/k1.out")" "0"
sleep 0.5  # the orphaned trial gets SIGTERM, saves and exits
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/k" --method asha --trials 9 --steps 90 --min-steps 10 > "$dir/k2.out" 2>&1
check "killed search resumes and exits 0" "$?" "0"
grep -q 'resuming' "$dir/k2.out" && pass "the resumed search says so" || fail "no resume message"
check "resumed search gives the same table as an uninterrupted one" \
    "$(cut -d, -f1-6,8- "$dir/k/results.csv")" "$(cut -d, -f1-6,8- "$dir/a/results.csv")"

# synchronous successive halving: 3 trials, the best one goes on to 30 steps
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/s" --method sha --trials 3 --steps 30 --min-steps 10 > "$dir/s.out" 2>&1
check "sha: 3 at 10 steps, the best at 30" "$?:$(tail -n +2 "$dir/s/results.csv" | cut -d, -f6 | sort -n | tr '\n' ' ')" "0:10 10 30 "

# a time budget per trial: the trial stops long before its step budget
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/m" --method random --trials 1 --steps 1000000 --minutes 0.005 > "$dir/m.out" 2>&1
rc=$?
steps=$(sed -n 2p "$dir/m/results.csv" | cut -d, -f6)
[ "$rc" = 0 ] && [ "$steps" -gt 0 ] && [ "$steps" -lt 1000000 ] && pass "--minutes stops a trial by time ($steps steps) and it still counts" \
    || fail "--minutes: $(cat "$dir/m.out")"

# errors
printf 'lr loguniform 0 1\n' > "$dir/bad1"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/bad1" --out "$dir/x" --steps 10 2> "$dir/e1"
check "log range from 0 refused" "$?:$(cat "$dir/e1")" "1:attn: $dir/bad1:1: a log range needs lo > 0, got 0"
printf 'learning_rate choice 1e-3\n' > "$dir/bad2"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/bad2" --out "$dir/x" --steps 10 2> "$dir/e2"
check "unknown config key refused" "$?:$(grep -c "learning_rate: unknown config key" "$dir/e2")" "1:1"
printf 'n_heads choice 2 5\n' > "$dir/bad3"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/bad3" --out "$dir/h" --method grid --steps 10 > "$dir/h.out" 2>&1
check "an invalid combination fails that trial only" "$?:$(grep -c 'skipped: invalid config' "$dir/h.out"):$(grep -c '^1,0,done' "$dir/h/results.csv")" "0:1:1"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/x" 2> "$dir/e4"
check "missing --steps" "$?:$(cat "$dir/e4")" "1:attn: tune needs --steps (the full budget of a trial, in updates)"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir/x" --steps 10 --method bayes 2> "$dir/e5"
check "unknown method" "$?:$(cat "$dir/e5")" "1:attn: unknown search method 'bayes' (grid, random, sha or asha)"
"$ATTN" tune --config "$dir/base.conf" --bogus --space "$dir/space" 2> "$dir/e7"
check "an unknown flag is named as unknown, not as missing its value" "$?:$(cat "$dir/e7")" \
    "1:attn: unknown flag for tune: --bogus (try attn tune --help)"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "$dir$(printf '/%0200d' 1 2 3 4 5)" --steps 10 2> "$dir/e10"
check "an --out too long for the trial paths is refused" "$?:$(grep -c 'bytes long, at most 900' "$dir/e10")" "1:1"
printf 'lr choice 0.1\n\377\n' > "$dir/bad9"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/bad9" --out "$dir/x" --steps 10 2> "$dir/e9"
check "a space file with invalid UTF-8 is refused by line" "$?:$(cat "$dir/e9")" \
    "1:attn: $dir/bad9:2: invalid UTF-8 (byte 0xFF); convert the file to UTF-8"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/space" --out "" --steps 10 2> "$dir/e8"
check "an empty --out is refused" "$?:$(cat "$dir/e8")" "1:attn: --out is empty (try attn tune --help)"
printf 'copy_max_len choice 1\n' > "$dir/bad6"
"$ATTN" tune --config "$dir/base.conf" --space "$dir/bad6" --out "$dir/y" --method random --trials 2 --steps 10 --mode max > "$dir/y.out" 2>&1
check "trials that all fail: non-zero exit, reasons in the table" "$?:$(grep -c 'failed' "$dir/y/results.csv")" "1:2"

[ $fails -eq 0 ]
