#!/bin/sh
# Runs every fuzz target of a trailwatch-fuzz binary for SECONDS each, one after another.
#
#   scripts/fuzz.sh libfuzzer BINARY SECONDS [TARGET...]   coverage-guided (make fuzz)
#   scripts/fuzz.sh builtin   BINARY SECONDS [TARGET...]   the built-in mutation harness (make test)
#
# Targets default to all (`BINARY --list`). Seeds come from fuzz/corpus/TARGET; libFuzzer keeps
# what it learns in var/fuzz/TARGET/corpus and writes crashes, hangs and leaks there too
# (crash-*, timeout-*, oom-*). Exit status 1 when any target failed.
set -u
mode=$1; binary=$2; seconds=$3; shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
targets=${*:-$("$binary" --list | awk 'NR > 2 { print $1 }')}
status=0
for target in $targets; do
    seeds="$root/fuzz/corpus/$target"
    work="$root/var/fuzz/$target"
    mkdir -p "$work/corpus"
    if [ "$mode" = libfuzzer ]; then
        # Swift's backtracer would take the crash signal from libFuzzer, which then saves no input.
        SWIFT_BACKTRACE=enable=no; export SWIFT_BACKTRACE
        echo "== $target: $seconds s (libFuzzer)"
        # -timeout: one input running longer than 10 s is a hang; -rss_limit_mb: memory bound.
        if "$binary" "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds" > "$work/log" 2>&1; then
            grep -E "^stat::number_of_executed_units|^Done " "$work/log" | tail -2 | sed "s/^/   /"
        else
            echo "   FAILED: see $work/log"; tail -20 "$work/log"; status=1
        fi
    else
        (cd "$work" && "$binary" "$target" --seconds "$seconds" "$seeds") || { echo "   FAILED: $target (input saved in $work)"; status=1; }
    fi
done
exit $status
