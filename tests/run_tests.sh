#!/bin/sh
# Runs every unit-test binary and every CLI test script, then prints the one
# line CI reads: "N passed, N failed". Each test prints "PASS name" or
# "FAIL name: why" lines; a binary that crashes counts as one failure.
BUILD=${BUILD:-build}
export ATTN="$PWD/$BUILD/attn"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# A few test programs start OpenMP threads of their own (concurrency checks):
# idle ones sleep, since spinning makes them many times slower when other
# processes share the cores. attn itself runs on its own pool.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
passed=0; failed=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
run() {
    name=$1; shift
    "$@" > "$log" 2>&1; rc=$?
    p=$(grep -c '^PASS' "$log"); f=$(grep -c '^FAIL' "$log")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL $name: exit status $rc"; fi
    grep -E '^(FAIL|INFO)' "$log"
    [ $rc -ne 0 ] && tail -n 20 "$log" | grep -vE '^(PASS|FAIL|INFO)'
    echo "$name: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run "$(basename "$t")" "$t"
done
for s in tests/cli_*.sh; do
    [ -f "$s" ] || continue
    run "$(basename "$s")" sh "$s"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
