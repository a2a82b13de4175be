#!/usr/bin/env bash
# Apply+destroy of a `.deb` package on N `ssh` pool hosts, with the pool's
# SSH connections reused (the default: one per host per run) and with
# `reuse_connections = false` (one per operation), taking turns; prints the
# medians of RUNS runs and their ratio.
#
#   benches/pool_reuse.sh [N]        (as root; default N=20, RUNS=3)
#
# TG_BIN=PATH times another tg build instead of building this tree.
#
# The hosts are real OpenSSH servers that tg did not make: each in a network
# namespace of its own on a bridge of the benchmark's (10.251.0.0/24), and in
# a mount namespace whose root is an overlay of the host's `/` with a tmpfs
# upper layer, so every host has its own dpkg database (a package installed on
# one is on no other, nor on the machine). The testbed: a pool of the N hosts,
# `node "h" { count = N }` on it, and a package from a small `.deb` (built here
# with dpkg-deb) on every node. Each run is a fresh session; everything is
# removed on exit, also when a run fails. Needs root, sshd, ssh-keygen,
# dpkg-deb, unshare and ip.
set -euo pipefail

n="${1:-20}"
runs="${RUNS:-3}"
cd "$(dirname "$0")/.."

# shellcheck source=benches/common.sh
source benches/common.sh
require_root_and /usr/sbin/sshd ssh-keygen dpkg-deb unshare ip bc
if ((n < 1 || n > 200)); then
    echo "error: N must be from 1 to 200" >&2
    exit 1
fi
tg_under_test

tag="$(printf '%x' $(($$ % 0xffff)))"
work="$(mktemp -d /tmp/tg-pool-bench.XXXXXX)"
bed="$work" # where `tg_run` finds the testbeds
bridge="tgpb${tag}"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for ((i = 1; i <= n; i++)); do
        ns="tgpb${tag}h$i"
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
            ip netns del "$ns" 2>/dev/null || true
        fi
        ip link del "tgpb${tag}v$i" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    # The hosts' roots were mounted in their own mount namespaces (gone with
    # their processes); only the tmpfs under them is ours.
    umount -l "$work/roots" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== making $n pool hosts"
ssh-keygen -q -t ed25519 -N '' -C tg-bench -f "$work/id"
mkdir -p "$work/roots"
mount -t tmpfs tg-pool-bench "$work/roots"
ip link add "$bridge" type bridge
ip addr add 10.251.0.1/24 dev "$bridge"
ip link set "$bridge" up
: >"$work/known_hosts"
for ((i = 1; i <= n; i++)); do
    ns="tgpb${tag}h$i" veth="tgpb${tag}v$i" addr="10.251.0.$((i + 1))"
    h="$work/roots/h$i"
    mkdir -p "$h/upper" "$h/work" "$h/root" "$h/etc"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ssh-keygen -q -t ed25519 -N '' -f "$h/etc/host_key"
    cp "$work/id.pub" "$h/etc/authorized_keys"
    cat >"$h/etc/sshd_config" <<EOF
Port 22
ListenAddress $addr
HostKey /run/tg-bench/host_key
PidFile /run/tg-bench/sshd.pid
AuthorizedKeysFile /run/tg-bench/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
    echo "$addr $(cut -d' ' -f1-2 "$h/etc/host_key.pub")" >>"$work/known_hosts"
    # Its own root: the machine's `/` under a private upper layer, with a
    # fresh /proc, the machine's /dev and a private /run.
    ip netns exec "$ns" unshare -m --propagation private sh -c "
        mount -t overlay overlay -o lowerdir=/,upperdir=$h/upper,workdir=$h/work $h/root &&
        mount --rbind /dev $h/root/dev &&
        mount -t proc proc $h/root/proc &&
        mount -t tmpfs tmpfs $h/root/run &&
        mount -t tmpfs tmpfs $h/root/tmp &&
        mkdir -p $h/root/run/sshd $h/root/run/tg-bench &&
        mount --bind $h/etc $h/root/run/tg-bench &&
        exec chroot $h/root /usr/sbin/sshd -D -e -f /run/tg-bench/sshd_config
    " 2>>"$work/sshd.log" &
    pids+=($!)
done
for ((i = 1; i <= n; i++)); do
    addr="10.251.0.$((i + 1))"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null; then break; fi
        sleep 0.05
    done
    (exec 3<>"/dev/tcp/$addr/22") 2>/dev/null || { echo "error: sshd on $addr did not start:" >&2; cat "$work/sshd.log" >&2; exit 1; }
done

# The package: one file, nothing to configure.
pkg="$work/pkg"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/tg-bench"
echo "tg" >"$pkg/usr/share/tg-bench/marker"
cat >"$pkg/DEBIAN/control" <<EOF
Package: tg-bench-marker
Version: 1.0
Architecture: all
Maintainer: tg <tg@localhost>
Description: tg pool benchmark package
EOF
dpkg-deb --build --root-owner-group "$pkg" "$work/marker.deb" >/dev/null

for variant in reuse noreuse; do
    mkdir -p "$work/$variant"
    reuse=""
    if [[ "$variant" == noreuse ]]; then reuse="  reuse_connections = false"; fi
    {
        echo "platform \"ssh\" \"lab\" {"
        echo "  user          = \"root\""
        echo "  identity_file = \"$work/id\""
        echo "  known_hosts   = \"$work/known_hosts\""
        echo "$reuse"
        for ((i = 1; i <= n; i++)); do
            echo "  host \"h$i\" {"
            echo "    address = \"10.251.0.$((i + 1))\""
            echo "  }"
        done
        echo "}"
        echo
        echo "node \"h\" {"
        echo "  count    = $n"
        echo "  platform = \"lab\""
        echo "  image    = \"host\""
        echo "}"
        echo
        echo "package \"tg-bench-marker\" {"
        echo "  source = \"deb\""
        echo "  deb    = \"$work/marker.deb\""
        echo "  on     = node.h"
        echo "}"
    } >"$work/$variant/main.tg.hcl"
done

reuse_times=()
noreuse_times=()
for ((i = 1; i <= runs; i++)); do
    reuse_times+=("$(tg_run reuse "$i")")
    noreuse_times+=("$(tg_run noreuse "$i")")
done
reuse_s="$(printf '%s\n' "${reuse_times[@]}" | median)"
noreuse_s="$(printf '%s\n' "${noreuse_times[@]}" | median)"
printf 'apply+destroy of a .deb on %d pool hosts, connections reused (median of %d): %8.3f s\n' "$n" "$runs" "$reuse_s"
printf 'the same, reuse_connections = false                      (median of %d): %8.3f s\n' "$runs" "$noreuse_s"
printf 'ratio: %.2fx\n' "$(echo "$noreuse_s / $reuse_s" | bc -l)"
echo "RESULT n=$n reuse=$reuse_s noreuse=$noreuse_s"
