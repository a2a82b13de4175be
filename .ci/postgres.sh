#!/usr/bin/env bash
# A PostgreSQL server for tg's tests and benchmarks that belongs to this
# checkout: its own data directory and port, derived from the checkout's path,
# so two checkouts (or a stray `stop` in one of them) never touch each other's
# server. User `tg`, password `tg`, database `tg` (the user may create
# databases, so tests can make fresh ones); TLS on (tests use sslmode=require).
#
#   .ci/postgres.sh            install if missing, initdb once, start; print the URL
#   .ci/postgres.sh restart    restart the server (tests of lost connections); print the URL
#   .ci/postgres.sh stop       stop it (the data directory stays)
#
# Data: /var/tmp/tg-pg/HASH/ (HASH: the first 12 hex digits of the SHA-256 of
# the checkout's absolute path; `TG_PG_TEST_ROOT` changes /var/tmp/tg-pg).
# Port: 55000 + HASH % 1000, or the next free one, chosen once at initdb and
# kept in HASH/port. The server listens on 127.0.0.1 only.
#
# Idempotent and safe to run from several processes at once (one flock per
# checkout). Needs root (it may install postgresql, and runs the server as the
# `postgres` user with pg_ctl). Only the URL goes to stdout; progress and
# errors go to stderr.
set -euo pipefail

ACTION="${1:-start}"
case "$ACTION" in
    start | restart | stop) ;;
    *)
        echo "postgres.sh: unknown action \`$ACTION\`; expected \`start\`, \`restart\` or \`stop\`" >&2
        exit 2
        ;;
esac

log() { echo "postgres.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (it runs the server as the \`postgres\` user)"

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
HASH="$(printf '%s' "$CHECKOUT" | sha256sum | cut -c1-12)"
ROOT="${TG_PG_TEST_ROOT:-/var/tmp/tg-pg}"
BASE="${ROOT}/${HASH}"
DATA="${BASE}/data"
LOGFILE="${BASE}/server.log"

install -d -m 0755 "$ROOT"
exec 9>"${ROOT}/${HASH}.lock"
flock 9

if [ -z "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null)" ]; then
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"
BIN="/usr/lib/postgresql/${VERSION}/bin"

# As the `postgres` user, without our lock: the server must not inherit fd 9
# (it would hold the lock for as long as it runs).
as_postgres() { runuser -u postgres -- "$@" 9>&-; }

running() { as_postgres "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

port_in_use() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ "$ACTION" = stop ]; then
    if [ -f "$DATA/PG_VERSION" ] && running; then
        as_postgres "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
    exit 0
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
    log "making a server for ${CHECKOUT} in ${BASE}"
    install -d -m 0700 -o postgres -g postgres "$BASE"
    rm -rf "$DATA"
    port=$((55000 + 16#${HASH:0:8} % 1000))
    while port_in_use "$port"; do
        port=$((port + 1))
        [ "$port" -lt 56000 ] || port=55000
    done
    echo "$port" >"${BASE}/port"
    as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth-local=peer \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >&2
    log "making a self-signed TLS certificate"
    openssl req -x509 -nodes -newkey rsa:2048 -days 3650 -subj "/CN=127.0.0.1" \
        -keyout "$DATA/server.key" -out "$DATA/server.crt" >/dev/null 2>&1
    chown postgres:postgres "$DATA/server.key" "$DATA/server.crt"
    chmod 600 "$DATA/server.key"
    echo "include 'tg.conf'" >>"$DATA/postgresql.conf"
fi
PORT="$(cat "${BASE}/port")"
URL="postgres://tg:tg@127.0.0.1:${PORT}/tg"

# Rewritten on every start, so a changed script takes effect.
cat >"$DATA/tg.conf" <<CONF
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${BASE}'
max_connections = 300
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
CONF
chown postgres:postgres "$DATA/tg.conf"

wait_ready() {
    for _ in $(seq 1 150); do
        if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
            return 0
        fi
        sleep 0.2
    done
    log "the server on 127.0.0.1:${PORT} did not come up; ${LOGFILE}:"
    tail -n 30 "$LOGFILE" >&2 || true
    exit 1
}

if [ "$ACTION" = restart ] && running; then
    as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -m fast -w restart >&2
elif ! running; then
    if port_in_use "$PORT"; then
        die "port ${PORT} (kept in ${BASE}/port) is taken by another program; stop it, or remove ${BASE} to pick a new port"
    fi
    log "starting the server on 127.0.0.1:${PORT}"
    as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w start >&2 ||
        { tail -n 30 "$LOGFILE" >&2 || true; die "the server did not start"; }
fi
wait_ready

psql_admin() {
    as_postgres "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BASE" -p "$PORT" -d postgres "$@"
}
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'tg'")" != "1" ]; then
    psql_admin -c "CREATE ROLE tg LOGIN CREATEDB PASSWORD 'tg'" >&2
fi
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'tg'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE tg OWNER tg" >&2
fi

echo "$URL"
