#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60) from its
# committed seed corpus (fuzz/corpus/TARGET, read-only: new inputs go to a scratch corpus
# under fuzz/target), and prints the executions per target. A crash stops the script with
# the target's name and the crashing input under fuzz/artifacts/TARGET/.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O
printf '%-18s %12s %10s %8s\n' target execs exec/s cov
for t in "${targets[@]}"; do
    scratch=target/corpus-run/$t
    mkdir -p "$scratch" "artifacts/$t"
    log=target/fuzz-$t.log
    if ! cargo +nightly fuzz run -O "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
        echo "FAIL $t: see fuzz/$log and fuzz/artifacts/$t/" >&2
        grep -E "ERROR|panicked|SUMMARY" "$log" | head -n 5 >&2 || true
        exit 1
    fi
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
    printf '%-18s %12s %10s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}"
done
