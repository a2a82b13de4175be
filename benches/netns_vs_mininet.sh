#!/usr/bin/env bash
# Build N nodes on one network and destroy them with tg's netns platform,
# then do the same with Mininet (Linux bridge switch, no controller), and
# print both wall times (median of RUNS runs) and their ratio.
#
#   sudo benches/netns_vs_mininet.sh [N]        (default N=100, RUNS=3)
#
# tg side: `cargo bench --bench netns_lifecycle -- N 10` drives the netns
# Platform directly with the engine's 10-way concurrency (to be replaced
# by `tg apply`/`tg destroy` once the engine is wired). Mininet side:
# `mn --topo single,N --switch lxbr --controller none --test none`, which
# builds the topology and tears it down; `mn -c` runs before and after.
# Needs root, mininet and bridge-utils (mininet's lxbr uses brctl).
set -euo pipefail

n="${1:-100}"
runs="${RUNS:-3}"
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
    echo "error: run this benchmark as root (sudo)" >&2
    exit 1
fi
for tool in mn brctl cargo bc; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: \`$tool\` is not installed" >&2
        exit 1
    fi
done

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "== building the benchmark"
cargo bench --quiet --bench netns_lifecycle --no-run >/dev/null

tg_times=()
for ((i = 1; i <= runs; i++)); do
    out="$(cargo bench --quiet --bench netns_lifecycle -- "$n" 10)"
    t="$(sed -n 's/^total_seconds=//p' <<<"$out")"
    [[ -n "$t" ]] || { echo "error: the tg benchmark printed no total:" >&2; echo "$out" >&2; exit 1; }
    c="$(sed -n 's/^netns: created .* in \([0-9.]*\) s.*/\1/p' <<<"$out")"
    d="$(sed -n 's/^netns: destroyed them in \([0-9.]*\) s.*/\1/p' <<<"$out")"
    echo "tg netns run $i: $t s (create $c s, destroy $d s)"
    tg_times+=("$t")
done

mn_times=()
for ((i = 1; i <= runs; i++)); do
    mn -c >/dev/null 2>&1 || true
    start="$(now)"
    mn --topo "single,$n" --switch lxbr --controller none --test none >/tmp/tg-bench-mn.log 2>&1 \
        || { tail -20 /tmp/tg-bench-mn.log >&2; mn -c >/dev/null 2>&1; exit 1; }
    end="$(now)"
    t="$(echo "$end - $start" | bc -l)"
    echo "mininet run $i: $t s"
    mn_times+=("$t")
done
mn -c >/dev/null 2>&1 || true

tg_s="$(printf '%s\n' "${tg_times[@]}" | median)"
mn_s="$(printf '%s\n' "${mn_times[@]}" | median)"
printf 'tg netns  (create+destroy %d nodes, median of %d): %8.3f s\n' "$n" "$runs" "$tg_s"
printf 'mininet   (create+destroy %d hosts, median of %d): %8.3f s\n' "$n" "$runs" "$mn_s"
printf 'ratio mininet/tg: %.1fx\n' "$(echo "$mn_s / $tg_s" | bc -l)"
