#!/bin/sh
# make bench: attn against the PyTorch yardstick on the benchmark configs of
# DESIGN.md section 6, in one run. Prints the table and writes it to
# bench/results.md (docs/speed.md explains every column).
#
#   THREADS=2 PRESETS="tiny small base" ROUNDS=3 BF16_PRESETS=base sh bench/run.sh
#
# On a CPU with AVX512-BF16, each round of a config in BF16_PRESETS also
# trains attn with bf16 products (`--gemm bf16`), against attn's float32.
# Each config runs ROUNDS times, attn and PyTorch alternating; the table
# takes each side's best speed (this VM's speed drifts by 10-30% from minute
# to minute, and a slow round says nothing about either side).
#
# Needs build/attn (make), a C compiler for bench/gemm_bench.c, and for the
# yardstick /usr/bin/python3 with torch; Debian's torch calls whatever
# libblas.so.3 is installed, so install libopenblas0-pthread first (without
# it PyTorch runs on the slow reference BLAS and the comparison means little).
# OMP_WAIT_POLICY=PASSIVE is PyTorch's best setting (libgomp's threads);
# attn runs on its own thread pool and ignores it.
set -e
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
PRESETS=${PRESETS:-"tiny small base"}
ROUNDS=${ROUNDS:-3}
BF16_PRESETS=${BF16_PRESETS:-base}
PYTHON=${PYTHON:-/usr/bin/python3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
out=build/bench
mkdir -p "$out"
raw="$out/results.jsonl"
: > "$raw"

[ -x build/attn ] || { echo "bench: build/attn is missing; run make first" >&2; exit 1; }
# Timings mean little while other work competes for the cores: say so.
load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
cores=$(nproc 2>/dev/null || echo 1)
if awk -v l="$load_start" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
    echo "bench: warning: load average $load_start on $cores cores; other processes will skew the timings" >&2
fi
${CC:-cc} -O2 -std=c11 -fopenmp -D_GNU_SOURCE -Isrc -o "$out/gemm_bench" bench/gemm_bench.c build/libattn.a -lm -ldl

echo "bench: measuring the FMA peak" >&2
"$out/gemm_bench" --peak --threads "$THREADS" | tee "$out/peak.txt" >&2
peak=$(awk -v t="$THREADS" '$2 == "threads=" t { print $4 }' "$out/peak.txt")
echo "{\"impl\": \"peak\", \"threads\": $THREADS, \"gflops\": $peak}" >> "$raw"

have_torch=0
if "$PYTHON" -c "import torch" 2>/dev/null; then have_torch=1; else echo "bench: no torch under $PYTHON; attn only" >&2; fi
if [ $have_torch = 1 ] && ! ldconfig -p 2>/dev/null | grep -q libopenblas; then
    echo "bench: warning: OpenBLAS not installed, PyTorch uses the reference BLAS (apt-get install libopenblas0-pthread)" >&2
fi

for p in $PRESETS; do
    for round in $(seq "$ROUNDS"); do
        echo "bench: attn $p (round $round of $ROUNDS)" >&2
        build/attn bench --preset "$p" --threads "$THREADS" | tee -a "$raw" >&2
        case " $BF16_PRESETS " in *" $p "*)
            if grep -q avx512_bf16 /proc/cpuinfo 2>/dev/null; then
                echo "bench: attn $p with bf16 products (round $round of $ROUNDS)" >&2
                build/attn bench --preset "$p" --threads "$THREADS" --gemm bf16 --no-decode | tee -a "$raw" >&2
            fi;;
        esac
        if [ $have_torch = 1 ]; then
            echo "bench: pytorch $p (round $round of $ROUNDS)" >&2
            "$PYTHON" bench/torch_bench.py --preset "$p" --threads "$THREADS" 2>/dev/null | tee -a "$raw" >&2
        fi
    done
done

load_end=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
echo "{\"impl\": \"load\", \"start\": $load_start, \"end\": $load_end, \"cores\": $cores, \"omp_wait_policy\": \"$OMP_WAIT_POLICY\"}" >> "$raw"
"$PYTHON" bench/table.py "$raw" "$THREADS" > bench/results.md
cat bench/results.md
