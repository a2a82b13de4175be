#!/usr/bin/env bash
# Build N nodes on one network and destroy them with tg's netns platform,
# then do the same with Mininet (Linux bridge switch, no controller), and
# print both wall times (median of RUNS runs) and their ratio.
#
#   sudo benches/netns_vs_mininet.sh [N]        (default N=100, RUNS=3)
#
# TG_BIN=PATH times another tg build (say, one from before a change) instead
# of building this tree; MININET=0 skips Mininet.
#
# tg side: a generated testbed (one network, `node "h" { count = N }` on
# image `host`), timed from the start of `tg apply -auto-approve` to the end
# of `tg destroy -auto-approve` (release build, SQLite state, a fresh session
# each run). Mininet side: `mn --topo single,N --switch lxbr --controller none
# --test none`, which builds the topology and tears it down; `mn -c` runs
# before and after. Needs root, mininet and bridge-utils (lxbr uses brctl).
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

if [[ -n "${TG_BIN:-}" ]]; then
    tg="$TG_BIN"
else
    echo "== building tg (release)"
    cargo build --quiet --release
    tg="$PWD/target/release/tg"
fi
bed="$(mktemp -d)"
trap 'rm -rf "$bed"' EXIT
cat >"$bed/main.tg.hcl" <<EOF
network "lab" {
  cidr = "10.250.0.0/16"
}

node "h" {
  count   = $n
  image   = "host"
  network = network.lab
}
EOF

tg_times=()
for ((i = 1; i <= runs; i++)); do
    session="bench-$$-$i"
    start="$(now)"
    "$tg" -chdir "$bed" --session "$session" apply -auto-approve >/tmp/tg-bench-apply.log 2>&1 \
        || { tail -20 /tmp/tg-bench-apply.log >&2; exit 1; }
    mid="$(now)"
    "$tg" -chdir "$bed" --session "$session" destroy -auto-approve >/tmp/tg-bench-destroy.log 2>&1 \
        || { tail -20 /tmp/tg-bench-destroy.log >&2; exit 1; }
    end="$(now)"
    "$tg" -chdir "$bed" session delete "$session" >/dev/null 2>&1 || true
    t="$(echo "$end - $start" | bc -l)"
    printf 'tg run %d: %.3f s (apply %.3f s, destroy %.3f s)\n' "$i" "$t" \
        "$(echo "$mid - $start" | bc -l)" "$(echo "$end - $mid" | bc -l)"
    tg_times+=("$t")
done

mn_times=()
for ((i = 1; i <= runs; i++)); do
    [[ "${MININET:-1}" == 0 ]] && break
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
if [[ "${MININET:-1}" == 0 ]]; then
    printf 'tg apply+destroy (%d nodes, median of %d): %8.3f s\n' "$n" "$runs" "$tg_s"
    exit 0
fi
mn_s="$(printf '%s\n' "${mn_times[@]}" | median)"
printf 'tg apply+destroy (%d nodes, median of %d): %8.3f s (target 2 s)\n' "$n" "$runs" "$tg_s"
printf 'mininet   (create+destroy %d hosts, median of %d): %8.3f s\n' "$n" "$runs" "$mn_s"
printf 'ratio mininet/tg: %.1fx\n' "$(echo "$mn_s / $tg_s" | bc -l)"
