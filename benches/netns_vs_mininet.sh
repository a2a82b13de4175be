#!/usr/bin/env bash
# Build N nodes on one network and destroy them with tg's netns platform,
# then do the same with Mininet (Linux bridge switch, no controller), and
# print the wall times (median of RUNS runs) and their ratios. tg runs
# twice: nodes with their SSH server (the default: the init listens on port 22
# before a node counts as created) and with `ssh = false`.
#
#   benches/netns_vs_mininet.sh [N]        (as root; default N=100, RUNS=3,
#                                           after one untimed round, WARMUP=0 skips it)
#
# TG_BIN=PATH times another tg build instead of building this tree;
# TG_BASE=PATH also times a second build (say, one from before a change,
# with its tg-init beside it) in the same rounds, ssh on, and prints the
# ratio of the two; MININET=0 skips Mininet.
#
# tg side: a generated testbed (one network, `node "h" { count = N }` on
# image `host`), timed from the start of `tg apply -auto-approve` to the end
# of `tg destroy -auto-approve` (release build, SQLite state, a fresh session
# each run). Mininet side: `mn --topo single,N --switch lxbr --controller none
# --test none`, which builds the topology and tears it down; `mn -c` runs
# before and after. The three take turns in each round, so a change of load
# on the machine hits each alike, and each starts after a pause that lets the
# kernel finish freeing the namespaces of the run before (`settle` in
# benches/common.sh; SETTLE=0 runs them back to back). Needs root, mininet
# and bridge-utils.
set -euo pipefail

n="${1:-100}"
runs="${RUNS:-3}"
cd "$(dirname "$0")/.."

# shellcheck source=benches/common.sh
source benches/common.sh
require_root_and mn brctl cargo bc
tg_under_test
SETTLE_NODES="$n"
# Fail before the first run, not inside one (a run's output is captured).
[[ -z "${SETTLE:-}" || "${SETTLE}" =~ ^[0-9]+([.][0-9]+)?$ ]] \
    || { echo "error: SETTLE=$SETTLE is not a number of seconds" >&2; exit 1; }
bed="$(mktemp -d)"
trap 'rm -rf "$bed"' EXIT
for variant in ssh nossh; do
    mkdir -p "$bed/$variant"
    ssh_attr=""
    if [[ "$variant" == nossh ]]; then ssh_attr="  ssh     = false"; fi
    cat >"$bed/$variant/main.tg.hcl" <<EOF
network "lab" {
  cidr = "10.250.0.0/16"
}

node "h" {
  count   = $n
  image   = "host"
  network = network.lab
$ssh_attr
}
EOF
done

# One untimed round first (its lines say "run 0"; WARMUP=0 skips it): the
# first runs after a build or another benchmark measured 10-25% slower
# than the rest.
if [[ "${WARMUP:-1}" != 0 ]]; then
    tg_run ssh 0 >/dev/null
    [[ -n "${TG_BASE:-}" ]] && tg_run ssh 0 "$TG_BASE" >/dev/null
    tg_run nossh 0 >/dev/null
    if [[ "${MININET:-1}" != 0 ]]; then
        mn -c >/dev/null 2>&1 || true
        mn --topo "single,$n" --switch lxbr --controller none --test none >/tmp/tg-bench-mn.log 2>&1 \
            || { tail -20 /tmp/tg-bench-mn.log >&2; mn -c >/dev/null 2>&1; exit 1; }
    fi
fi

tg_times=()
nossh_times=()
mn_times=()
base_times=()
for ((i = 1; i <= runs; i++)); do
    tg_times+=("$(tg_run ssh "$i")")
    [[ -n "${TG_BASE:-}" ]] && base_times+=("$(tg_run ssh "$i" "$TG_BASE")")
    nossh_times+=("$(tg_run nossh "$i")")
    [[ "${MININET:-1}" == 0 ]] && continue
    mn -c >/dev/null 2>&1 || true
    settle
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
nossh_s="$(printf '%s\n' "${nossh_times[@]}" | median)"
printf 'tg apply+destroy, ssh on    (%d nodes, median of %d): %8.3f s (target 2 s)\n' "$n" "$runs" "$tg_s"
printf 'tg apply+destroy, ssh = false (%d nodes, median of %d): %8.3f s\n' "$n" "$runs" "$nossh_s"
if [[ -n "${TG_BASE:-}" ]]; then
    base_s="$(printf '%s\n' "${base_times[@]}" | median)"
    printf 'base tg apply+destroy, ssh on (%d nodes, median of %d): %8.3f s (%s)\n' "$n" "$runs" "$base_s" "$TG_BASE"
    printf 'ratio base/tg, ssh on: %.2fx\n' "$(echo "$base_s / $tg_s" | bc -l)"
fi
if [[ "${MININET:-1}" == 0 ]]; then
    echo "RESULT n=$n tg_ssh=$tg_s tg_nossh=$nossh_s"
    exit 0
fi
mn_s="$(printf '%s\n' "${mn_times[@]}" | median)"
printf 'mininet create+destroy        (%d hosts, median of %d): %8.3f s\n' "$n" "$runs" "$mn_s"
printf 'ratio mininet/tg, ssh on: %.1fx (target: at least 5x)\n' "$(echo "$mn_s / $tg_s" | bc -l)"
printf 'ratio mininet/tg, ssh = false: %.1fx\n' "$(echo "$mn_s / $nossh_s" | bc -l)"
# One line for benches/run_all.py.
echo "RESULT n=$n tg_ssh=$tg_s tg_nossh=$nossh_s mininet=$mn_s"
