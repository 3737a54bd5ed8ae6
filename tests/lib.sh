# Sourced by tests/cli_*.sh: the PASS/FAIL lines that tests/run_tests.sh
# counts. Each script sets fails=0 and exits non-zero when fails > 0.
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$3', got '$2'"; fi; }
