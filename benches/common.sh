# Shared by the shell benchmarks (sourced, from the repository's root):
# the root and tool checks, the tg under test, a clock and a median.

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
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
