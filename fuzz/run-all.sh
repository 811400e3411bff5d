#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, and prints
# each target's final execution count. Exits non-zero if any target found a crash.
#
#   fuzz/run-all.sh SECONDS [TARGET...]
#   fuzz/run-all.sh 480                  # 8 minutes each, all five targets
#   fuzz/run-all.sh 60 hub retry_after   # one minute each, two targets
#
# Works from any directory, on stable (RUSTC_BOOTSTRAP=1) or nightly. Each target starts from
# its committed seeds (fuzz/corpus/<target>/, never written to) plus what earlier runs found
# (fuzz/target/corpus/<target>/, ignored by git). Logs: fuzz/target/logs/<target>.log;
# crashes: fuzz/artifacts/<target>/.
#
# Environment:
#   FUZZ_FLAGS   cargo-fuzz build flags (default: -O -a -s none: optimised, with debug
#                assertions and overflow checks, no sanitizer; the crate forbids unsafe code).
#                E.g. FUZZ_FLAGS="-O -a" for AddressSanitizer (about 10x slower).
#   FUZZ_ARGS    extra libFuzzer arguments, e.g. "-max_len=2048".
set -euo pipefail

usage() {
    sed -n '2,7p' "$0" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
seconds=$1
shift

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
all=(call_id notification response retry_after hub)
targets=("${@:-${all[@]}}")
read -r -a flags <<<"${FUZZ_FLAGS:--O -a -s none}"
read -r -a extra <<<"${FUZZ_ARGS:-}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

mkdir -p "$here/target/logs"
# Build every target once, up front, so that the timings below are fuzzing only.
cargo fuzz build "${flags[@]}" >"$here/target/logs/build.log" 2>&1 || {
    cat "$here/target/logs/build.log" >&2
    exit 1
}

status=0
printf '%-14s %10s %14s %10s  %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
    work="$here/target/corpus/$t"
    log="$here/target/logs/$t.log"
    mkdir -p "$work" "$here/corpus/$t"
    result=ok
    cargo fuzz run "${flags[@]}" "$t" "$work" "$here/corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || {
        result="CRASH (see $log and fuzz/artifacts/$t/)"
        status=1
    }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-14s %10s %14s %10s  %s\n' "$t" "$seconds" "${runs:-?}" "${rate:-?}" "$result"
done
exit "$status"
