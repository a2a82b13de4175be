#!/usr/bin/env bash
# Build N nodes on one network and destroy them with tg's netns platform,
# then do the same with Mininet (Linux bridge switch, no controller), and
# print both wall times and their ratio.
#
#   sudo benches/netns_vs_mininet.sh [N]        (default N=100)
#
# tg side: `cargo bench --bench netns_lifecycle -- N 10` drives the netns
# Platform directly with the engine's 10-way concurrency (to be replaced
# by `tg apply`/`tg destroy` once the engine is wired). Mininet side:
# `mn --topo single,N --switch lxbr --controller none --test none`, which
# builds the topology and tears it down; `mn -c` runs before and after.
# Needs root, mininet and bridge-utils (mininet's lxbr uses brctl).
set -euo pipefail

n="${1:-100}"
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
    echo "error: run this benchmark as root (sudo)" >&2
    exit 1
fi
for tool in mn brctl cargo; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: \`$tool\` is not installed" >&2
        exit 1
    fi
done

now() { date +%s.%N; }

echo "== tg netns: $n nodes"
cargo bench --quiet --bench netns_lifecycle -- "$n" 10 >/dev/null 2>&1 || true # build first
tg_out="$(cargo bench --quiet --bench netns_lifecycle -- "$n" 10)"
echo "$tg_out"
tg_s="$(sed -n 's/^total_seconds=//p' <<<"$tg_out")"
[[ -n "$tg_s" ]] || { echo "error: the tg benchmark printed no total" >&2; exit 1; }

echo "== mininet: $n hosts"
mn -c >/dev/null 2>&1 || true
start="$(now)"
mn --topo "single,$n" --switch lxbr --controller none --test none >/tmp/tg-bench-mn.log 2>&1 \
    || { tail -20 /tmp/tg-bench-mn.log >&2; mn -c >/dev/null 2>&1; exit 1; }
end="$(now)"
mn -c >/dev/null 2>&1 || true
mn_s="$(echo "$end - $start" | bc -l)"

printf 'tg netns  (create+destroy %d nodes): %8.3f s\n' "$n" "$tg_s"
printf 'mininet   (create+destroy %d hosts): %8.3f s\n' "$n" "$mn_s"
printf 'ratio mininet/tg: %.1fx\n' "$(echo "$mn_s / $tg_s" | bc -l)"
