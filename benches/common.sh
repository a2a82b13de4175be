# Shared by the shell benchmarks (sourced, from the repository's root):
# the root and tool checks, the tg under test, a clock, a median and one
# timed apply+destroy.

# Exit unless root and every tool of "$@" is on PATH.
require_root_and() {
    if [[ $EUID -ne 0 ]]; then
        echo "error: run this benchmark as root" >&2
        exit 1
    fi
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "error: \`$tool\` is not installed (scripts/setup installs what benchmarks need)" >&2
            exit 1
        fi
    done
}

# Set `tg` to TG_BIN, or to a release build of this tree.
tg_under_test() {
    if [[ -n "${TG_BIN:-}" ]]; then
        tg="$TG_BIN"
    else
        echo "== building tg (release)"
        cargo build --quiet --release
        tg="$PWD/target/release/tg"
    fi
}

now() { date +%s.%N; }

# Let the kernel finish tearing down the namespaces of the run before
# (it frees a destroyed network namespace in a work queue after the last
# process lets go, ~0.5 ms of CPU each): without the pause, each run pays
# for the cleanup of the one before it, tg's and Mininet's alike, and
# back-to-back runs measured 5-6 ms slower at 10 nodes. SETTLE=seconds
# (default 0.3 plus 1 s per 500 nodes of the run, SETTLE_NODES; SETTLE=0
# times them back to back).
settle() {
    local nodes="${SETTLE_NODES:-0}" pause="${SETTLE:-}"
    if [[ -z "$pause" ]]; then
        pause="$(echo "0.3 + $nodes / 500" | bc -l)"
    elif ! [[ "$pause" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        echo "error: SETTLE=$pause is not a number of seconds" >&2
        exit 1
    fi
    sleep "$pause"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# One apply+destroy of the testbed in folder "$bed/$1" in a fresh session
# (removed after), run number $2, with the tg at $3 (default: `tg`); logs go
# to "$bed/apply.log" and "$bed/destroy.log". Prints the seconds; a failed
# run prints its log's tail and exits.
tg_run() {
    local dir="$bed/$1" session="bench-$$-$1-$2" start mid end tg="${3:-$tg}" label="$1"
    [[ -n "${3:-}" ]] && label="$1, base"
    settle
    start="$(now)"
    "$tg" -chdir "$dir" --session "$session" apply -auto-approve >"$bed/apply.log" 2>&1 \
        || { tail -20 "$bed/apply.log" >&2; exit 1; }
    mid="$(now)"
    "$tg" -chdir "$dir" --session "$session" destroy -auto-approve >"$bed/destroy.log" 2>&1 \
        || { tail -20 "$bed/destroy.log" >&2; exit 1; }
    end="$(now)"
    "$tg" -chdir "$dir" session delete "$session" >/dev/null 2>&1 || true
    printf 'tg (%s) run %d: %.3f s (apply %.3f s, destroy %.3f s)\n' "$label" "$2" \
        "$(echo "$end - $start" | bc -l)" "$(echo "$mid - $start" | bc -l)" \
        "$(echo "$end - $mid" | bc -l)" >&2
    echo "$end - $start" | bc -l
}
